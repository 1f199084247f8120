"""The live models, described for the pages and the API: what each is, how big, what it was
trained on, what it can and cannot read. Read from the model files (config, tokenizer,
safetensors header, training record) without loading torch, once per process."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from django.conf import settings
from safetensors import safe_open

from .limits import MAX_PIECES
from .models import LiveModel
from .transformer import bpe, paths
from .transformer.tokenizer import count_pieces as wordpiece_count

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    kind: str  # "encoder" | "decoder"
    layers: int
    heads: int
    hidden: int
    context: int  # the most pieces one run may read (and, for the GPT, generate)
    vocab: int
    parameters: int
    trained_on: str
    checkpoint: str  # the folder of the model files, relative to the repository root if inside
    card: dict = field(default_factory=dict)  # the model card's essentials (the GPT's training)

    @property
    def causal(self) -> bool:
        return self.kind == "decoder"


def _relative(directory: Path) -> str:
    try:
        return str(directory.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
    except ValueError:
        return str(directory)


def _parameters(weights: Path) -> int:
    """Parameters counted from the safetensors header: shapes only, no tensor is read."""
    with safe_open(str(weights), framework="numpy") as handle:
        return sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())  # noqa: SIM118


@cache
def _minilm() -> ModelInfo:
    directory = paths.model_dir()
    config = json.loads((directory / "config.json").read_text())
    return ModelInfo(
        id=LiveModel.MINILM,
        name="all-MiniLM-L6-v2",
        kind="encoder",
        layers=config["num_hidden_layers"],
        heads=config["num_attention_heads"],
        hidden=config["hidden_size"],
        context=MAX_PIECES,
        vocab=config["vocab_size"],
        parameters=_parameters(directory / "model.safetensors"),
        trained_on=(
            "Pretrained by Microsoft (MiniLM) and fine-tuned by sentence-transformers on about "
            "1 billion English sentence pairs; English, lower-cased."
        ),
        checkpoint=_relative(directory),
    )


@cache
def _gpt() -> ModelInfo:
    directory = paths.gpt_model_dir()
    config = json.loads((directory / "config.json").read_text())
    record_path = directory / "training.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    return ModelInfo(
        id=LiveModel.GPT,
        name="Attention Lab GPT",
        kind="decoder",
        layers=config["n_layer"],
        heads=config["n_head"],
        hidden=config["n_embd"],
        context=config["n_positions"],
        vocab=config["vocab_size"],
        # the training record counts the tied embedding once; the header would too
        parameters=record.get("parameters") or _parameters(directory / "model.safetensors"),
        trained_on=record.get("trained_on", "the lessons of this site, in Japanese and English"),
        checkpoint=_relative(directory),
        card=card_essentials(record),
    )


def card_essentials(record: dict) -> dict:
    """What the demo page shows of the model card, from ``training.json``."""
    if not record:
        return {}
    corpus = record.get("corpus", {})
    final = record.get("final", {})
    return {
        "corpus_characters": sum(part.get("characters", 0) for part in corpus.values()),
        "corpus_documents": sum(part.get("documents", 0) for part in corpus.values()),
        "steps": record.get("settings", {}).get("steps"),
        "wall_time_s": record.get("wall_time_s"),
        "val_loss": final.get("val_loss"),
        "val_perplexity": final.get("val_perplexity"),
        "seed": record.get("seed"),
    }


def info(model: str) -> ModelInfo:
    return _gpt() if model == LiveModel.GPT else _minilm()


def all_models() -> list[ModelInfo]:
    """The models whose files are on this machine (a missing checkpoint is logged)."""
    found = []
    for model in LiveModel.values:
        try:
            found.append(info(model))
        except paths.ModelFilesMissing as error:
            log.warning("live model %s unavailable: %s", model, error)
    return found


def installed(model: str) -> bool:
    return any(found.id == model for found in all_models())


def count_pieces(model: str, text: str) -> int:
    """How many pieces ``model`` reads for ``text`` (the encoder's count includes [CLS] and
    [SEP])."""
    if model == LiveModel.GPT:
        return bpe.count_pieces(text)
    return wordpiece_count(text)
