"""What each token contributes: norm-based attention and the split of a similarity score.

numpy only, like ``analysis``: the web process builds these views from stored arrays.

**Norm-based attention** (Kobayashi et al. 2020, "Attention is Not Only a Weight: Analyzing
Transformers with Vector Norms", arXiv:2004.10102). A head adds ``sum_j alpha_ij f(x_j)`` to
token ``i``, where ``f(x_j) = (x_j W_V + b_V) W_O`` is token ``j``'s value vector after the
output projection. A large weight ``alpha_ij`` on a token whose ``f(x_j)`` is tiny moves almost
nothing, so the paper measures ``||alpha_ij f(x_j)|| = alpha_ij ||f(x_j)||`` instead: the
weights times the norms (the worker stores the norms, ``[L, H, T]``). Its rows do *not* sum
to 1: they are lengths, in the units of the hidden state.

**The similarity split.** all-MiniLM-L6-v2's sentence vector is the mean of the last hidden
states ``h_1 .. h_n`` (``[CLS]`` and ``[SEP]`` included), normalised. With ``a = mean_i h_i``
and ``b = mean_j g_j`` the cosine is bilinear in the token vectors::

    cos(a, b) = a . b / (|a| |b|) = sum_ij  h_i . g_j / (n m |a| |b|)

so ``contribution[i, j] = h_i . g_j / (n m |a| |b|)`` adds up to the score exactly. It says how
the final vectors' dot product is made up, not what caused it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .analysis import word_groups


def norm_based(weights: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """``||alpha_ij f(x_j)||`` from weights ``[.., T, T]`` and norms ``[.., T]`` (per key ``j``)."""
    weights = np.asarray(weights, dtype=np.float32)
    norms = np.asarray(norms, dtype=np.float32)
    return weights * norms[..., None, :]


def renormalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (a row of zeros stays zeros): lengths -> shares."""
    matrix = np.asarray(matrix, dtype=np.float64)
    total = matrix.sum(axis=-1, keepdims=True)
    return matrix / np.where(total > 0, total, 1.0)


def sink_shares(
    weights: np.ndarray, norms: np.ndarray, columns: Sequence[int], *, first_row: int = 0
) -> list[tuple[float, float]]:
    """Per layer, the share of attention that goes to the ``columns`` (e.g. ``[CLS]``), under
    the weights and under the norms: ``[(weight_share, norm_share), ...]``, one per layer.

    A share is the column's part of each row (the norm-based rows renormalised to sum to 1),
    averaged over the rows (queries) from ``first_row`` on and over the heads. A decoder passes
    ``first_row=1``: its row 0 sees only the first token, all of its weight goes there whatever
    the head does, and it would add about 1/T to the first token's share. ``weights``
    ``[L, H, T, T]``, ``norms`` ``[L, H, T]``.
    """
    columns = list(columns)
    by_weight = np.asarray(weights, dtype=np.float64)[..., columns].sum(axis=-1)  # [L, H, T]
    by_norm = renormalised(norm_based(weights, norms))[..., columns].sum(axis=-1)
    by_weight, by_norm = by_weight[..., first_row:], by_norm[..., first_row:]
    return [
        (float(w), float(n))
        for w, n in zip(by_weight.mean(axis=(1, 2)), by_norm.mean(axis=(1, 2)), strict=True)
    ]


def similarity_split(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The cosine of two mean-pooled sentences, split into token pairs (float64 ``[n, m]``).

    ``first`` ``[n, D]`` and ``second`` ``[m, D]`` are the token vectors that are averaged into
    the two sentence vectors; the entries sum to the cosine of those averages.
    """
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    a, b = first.mean(axis=0), second.mean(axis=0)
    scale = len(first) * len(second) * np.linalg.norm(a) * np.linalg.norm(b)
    if scale == 0:
        return np.zeros((len(first), len(second)))
    return (first @ second.T) / scale


def layer_similarity(first_means: np.ndarray, second_means: np.ndarray) -> list[float]:
    """The cosine of the two sentences' mean vectors after every layer (``[L + 1, D]`` each,
    the embeddings first): how the sentences come together, or apart, through the stack."""
    a = np.asarray(first_means, dtype=np.float64)
    b = np.asarray(second_means, dtype=np.float64)
    denominator = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    cosines = (a * b).sum(axis=-1) / np.where(denominator > 0, denominator, 1.0)
    return [float(value) for value in cosines]


def merge_to_words(
    contributions: np.ndarray,
    first_words: Sequence[int | None],
    second_words: Sequence[int | None],
) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """Sum a piece-pair matrix ``[n, m]`` over the pieces of each word, on both sides (exact:
    the total is unchanged). Returns the word-pair matrix and the piece groups of each side."""
    contributions = np.asarray(contributions, dtype=np.float64)
    rows, cols = word_groups(first_words), word_groups(second_words)
    left = np.zeros((len(rows), contributions.shape[0]))
    for word, group in enumerate(rows):
        left[word, group] = 1.0
    right = np.zeros((len(cols), contributions.shape[1]))
    for word, group in enumerate(cols):
        right[word, group] = 1.0
    return left @ contributions @ right.T, rows, cols


def strongest_pairs(contributions: np.ndarray, count: int = 12) -> list[tuple[int, int, float]]:
    """The ``count`` pairs with the largest ``|contribution|``, strongest first."""
    contributions = np.asarray(contributions, dtype=np.float64)
    flat = np.argsort(-np.abs(contributions), axis=None, kind="stable")[:count]
    return [
        (int(i), int(j), float(contributions[i, j]))
        for i, j in zip(*np.unravel_index(flat, contributions.shape), strict=True)
    ]
