"""The shape of the GPT, read from and written to a GPT-2 ``config.json``.

The names are GPT-2's (Radford et al. 2019) as ``transformers.GPT2Config`` spells them, so the
same file loads our decoder and Hugging Face's ``GPT2LMHeadModel``:

- ``n_layer`` blocks, each with ``n_head`` attention heads over ``n_embd`` dimensions
  (``d = n_embd / n_head`` per head) and a feed-forward layer ``4 * n_embd`` wide;
- ``n_positions``: the longest context the model has position embeddings for;
- ``vocab_size``: pieces of the byte-level BPE (``bpe.py``);
- ``activation_function: gelu_new``: GELU's tanh approximation, as GPT-2 was trained with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GPTConfig:
    """Hyper-parameters of a GPT-2-architecture decoder (GPT-2's names)."""

    vocab_size: int = 4096
    n_positions: int = 128  # context length
    n_embd: int = 192  # d_model
    n_layer: int = 4
    n_head: int = 6
    layer_norm_epsilon: float = 1e-5
    dropout: float = 0.0  # training only: on the embeddings and on each residual branch
    bos_token_id: int = 0  # <|endoftext|> starts every text ...
    eos_token_id: int = 0  # ... and ends every document

    @property
    def head_size(self) -> int:
        """Width of one head: ``n_embd / n_head``."""
        return self.n_embd // self.n_head

    @property
    def n_inner(self) -> int:
        """Width of the feed-forward layer: four times ``n_embd``, as in GPT-2."""
        return 4 * self.n_embd

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content, complete enough for ``transformers.GPT2Config``."""
        return {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "vocab_size": self.vocab_size,
            "n_positions": self.n_positions,
            "n_ctx": self.n_positions,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_inner": None,  # None means 4 * n_embd
            "activation_function": "gelu_new",
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "resid_pdrop": self.dropout,
            "embd_pdrop": self.dropout,
            "attn_pdrop": 0.0,  # our attention has no dropout of its own
            "initializer_range": 0.02,
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False,
            "tie_word_embeddings": True,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.eos_token_id,
            "use_cache": True,
            "dtype": "float32",
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GPTConfig:
        if raw.get("model_type", "gpt2") != "gpt2":
            raise ValueError(f"Not a GPT-2 config: model_type {raw.get('model_type')!r}")
        if raw.get("activation_function", "gelu_new") != "gelu_new":
            raise ValueError(f"Only 'gelu_new' is supported, not {raw['activation_function']!r}")
        n_embd = int(raw["n_embd"])
        if raw.get("n_inner") not in (None, 4 * n_embd):
            raise ValueError(f"Only n_inner = 4 * n_embd is supported, not {raw['n_inner']}")
        for flag, wanted in (
            ("scale_attn_weights", True),
            ("scale_attn_by_inverse_layer_idx", False),
            ("tie_word_embeddings", True),
        ):
            if bool(raw.get(flag, wanted)) is not wanted:
                raise ValueError(f"Only {flag}={wanted} is supported")
        return cls(
            vocab_size=int(raw["vocab_size"]),
            n_positions=int(raw["n_positions"]),
            n_embd=n_embd,
            n_layer=int(raw["n_layer"]),
            n_head=int(raw["n_head"]),
            layer_norm_epsilon=float(raw.get("layer_norm_epsilon", 1e-5)),
            dropout=float(raw.get("resid_pdrop", 0.0)),
            bos_token_id=int(raw.get("bos_token_id", 0)),
            eos_token_id=int(raw.get("eos_token_id", 0)),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> GPTConfig:
        """Read a GPT-2 ``config.json`` (as written by :meth:`write_json` or ``transformers``)."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
