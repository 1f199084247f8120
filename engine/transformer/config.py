"""The shape of the encoder, read from the model's ``config.json``.

all-MiniLM-L6-v2 is a small BERT: 6 layers, a hidden size of 384 split into 12 heads of 32
dimensions, and a feed-forward ("intermediate") layer four times wider (1536).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EncoderConfig:
    """Hyper-parameters of a BERT-style encoder (names follow the paper where they can)."""

    vocab_size: int = 30522
    hidden_size: int = 384  # d_model
    num_layers: int = 6  # N
    num_heads: int = 12  # h
    intermediate_size: int = 1536  # d_ff
    max_positions: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @property
    def head_size(self) -> int:
        """Width of one head: d_k = d_v = d_model / h (here 384 / 12 = 32)."""
        return self.hidden_size // self.num_heads

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}"
            )

    @classmethod
    def from_json(cls, path: str | Path) -> EncoderConfig:
        """Read a Hugging Face ``config.json`` (BERT naming) into an :class:`EncoderConfig`."""
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(
                f"Only the exact 'gelu' activation is supported, not {raw['hidden_act']}"
            )
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("Only absolute position embeddings are supported")
        return cls(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            num_layers=int(raw["num_hidden_layers"]),
            num_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            max_positions=int(raw["max_position_embeddings"]),
            type_vocab_size=int(raw.get("type_vocab_size", 2)),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
            pad_token_id=int(raw.get("pad_token_id", 0)),
        )
