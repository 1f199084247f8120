"""What each attention head does on one sentence: a role and a score per head.

After Clark, Khandelwal, Levy & Manning (2019), "What Does BERT Look At? An Analysis of BERT's
Attention" (arXiv:1906.04341): some heads put most of their weight on the previous or the next
token, on ``[SEP]`` or ``[CLS]``, or on punctuation; others attend broadly (high entropy).

For each head, and for every *query row that counts* (below), the share of the row's weight
that each rule explains is averaged over those rows:

==============  ====================================================================
``previous``    weight on the token just before (row ``i`` → column ``i - 1``)
``next``        weight on the token just after (``i`` → ``i + 1``); encoder only
``self``        weight on the token itself (``i`` → ``i``)
``cls``         weight on the first token, ``[CLS]`` (``first`` for the GPT, whose first
                token is ``<|endoftext|>``, not a ``[CLS]``)
``sep``         weight on the last token, ``[SEP]``; encoder only
``punctuation`` weight on every punctuation token of the sentence (specials excluded)
==============  ====================================================================

The head gets the rule with the largest mean share if that share is at least
:data:`SHARE_THRESHOLD`; the score is that share. Otherwise, if the rows' mean normalised
entropy (entropy ÷ log of the number of keys the row can see) is at least
:data:`BROAD_ENTROPY`, the head is ``broad`` and the score is that entropy. Otherwise it is
``other``, with the score ``1 −`` the largest share (the weight that no rule explains).
A tie goes to the rule listed first.

Which rows count: a row needs at least :data:`MIN_VISIBLE_KEYS` keys it can see. In the GPT
row 0 (``<|endoftext|>``) sees only itself, so its weight (exactly 1 on itself, which is also
the first token) says nothing about the head and is left out of every rule. A rule is measured
only on the rows where it can apply: ``previous`` from row 1, ``next`` up to row ``T − 2``.
The GPT cannot look ahead, so it never gets ``next`` or ``sep``.

numpy only: the web process labels a stored run's heads without loading torch.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

SHARE_THRESHOLD = 0.5  # a rule names the head when it explains at least half of its weight
BROAD_ENTROPY = 0.8  # mean entropy ÷ log(visible keys): 1 is perfectly uniform attention
MIN_VISIBLE_KEYS = 2  # a row that sees fewer keys has no choice to make

ENCODER_RULES = ("previous", "next", "self", "cls", "sep", "punctuation")
DECODER_RULES = ("previous", "self", "first", "punctuation")
ROLES = ("previous", "next", "self", "cls", "first", "sep", "punctuation", "broad", "other")


@dataclass(frozen=True)
class HeadRole:
    layer: int
    head: int
    role: str
    score: float

    def as_dict(self) -> dict:
        return asdict(self)


def is_punctuation(text: str) -> bool:
    """A token whose visible characters are all punctuation (Unicode category P*): ``.``,
    ``,``, ``'``, ``。``, ``、``, ``「``..."""
    stripped = text.strip().removeprefix("##")
    return bool(stripped) and all(unicodedata.category(c).startswith("P") for c in stripped)


def rules_for(*, causal: bool) -> tuple[str, ...]:
    return DECODER_RULES if causal else ENCODER_RULES


def _mean_over(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mean over the chosen rows of ``[L, H, T]`` values (0 when no row is chosen)."""
    if not rows.any():
        return np.zeros(values.shape[:2])
    return values[..., rows].mean(axis=-1)


def rule_shares(
    weights: np.ndarray, *, texts: Sequence[str], special: Sequence[bool], causal: bool
) -> dict[str, np.ndarray]:
    """For each rule, the mean share ``[L, H]`` of weight it explains (see the module text)."""
    weights = np.asarray(weights, dtype=np.float64)
    length = weights.shape[-1]
    if len(texts) != length or len(special) != length:
        raise ValueError(f"{len(texts)} texts / {len(special)} flags for {length} tokens")
    positions = np.arange(length)
    visible = positions + 1 if causal else np.full(length, length)
    counted = visible >= MIN_VISIBLE_KEYS
    shares: dict[str, np.ndarray] = {}
    diagonal = np.diagonal(weights, axis1=-2, axis2=-1)  # [L, H, T]
    shares["self"] = _mean_over(diagonal, counted)
    previous = np.zeros_like(diagonal)
    previous[..., 1:] = np.diagonal(weights, offset=-1, axis1=-2, axis2=-1)
    shares["previous"] = _mean_over(previous, counted & (positions >= 1))
    if not causal:
        following = np.zeros_like(diagonal)
        following[..., :-1] = np.diagonal(weights, offset=1, axis1=-2, axis2=-1)
        shares["next"] = _mean_over(following, counted & (positions <= length - 2))
    first = "first" if causal else "cls"
    shares[first] = _mean_over(weights[..., :, 0], counted)
    if not causal:
        shares["sep"] = _mean_over(weights[..., :, length - 1], counted)
    punctuation = np.array(
        [is_punctuation(text) and not flag for text, flag in zip(texts, special, strict=True)]
    )
    shares["punctuation"] = _mean_over(weights[..., :, punctuation].sum(axis=-1), counted)
    return {rule: shares[rule] for rule in rules_for(causal=causal)}


def normalised_entropy(weights: np.ndarray, *, causal: bool) -> np.ndarray:
    """Mean over the counted rows of entropy ÷ log(visible keys): ``[L, H]`` in [0, 1]."""
    weights = np.asarray(weights, dtype=np.float64)
    length = weights.shape[-1]
    visible = np.arange(1, length + 1) if causal else np.full(length, length)
    counted = visible >= MIN_VISIBLE_KEYS
    safe = np.where(weights > 0, weights, 1.0)
    entropy = -(weights * np.log(safe)).sum(axis=-1)  # [L, H, T]
    scale = np.log(np.maximum(visible, 2))
    return _mean_over(entropy / scale, counted)


def head_roles(
    weights: np.ndarray, *, texts: Sequence[str], special: Sequence[bool], causal: bool
) -> list[HeadRole]:
    """One :class:`HeadRole` per head of ``weights`` ``[L, H, T, T]`` (row-stochastic), layer
    by layer, head by head. ``texts``: each token's text (for punctuation); ``special``: which
    tokens are special (``[CLS]``, ``[SEP]``, ``<|endoftext|>``); ``causal``: the GPT."""
    shares = rule_shares(weights, texts=texts, special=special, causal=causal)
    rules = list(shares)
    stacked = np.stack([shares[rule] for rule in rules])  # [R, L, H]
    best = stacked.argmax(axis=0)  # the first of equal shares wins: the order above
    best_share = stacked.max(axis=0)
    entropy = normalised_entropy(weights, causal=causal)
    layers, heads = best.shape
    result = []
    for layer in range(layers):
        for head in range(heads):
            share = float(best_share[layer, head])
            if share >= SHARE_THRESHOLD:
                role, score = rules[best[layer, head]], share
            elif entropy[layer, head] >= BROAD_ENTROPY:
                role, score = "broad", float(entropy[layer, head])
            else:
                role, score = "other", 1.0 - share
            result.append(HeadRole(layer, head, role, round(score, 4)))
    return result
