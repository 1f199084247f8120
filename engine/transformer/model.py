"""The engine's front door: load once, then run texts and get numpy arrays back.

    model = AttentionModel.load()              # config + weights + tokenizer, eval mode
    result = model.run("The cat sat on the mat.")
    result.weights.shape                        # (6 layers, 12 heads, T, T)
    a, b, similarity = model.run_pair("I love tea.", "Tea is my favourite drink.")

Everything stays in torch (on the chosen device) during the forward pass and is converted to
float32 numpy arrays once at the end. The library never calls ``torch.set_num_threads``: the
process that hosts it decides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .analysis import cosine_similarity
from .config import EncoderConfig
from .device import resolve_device
from .encoder import Encoder, EncoderOutput
from .paths import model_dir as default_model_dir
from .pooling import sentence_embedding
from .tokenizer import Tokens, WordPieceTokenizer
from .weights import load_weights


@dataclass
class RunResult:
    """One text through the encoder, cut to its own ``T`` tokens.

    ``weights`` (after softmax) and ``scores`` (raw ``QK^T/sqrt(d)``): ``[L, H, T, T]`` float32.
    ``embedding``: the L2-normalised sentence vector ``[D]``. With ``keep_qkv=True``,
    ``queries``/``keys``/``values`` hold ``[L, H, T, d]`` for a step-through view.
    ``elapsed_ms`` covers tokenization, the forward pass and the conversion to numpy (for a
    pair: the whole batch of two).

    For norm-based attention and the similarity split (``contributions``):
    ``value_norms``: ``[L, H, T]``, ``||f_h(x_j)||`` of every head's transformed value vector
    (:meth:`~.attention.MultiHeadSelfAttention.transformed_value_norms`); ``last_hidden``:
    ``[T, D]``, the token vectors the sentence embedding is the mean of; ``layer_means``:
    ``[L + 1, D]``, the mean of every hidden state over the tokens (the embeddings first).
    """

    tokens: Tokens
    weights: np.ndarray
    scores: np.ndarray
    embedding: np.ndarray
    device: str
    elapsed_ms: float
    queries: np.ndarray | None = None
    keys: np.ndarray | None = None
    values: np.ndarray | None = None
    value_norms: np.ndarray | None = None
    last_hidden: np.ndarray | None = None
    layer_means: np.ndarray | None = None

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    def __len__(self) -> int:
        return len(self.tokens)


class AttentionModel:
    """all-MiniLM-L6-v2 (a 6-layer BERT) with every attention intermediate exposed."""

    def __init__(
        self,
        config: EncoderConfig,
        encoder: Encoder,
        tokenizer: WordPieceTokenizer,
        device: torch.device,
        model_dir: Path,
        load_ms: float = 0.0,
    ) -> None:
        self.config = config
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.device = device
        self.model_dir = model_dir
        self.load_ms = load_ms

    @classmethod
    def load(
        cls, device: str | torch.device | None = None, model_dir: str | Path | None = None
    ) -> AttentionModel:
        """Read config, weights and tokenizer (from :func:`~.paths.model_dir` by default).

        ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``, a :class:`torch.device`, or ``None`` for
        ``ENGINE_DEVICE`` / auto (see :func:`~.device.resolve_device`).
        """
        start = time.perf_counter()
        target = device if isinstance(device, torch.device) else resolve_device(device)
        directory = Path(model_dir) if model_dir is not None else default_model_dir()
        config = EncoderConfig.from_json(directory / "config.json")
        # Built with throw-away random values, then overwritten with the trained ones.
        # (Building on the "meta" device would skip the random init, but it pulls in
        # torch._dynamo, +2 s, and safetensors' own buffers are not aligned for fast matmuls.)
        encoder = Encoder(config, device=target)
        load_weights(encoder, directory / "model.safetensors", device=target)
        encoder.eval().requires_grad_(False)
        tokenizer = WordPieceTokenizer(directory / "tokenizer.json")
        load_ms = (time.perf_counter() - start) * 1000.0
        return cls(config, encoder, tokenizer, target, directory, load_ms)

    def encode(self, text: str) -> Tokens:
        """Tokenize ``text`` (no truncation: check ``len(tokens)`` against ``MAX_PIECES``)."""
        return self.tokenizer.encode(text)

    def batch(self, token_lists: list[Tokens]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad several tokenized texts into ``input_ids`` and ``attention_mask`` ``[B, T]``."""
        length = max(len(tokens) for tokens in token_lists)
        ids = torch.full((len(token_lists), length), self.config.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(token_lists), length), dtype=torch.long)
        for row, tokens in enumerate(token_lists):
            ids[row, : len(tokens)] = torch.tensor(tokens.ids, dtype=torch.long)
            mask[row, : len(tokens)] = 1
        return ids.to(self.device), mask.to(self.device)

    @torch.inference_mode()
    def trace(self, texts: list[str]) -> tuple[list[Tokens], EncoderOutput, torch.Tensor]:
        """The full torch trace for a padded batch: tokens, :class:`EncoderOutput`, mask."""
        token_lists = [self.encode(text) for text in texts]
        ids, mask = self.batch(token_lists)
        return token_lists, self.encoder(ids, mask), mask

    def run(self, text: str, *, keep_qkv: bool = False) -> RunResult:
        """Run one text. ``keep_qkv`` also returns per-head queries, keys and values."""
        return self._run_batch([text], keep_qkv=keep_qkv)[0]

    def run_pair(
        self, text: str, other: str, *, keep_qkv: bool = False
    ) -> tuple[RunResult, RunResult, float]:
        """Run two texts as ONE padded batch and compare them.

        Returns both results (each cut back to its own tokens) and the cosine similarity of
        their sentence embeddings.
        """
        first, second = self._run_batch([text, other], keep_qkv=keep_qkv)
        return first, second, cosine_similarity(first.embedding, second.embedding)

    def run_batch(self, texts: list[str], *, keep_qkv: bool = False) -> list[RunResult]:
        """Run several texts as ONE right-padded batch; each result is what :meth:`run` gives
        for that text alone (the padding is masked out of every key, and each result is cut
        back to its own tokens). A worker uses it to compute several queued runs at once."""
        return self._run_batch(texts, keep_qkv=keep_qkv) if texts else []

    @torch.inference_mode()
    def _run_batch(self, texts: list[str], *, keep_qkv: bool) -> list[RunResult]:
        start = time.perf_counter()
        token_lists = [self.encode(text) for text in texts]
        ids, mask = self.batch(token_lists)
        output = self.encoder(ids, mask)

        # One stack + one device->host copy per field, then cheap per-text views.
        fields = ["weights", "scores"] + (["queries", "keys", "values"] if keep_qkv else [])
        host = {name: _to_host(output.stacked(name)) for name in fields}  # [L, B, H, ...]
        embeddings = _to_host(sentence_embedding(output.last_hidden_state, mask))
        norms = _to_host(
            torch.stack(
                [
                    layer.attention.transformed_value_norms(trace.values)
                    for layer, trace in zip(self.encoder.layers, output.layers, strict=True)
                ]
            )
        )  # [L, B, H, T]
        hidden = torch.stack(output.hidden_states)  # [L + 1, B, T, D]
        real = mask.to(hidden.dtype)[None, :, :, None]
        means = _to_host((hidden * real).sum(dim=2) / real.sum(dim=2))  # [L + 1, B, D]
        last_hidden = _to_host(output.last_hidden_state)  # [B, T, D]
        elapsed_ms = (time.perf_counter() - start) * 1000.0

        results = []
        for row, tokens in enumerate(token_lists):
            length = len(tokens)
            # Views into the batch's arrays, not copies: storing packs each one once anyway.
            cut = {
                name: array[:, row, :, :length, :length]
                if name in ("weights", "scores")
                else array[:, row, :, :length, :]
                for name, array in host.items()
            }
            results.append(
                RunResult(
                    tokens=tokens,
                    weights=cut["weights"],
                    scores=cut["scores"],
                    embedding=embeddings[row],
                    device=str(self.device),
                    elapsed_ms=elapsed_ms,
                    queries=cut.get("queries"),
                    keys=cut.get("keys"),
                    values=cut.get("values"),
                    value_norms=norms[:, row, :, :length],
                    last_hidden=last_hidden[row, :length],
                    layer_means=means[:, row],
                )
            )
        return results


def _to_host(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy()
