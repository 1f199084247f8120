"""Choosing where the tensors live: ``cpu`` or ``cuda``.

The choice comes from the argument, else from the ``ENGINE_DEVICE`` environment variable,
else ``"auto"`` (the GPU when PyTorch sees one, the CPU otherwise).
"""

from __future__ import annotations

import os
import re

import torch

ENV_VAR = "ENGINE_DEVICE"
_CUDA_INDEX = re.compile(r"cuda:\d+")


class DeviceUnavailable(RuntimeError):
    """The requested device exists in principle but not on this machine."""


def resolve_device(name: str | None = None) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``) into a :class:`torch.device`.

    Raises :class:`DeviceUnavailable` for ``cuda`` without a usable GPU and ``ValueError`` for
    any other name.
    """
    if name is None:
        name = os.environ.get(ENV_VAR, "") or "auto"
    choice = name.strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or _CUDA_INDEX.fullmatch(choice):
        if not torch.cuda.is_available():
            raise DeviceUnavailable(
                f"Device {name!r} was requested but CUDA is not available "
                f"(torch {torch.__version__}, built for CUDA: {torch.version.cuda or 'no'}). "
                f"Use 'cpu' or 'auto' (e.g. {ENV_VAR}=auto)."
            )
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailable(
                f"Device {name!r} was requested but only {torch.cuda.device_count()} GPU(s) exist."
            )
        return device
    raise ValueError(f"Unknown device {name!r}: expected 'auto', 'cpu' or 'cuda'.")
