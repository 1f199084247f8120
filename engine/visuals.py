"""Server-rendered SVG for attention: heatmaps and the head view (the model view's thumbnails
are ``engine.model_view``).

Built as strings (a heatmap at T = 128 has 16,384 cells: a template loop would be slow), with
every label escaped. Colours are SVG attributes, not inline styles, so the CSP holds.
"""

from html import escape

import numpy as np
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .presenters import Matrix, SimilaritySplit

POSITIVE, NEGATIVE = "#c2410c", "#1d4ed8"
MASKED = "#d1d5db"  # a decoder's future cells: masked (−∞ before the softmax, 0 after)
MASKED_TITLE = gettext_lazy("masked (−∞)")
HEAD_COLOURS = (
    "#1d4ed8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490",
    "#a16207", "#be185d", "#4d7c0f", "#4338ca", "#0f766e", "#9a3412",
)  # fmt: skip
LABEL_W = 110
LABELLED_CELL = 7.0  # the smallest cell that still fits a readable row label
FONT = 11
LEGEND_H = 46  # the colour scale under a heatmap
LEGEND_STEPS = 11


def _cell_size(n: int, budget: int = 620) -> float:
    return max(4.0, min(28.0, budget / max(n, 1)))


def _fill(value: float, scale: float, diverging: bool) -> tuple[str, float]:
    if diverging:
        return (POSITIVE if value >= 0 else NEGATIVE), min(1.0, abs(value) / scale)
    return NEGATIVE, max(0.0, min(1.0, value / scale))


def _tick(value: float) -> str:
    return f"{value:.3g}".replace("-", "−")


def colour_scale_svg(*, x: float, y: float, scale: float, diverging: bool) -> str:
    """The colour scale of a heatmap, as SVG: steps from the lowest to the highest value, with
    the numbers at both ends and in the middle (a diverging scale is centred at 0)."""
    low = -scale if diverging else 0.0
    step_w = 14
    scale_name = _("Colour scale")
    parts = [
        f'<g class="colour-scale" data-min="{low:.6g}" data-max="{scale:.6g}" '
        f'data-diverging="{str(diverging).lower()}" transform="translate({x:.1f} {y:.1f})">'
        f"<title>{escape(scale_name)}</title>"
    ]
    for k in range(LEGEND_STEPS):
        value = low + (scale - low) * k / (LEGEND_STEPS - 1)
        colour, opacity = _fill(value, scale, diverging)
        parts.append(
            f'<rect class="scale-step" x="{k * step_w}" y="0" width="{step_w}" height="12" '
            f'fill="{colour}" fill-opacity="{opacity:.3f}" stroke="#9aa3b2" stroke-width="0.5"/>'
        )
    total = LEGEND_STEPS * step_w
    for position, value, anchor in (
        (0, low, "start"),
        (total / 2, (low + scale) / 2, "middle"),
        (total, scale, "end"),
    ):
        parts.append(
            f'<text class="scale-tick" x="{position:.1f}" y="26" font-size="{FONT}" '
            f'text-anchor="{anchor}" data-value="{value:.6g}">{_tick(value)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def heatmap_svg(
    matrix: Matrix,
    *,
    title: str,
    show_labels=True,
    interactive: bool = True,
) -> SafeString:
    """Rows attend to columns. Hover (or focus) a cell to read its value in its <title>; hover
    or focus a row label to isolate its row (static/js/reading.js). Masked cells (a decoder's
    future) are drawn grey and say so. A colour scale with its numbers sits underneath."""
    values, n, rows = matrix.values, matrix.size, len(matrix.rows)
    cell = _cell_size(max(n, rows))
    if show_labels:
        # Every token keeps its label (and a keyboard handle on its row), however long the
        # sentence: past about 88 tokens the heatmap grows wider than 620 px instead, and its
        # figure scrolls.
        cell = max(cell, LABELLED_CELL)
    label_w = LABEL_W if show_labels else 0
    width = max(label_w + n * cell + 4, label_w + LEGEND_STEPS * 14 + 24)
    height = label_w + rows * cell + 4 + LEGEND_H
    seen = np.array([[matrix.sees(i, j) for j in range(n)] for i in range(rows)], dtype=bool)
    scale = float(np.abs(np.where(seen, values, 0)).max()) if values.size else 1.0
    scale = scale or 1.0
    if not matrix.diverging:
        scale = max(scale, 1e-6)
    # Cut a label before escaping it: a cut entity (&lt; → &) would not be XML.
    esc = [escape(label) for label in matrix.labels]
    short = [escape(label[:16]) for label in matrix.labels]
    row_esc = [escape(label) for label in matrix.rows]
    row_short = [escape(label[:16]) for label in matrix.rows]
    # Focusable row labels inside an image would be hidden from assistive technology: a
    # heatmap the learner can explore is a group, a static one an image.
    role = "group" if interactive and show_labels else "img"
    parts = [
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" role="{role}" '
        f'aria-label="{escape(title)}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'data-size="{n}" data-rows="{rows}" data-causal="{str(matrix.causal).lower()}">'
        f"<title>{escape(title)}</title>"
    ]
    if show_labels:
        font = min(FONT, cell * 0.85)
        row_hint = _("Row %(token)s: show only this row")
        for i, label in enumerate(row_short):
            y = label_w + i * cell + cell / 2
            focus = (
                f' tabindex="0" role="button" aria-label="'
                f'{escape(row_hint % {"token": matrix.rows[i]})}"'
                if interactive
                else ""
            )
            parts.append(
                f'<text class="row-label" data-row="{i}" x="{label_w - 4}" y="{y:.1f}" '
                f'dy="0.35em" text-anchor="end" font-size="{font:.1f}"{focus}>{label}</text>'
            )
        for j, label in enumerate(short):
            x = label_w + j * cell + cell / 2
            parts.append(
                f'<text class="col-label" x="{x:.1f}" y="{label_w - 4}" font-size="{font:.1f}" '
                f'transform="rotate(-60 {x:.1f} {label_w - 4})">{label}</text>'
            )
    for i in range(rows):
        row = values[i]
        y = label_w + i * cell
        for j in range(n):
            x = label_w + j * cell
            if not seen[i, j]:  # the future: masked, so no weight can flow
                parts.append(
                    f'<rect class="cell masked" data-row="{i}" x="{x:.1f}" y="{y:.1f}" width="{cell:.2f}" '
                    f'height="{cell:.2f}" fill="{MASKED}">'
                    f"<title>{row_esc[i]} → {esc[j]}: {MASKED_TITLE}</title></rect>"
                )
                continue
            value = float(row[j])
            colour, opacity = _fill(value, scale, matrix.diverging)
            parts.append(
                f'<rect class="cell" data-row="{i}" x="{x:.1f}" y="{y:.1f}" width="{cell:.2f}" '
                f'height="{cell:.2f}" fill="{colour}" fill-opacity="{opacity:.3f}" '
                f'data-value="{value:.4f}"><title>{row_esc[i]} → {esc[j]}: {value:.3f}</title></rect>'
            )
    parts.append(
        colour_scale_svg(
            x=label_w, y=label_w + rows * cell + 12, scale=scale, diverging=matrix.diverging
        )
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  every label above is escaped


def table_svg(array: np.ndarray, labels: list[str], *, title: str) -> SafeString:
    """A T × d matrix (queries, keys, outputs): one row per token, one column per dimension."""
    rows, cols = array.shape
    cell_h = _cell_size(rows, 480)
    cell_w = max(3.0, min(10.0, 320 / max(cols, 1)))
    width = max(LABEL_W + cols * cell_w + 4, LABEL_W + LEGEND_STEPS * 14 + 24)
    height = rows * cell_h + 4 + LEGEND_H
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
                f'font-size="{min(FONT, cell_h * 0.85):.1f}">{escape(labels[i][:16])}</text>'
            )
        for j in range(cols):
            value = float(array[i, j])
            colour, opacity = _fill(value, scale, True)
            parts.append(
                f'<rect x="{LABEL_W + j * cell_w:.1f}" y="{y:.1f}" width="{cell_w:.2f}" '
                f'height="{cell_h:.2f}" fill="{colour}" fill-opacity="{opacity:.3f}">'
                f"<title>{escape(labels[i])}[{j}] = {value:.3f}</title></rect>"
            )
    parts.append(colour_scale_svg(x=LABEL_W, y=rows * cell_h + 12, scale=scale, diverging=True))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  labels are escaped


def head_view_svg(
    weights: np.ndarray,
    labels: list[str],
    *,
    heads: list[int],
    threshold: float = 0.05,
    interactive: bool = True,
) -> SafeString:
    """One layer: tokens on the left attend to tokens on the right; a line per (head, pair)
    whose weight passes ``threshold``, coloured by head, as opaque as it is strong. Every line
    says where it runs (``data-from``, ``data-to``; its group, ``data-head``), so hovering or
    focusing a token isolates its lines (static/js/reading.js)."""
    n = len(labels)
    row_h = max(9.0, min(22.0, 900 / max(n, 1)))
    width, height = 560, n * row_h + 10
    left_x, right_x = 150, width - 150
    title = _("Head view: lines from each token (left) to the tokens it attends to (right)")
    parts = [
        f'<svg class="head-view" xmlns="http://www.w3.org/2000/svg" '
        f'role="{"group" if interactive else "img"}" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}">'
        f"<title>{escape(title)}</title>"
    ]
    for head in heads:
        matrix = weights[head]
        colour = HEAD_COLOURS[head % len(HEAD_COLOURS)]
        parts.append(f'<g class="head-lines" data-head="{head}" stroke="{colour}">')
        rows, cols = np.nonzero(matrix >= threshold)
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            y1, y2 = 5 + i * row_h + row_h / 2, 5 + j * row_h + row_h / 2
            parts.append(
                f'<line data-from="{i}" data-to="{j}" x1="{left_x + 4}" y1="{y1:.1f}" '
                f'x2="{right_x - 4}" y2="{y2:.1f}" '
                f'stroke-width="2" stroke-opacity="{float(matrix[i, j]):.3f}"/>'
            )
        parts.append("</g>")
    font = min(FONT + 1, row_h * 0.8)
    from_hint = _("%(token)s: show only the lines from it")
    to_hint = _("%(token)s: show only the lines to it")
    for i, label in enumerate(labels):
        y = 5 + i * row_h + row_h / 2
        safe = escape(label[:18])
        left, right = "", ""
        if interactive:
            left = (
                f' tabindex="0" role="button" aria-label="{escape(from_hint % {"token": label})}"'
            )
            right = f' tabindex="0" role="button" aria-label="{escape(to_hint % {"token": label})}"'
        parts.append(
            f'<text class="token" data-side="from" data-index="{i}" x="{left_x - 4}" y="{y:.1f}" '
            f'dy="0.35em" text-anchor="end" font-size="{font:.1f}"{left}>{safe}</text>'
            f'<text class="token" data-side="to" data-index="{i}" x="{right_x + 4}" y="{y:.1f}" '
            f'dy="0.35em" font-size="{font:.1f}"{right}>{safe}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  labels are escaped


def _token_row(labels: list[str], *, font: float = 12.0) -> tuple[list[float], float]:
    """Centres of the tokens written side by side, and the row's width."""
    centres, x = [], 8.0
    for label in labels:
        width = max(18.0, 0.62 * font * len(label[:14]) + 10)
        centres.append(x + width / 2)
        x += width
    return centres, x + 8


def pair_lines_svg(split: SimilaritySplit, *, title: str) -> SafeString:
    """The two sentences as two rows of tokens, and a line for each of the strongest pairs:
    as wide and as opaque as the pair's share of the similarity, orange when it adds to the
    score and blue when it takes away. Every line's <title> gives its number."""
    top_x, top_width = _token_row(split.first)
    bottom_x, bottom_width = _token_row(split.second)
    width = max(top_width, bottom_width, 200.0)
    top_y, bottom_y, height = 22.0, 168.0, 190.0
    strongest = max((abs(pair["value"]) for pair in split.top), default=0.0) or 1.0
    parts = [
        f'<svg class="pair-lines" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}">'
        f"<title>{escape(title)}</title>"
    ]
    for pair in reversed(split.top):  # the strongest drawn last, on top
        value = pair["value"]
        share = abs(value) / strongest
        colour = POSITIVE if value >= 0 else NEGATIVE
        sign = "positive" if value >= 0 else "negative"
        parts.append(
            f'<line class="pair {sign}" x1="{top_x[pair["a"]]:.1f}" y1="{top_y + 8:.1f}" '
            f'x2="{bottom_x[pair["b"]]:.1f}" y2="{bottom_y - 14:.1f}" stroke="{colour}" '
            f'stroke-width="{1 + 5 * share:.2f}" stroke-opacity="{0.25 + 0.75 * share:.3f}" '
            f'data-a="{pair["a"]}" data-b="{pair["b"]}" data-value="{value:.6f}">'
            f"<title>{escape(pair['first'])} – {escape(pair['second'])}: {value:+.4f}</title>"
            "</line>"
        )
    for labels, centres, y, row in (
        (split.first, top_x, top_y, "first"),
        (split.second, bottom_x, bottom_y, "second"),
    ):
        parts.append(f'<g class="pair-tokens {row}">')
        for label, x in zip(labels, centres, strict=True):
            parts.append(
                f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" font-size="12">'
                f"{escape(label[:14])}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  every label above is escaped
