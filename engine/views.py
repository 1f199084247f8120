"""The live model's pages: the demo form, a run's page with its views (the model view's grid
is ``engine.model_view``), and the status fragment that the page polls. The JSON API is
``engine.api``."""

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect
from django_ratelimit.core import get_usage

from . import (
    catalogue,
    checks,
    limits,
    model_view,
    presenters,
    selectors,
    services,
    source,
    visuals,
)
from . import export as exporting
from .broker import broker_available
from .models import AttentionRun, LiveModel
from .validation import InputError, validate_options

EXAMPLES = [
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
    "The cat sat on the mat.",
    "She gave him the book because he asked for it.",
    "Transformers read every word at once.",
    "私は猫が好きです。",
]
MINIMAL_PAIR = EXAMPLES[:2]
# Prompts for the GPT, which was trained on these lessons: it continues text about them.
GPT_EXAMPLES = {
    "ja": [
        "自己注意では、各トークンが",
        "Transformer は",
        "ソフトマックス関数は",
        "位置エンコーディングが必要なのは",
    ],
    "en": [
        "In self-attention, every token",
        "The Transformer is",
        "The softmax function",
        "Positional encoding is needed because",
    ],
}
FORM_FIELDS = ("text", "compare_text", "model", "generate", "temperature", "top_k", "seed")


def _unavailable_message() -> str:
    return _(
        "The live model is unavailable right now. Lessons and quizzes still work; try the model again in a minute."
    )


def read_run(run_id) -> AttentionRun | None:
    """A run for a status read: the selector reads it, and a stale run is repaired here, in
    the open, then read again."""
    run = selectors.run_for_read(run_id)
    if run is not None and services.repair_stale_run(run=run):
        run = selectors.run_for_read(run.id)
    return run


def rate_limited(request) -> int:
    """0 when the client may submit, else the seconds to wait."""
    usage = get_usage(
        request, group="engine-submit", key="ip", rate=settings.ENGINE_RATE_LIMIT, increment=True
    )
    if usage is None or not usage["should_limit"]:
        return 0
    return max(1, int(usage["time_left"]))


def _lang() -> str:
    return "ja" if (get_language() or "ja").startswith("ja") else "en"


def _demo_context() -> dict:
    lang = _lang()
    return {
        "examples": EXAMPLES,
        "pair": MINIMAL_PAIR,
        "gpt_examples": GPT_EXAMPLES[lang],
        "limits": limits,
        "models": {model.id: model for model in catalogue.all_models()},
        "model_choices": LiveModel.choices,
    }


def _form(data, *, defaults: bool) -> dict:
    """What the learner typed, kept as typed (a refused form shows it again)."""
    form = {name: data.get(name, "")[: limits.FORM_MAX_CHARS] for name in FORM_FIELDS}
    if defaults:
        form["text"] = form["text"] or (
            GPT_EXAMPLES[_lang()][0] if form["model"] == LiveModel.GPT else MINIMAL_PAIR[0]
        )
    form["model"] = form["model"] if form["model"] in LiveModel.values else LiveModel.MINILM
    return form


# --- pages ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def demo(request):
    if request.method == "GET":
        form = _form(request.GET, defaults=True)
        return render(request, "engine/demo.html", {"form": form, **_demo_context()})
    form = _form(request.POST, defaults=False)
    errors, status = {}, 400
    if not broker_available():
        errors["general"], status = _unavailable_message(), 503
    elif wait := rate_limited(request):
        errors["general"], status = (
            _(
                "You have sent many sentences in a short time. Please wait %(s)d seconds and try again."
            )
            % {"s": wait},
            429,
        )
    else:
        try:
            options = validate_options(
                model=request.POST.get("model"),
                generate=form["generate"],
                temperature=form["temperature"],
                top_k=form["top_k"],
                seed=form["seed"],
                compare_text=form["compare_text"].strip(),
            )
            run, _reused = services.submit_run(
                text=form["text"], compare_text=form["compare_text"], options=options
            )
        except InputError as error:
            errors[error.field] = error.message
        except services.Unavailable:
            errors["general"], status = _unavailable_message(), 503
        else:
            url = reverse("engine:run", kwargs={"run_id": run.id})
            if request.htmx:
                return HttpResponseClientRedirect(url)
            return redirect(url, permanent=False)
    response = render(
        request,
        "engine/demo.html",
        {"form": form, "errors": errors, **_demo_context()},
        status=status,
    )
    if status == 429:
        response["Retry-After"] = str(wait)
    return response


def _run_context(request, run: AttentionRun) -> dict:
    context = {"run": run, "is_final": run.is_final}
    if run.status == AttentionRun.Status.QUEUED:
        context["ahead"] = selectors.queue_position(run=run)
    if run.status == AttentionRun.Status.DONE:
        selectors.load_arrays(run=run, names=selectors.RUN_PAGE_ARRAYS)
        view = presenters.parse_view(request.GET, run=run)
        data = presenters.RunData(run)
        context.update(view_context(run, view, data))
        if view.kind == "model" or request.GET.get("compact"):
            context.update(model_grid_context(request, run, view, data))
    return context


def model_grid_context(
    request, run: AttentionRun, view: presenters.ViewParams, data: presenters.RunData | None = None
) -> dict:
    """Every head as a labelled thumbnail, filtered by ``?role=`` (server-side, so the filter
    works without JavaScript; static/js/roles.js does the same at once in the page)."""
    role, unknown = model_view.parse_role(request.GET.get("role"), causal=run.is_decoder)
    data = data or presenters.RunData(run)
    context = {"grid": model_view.grid(run, data, view, role_filter=role)}
    if unknown:
        context["role_error"] = _("There is no role “%(role)s”; every head is shown.") % {
            "role": request.GET.get("role", "")[:40]
        }
    return context


def view_context(
    run: AttentionRun, view: presenters.ViewParams, data: presenters.RunData | None = None
) -> dict:
    data = data or presenters.RunData(run)
    context = {
        "view": view,
        "layers": range(run.layers),
        "heads": range(run.heads),
    }
    unknown = sum(1 for token in run.tokens if token["piece"] == "[UNK]")
    context["unknown_pieces"] = unknown
    if run.is_decoder:
        context["prediction_rows"] = [
            {"token": token, "top": top}
            for token, top in zip(data.labels(), run.predictions, strict=False)
        ]
        context["lens_rows"] = [
            {"layer": index, "top": top} for index, top in enumerate(run.lens, start=1)
        ]
        # The continuation decoded from all its ids together, so no character is cut in two.
        context["continuation"] = run.generated_text
    if view.kind == "generation":
        matrix = data.generation(view)
        context["svg"] = (
            visuals.heatmap_svg(
                matrix,
                title=_("Layer %(l)d, head %(h)d") % {"l": view.layer + 1, "h": view.head + 1},
            )
            if matrix is not None
            else None
        )
    elif view.kind in ("heatmap", "compare"):
        matrix = data.attention(view)
        title = _("Layer %(l)d, head %(h)d") % {"l": view.layer + 1, "h": view.head + 1}
        if view.values == "norm":
            title += " · " + _("norm-based ‖α f(x)‖ (rows do not sum to 1)")
        context["svg"] = visuals.heatmap_svg(matrix, title=title)
        if view.kind == "compare" and run.compare_text:
            other, diff = data.compare(view)
            context["other_svg"] = (
                visuals.heatmap_svg(other, title=run.compare_text) if other else None
            )
            context["diff_svg"] = visuals.heatmap_svg(diff, title=_("Difference")) if diff else None
            context["exports"] = [
                {"label": _("First sentence"), "extra": "&which=first"},
                {"label": _("Second sentence"), "extra": "&which=second"},
                *([{"label": _("Difference"), "extra": "&which=difference"}] if diff else []),
            ]
    elif view.kind == "head":
        weights, labels = data.layer(view)
        heads = [view.head] if view.focus else list(range(run.heads))
        context["svg"] = visuals.head_view_svg(weights, labels, heads=heads)
        context["head_colours"] = [
            (h, visuals.HEAD_COLOURS[h % len(visuals.HEAD_COLOURS)]) for h in heads
        ]
    elif view.kind == "rollout":
        title = _("Attention rollout")
        if view.values == "norm":
            title += " · " + _("of norm-based attention, rows rescaled to sum to 1")
        context["svg"] = visuals.heatmap_svg(data.rollout(view), title=title)
    elif view.kind == "step":
        steps = []
        for key, label, matrix, table in data.step(view):
            svg = (
                visuals.heatmap_svg(matrix, title=label)
                if matrix is not None
                else visuals.table_svg(table, data.labels(), title=label)
            )
            steps.append(
                {
                    "key": key,
                    "label": label,
                    "svg": svg,
                    "exports": [{"label": _("This step"), "extra": f"&step={key}"}],
                    **step_source(run.model, key),
                }
            )
        context["steps"] = steps
    context.update(_norms_and_similarity(run, data, view))
    context["view_query"] = view.query()
    return context


def _norms_and_similarity(run, data: presenters.RunData, view: presenters.ViewParams) -> dict:
    """The sink panel under norm-based attention, and a pair run's similarity split."""
    context = {"norm_kinds": presenters.NORM_KINDS}
    if view.values == "norm" and view.kind in presenters.NORM_KINDS:
        context["sink"] = data.sinks()
    split = data.similarity(view)
    if split is not None:
        context["split"] = split
        context["pair_svg"] = visuals.pair_lines_svg(
            split, title=_("The strongest pairs between the two sentences")
        )
    return context


def step_source(model: str, key: str) -> dict:
    """The lines of engine/transformer/ that compute step ``key``, read from the files now, and
    the glossary term that teaches it (linked by URL name: engine imports no other app)."""
    slug, name = source.TERMS[key]
    return {
        "source": source.step_blocks(model, key),
        "term_url": reverse("lessons:term", kwargs={"slug": slug}),
        "term_name": name,
    }


@require_GET
def run_page(request, run_id):
    run = read_run(run_id)
    if run is None:
        return render(request, "404.html", status=404)
    context = _run_context(request, run)
    if request.htmx and request.htmx.target == "view" and run.status == AttentionRun.Status.DONE:
        return render(request, "engine/run.html#view", context)
    return render(request, "engine/run.html", context)


@require_GET
def run_status(request, run_id):
    """The cheap polling fragment; once the run is final it brings the result with it."""
    run = read_run(run_id)
    if run is None:
        return HttpResponse(_("This run does not exist."), status=404)
    return render(request, "engine/run.html#run-state", _run_context(request, run))


@require_http_methods(["GET", "POST"])
def faithfulness(request, run_id):
    """The faithfulness check's panel: POST starts the check (once per run), GET is the
    fragment the panel polls while the worker computes it. Without JavaScript, both end on the
    run page, at the panel."""
    run = selectors.run_for_read(run_id)
    if run is None:
        return render(request, "404.html", status=404)
    panel_url = reverse("engine:run", kwargs={"run_id": run.id}) + "#faithfulness"
    status = 200
    if request.method == "POST":
        try:
            checks.start_check(run=run)
        except checks.CheckRefused as refused:
            status = refused.status
            if not request.htmx:
                context = {"run": run, "message": refused.message}
                return render(request, "engine/faithfulness_refused.html", context, status=status)
            return render(
                request,
                "engine/_faithfulness.html",
                {"run": run, "refused": refused.message},
                status=status,
            )
    if not request.htmx:
        return redirect(panel_url)
    return render(request, "engine/_faithfulness.html", {"run": run}, status=status)


def _plain(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@require_GET
def export(request, run_id, fmt: str):
    """The current view as a file: ``export.svg`` (a standalone image) or ``export.csv`` (its
    numbers), from the view's own query; see ``engine.export`` for the choices."""
    run = selectors.run_for_read(run_id)
    if run is None:
        return _plain(_("This run does not exist."), 404)
    if run.status != AttentionRun.Status.DONE:
        return _plain(
            _(
                "This run has no result to export yet (status: %(status)s). Try again once it is done."
            )
            % {"status": run.get_status_display()},
            409,
        )
    view = presenters.parse_view(request.GET, run=run)
    try:
        figure = exporting.build(
            run, view, which=request.GET.get("which"), step=request.GET.get("step")
        )
    except exporting.NotAvailable as error:
        return _plain(str(error), 404)
    if fmt == "csv":
        # with a byte-order mark, so that spreadsheets read the Japanese tokens as UTF-8
        body = "\ufeff" + exporting.to_csv(figure)
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(exporting.to_svg(figure, run), content_type="image/svg+xml")
    response["Content-Disposition"] = f'attachment; filename="{figure.filename(run, view, fmt)}"'
    return response
