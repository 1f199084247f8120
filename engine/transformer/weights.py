"""Loading the trained weights from ``model.safetensors`` into our modules.

The file uses Hugging Face's BERT names (``encoder.layer.3.attention.self.query.weight``); our
modules use the paper's names (``layers.3.attention.query.weight``). :func:`engine_name` is the
whole translation table. Checkpoints saved from a wrapper carry a prefix (``bert.``,
``0.auto_model.``...): everything before ``embeddings.`` / ``encoder.`` is ignored. Tensors we
do not use (the pooler, the ``position_ids`` buffer, heads for pre-training) are skipped.
Linear weights are transposed on the way in: the checkpoint stores ``[out, in]``, our
:class:`~.linear.Linear` stores ``[in, out]`` as in ``Q = X W^Q``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

# (pattern on the prefix-free Hugging Face name, our name, is it a linear layer?)
# \1 = layer index, then the last group is weight|bias.
_RULES: list[tuple[re.Pattern[str], str, bool]] = [
    (re.compile(pattern), target, linear)
    for pattern, target, linear in [
        (r"embeddings\.word_embeddings\.weight", "embeddings.word.weight", False),
        (r"embeddings\.position_embeddings\.weight", "embeddings.position.weight", False),
        (r"embeddings\.token_type_embeddings\.weight", "embeddings.token_type.weight", False),
        (r"embeddings\.LayerNorm\.(weight|bias)", r"embeddings.norm.\1", False),
        (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)",
         r"layers.\1.attention.\2.\3", True),
        (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)",
         r"layers.\1.attention.output.\2", True),
        (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)",
         r"layers.\1.attention_norm.\2", False),
        (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)",
         r"layers.\1.feed_forward.up.\2", True),
        (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)",
         r"layers.\1.feed_forward.down.\2", True),
        (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)",
         r"layers.\1.output_norm.\2", False),
    ]
]  # fmt: skip

# Everything up to the first "embeddings." or "encoder." component is a wrapper prefix.
_PREFIX = re.compile(r"(?:^|\.)((?:embeddings|encoder)\..*)$")


def _match(hf_name: str) -> tuple[str, bool] | None:
    match = _PREFIX.search(hf_name)
    if match is None:
        return None
    name = match.group(1)
    # Very old checkpoints call the LayerNorm parameters gamma / beta.
    name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
    name = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)
    for pattern, target, linear in _RULES:
        if pattern.fullmatch(name):
            ours = pattern.sub(target, name)
            return ours, linear and ours.endswith(".weight")
    return None


def engine_name(hf_name: str) -> str | None:
    """Our parameter name for a checkpoint tensor name, or ``None`` if we do not use it."""
    found = _match(hf_name)
    return None if found is None else found[0]


def load_state_dict(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Read a safetensors file and return its tensors under our names and layouts."""
    raw = load_file(str(path), device=str(device))
    state: dict[str, Tensor] = {}
    sources: dict[str, str] = {}
    for hf_name, tensor in raw.items():
        found = _match(hf_name)
        if found is None:
            continue
        name, transpose = found
        if transpose:  # checkpoint [out, in] -> our [in, out], see linear.py
            tensor = tensor.t()
        if name in state:
            raise ValueError(
                f"{path}: both {sources[name]!r} and {hf_name!r} map to {name!r} "
                "(two models in one file?)"
            )
        state[name] = tensor
        sources[name] = hf_name
    return state


def load_weights(module: nn.Module, path: str | Path, device: str | torch.device = "cpu") -> None:
    """Copy every parameter of ``module`` from the safetensors file at ``path``.

    The values are *copied* into the module's own parameters rather than assigned: tensors
    read from a safetensors file can sit at unaligned addresses (a few bytes past a 64-byte
    boundary), which makes the CPU matrix multiplications measurably slower. Missing or
    unexpected tensors, or a wrong shape, raise a ``ValueError`` listing them.
    """
    state = load_state_dict(path, device)
    expected = set(module.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit the encoder: missing {missing[:8]}{'...' if len(missing) > 8 else ''}"
            f", unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    for name, tensor in state.items():
        current = module.get_parameter(name)
        if tuple(current.shape) != tuple(tensor.shape):
            raise ValueError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, expected {tuple(current.shape)}"
            )
    module.load_state_dict(state, strict=True)
