"""Every view of a run as a file to keep: a self-contained SVG and its numbers as CSV.

The export takes the page's own query (``kind``, ``layer``, ``head``, ``values``, ``unit``,
``special``, ``heads``), so a file shows exactly what the page showed, plus two choices the page
makes by showing several figures at once:

- ``which`` (compare view): ``first`` (default), ``second`` or ``difference`` (first − second).
- ``step`` (step-through): ``q``, ``k``, ``qk``, ``scaled``, ``mask``, ``softmax`` (default) or
  ``output``.

CSV: a header row (a corner cell, then one cell per key token), then one row per query token,
the row's token first. The head view with all heads writes one such block per head, a blank
row between them, the corner cell naming the head. Q, K and the output (T × d) have one column
per dimension. The model view writes one row per head with a summary of its attention.

SVG: one standalone document (``xmlns``, a title, the sentence, the model, the layer and head,
the kind of values and the colour scale), every colour and font as an SVG attribute, so it needs
no stylesheet and no script.
"""

import csv
import io
from dataclasses import dataclass, replace
from html import escape
from unicodedata import east_asian_width

import numpy as np
from django.utils.translation import gettext as _

from . import model_view, visuals
from .models import AttentionRun
from .presenters import Matrix, RunData, ViewParams
from .source import STEPS

WHICH = ("first", "second", "difference")
FONT_FAMILY = "ui-monospace, Menlo, Consolas, 'Noto Sans Mono CJK JP', monospace"


class NotAvailable(LookupError):
    """This run has no such figure (e.g. no difference between sentences of unequal length)."""


@dataclass
class Block:
    """One figure of an export: a matrix (rows attend to columns) or a T × d table."""

    name: str
    matrix: Matrix | None = None
    table: np.ndarray | None = None
    row_labels: list[str] | None = None


@dataclass
class Export:
    kind: str
    subtitle: str
    blocks: list[Block]
    heads: list[int] | None = None  # head view: the heads drawn
    layer_weights: np.ndarray | None = None
    layer_labels: list[str] | None = None
    thumbs: np.ndarray | None = None  # model view: every head, pooled, [L, H, c, c]
    roles: list | None = None  # model view: each head's role (engine.model_view.run_roles)

    def filename(self, run: AttentionRun, view: ViewParams, extension: str) -> str:
        name = f"attention-{str(run.id)[:8]}-{run.model}-{view.kind}"
        if view.kind not in ("model", "rollout"):  # a rollout spans every layer
            name += f"-L{view.layer + 1}"
        if view.kind in ("heatmap", "compare", "step", "generation") or (
            view.kind == "head" and view.focus
        ):
            name += f"H{view.head + 1}"
        if view.kind in ("heatmap", "compare", "head", "rollout"):
            name += f"-{view.values}"
        return f"{name}.{extension}"


def values_name(view: ViewParams) -> str:
    names = {
        "weights": _("attention weights"),
        "scores": _("raw scores before softmax"),
        "norm": _("norm-based attention ‖α f(x)‖"),
    }
    return names.get(view.values, view.values)


def build(
    run: AttentionRun, view: ViewParams, *, which: str | None = None, step: str | None = None
) -> Export:
    """The figure(s) of ``view`` on a finished ``run``; bad choices fall back like the page."""
    data = RunData(run)
    where = _("Layer %(l)d, head %(h)d") % {"l": view.layer + 1, "h": view.head + 1}
    if view.kind == "model":
        thumbs = model_view.pooled(data.weights)
        return Export(
            "model",
            _("Every head of every layer"),
            [],
            layer_weights=data.weights,
            thumbs=thumbs,
            roles=model_view.run_roles(run, data),
        )
    if view.kind == "head":
        # drawn like the page (norm-based lines scaled to the layer's strongest), but the
        # numbers are each head's own: the weights, or ‖α f(x)‖ itself
        weights, labels = data.layer(view)
        values = "norm" if view.values == "norm" else "weights"
        heads = [view.head] if view.focus else list(range(run.heads))
        blocks = [
            Block(
                f"L{view.layer + 1} H{head + 1}",
                replace(data.attention(replace(view, head=head, values=values)), diverging=False),
            )
            for head in heads
        ]
        subtitle = (
            (where if view.focus else _("Layer %(l)s: all heads") % {"l": view.layer + 1})
            + " · "
            + values_name(replace(view, values=values))
        )
        return Export("head", subtitle, blocks, heads, np.asarray(weights), labels)
    if view.kind == "rollout":
        return Export(
            "rollout", _("Attention rollout"), [Block(_("Attention rollout"), data.rollout(view))]
        )
    if view.kind == "generation":
        matrix = data.generation(view)
        if matrix is None:
            raise NotAvailable(_("This run generated no tokens."))
        return Export("generation", where, [Block(where, matrix)])
    if view.kind == "step":
        key = step if step in STEPS else "softmax"
        for step_key, label, matrix, table in data.step(view):
            if step_key == key:
                block = Block(label, matrix, table, data.labels() if table is not None else None)
                return Export("step", f"{where} · {label}", [block])
    subtitle = f"{where} · {values_name(view)}"
    first = Block(where, data.attention(view))
    if view.kind == "compare" and run.compare_text:
        choice = which if which in WHICH else "first"
        other, difference = data.compare(view)
        if choice == "second" and other is not None:
            return Export("compare", f"{subtitle} · {run.compare_text}", [Block(where, other)])
        if choice == "difference":
            if difference is None:
                raise NotAvailable(
                    _(
                        "The sentences have different numbers of tokens, so there is no cell-by-cell difference."
                    )
                )
            return Export(
                "compare",
                where + " · " + _("Difference (first − second)"),
                [Block(where, difference)],
            )
    return Export(view.kind, subtitle, [first])


# --- CSV ---------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{float(value):.6g}"


def head_summary(weights: np.ndarray) -> list[dict]:
    """One row per head of ``weights`` ``[L, H, T, T]``: how spread out its attention is and
    where it goes, averaged over the query tokens."""
    layers, heads, size, _size = weights.shape
    eye = np.eye(size, dtype=bool)
    previous = np.eye(size, k=-1, dtype=bool)
    rows = []
    for layer in range(layers):
        for head in range(heads):
            matrix = np.asarray(weights[layer, head], dtype=np.float64)
            entropy = -(matrix * np.log2(np.clip(matrix, 1e-12, None))).sum(-1).mean()
            rows.append(
                {
                    "layer": layer + 1,
                    "head": head + 1,
                    "entropy_bits": entropy,
                    "max_weight": matrix.max(-1).mean(),
                    "to_first": matrix[:, 0].mean(),
                    "to_last": matrix[:, -1].mean(),
                    "to_self": matrix[eye].mean(),
                    "to_previous": matrix[previous].mean() if size > 1 else 0.0,
                }
            )
    return rows


def to_csv(export: Export) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if export.kind == "model":
        rows = head_summary(export.layer_weights)
        roles = export.roles or [None] * len(rows)
        writer.writerow([*rows[0], "role", "role_score"])
        for row, role in zip(rows, roles, strict=True):
            writer.writerow(
                [value if isinstance(value, int) else _number(value) for value in row.values()]
                + ([role.role, _number(role.score)] if role else ["", ""])
            )
        return out.getvalue()
    corner = _("query \\ key")
    for index, block in enumerate(export.blocks):
        if index:
            writer.writerow([])
        head = block.name if len(export.blocks) > 1 else corner
        if block.table is not None:
            writer.writerow([head, *(f"d{j}" for j in range(block.table.shape[1]))])
            for label, row in zip(block.row_labels, block.table, strict=True):
                writer.writerow([label, *(_number(value) for value in row)])
            continue
        matrix = block.matrix
        writer.writerow([head, *matrix.labels])
        for i, label in enumerate(matrix.rows):
            writer.writerow(
                [
                    label,
                    *(
                        _number(matrix.values[i, j])
                        if matrix.visible is None or j < matrix.visible[i]
                        else ""
                        for j in range(matrix.size)
                    ),
                ]
            )
    return out.getvalue()


# --- SVG ---------------------------------------------------------------------------------------


def _text_width(text: str, size: float) -> float:
    """About how wide ``text`` is written at ``size`` px, without a font to measure it with: a
    wide or full-width character (East Asian Width W or F: kanji, kana, full-width forms) is
    about one em, any other about 0.62 em (the caption font's average)."""
    return sum(size if east_asian_width(ch) in "WF" else 0.62 * size for ch in text)


def _text(x: float, y: float, text: str, *, size: int = 12, weight: str = "400") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-weight="{weight}">'
        f"{escape(text)}</text>"
    )


def _size(svg: str) -> tuple[float, float]:
    """The width and height attributes of a drawn SVG's root element."""
    head = svg[: svg.index(">")]
    width = float(head.split(' width="', 1)[1].split('"', 1)[0])
    height = float(head.split(' height="', 1)[1].split('"', 1)[0])
    return width, height


def _figures(export: Export) -> list[str]:
    if export.kind == "model":
        weights = export.layer_weights
        layers, heads = weights.shape[:2]
        cells = []
        for layer in range(layers):
            for head in range(heads):
                thumb = model_view.thumbnail_svg(export.thumbs[layer, head])
                cells.append(
                    f'<g transform="translate({30 + head * 66} {18 + layer * 66})">'
                    f"<title>L{layer + 1} H{head + 1}</title>"
                    f'<rect x="-0.5" y="-0.5" width="61" height="61" fill="#ffffff" '
                    f'stroke="#d9dde5"/>{thumb}</g>'
                )
        labels = [
            _text(30 + head * 66 + 20, 12, f"H{head + 1}", size=10) for head in range(heads)
        ] + [_text(0, 18 + layer * 66 + 34, f"L{layer + 1}", size=10) for layer in range(layers)]
        width, height = 30 + heads * 66, 18 + layers * 66
        return [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{"".join(labels + cells)}</svg>'
        ]
    if export.kind == "head":
        return [
            str(
                visuals.head_view_svg(
                    export.layer_weights,
                    export.layer_labels,
                    heads=export.heads,
                    interactive=False,
                )
            ),
            _head_legend(export.heads),
        ]
    figures = []
    for block in export.blocks:
        if block.table is not None:
            figures.append(str(visuals.table_svg(block.table, block.row_labels, title=block.name)))
        else:
            figures.append(
                str(visuals.heatmap_svg(block.matrix, title=block.name, interactive=False))
            )
    return figures


def _head_legend(heads: list[int]) -> str:
    parts = []
    for k, head in enumerate(heads):
        colour = visuals.HEAD_COLOURS[head % len(visuals.HEAD_COLOURS)]
        x = (k % 12) * 44
        y = (k // 12) * 18
        parts.append(
            f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>'
            + _text(x + 16, y + 11, str(head + 1), size=11)
        )
    note = _text(
        0, (len(heads) - 1) // 12 * 18 + 32, _("One colour per head; darker line, more attention.")
    )
    height = (len(heads) - 1) // 12 * 18 + 40
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="560" height="{height}" '
        f'viewBox="0 0 560 {height}">{"".join(parts)}{note}</svg>'
    )


def to_svg(export: Export, run: AttentionRun) -> str:
    """One self-contained SVG document: a caption, then the figures one under the other."""
    sentence = run.text if not run.compare_text else f"{run.text}  |  {run.compare_text}"
    title = " · ".join((_("Attention Lab"), run.get_model_display(), export.subtitle))
    caption = [
        _text(12, 24, _("Attention on your sentence"), size=15, weight="700"),
        _text(12, 44, sentence, size=12),
        _text(12, 62, _("Model:") + " " + run.get_model_display(), size=12),
        _text(12, 80, export.subtitle, size=12),
    ]
    figures, y, width = [], 96.0, 560.0
    for figure in _figures(export):
        w, h = _size(figure)
        figures.append(f'<g transform="translate(12 {y:.0f})">{figure}</g>')
        y += h + 16
        width = max(width, w + 24)
    width = max(width, 24 + max(_text_width(sentence, 12), _text_width(export.subtitle, 12)))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width:.0f}" '
        f'height="{y:.0f}" viewBox="0 0 {width:.0f} {y:.0f}" font-family="{FONT_FAMILY}" '
        f'fill="#1f2430"><title>{escape(title)}</title>'
        f'<rect width="100%" height="100%" fill="#ffffff"/>{"".join(caption)}{"".join(figures)}'
        "</svg>\n"
    )
