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
from .transformer import analysis

KINDS = ("heatmap", "head", "model", "rollout", "step", "compare", "generation")


@dataclass(frozen=True)
class ViewParams:
    kind: str = "heatmap"
    layer: int = 0
    head: int = 0
    values: str = "weights"  # or "scores": raw QKᵀ/√d before the mask and softmax
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
    return ViewParams(
        kind=kind if kind in KINDS else "heatmap",
        layer=_int(params.get("layer"), 0, max(run.layers, 1)),
        head=_int(params.get("head"), 0, max(run.heads, 1)),
        values="scores" if params.get("values") == "scores" else "weights",
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

    def labels(self, tokens=None) -> list[str]:
        tokens = self.run.tokens if tokens is None else tokens
        return [token["text"] or token["piece"] for token in tokens]

    def _shape(self, matrix: np.ndarray, view: ViewParams, tokens, *, signed=False) -> Matrix:
        """Apply the word/piece and special-token choices to a row-stochastic matrix."""
        labels = self.labels(tokens)
        special = [token["special"] for token in tokens]
        if view.unit == "word" and not signed:
            merged = analysis.word_level(
                matrix,
                [token["word"] for token in tokens],
                pieces=[token["text"] for token in tokens],
            )
            matrix, labels = merged.weights, merged.labels
            special = [group == [0] or group == [len(tokens) - 1] for group in merged.groups]
        if not view.special and not signed:
            keep = [not flag for flag in special]
            matrix = analysis.hide_special(matrix, special)
            labels = [label for label, k in zip(labels, keep, strict=True) if k]
        return Matrix(
            np.asarray(matrix, dtype=np.float32), labels, diverging=signed, causal=self.causal
        )

    def attention(self, view: ViewParams) -> Matrix:
        if view.values == "scores":  # before the mask: a decoder's future cells are computed too
            raw = self.scores[view.layer, view.head]
            return Matrix(raw, self.labels(), diverging=True)
        return self._shape(self.weights[view.layer, view.head], view, self.run.tokens)

    def layer(self, view: ViewParams) -> tuple[np.ndarray, list[str]]:
        """Every head of one layer ``[H, T, T]``, in the view's units and with or without the
        special tokens, and the labels."""
        if view.unit == "piece" and view.special:
            return self.weights[view.layer], self.labels()
        heads = [
            self.attention(replace(view, head=head, values="weights"))
            for head in range(self.run.heads)
        ]
        return np.stack([matrix.values for matrix in heads]), heads[0].labels

    def rollout(self, view: ViewParams) -> Matrix:
        return self._shape(analysis.rollout(self.weights), view, self.run.tokens)

    def compare(self, view: ViewParams) -> tuple[Matrix | None, Matrix | None]:
        """The second sentence's matrix for the same layer and head, and the difference
        (first − second) when both have the same number of rows."""
        if self.compare_weights is None:
            return None, None
        other = self._shape(
            self.compare_weights[view.layer, view.head],
            replace(view, values="weights"),
            self.run.compare_tokens,
        )
        mine = self._shape(
            self.weights[view.layer, view.head], replace(view, values="weights"), self.run.tokens
        )
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
