"""The deletion plot of a faithfulness check, as a self-contained SVG string.

x: how many tokens were removed (0 to K); y: how far the output moved. One line per method, each
with its own marker shape (not colour alone), and the random baseline as a grey band (mean ± sd)
around a dashed mean. Colours are SVG attributes, not inline styles, so the CSP holds. The page
puts a table of the same numbers beside it.
"""

from html import escape
from math import floor, log10

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 680, 330
LEFT, RIGHT, TOP, BOTTOM = 64, 230, 20, 48
COLOURS = {
    "attention": "#1d4ed8",
    "rollout": "#7e22ce",
    "norm": "#15803d",
    "gradient": "#c2410c",
}
BAND, BAND_LINE = "#9ca3af", "#4b5563"


def nice_max(value: float) -> float:
    """A round number at or above ``value`` for the top of the axis (1, 2, 2.5 or 5 × 10ⁿ)."""
    if value <= 0:
        return 1.0
    power = 10 ** floor(log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    if shape == "triangle":
        return f'<path d="M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y + 4:.1f}L{x - 5:.1f} {y + 4:.1f}Z" fill="{colour}"/>'
    if shape == "diamond":
        return f'<path d="M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y:.1f}L{x:.1f} {y + 5:.1f}L{x - 5:.1f} {y:.1f}Z" fill="{colour}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'


SHAPES = {"attention": "circle", "rollout": "square", "norm": "triangle", "gradient": "diamond"}


def deletion_plot_svg(
    result: dict,
    *,
    names: dict[str, str],
    title: str,
    description: str,
    x_label: str,
    y_label: str,
    random_label: str,
) -> SafeString:
    """``result`` as stored by ``engine.faithfulness.result_json``; ``names`` the methods'
    labels in the learner's language (the legend)."""
    ks = [0, *result["k"]]
    # in a fixed order (a JSON object's keys may come back in any order from the database)
    order = [name for name in COLOURS if name in result["methods"]]
    methods = {name: [0.0, *result["methods"][name]["shift"]] for name in order}
    mean = [0.0, *result["random"]["mean"]]
    sd = [0.0, *result["random"]["sd"]]
    top = nice_max(
        max([*(max(v) for v in methods.values()), *(m + s for m, s in zip(mean, sd, strict=True))])
    )
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    k_max = max(ks[-1], 1)

    def x(k: float) -> float:
        return LEFT + plot_w * k / k_max

    def y(value: float) -> float:
        return TOP + plot_h * (1 - max(0.0, value) / top)

    parts = [
        f'<svg class="deletion-plot" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'aria-labelledby="deletion-title deletion-desc" data-k="{ks[-1]}">'
        f'<title id="deletion-title">{escape(title)}</title>'
        f'<desc id="deletion-desc">{escape(description)}</desc>'
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>'
    ]
    # the axes, with numbers
    for step in range(5):
        value = top * step / 4
        py = y(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py:.1f}" y2="{py:.1f}" stroke="#e5e7eb"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{py:.1f}" dy="0.35em" text-anchor="end" '
            f'font-size="11" fill="#111827">{round(value, 6):g}</text>'
        )
    for k in ks:
        px = x(k)
        parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}" stroke="#111827"/>'
            f'<text class="tick" x="{px:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
            f'font-size="11" fill="#111827">{k}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#111827"/>'
        f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="#111827"/>'
        f'<text class="axis-label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle" '
        f'font-size="12" fill="#111827">{escape(x_label)}</text>'
        f'<text class="axis-label" x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" font-size="12" '
        f'fill="#111827" transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    # the random band: mean ± sd, then its mean dashed
    upper = [f"{x(k):.1f},{y(m + s):.1f}" for k, m, s in zip(ks, mean, sd, strict=True)]
    lower = [
        f"{x(k):.1f},{y(m - s):.1f}" for k, m, s in reversed(list(zip(ks, mean, sd, strict=True)))
    ]
    parts.append(
        f'<g class="random-band" data-method="random">'
        f'<polygon points="{" ".join(upper + lower)}" fill="{BAND}" fill-opacity="0.35"/>'
        f'<polyline points="{" ".join(f"{x(k):.1f},{y(m):.1f}" for k, m in zip(ks, mean, strict=True))}" '
        f'fill="none" stroke="{BAND_LINE}" stroke-width="1.5" stroke-dasharray="5 4"/></g>'
    )
    for name, values in methods.items():
        colour = COLOURS.get(name, "#111827")
        points = " ".join(f"{x(k):.1f},{y(v):.1f}" for k, v in zip(ks, values, strict=True))
        markers = "".join(
            _marker(SHAPES.get(name, "circle"), x(k), y(v), colour)
            for k, v in zip(ks[1:], values[1:], strict=True)
        )
        parts.append(
            f'<g class="method-line" data-method="{escape(name)}">'
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
            f"{markers}</g>"
        )
    # the legend, right of the plot
    lx = LEFT + plot_w + 16
    for row, name in enumerate(methods):
        ly = TOP + 10 + row * 22
        colour = COLOURS.get(name, "#111827")
        parts.append(
            f'<g class="legend-entry"><line x1="{lx}" x2="{lx + 22}" y1="{ly}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"/>{_marker(SHAPES.get(name, "circle"), lx + 11, ly, colour)}'
            f'<text x="{lx + 28}" y="{ly}" dy="0.35em" font-size="12" fill="#111827">'
            f"{escape(names.get(name, name))}</text></g>"
        )
    ly = TOP + 10 + len(methods) * 22
    parts.append(
        f'<g class="legend-entry"><rect x="{lx}" y="{ly - 6}" width="22" height="12" fill="{BAND}" '
        f'fill-opacity="0.35"/><line x1="{lx}" x2="{lx + 22}" y1="{ly}" y2="{ly}" stroke="{BAND_LINE}" '
        f'stroke-dasharray="5 4"/><text x="{lx + 28}" y="{ly}" dy="0.35em" font-size="12" '
        f'fill="#111827">{escape(random_label)}</text></g>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  every label above is escaped
