"""Benchmark: the model view (6 layers × 12 heads of the encoder at T = 128), in one request
against the 73 it took before.

Run from the repository root::

    .venv/bin/python bench/bench_model_view.py          # 15 interleaved repetitions

A real run: all-MiniLM-L6-v2 reads a sentence of exactly 128 word pieces on the CPU, and the
result is stored as the worker stores it (``engine.arrays.pack``). Then, side by side:

- **one request (now)**: the ``#view`` fragment of ``?kind=model`` as the view renders it: one
  ``RunData`` (one decompression), every head's role, 72 inline thumbnails pooled to 24 × 24
  (one ``<path>`` per colour level), the filter, the reference summary.
- **73 requests (before)**: the fragment of the previous commit's ``_model_grid.html`` (72
  ``<img>`` tags), then for each of the 72 thumbnails what its view did: a new ``RunData``
  (decompress every weight), pool one head with a Python loop, draw one ``<rect>`` per cell.
  The code of that view is kept below, verbatim, as the baseline. HTTP overhead per request is
  not counted, so the "before" figure is a lower bound.

Bytes are the response bodies, raw and gzip-compressed (level 6, each response on its own).
Writes the section "## Model view: one request" of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import statistics
import sys
import time
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

import _common as common  # noqa: E402
import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.template import engines  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.utils import translation  # noqa: E402

from engine import presenters, views  # noqa: E402
from engine.arrays import pack  # noqa: E402
from engine.lifecycle import _token_rows  # noqa: E402
from engine.models import AttentionRun  # noqa: E402

SECTION = "## Model view: one request"
FILLER = "Attention lets every token look at every other token and decide what to take from it. "

# The previous commit's grid template (72 <img> thumbnails, each its own request).
OLD_GRID = """{% load i18n %}<table class="model-grid">
  <thead><tr><td></td>{% for h in heads %}<th scope="col">H{{ h|add:1 }}</th>{% endfor %}</tr></thead>
  <tbody>{% for l in layers %}<tr><th scope="row">L{{ l|add:1 }}</th>{% for h in heads %}
    <td><a href="/en/demo/runs/{{ run.id }}/?kind=heatmap&amp;layer={{ l }}&amp;head={{ h }}"><img src="/en/demo/runs/{{ run.id }}/thumb/{{ l }}/{{ h }}.svg" loading="lazy" width="60" height="60" alt="{% blocktranslate with l=l|add:1 h=h|add:1 %}Layer {{ l }}, head {{ h }}{% endblocktranslate %}"></a></td>{% endfor %}</tr>{% endfor %}
  </tbody>
</table>"""


def old_pool(weights: np.ndarray, layer: int, head: int, cells: int = 24) -> np.ndarray:
    """The previous ``RunData.thumbnail``, verbatim."""
    matrix = weights[layer, head]
    size = matrix.shape[0]
    if size <= cells:
        return matrix
    edges = np.linspace(0, size, cells + 1).astype(int)
    return np.array(
        [
            [matrix[edges[i] : edges[i + 1], edges[j] : edges[j + 1]].mean() for j in range(cells)]
            for i in range(cells)
        ]
    )


def old_thumbnail_svg(matrix: np.ndarray, *, title: str) -> str:
    """The previous ``visuals.thumbnail_svg``, verbatim."""
    n = matrix.shape[0]
    cell = 60 / n
    scale = float(matrix.max()) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 60 60" width="60" height="60">'
        f"<title>{escape(title)}</title>"
    ]
    for i in range(n):
        for j in range(n):
            opacity = float(matrix[i, j]) / scale
            if opacity > 0.02:
                parts.append(
                    f'<rect x="{j * cell:.2f}" y="{i * cell:.2f}" width="{cell:.2f}" height="{cell:.2f}" '
                    f'fill="#1d4ed8" fill-opacity="{opacity:.2f}"/>'
                )
    parts.append("</svg>")
    return "".join(parts)


def build_run(pieces: int) -> AttentionRun:
    from engine.transformer import AttentionModel

    model = AttentionModel.load(device="cpu")
    text = FILLER * (1 + pieces // 10)
    low, high = 1, len(text)
    while low < high:
        mid = (low + high) // 2
        if len(model.encode(text[:mid])) >= pieces:
            high = mid
        else:
            low = mid + 1
    text = text[:low].strip()
    result = model.run(text, keep_qkv=True)
    assert len(result.tokens) == pieces, len(result.tokens)
    return AttentionRun(
        model="minilm",
        text=text,
        status=AttentionRun.Status.DONE,
        layers=result.weights.shape[0],
        heads=result.weights.shape[1],
        tokens=_token_rows(result.tokens),
        weights=pack(result.weights),
        scores=pack(result.scores),
        qkv=pack(np.stack([result.queries, result.keys, result.values])),
    )


def now_fragment(run: AttentionRun, request) -> list[bytes]:
    view = presenters.parse_view(request.GET, run=run)
    context = {"run": run, "request": request, **views.view_context(run, view)}
    context.update(views.model_grid_context(request, run, view))
    return [render_to_string("engine/run.html#view", context).encode()]


def before_responses(run: AttentionRun, request) -> list[bytes]:
    view = presenters.parse_view(request.GET, run=run)
    context = {"run": run, "request": request, **views.view_context(run, view)}
    grid = engines["django"].from_string(OLD_GRID).render(context)
    bodies = [grid.encode()]
    for layer in range(run.layers):
        for head in range(run.heads):
            data = presenters.RunData(run)  # each thumbnail request decompressed the run
            svg = old_thumbnail_svg(
                old_pool(data.weights, layer, head), title=f"L{layer + 1} H{head + 1}"
            )
            bodies.append(svg.encode())
    return bodies


def measure(function, run, request) -> tuple[float, list[bytes]]:
    started = time.perf_counter()
    bodies = function(run, request)
    return (time.perf_counter() - started) * 1000, bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--pieces", type=int, default=128)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    command = "bench/bench_model_view.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    header = common.machine_lines(f".venv/bin/python {command}".strip())
    run = build_run(args.pieces)
    request = RequestFactory().get("/en/demo/runs/x/", {"kind": "model"})
    approaches = {"one request (now)": now_fragment, "73 requests (before)": before_responses}
    times: dict[str, list[float]] = {name: [] for name in approaches}
    bodies: dict[str, list[bytes]] = {}
    with translation.override("en"):
        for function in approaches.values():  # warm-up: templates compiled, caches filled
            function(run, request)
        for _ in range(args.repeat):
            for name, function in approaches.items():
                elapsed, bodies[name] = measure(function, run, request)
                times[name].append(elapsed)
    rows = []
    for name in approaches:
        raw = sum(len(body) for body in bodies[name])
        zipped = sum(len(gzip.compress(body, 6)) for body in bodies[name])
        rows.append((name, len(bodies[name]), statistics.median(times[name]), raw, zipped))
    now, before = rows
    lines = [
        SECTION,
        "",
        *header,
        f"- A real run: all-MiniLM-L6-v2 on a sentence of {args.pieces} word pieces (CPU), "
        f"stored packed as the worker stores it; {run.layers} × {run.heads} heads. Median of "
        f"{args.repeat} interleaved repetitions, server-side work only (no HTTP overhead, so "
        "the 73-request figure is a lower bound).",
        "- **one request (now)**: the `#view` fragment of `?kind=model`: one decompression, "
        "every head's role, 72 inline 24 × 24 thumbnails (one `<path>` per colour level), the "
        "filter and the reference summary. **73 requests (before)**: the previous grid (72 "
        "`<img>`) and 72 thumbnail responses, each decompressing the run and drawing a "
        "`<rect>` per cell (the previous code, kept verbatim in the benchmark).",
        "",
        "| approach | requests | server time (ms) | bytes | gzip bytes |",
        "|---|---:|---:|---:|---:|",
        *(f"| {n} | {r} | {t:.1f} | {b:,} | {z:,} |" for n, r, t, b, z in rows),
        "",
        f"Now / before: time {now[2] / before[2]:.2f}, bytes {now[3] / before[3]:.2f}, "
        f"gzip bytes {now[4] / before[4]:.2f}, requests {now[1]} instead of {before[1]}.",
        "",
    ]
    common.publish(SECTION, "\n".join(lines), write=not args.no_write)


if __name__ == "__main__":
    main()
