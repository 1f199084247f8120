"""Small tools to read attention matrices (numpy in, numpy out unless noted).

- :func:`rollout`: how much each token's final representation draws on each *input* token,
  following attention through all layers (Abnar & Zuidema, 2020).
- :func:`word_level`: merge WordPiece pieces back into the learner's words.
- :func:`hide_special`: leave out ``[CLS]`` / ``[SEP]``, which often soak up most attention.
- :func:`cosine_similarity`: how close two sentence vectors are (the vectors themselves come
  from ``pooling.sentence_embedding``, which needs torch).

numpy only: the web process reads stored attention with these tools without loading torch.

Every matrix here is a *row-stochastic* ``[.., T, T]`` array: row ``i`` is where query ``i``
looks, and rows sum to 1. Every function keeps that property.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _renormalise_rows(matrix: np.ndarray) -> np.ndarray:
    total = matrix.sum(axis=-1, keepdims=True)
    return matrix / np.where(total > 0, total, 1.0)


def rollout(weights_per_layer: Sequence[np.ndarray] | np.ndarray, *, all_layers: bool = False):
    """Attention rollout over layers, from ``[L, H, T, T]`` (or a list of ``[H, T, T]``).

    For every layer: average the heads, add the identity (the residual connection lets each
    token keep itself), renormalise the rows; then multiply the layers, first layer innermost::

        A_l = rownorm(mean_h W_l + I)        rollout = A_L ... A_2 A_1

    Returns ``[T, T]`` (rows sum to 1), or ``[L, T, T]`` with the rollout up to each layer when
    ``all_layers`` is true.
    """
    layers = [np.asarray(w, dtype=np.float64) for w in weights_per_layer]
    length = layers[0].shape[-1]
    identity = np.eye(length)
    result = identity
    steps = []
    for weights in layers:
        mixed = weights.mean(axis=0) if weights.ndim == 3 else weights
        mixed = _renormalise_rows(mixed + identity)
        result = mixed @ result
        steps.append(result)
    return np.stack(steps) if all_layers else result


@dataclass(frozen=True)
class WordLevel:
    """Attention between words: ``weights`` ``[.., W, W]``, one ``label`` and one group of piece
    indices per word (specials are words of their own)."""

    weights: np.ndarray
    labels: list[str]
    groups: list[list[int]]


def word_groups(word_ids: Sequence[int | None]) -> list[list[int]]:
    """Group consecutive piece indices by word; ``None`` (a special token) stands alone."""
    groups: list[list[int]] = []
    previous: int | None = None
    for index, word in enumerate(word_ids):
        if word is not None and word == previous and groups:
            groups[-1].append(index)
        else:
            groups.append([index])
        previous = word
    return groups


def word_level(
    weights: np.ndarray,
    word_ids: Sequence[int | None],
    *,
    text: str | None = None,
    offsets: Sequence[tuple[int, int]] | None = None,
    pieces: Sequence[str] | None = None,
) -> WordLevel:
    """Merge piece-level attention ``[.., T, T]`` into word-level attention ``[.., W, W]``.

    - Columns (attention *to* a word) are **summed** over the word's pieces: a word receives
      what all its pieces received.
    - Rows (attention *from* a word) are **averaged** over its pieces, so rows still sum to 1.

    Labels come from the learner's text through ``offsets`` when ``text`` and ``offsets`` are
    given (``pieces`` names the specials); otherwise the pieces are joined, or ``"w<i>"``.
    """
    weights = np.asarray(weights)
    groups = word_groups(word_ids)
    length = weights.shape[-1]
    if len(word_ids) != length:
        raise ValueError(f"{len(word_ids)} word ids for a {length}x{length} matrix")
    membership = np.zeros((len(groups), length), dtype=weights.dtype)  # [W, T]
    for word, group in enumerate(groups):
        membership[word, group] = 1.0
    to_words = weights @ membership.T  # [.., T, W]: sum the columns of each word
    averaging = membership / membership.sum(axis=1, keepdims=True)
    merged = averaging @ to_words  # [.., W, W]: average the rows of each word
    return WordLevel(merged, _word_labels(groups, word_ids, text, offsets, pieces), groups)


def _word_labels(groups, word_ids, text, offsets, pieces) -> list[str]:
    labels = []
    for number, group in enumerate(groups):
        first, last = group[0], group[-1]
        if word_ids[first] is None:
            labels.append(pieces[first] if pieces is not None else "[special]")
        elif text is not None and offsets is not None:
            labels.append(text[offsets[first][0] : offsets[last][1]])
        elif pieces is not None:
            labels.append("".join(p.removeprefix("##") for p in (pieces[i] for i in group)))
        else:
            labels.append(f"w{number}")
    return labels


def hide_special(weights: np.ndarray, special_mask: Sequence[bool]) -> np.ndarray:
    """Drop the rows and columns of special tokens and renormalise the rows to sum to 1.

    What remains answers "among the real words, where does each word look?".
    """
    weights = np.asarray(weights)
    keep = ~np.asarray(special_mask, dtype=bool)
    kept = weights[..., keep, :][..., :, keep]
    return _renormalise_rows(kept)


def cosine_similarity(a, b) -> float:
    """Cosine of the angle between two vectors: 1 same direction, 0 unrelated, -1 opposite."""
    a = np.asarray(a.detach().cpu() if hasattr(a, "detach") else a, dtype=np.float64).ravel()
    b = np.asarray(b.detach().cpu() if hasattr(b, "detach") else b, dtype=np.float64).ravel()
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denominator) if denominator > 0 else 0.0
