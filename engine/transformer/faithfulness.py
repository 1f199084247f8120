"""A deletion test: do the tokens an explanation ranks highest matter to the model?

An explanation method gives every token an importance. If the explanation is *faithful*, deleting
its top-``k`` tokens should move the model's output more than deleting ``k`` tokens at random.
Four methods are ranked here, all on the learner's own sentence:

- ``attention``: the last layer's attention weights, averaged over its heads. A token's score
  is the attention it *receives*: for the encoder averaged over every query row (the sentence
  embedding is a mean over every position, so every row counts alike); for the GPT the last
  position's row alone (the row that predicts the next token).
- ``rollout``: attention rollout over all layers (Abnar & Zuidema 2020, ``analysis.rollout``),
  read the same way (mean of the rows, or the last row).
- ``norm``: norm-based attention of the last layer (Kobayashi et al. 2020): the length of what
  token ``j`` actually adds to token ``i``, ``‖Σ_h α^h_ij f^h(x_j)‖``, where
  ``f^h(x) = (x W_V^h + b_V^h) W_O^h`` is head ``h``'s value and output transform. A large
  weight on a vector of length ~0 adds nothing; this sees it.
- ``gradient``: gradient × input. The L2 norm over dimensions of ``∂s/∂e_j ⊙ e_j``, where
  ``e_j`` is token ``j``'s row of the word-embedding table and ``s`` a scalar target:

  * encoder: the mean-pooled vector's length along its own original direction,
    ``s = p · p₀/‖p₀‖`` (``p₀`` detached). Not the cosine with the original embedding: the
    embedding is L2-normalised, and the cosine of a unit vector with itself has a zero
    gradient exactly at the original sentence, so it would rank nothing.
  * GPT: the log-probability of the model's most likely next token at the last position.

Deleting means removing the tokens from the input ids and running the model again (never
``[CLS]``/``[SEP]``; for the GPT never the first ``<|endoftext|>`` nor the last token, whose
prediction is what is measured). How far the output moves:

- encoder: ``1 − cos(e, e')`` between the original and the new sentence embeddings;
- GPT: the total variation distance ``½ Σ_v |p(v) − p'(v)|`` between the next-token
  distributions at the last position (0: the same prediction, 1: nothing in common).

The random baseline deletes ``k`` tokens drawn without replacement, ``RANDOM_DRAWS`` seeded
draws; the curve is their mean ± standard deviation. Every edited input goes through the model
in padded batches with a real attention mask.

Plain PyTorch and numpy; never imports Django. The caller passes an ``on_progress(done, total)``
to hear about each batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .analysis import rollout
from .model import _to_host

METHODS = ("attention", "rollout", "norm", "gradient")
MAX_K = 5  # at most this many tokens are removed
RANDOM_DRAWS = 20
RANDOM_SEED = 0
BATCH = 16  # edited inputs per forward pass (one progress step each)

Progress = Callable[[int, int], None]


class TooShort(ValueError):
    """Fewer than two tokens may be removed: there is no curve to draw."""


# --- the pieces, each testable on its own --------------------------------------------------------


def removable_positions(special: Sequence[bool], *, decoder: bool) -> list[int]:
    """The positions a deletion may take: never a special token; for a decoder never the first
    position nor the last (the position whose next-token prediction is measured)."""
    positions = [i for i, is_special in enumerate(special) if not is_special]
    if decoder:
        positions = [i for i in positions if 0 < i < len(special) - 1]
    return positions


def steps(removable: int) -> int:
    """How many tokens the curve goes up to: ``min(MAX_K, removable − 1)`` (at least one token
    always stays)."""
    return max(0, min(MAX_K, removable - 1))


def ranking(scores: np.ndarray, candidates: Sequence[int]) -> list[int]:
    """``candidates`` by descending score; a tie goes to the earlier position."""
    return sorted(candidates, key=lambda position: (-float(scores[position]), position))


def delete(ids: Sequence[int], positions: Sequence[int]) -> list[int]:
    """``ids`` without the given positions (the rest keep their order)."""
    gone = set(positions)
    return [token for index, token in enumerate(ids) if index not in gone]


def embedding_shift(original: np.ndarray, changed: np.ndarray) -> float:
    """``1 − cos(original, changed)``: 0 for the same direction, up to 2 for the opposite."""
    original, changed = np.asarray(original, np.float64), np.asarray(changed, np.float64)
    denominator = np.linalg.norm(original) * np.linalg.norm(changed)
    if denominator == 0:
        return 1.0
    return float(1.0 - original @ changed / denominator)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """``½ Σ |p − q|`` between two probability distributions: 0 to 1."""
    return float(0.5 * np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())


def received(matrix: np.ndarray, *, last_row: bool) -> np.ndarray:
    """What each column (key token) receives from a ``[T, T]`` matrix: the mean over the query
    rows, or the last row alone."""
    matrix = np.asarray(matrix, np.float64)
    return matrix[-1].copy() if last_row else matrix.mean(axis=0)


def norm_based(weights: np.ndarray, values: np.ndarray, w_out: np.ndarray) -> np.ndarray:
    """Norm-based attention of one layer, ``[T, T]``: ``‖Σ_h α^h_ij f^h(x_j)‖``.

    ``weights`` ``[H, T, T]`` after softmax; ``values`` ``[H, T, d]`` (``x W_V + b_V``, per
    head); ``w_out`` ``[H·d, D]``, the output projection stored ``[in, out]`` (rows ``h·d`` to
    ``(h+1)·d`` belong to head ``h``). The output bias does not depend on ``j`` and is left out.
    """
    weights = np.asarray(weights, np.float32)
    values = np.asarray(values, np.float32)
    heads, _, size = values.shape
    transform = np.asarray(w_out, np.float32).reshape(heads, size, -1)  # [H, d, D]
    f = np.einsum("htd,hdD->htD", values, transform)  # f^h(x_j): [H, T, D]
    mixed = np.einsum("hij,hjD->ijD", weights, f)  # Σ_h α^h_ij f^h(x_j): [T, T, D]
    return np.linalg.norm(mixed, axis=-1)


def grad_times_input(embedded: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """``‖∂s/∂e_j ⊙ e_j‖₂`` per token: ``[T, D]`` twice -> ``[T]``."""
    return np.linalg.norm(np.asarray(embedded) * np.asarray(gradient), axis=-1)


# --- the models ------------------------------------------------------------------------------------


@dataclass
class Probe:
    """One forward and backward pass on the original input: what every method needs."""

    weights: np.ndarray  # [L, H, T, T]
    last_values: np.ndarray  # [H, T, d] of the last layer
    last_w_out: np.ndarray  # [H·d, D]
    embedded: np.ndarray  # [T, D] word embeddings
    gradient: np.ndarray  # [T, D]


class _Adapter:
    """What the deletion test needs from a model: a probe with gradients, and the output to
    compare for a batch of (edited) inputs."""

    decoder = False

    def __init__(self, model) -> None:
        self.model = model

    def pad(self, id_lists: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        length = max(len(ids) for ids in id_lists)
        ids = torch.full((len(id_lists), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(id_lists), length), dtype=torch.long)
        for row, sequence in enumerate(id_lists):
            ids[row, : len(sequence)] = torch.tensor(list(sequence), dtype=torch.long)
            mask[row, : len(sequence)] = 1
        return ids.to(self.model.device), mask.to(self.model.device)

    def probe(self, ids: Sequence[int]) -> Probe:
        captured: dict[str, torch.Tensor] = {}

        def keep_embedding(_module, _inputs, output):
            leaf = output.detach().requires_grad_(True)  # the parameters need no gradient
            captured["embedded"] = leaf
            return leaf

        handle = self.embedding.register_forward_hook(keep_embedding)
        try:
            with torch.enable_grad():
                x = torch.tensor([list(ids)], dtype=torch.long, device=self.model.device)
                output, target = self.forward_with_target(x)
                target.backward()
        finally:
            handle.remove()
        leaf = captured["embedded"]
        last = output.layers[-1]
        return Probe(
            weights=_to_host(torch.stack([trace.weights[0] for trace in output.layers])),
            last_values=_to_host(last.values[0]),
            last_w_out=_to_host(self.layers[-1].attention.output.weight),
            embedded=_to_host(leaf[0]),
            gradient=_to_host(leaf.grad[0]),
        )


class _Encoder(_Adapter):
    def __init__(self, model) -> None:
        super().__init__(model)
        self.embedding = model.encoder.embeddings.word
        self.layers = model.encoder.layers
        self.pad_id = model.config.pad_token_id

    def forward_with_target(self, x):
        output = self.model.encoder(x)
        pooled = output.last_hidden_state[0].mean(dim=0)
        original = pooled.detach()
        return output, pooled @ (original / original.norm().clamp(min=1e-12))

    @torch.inference_mode()
    def outputs(self, id_lists) -> np.ndarray:
        from .pooling import sentence_embedding

        ids, mask = self.pad(id_lists)
        output = self.model.encoder(ids, mask)
        return _to_host(sentence_embedding(output.last_hidden_state, mask))

    measure = staticmethod(embedding_shift)


class _Decoder(_Adapter):
    decoder = True

    def __init__(self, model) -> None:
        super().__init__(model)
        self.embedding = model.decoder.token_embedding
        self.layers = model.decoder.blocks
        self.pad_id = model.tokenizer.eot_id

    def forward_with_target(self, x):
        output = self.model.decoder(x)
        log_p = torch.log_softmax(output.logits[0, -1].float(), dim=-1)
        return output, log_p[int(log_p.argmax())]

    @torch.inference_mode()
    def outputs(self, id_lists) -> np.ndarray:
        ids, mask = self.pad(id_lists)
        logits = self.model.decoder(ids, mask).logits
        last = mask.sum(dim=1) - 1
        rows = torch.arange(len(id_lists), device=ids.device)
        return _to_host(torch.softmax(logits[rows, last].float(), dim=-1))

    measure = staticmethod(total_variation)


def _adapter(model) -> _Adapter:
    return _Decoder(model) if hasattr(model, "decoder") else _Encoder(model)


# --- the test itself -------------------------------------------------------------------------------


def importance(probe: Probe, *, decoder: bool) -> dict[str, np.ndarray]:
    """Every method's score per token ``[T]``, from one probe."""
    last_row = decoder
    return {
        "attention": received(probe.weights[-1].mean(axis=0), last_row=last_row),
        "rollout": received(rollout(probe.weights), last_row=last_row),
        "norm": received(
            norm_based(probe.weights[-1], probe.last_values, probe.last_w_out), last_row=last_row
        ),
        "gradient": grad_times_input(probe.embedded, probe.gradient),
    }


@dataclass
class DeletionTest:
    """The curves: ``shift[method][k-1]`` after deleting that method's top ``k`` tokens."""

    decoder: bool
    k: list[int]
    removable: list[int]
    rankings: dict[str, list[int]]  # each method's top positions, best first (K of them)
    scores: dict[str, list[float]]  # each method's score of every token
    shift: dict[str, list[float]]
    random_mean: list[float]
    random_sd: list[float]
    random_draws: int
    forward_passes: int
    batches: int
    compute_ms: float


def deletion_test(
    model,
    ids: Sequence[int],
    special: Sequence[bool],
    *,
    draws: int = RANDOM_DRAWS,
    seed: int = RANDOM_SEED,
    batch: int = BATCH,
    on_progress: Progress | None = None,
) -> DeletionTest:
    """Run the deletion test for ``ids`` (the model's own tokenization of the sentence) on an
    ``AttentionModel`` or a ``GPTModel``. Raises :class:`TooShort` when fewer than two tokens
    may be removed."""
    started = time.perf_counter()
    adapter = _adapter(model)
    ids = [int(token) for token in ids]
    candidates = removable_positions(special, decoder=adapter.decoder)
    top = steps(len(candidates))
    if top < 1:
        raise TooShort(f"{len(candidates)} removable tokens")
    # All edited inputs, then the distinct ones in batches (a random draw often repeats one).
    probe = adapter.probe(ids)
    scores = importance(probe, decoder=adapter.decoder)
    rankings = {name: ranking(scores[name], candidates)[:top] for name in METHODS}
    rng = np.random.default_rng(seed)
    random_orders = [[int(p) for p in rng.permutation(candidates)[:top]] for _ in range(draws)]
    edits: dict[tuple[str, int, int], tuple[int, ...]] = {("original", 0, 0): tuple(ids)}
    for name in METHODS:
        for k in range(1, top + 1):
            edits[(name, k, 0)] = tuple(delete(ids, rankings[name][:k]))
    for draw, order in enumerate(random_orders):
        for k in range(1, top + 1):
            edits[("random", k, draw)] = tuple(delete(ids, order[:k]))
    distinct = list(dict.fromkeys(edits.values()))
    chunks = [distinct[i : i + batch] for i in range(0, len(distinct), batch)]
    total = 1 + len(chunks)
    if on_progress is not None:
        on_progress(1, total)
    outputs: dict[tuple[int, ...], np.ndarray] = {}
    for done, chunk in enumerate(chunks, start=2):
        for sequence, output in zip(chunk, adapter.outputs(chunk), strict=True):
            outputs[sequence] = output
        if on_progress is not None:
            on_progress(done, total)

    original = outputs[tuple(ids)]

    def moved(key) -> float:
        return adapter.measure(original, outputs[edits[key]])

    shift = {name: [moved((name, k, 0)) for k in range(1, top + 1)] for name in METHODS}
    random = np.array(
        [[moved(("random", k, draw)) for k in range(1, top + 1)] for draw in range(draws)]
    )
    return DeletionTest(
        decoder=adapter.decoder,
        k=list(range(1, top + 1)),
        removable=candidates,
        rankings=rankings,
        scores={name: [float(v) for v in values] for name, values in scores.items()},
        shift=shift,
        random_mean=[float(v) for v in random.mean(axis=0)],
        random_sd=[float(v) for v in random.std(axis=0)],
        random_draws=draws,
        forward_passes=len(distinct),
        batches=len(chunks),
        compute_ms=(time.perf_counter() - started) * 1000.0,
    )
