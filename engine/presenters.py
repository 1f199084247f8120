"""View data for a finished run: which view the learner asked for (``ViewParams``), the run's
arrays unpacked once per request (``RunData``) and the matrices that ``engine.visuals`` draws.

A view is chosen by a few query parameters (``kind``, ``layer``, ``head``, ``values``, ``unit``,
``special``). Bad values fall back to defaults, so a hand-edited URL still shows something sane.
"""

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from django.utils.translation import gettext as _

from .arrays import unpack
from .models import AttentionRun
from .transformer import analysis, contributions

KINDS = ("heatmap", "head", "model", "rollout", "step", "compare", "generation")
# softmax weights; raw QKᵀ/√d before the mask and softmax; norm-based ‖α_ij f(x_j)‖
VALUES = ("weights", "scores", "norm")
# The views that offer norm-based attention (the generation view and the step-through do not).
NORM_KINDS = ("heatmap", "head", "rollout", "compare")
TOP_PAIRS = 12  # the strongest token pairs drawn and listed for a pair run


@dataclass(frozen=True)
class ViewParams:
    kind: str = "heatmap"
    layer: int = 0
    head: int = 0
    values: str = "weights"  # "scores": raw QKᵀ/√d before the mask; "norm": ‖α_ij f(x_j)‖
    unit: str = "piece"  # or "word"
    special: bool = True  # show [CLS]/[SEP]
    focus: bool = False  # head view: only the chosen head, not all of the layer's

    def query(self, **changes) -> str:
        params = replace(self, **changes)
        return (
            f"kind={params.kind}&layer={params.layer}&head={params.head}&values={params.values}"
            f"&unit={params.unit}&special={'show' if params.special else 'hide'}"
            f"&heads={'one' if params.focus else 'all'}"
        )


def _int(value, default: int, upper: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if 0 <= number < upper else default


def parse_view(params, *, run: AttentionRun) -> ViewParams:
    kind = params.get("kind", "heatmap")
    values = params.get("values")
    if values not in VALUES or (values == "norm" and not run.value_norms):
        values = "weights"  # a run from before norm-based attention was stored has none
    return ViewParams(
        kind=kind if kind in KINDS else "heatmap",
        layer=_int(params.get("layer"), 0, max(run.layers, 1)),
        head=_int(params.get("head"), 0, max(run.heads, 1)),
        values=values,
        unit="word" if params.get("unit") == "word" else "piece",
        special=params.get("special") != "hide",
        focus=params.get("heads") == "one",
    )


@dataclass
class Matrix:
    """A matrix with labels for its columns (to) and, when they differ, its rows (from).

    ``causal``: a decoder's square matrix, whose cells above the diagonal are masked. ``visible``
    (rectangular matrices, e.g. generation): how many columns each row could see."""

    values: np.ndarray
    labels: list[str]
    diverging: bool = False  # signed values (scores, differences) get a two-colour scale
    causal: bool = False  # a decoder's: cells above the diagonal are masked, drawn as such
    row_labels: list[str] | None = None
    visible: list[int] | None = None

    @property
    def size(self) -> int:
        return len(self.labels)

    @property
    def rows(self) -> list[str]:
        return self.labels if self.row_labels is None else self.row_labels

    def sees(self, i: int, j: int) -> bool:
        """Whether row ``i`` could attend to column ``j`` (a masked cell is drawn as such)."""
        if self.visible is not None:
            return j < self.visible[i]
        return not (self.causal and j > i)


class RunData:
    """The arrays of one finished run, unpacked once per request."""

    def __init__(self, run: AttentionRun):
        self.run = run
        self.causal = run.is_decoder

    @cached_property
    def weights(self) -> np.ndarray:
        return unpack(self.run.weights)

    @cached_property
    def scores(self) -> np.ndarray:
        return unpack(self.run.scores)

    @cached_property
    def qkv(self) -> np.ndarray:
        return unpack(self.run.qkv)

    @cached_property
    def generated_attention(self) -> np.ndarray | None:
        blob = self.run.generated_attention
        return unpack(blob) if blob else None

    def generation(self, view: ViewParams) -> Matrix | None:
        """Each generated token's attention (chosen layer and head) over everything before it:
        one row per new token, one column per token of the prompt and of the continuation."""
        if self.generated_attention is None or not self.run.generated:
            return None
        prompt = self.labels()
        new = [entry["token"] for entry in self.run.generated]
        values = self.generated_attention[:, view.layer, view.head, :]
        return Matrix(
            values,
            [*prompt, *new],
            row_labels=[f"→ {label}" for label in new],
            visible=[len(prompt) + k for k in range(len(new))],
        )

    @cached_property
    def compare_weights(self) -> np.ndarray | None:
        return unpack(self.run.compare_weights) if self.run.compare_weights else None

    @cached_property
    def value_norms(self) -> np.ndarray:
        """``||f_h(x_j)||``, ``[L, H, T]`` (see ``engine.transformer.contributions``)."""
        return unpack(self.run.value_norms)

    @cached_property
    def compare_value_norms(self) -> np.ndarray:
        return unpack(self.run.compare_value_norms)

    def norms(self, layer: int, head: int, *, second: bool = False) -> np.ndarray:
        """Norm-based attention ``||alpha_ij f(x_j)||`` of one head ``[T, T]``: the weights
        times the norms of the keys' transformed values. Rows do not sum to 1."""
        if second:
            return contributions.norm_based(
                self.compare_weights[layer, head], self.compare_value_norms[layer, head]
            )
        return contributions.norm_based(self.weights[layer, head], self.value_norms[layer, head])

    def _head(self, view: ViewParams, *, second: bool = False) -> np.ndarray:
        """The chosen head's weights, or its norm-based matrix under ``values=norm``."""
        if view.values == "norm":
            return self.norms(view.layer, view.head, second=second)
        weights = self.compare_weights if second else self.weights
        return weights[view.layer, view.head]

    def labels(self, tokens=None) -> list[str]:
        tokens = self.run.tokens if tokens is None else tokens
        return [token["text"] or token["piece"] for token in tokens]

    def _shape(self, matrix: np.ndarray, view: ViewParams, tokens, *, signed=False) -> Matrix:
        """Apply the word/piece and special-token choices to a row-stochastic matrix (or a
        norm-based one: hiding the specials then drops them without renormalising the rows,
        which are lengths, not shares)."""
        labels = self.labels(tokens)
        special = [token["special"] for token in tokens]
        if view.unit == "word" and not signed:
            merged = analysis.word_level(
                matrix,
                [token["word"] for token in tokens],
                pieces=[token["text"] for token in tokens],
            )
            matrix, labels = merged.weights, merged.labels
            special = [tokens[group[0]]["special"] for group in merged.groups]
        if not view.special and not signed:
            keep = [not flag for flag in special]
            if view.values == "norm" and view.kind != "rollout":
                matrix = np.asarray(matrix)[..., keep, :][..., :, keep]
            else:
                matrix = analysis.hide_special(matrix, special)
            labels = [label for label, k in zip(labels, keep, strict=True) if k]
        return Matrix(
            np.asarray(matrix, dtype=np.float32), labels, diverging=signed, causal=self.causal
        )

    def attention(self, view: ViewParams) -> Matrix:
        if view.values == "scores":  # before the mask: a decoder's future cells are computed too
            raw = self.scores[view.layer, view.head]
            return Matrix(raw, self.labels(), diverging=True)
        return self._shape(self._head(view), view, self.run.tokens)

    def layer(self, view: ViewParams) -> tuple[np.ndarray, list[str]]:
        """Every head of one layer ``[H, T, T]``, in the view's units and with or without the
        special tokens, and the labels. Under ``values=norm`` the norm-based matrices, divided
        by the layer's largest entry so that the strongest line is fully opaque."""
        values = "norm" if view.values == "norm" else "weights"
        if view.unit == "piece" and view.special and values == "weights":
            return self.weights[view.layer], self.labels()
        heads = [
            self.attention(replace(view, head=head, values=values))
            for head in range(self.run.heads)
        ]
        stacked = np.stack([matrix.values for matrix in heads])
        if values == "norm":
            stacked = stacked / max(float(stacked.max()), 1e-12)
        return stacked, heads[0].labels

    def rollout(self, view: ViewParams) -> Matrix:
        """Attention rollout; under ``values=norm``, the rollout of the norm-based matrices,
        each row renormalised to sum to 1 first (every head, every layer), so that it is again
        a chain of shares."""
        layers = self.weights
        if view.values == "norm":
            layers = contributions.renormalised(
                contributions.norm_based(self.weights, self.value_norms)
            )
        return self._shape(analysis.rollout(layers), view, self.run.tokens)

    def compare(self, view: ViewParams) -> tuple[Matrix | None, Matrix | None]:
        """The second sentence's matrix for the same layer and head, and the difference
        (first − second) when both have the same number of rows."""
        if self.compare_weights is None:
            return None, None
        values = "norm" if view.values == "norm" else "weights"
        view = replace(view, values=values)
        other = self._shape(self._head(view, second=True), view, self.run.compare_tokens)
        mine = self._shape(self._head(view), view, self.run.tokens)
        if mine.size != other.size:
            return other, None
        labels = [
            a if a == b else f"{a}/{b}" for a, b in zip(mine.labels, other.labels, strict=True)
        ]
        return other, Matrix(mine.values - other.values, labels, diverging=True)

    def step(self, view: ViewParams) -> list[tuple[str, str, Matrix | None, np.ndarray | None]]:
        """One head, one step at a time: Q and K, QKᵀ, ÷√d, the mask, softmax, × V."""
        queries, keys, values = (self.qkv[i, view.layer, view.head] for i in range(3))
        d = queries.shape[-1]
        labels = self.labels()
        product = queries @ keys.T
        scores = self.scores[view.layer, view.head]
        weights = self.weights[view.layer, view.head]
        # One sentence has no padding: the encoder's mask adds 0 everywhere. The decoder's
        # causal mask adds −∞ above the diagonal (drawn as masked cells) and 0 elsewhere.
        mask = np.zeros_like(scores)
        output = weights @ values
        return [
            ("q", f"Q = X W_Q  ({len(labels)}×{d})", None, queries),
            ("k", f"K = X W_K  ({len(labels)}×{d})", None, keys),
            ("qk", "Q Kᵀ", Matrix(product, labels, diverging=True), None),
            (
                "scaled",
                f"Q Kᵀ ÷ √{d} = ÷ {math.sqrt(d):.2f}",
                Matrix(scores, labels, diverging=True),
                None,
            ),
            (
                "mask",
                _("+ causal mask (−∞ above the diagonal)")
                if self.causal
                else _("+ mask (padding)"),
                Matrix(mask, labels, diverging=True, causal=self.causal),
                None,
            ),
            (
                "softmax",
                _("softmax (each row sums to 1)"),
                Matrix(weights, labels, causal=self.causal),
                None,
            ),
            ("output", f"× V  ({len(labels)}×{d})", None, output),
        ]

    # --- norm-based attention: the sink ---------------------------------------------------

    def sinks(self) -> "SinkPanel | None":
        """How much attention goes to the sink tokens, per layer (averaged over heads and
        queries), by weight and by norm: ``[CLS]`` and ``[SEP]`` for the encoder, the first
        token (``<|endoftext|>``) for the GPT."""
        if not self.run.value_norms:
            return None
        tokens = self.run.tokens
        sinks = [0] if self.causal else [0, len(tokens) - 1]
        labels = [tokens[index]["piece"] for index in sinks]
        per_sink = [
            contributions.sink_shares(
                self.weights, self.value_norms, [index], first_row=1 if self.causal else 0
            )
            for index in sinks
        ]
        rows = [
            {"layer": layer + 1, "cells": [shares[layer] for shares in per_sink]}
            for layer in range(self.run.layers)
        ]
        # The layer and sink with the largest share by weight: the example in the prose.
        layer, sink = max(
            ((layer, sink) for layer in range(self.run.layers) for sink in range(len(sinks))),
            key=lambda pair: per_sink[pair[1]][pair[0]][0],
        )
        weight, norm = per_sink[sink][layer]
        return SinkPanel(labels, rows, SinkPeak(layer + 1, labels[sink], weight, norm))

    # --- a pair run: why the two sentences are similar --------------------------------------

    def similarity(self, view: ViewParams) -> "SimilaritySplit | None":
        """The pair's cosine split into token pairs (or word pairs with ``unit=word``), the
        strongest pairs, and the cosine after every layer. None for a single sentence."""
        if not self.run.compare_text or not self.run.similarity_pairs:
            return None
        matrix = np.asarray(self.run.similarity_pairs, dtype=np.float64)
        first, second = self.run.tokens, self.run.compare_tokens
        total = float(matrix.sum())
        if view.unit == "word":
            matrix, rows, cols = contributions.merge_to_words(
                matrix, [token["word"] for token in first], [token["word"] for token in second]
            )
        else:
            rows, cols = [[i] for i in range(len(first))], [[j] for j in range(len(second))]
        first_labels, second_labels = _group_labels(first, rows), _group_labels(second, cols)
        hidden = None
        if not view.special:  # leave out the pairs with a special token, and say what they add
            keep_a = [i for i, group in enumerate(rows) if first[group[0]]["word"] is not None]
            keep_b = [j for j, group in enumerate(cols) if second[group[0]]["word"] is not None]
            matrix = matrix[np.ix_(keep_a, keep_b)]
            first_labels = [first_labels[i] for i in keep_a]
            second_labels = [second_labels[j] for j in keep_b]
            hidden = total - float(matrix.sum())
        top = [
            {"a": i, "b": j, "first": first_labels[i], "second": second_labels[j], "value": c}
            for i, j, c in contributions.strongest_pairs(matrix, TOP_PAIRS)
        ]
        layers = [
            {"layer": index, "value": value}
            for index, value in enumerate(self.run.layer_similarity)
        ]
        return SimilaritySplit(
            similarity=float(self.run.similarity),
            total=total,
            hidden=hidden,
            first=first_labels,
            second=second_labels,
            matrix=matrix,
            top=top,
            layers=layers,
        )


def _group_labels(tokens, groups: list[list[int]]) -> list[str]:
    """A word's label: its pieces' text joined (a special token: its piece)."""
    return [
        "".join(tokens[i]["text"] or tokens[i]["piece"] for i in group)
        if tokens[group[0]]["word"] is not None
        else tokens[group[0]]["piece"]
        for group in groups
    ]


@dataclass(frozen=True)
class SinkPeak:
    layer: int
    label: str
    weight: float
    norm: float

    @property
    def weight_percent(self) -> int:
        return round(self.weight * 100)

    @property
    def norm_percent(self) -> int:
        return round(self.norm * 100)


@dataclass(frozen=True)
class SinkPanel:
    """``labels``: the sink tokens; ``rows``: per layer, ``(weight share, norm share)`` per
    sink; ``peak``: the layer and sink with the largest share by weight."""

    labels: list[str]
    rows: list[dict]
    peak: SinkPeak


@dataclass(frozen=True)
class SimilaritySplit:
    similarity: float  # the model's cosine
    total: float  # the sum of all the pairs: the same number
    hidden: float | None  # with the special tokens hidden: what their pairs add
    first: list[str]
    second: list[str]
    matrix: np.ndarray  # [rows of the first sentence, rows of the second]
    top: list[dict]  # {"a", "b", "first", "second", "value"}, strongest |value| first
    layers: list[dict]  # {"layer": 0 (embeddings) .. L, "value"}
