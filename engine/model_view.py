"""The model view: every head of a run at once, as small pictures labelled with their roles.

One request, one decompression: the whole grid (6 × 12 heads for the encoder) is drawn inline
in the page or fragment from one ``RunData``, each thumbnail average-pooled to at most
:data:`THUMB_CELLS` × :data:`THUMB_CELLS` cells and drawn as one ``<path>`` per quantised
colour level (not one ``<rect>`` per cell). Each head's role comes from
``engine.transformer.roles`` (numpy only), and the roles of the reference set from
``engine.reference``. The wording of the rules is here, in both languages, with the numbers
read from the thresholds in ``roles``, so the page states the rules the code applies.
"""

from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qsl

import numpy as np
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import reference
from .models import AttentionRun
from .presenters import RunData, ViewParams
from .transformer import roles

THUMB_CELLS = 24  # a thumbnail has at most this many cells per side (average-pooled)
THUMB_PX = 60
LEVELS = 8  # colour levels of a thumbnail: one <path> each
COLOUR = "#1d4ed8"
CLARK_2019 = "https://arxiv.org/abs/1906.04341"

LABELS = {
    "previous": gettext_lazy("previous token"),
    "next": gettext_lazy("next token"),
    "self": gettext_lazy("itself"),
    "cls": gettext_lazy("[CLS] (sink)"),
    "first": gettext_lazy("first token (sink)"),
    "sep": gettext_lazy("[SEP] (sink)"),
    "punctuation": gettext_lazy("punctuation"),
    "broad": gettext_lazy("broad"),
    "other": gettext_lazy("other"),
}


def role_label(role: str) -> str:
    return str(LABELS[role])


def run_roles(run: AttentionRun, data: RunData) -> list[roles.HeadRole]:
    """Every head's role on this run's sentence, from the stored weights."""
    return roles.head_roles(
        data.weights,
        texts=[token["text"] for token in run.tokens],
        special=[token["special"] for token in run.tokens],
        causal=run.is_decoder,
    )


def possible_roles(*, causal: bool) -> tuple[str, ...]:
    return (*roles.rules_for(causal=causal), "broad", "other")


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def rules(*, causal: bool) -> list[dict]:
    """The rules and thresholds, as the page states them (from the constants in ``roles``)."""
    share = _percent(roles.SHARE_THRESHOLD)
    texts = {
        "previous": _(
            "On average at least %(share)s of each token's attention goes to the token just before it."
        ),
        "next": _(
            "On average at least %(share)s of each token's attention goes to the token just after it."
        ),
        "self": _(
            "On average at least %(share)s of each token's attention stays on the token itself."
        ),
        "cls": _(
            "On average at least %(share)s of each token's attention goes to [CLS], the first token."
        ),
        "first": _(
            "On average at least %(share)s of each token's attention goes to the first token, <|endoftext|>. The GPT has no [CLS], but its first token can serve as a sink in the same way."
        ),
        "sep": _(
            "On average at least %(share)s of each token's attention goes to [SEP], the last token."
        ),
        "punctuation": _(
            "On average at least %(share)s of each token's attention goes to punctuation tokens (. , ? 。 、 and so on), added together."
        ),
        "broad": _(
            "No rule above reaches %(share)s, and the attention is spread out: the rows' entropy is on average at least %(entropy)s of its largest possible value (100%% would be perfectly even). The score is that fraction."
        ),
        "other": _(
            "None of the above. The score is then the weight that no single rule explains: 1 minus the largest share."
        ),
    }
    numbers = {"share": share, "entropy": _percent(roles.BROAD_ENTROPY)}
    return [
        {"role": role, "label": role_label(role), "text": texts[role] % numbers}
        for role in possible_roles(causal=causal)
    ]


# --- thumbnails ---------------------------------------------------------------------------------


def pooled(weights: np.ndarray, cells: int = THUMB_CELLS) -> np.ndarray:
    """``[L, H, T, T]`` average-pooled to at most ``cells`` × ``cells`` per head, all at once."""
    size = weights.shape[-1]
    if size <= cells:
        return weights
    edges = np.linspace(0, size, cells + 1).astype(int)
    starts, widths = edges[:-1], np.diff(edges)
    summed = np.add.reduceat(np.add.reduceat(weights, starts, axis=-1), starts, axis=-2)
    return summed / (widths[:, None] * widths[None, :])


def thumbnail_svg(matrix: np.ndarray) -> str:
    """One head's pooled weights as a small inline SVG: one ``<path>`` per colour level, each
    a list of horizontal runs of cells (so a diagonal or a column is a handful of commands).
    Decorative: the link around it carries the name."""
    n = matrix.shape[0]
    scale = float(matrix.max()) or 1.0
    levels = np.rint(np.clip(matrix / scale, 0.0, 1.0) * LEVELS).astype(int)
    paths: dict[int, list[str]] = {}
    for i in range(n):
        row = levels[i]
        j = 0
        while j < n:
            level = int(row[j])
            end = j + 1
            while end < n and row[end] == level:
                end += 1
            if level:
                paths.setdefault(level, []).append(f"M{j} {i}h{end - j}v1H{j}z")
            j = end
    parts = [
        f'<svg class="thumb-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" '
        f'width="{THUMB_PX}" height="{THUMB_PX}" aria-hidden="true" focusable="false" '
        f'shape-rendering="crispEdges"><rect width="{n}" height="{n}" fill="#fff"/>'
    ]
    for level in sorted(paths):
        parts.append(
            f'<path fill="{COLOUR}" fill-opacity="{level / LEVELS:.3f}" d="{"".join(paths[level])}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- the grid -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    layer: int
    head: int
    role: str
    label: str
    score: float
    svg: str
    query: str
    hidden: bool
    usual: str | None = None  # the head's most frequent role on the reference set
    usual_label: str = ""
    usual_count: int = 0


def parse_role(value, *, causal: bool) -> tuple[str, bool]:
    """The role filter from the query: ``("", False)`` for none, ``(role, False)`` for a known
    role, ``("", True)`` for a value that is not one of this model's roles (shown as such)."""
    if not value:
        return "", False
    if value in possible_roles(causal=causal):
        return value, False
    return "", True


def grid(run: AttentionRun, data: RunData, view: ViewParams, *, role_filter: str = "") -> dict:
    """Everything the model view draws: rows of cells, role counts, the reference summary."""
    causal = run.is_decoder
    labels = run_roles(run, data)
    thumbs = pooled(data.weights)
    summary = reference.head_summary(run.model)
    known = summary is not None and (
        len(summary["heads"]) == run.layers * run.heads
    )  # a reference for this very model shape
    rows = []
    for layer in range(run.layers):
        cells = []
        for head in range(run.heads):
            entry = labels[layer * run.heads + head]
            usual = summary["heads"].get((layer, head)) if known else None
            cells.append(
                Cell(
                    layer=layer,
                    head=head,
                    role=entry.role,
                    label=role_label(entry.role),
                    score=entry.score,
                    svg=thumbnail_svg(thumbs[layer, head]),
                    query=view.query(kind="heatmap", layer=layer, head=head),
                    hidden=bool(role_filter) and entry.role != role_filter,
                    usual=usual["role"] if usual else None,
                    usual_label=role_label(usual["role"]) if usual else "",
                    usual_count=usual["count"] if usual else 0,
                )
            )
        rows.append({"layer": layer, "cells": cells})
    counts = Counter(entry.role for entry in labels)
    usual_counts = Counter(head["role"] for head in summary["heads"].values()) if known else {}
    return {
        "rows": rows,
        "role_filter": role_filter,
        "shown": sum(1 for row in rows for cell in row["cells"] if not cell.hidden),
        "total": len(labels),
        "counts": [
            {
                "role": role,
                "label": role_label(role),
                "here": counts.get(role, 0),
                "usual": usual_counts.get(role, 0),
            }
            for role in possible_roles(causal=causal)
        ],
        "reference_sentences": summary["sentences"] if known else 0,
        "rules": rules(causal=causal),
        "min_visible_keys": roles.MIN_VISIBLE_KEYS,
        # the rest of the view's query, kept by the no-JS filter form
        "fields": [pair for pair in parse_qsl(view.query(kind="model")) if pair[0] != "role"],
        "source": CLARK_2019,
    }
