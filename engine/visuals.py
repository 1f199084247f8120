"""Server-rendered SVG for attention: heatmaps and the head view (the model view's thumbnails
are ``engine.model_view``).

Built as strings (a heatmap at T = 128 has 16,384 cells: a template loop would be slow), with
every label escaped. Colours are SVG attributes, not inline styles, so the CSP holds.
"""

from html import escape

import numpy as np
from django.utils.safestring import SafeString, mark_safe

from .presenters import Matrix

POSITIVE, NEGATIVE = "#c2410c", "#1d4ed8"
MASKED = "#d1d5db"  # a decoder's future cells: masked (−∞ before the softmax, 0 after)
MASKED_TITLE = "masked (−∞)"
HEAD_COLOURS = (
    "#1d4ed8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490",
    "#a16207", "#be185d", "#4d7c0f", "#4338ca", "#0f766e", "#9a3412",
)  # fmt: skip
LABEL_W = 110
FONT = 11


def _cell_size(n: int, budget: int = 620) -> float:
    return max(4.0, min(28.0, budget / max(n, 1)))


def _fill(value: float, scale: float, diverging: bool) -> tuple[str, float]:
    if diverging:
        return (POSITIVE if value >= 0 else NEGATIVE), min(1.0, abs(value) / scale)
    return NEGATIVE, max(0.0, min(1.0, value / scale))


def heatmap_svg(
    matrix: Matrix, *, title: str, row_prefix: str = "", show_labels=True
) -> SafeString:
    """Rows attend to columns. Hover (or focus) a cell to read its value in its <title>.
    Masked cells (a decoder's future) are drawn grey and say so."""
    values, n, rows = matrix.values, matrix.size, len(matrix.rows)
    cell = _cell_size(max(n, rows))
    label_w = LABEL_W if show_labels else 0
    width = label_w + n * cell + 4
    height = label_w + rows * cell + 4
    seen = np.array([[matrix.sees(i, j) for j in range(n)] for i in range(rows)], dtype=bool)
    scale = float(np.abs(np.where(seen, values, 0)).max()) if values.size else 1.0
    scale = scale or 1.0
    if not matrix.diverging:
        scale = max(scale, 1e-6)
    esc = [escape(label) for label in matrix.labels]
    row_esc = [escape(label) for label in matrix.rows]
    parts = [
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'data-size="{n}" data-rows="{rows}" data-causal="{str(matrix.causal).lower()}">'
        f"<title>{escape(title)}</title>"
    ]
    if show_labels and cell >= 7:
        font = min(FONT, cell * 0.85)
        for i, label in enumerate(row_esc):
            y = label_w + i * cell + cell / 2
            parts.append(
                f'<text class="row-label" x="{label_w - 4}" y="{y:.1f}" dy="0.35em" '
                f'text-anchor="end" font-size="{font:.1f}">{label[:16]}</text>'
            )
        for j, label in enumerate(esc):
            x = label_w + j * cell + cell / 2
            parts.append(
                f'<text class="col-label" x="{x:.1f}" y="{label_w - 4}" font-size="{font:.1f}" '
                f'transform="rotate(-60 {x:.1f} {label_w - 4})">{label[:16]}</text>'
            )
    for i in range(rows):
        row = values[i]
        y = label_w + i * cell
        for j in range(n):
            x = label_w + j * cell
            if not seen[i, j]:  # the future: masked, so no weight can flow
                parts.append(
                    f'<rect class="cell masked" x="{x:.1f}" y="{y:.1f}" width="{cell:.2f}" '
                    f'height="{cell:.2f}" fill="{MASKED}">'
                    f"<title>{row_prefix}{row_esc[i]} → {esc[j]}: {MASKED_TITLE}</title></rect>"
                )
                continue
            value = float(row[j])
            colour, opacity = _fill(value, scale, matrix.diverging)
            parts.append(
                f'<rect class="cell" x="{x:.1f}" y="{y:.1f}" width="{cell:.2f}" '
                f'height="{cell:.2f}" fill="{colour}" fill-opacity="{opacity:.3f}" '
                f'data-value="{value:.4f}"><title>{row_prefix}{row_esc[i]} → {esc[j]}: {value:.3f}</title></rect>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  every label above is escaped


def table_svg(array: np.ndarray, labels: list[str], *, title: str) -> SafeString:
    """A T × d matrix (queries, keys, outputs): one row per token, one column per dimension."""
    rows, cols = array.shape
    cell_h = _cell_size(rows, 480)
    cell_w = max(3.0, min(10.0, 320 / max(cols, 1)))
    width, height = LABEL_W + cols * cell_w + 4, rows * cell_h + 4
    scale = float(np.abs(array).max()) or 1.0
    parts = [
        f'<svg class="table" xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width:.0f} '
        f'{height:.0f}" width="{width:.0f}" height="{height:.0f}"><title>{escape(title)}</title>'
    ]
    for i in range(rows):
        y = i * cell_h
        if cell_h >= 7:
            parts.append(
                f'<text x="{LABEL_W - 4}" y="{y + cell_h / 2:.1f}" dy="0.35em" text-anchor="end" '
                f'font-size="{min(FONT, cell_h * 0.85):.1f}">{escape(labels[i])[:16]}</text>'
            )
        for j in range(cols):
            value = float(array[i, j])
            colour, opacity = _fill(value, scale, True)
            parts.append(
                f'<rect x="{LABEL_W + j * cell_w:.1f}" y="{y:.1f}" width="{cell_w:.2f}" '
                f'height="{cell_h:.2f}" fill="{colour}" fill-opacity="{opacity:.3f}">'
                f"<title>{escape(labels[i])}[{j}] = {value:.3f}</title></rect>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  labels are escaped


def head_view_svg(
    weights: np.ndarray, labels: list[str], *, heads: list[int], threshold: float = 0.05
) -> SafeString:
    """One layer: tokens on the left attend to tokens on the right; a line per (head, pair)
    whose weight passes ``threshold``, coloured by head, as opaque as it is strong."""
    n = len(labels)
    row_h = max(9.0, min(22.0, 900 / max(n, 1)))
    width, height = 560, n * row_h + 10
    left_x, right_x = 150, width - 150
    parts = [
        f'<svg class="head-view" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}">'
        f"<title>Head view: lines from each token (left) to the tokens it attends to (right)</title>"
    ]
    for head in heads:
        matrix = weights[head]
        colour = HEAD_COLOURS[head % len(HEAD_COLOURS)]
        parts.append(f'<g class="head-lines" data-head="{head}" stroke="{colour}">')
        rows, cols = np.nonzero(matrix >= threshold)
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            y1, y2 = 5 + i * row_h + row_h / 2, 5 + j * row_h + row_h / 2
            parts.append(
                f'<line x1="{left_x + 4}" y1="{y1:.1f}" x2="{right_x - 4}" y2="{y2:.1f}" '
                f'stroke-width="2" stroke-opacity="{float(matrix[i, j]):.3f}"/>'
            )
        parts.append("</g>")
    font = min(FONT + 1, row_h * 0.8)
    for i, label in enumerate(labels):
        y = 5 + i * row_h + row_h / 2
        safe = escape(label)[:18]
        parts.append(
            f'<text x="{left_x - 4}" y="{y:.1f}" dy="0.35em" text-anchor="end" font-size="{font:.1f}">{safe}</text>'
            f'<text x="{right_x + 4}" y="{y:.1f}" dy="0.35em" font-size="{font:.1f}">{safe}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  labels are escaped
