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

from . import catalogue, limits, model_view, presenters, selectors, services, visuals
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
        view = presenters.parse_view(request.GET, run=run)
        context.update(view_context(run, view))
        if view.kind == "model" or request.GET.get("compact"):
            context.update(model_grid_context(request, run, view))
    return context


def model_grid_context(request, run: AttentionRun, view: presenters.ViewParams) -> dict:
    """Every head as a labelled thumbnail, filtered by ``?role=`` (server-side, so the filter
    works without JavaScript; static/js/roles.js does the same at once in the page)."""
    role, unknown = model_view.parse_role(request.GET.get("role"), causal=run.is_decoder)
    context = {"grid": model_view.grid(run, presenters.RunData(run), view, role_filter=role)}
    if unknown:
        context["role_error"] = _("There is no role “%(role)s”; every head is shown.") % {
            "role": request.GET.get("role", "")[:40]
        }
    return context


def view_context(run: AttentionRun, view: presenters.ViewParams) -> dict:
    data = presenters.RunData(run)
    context = {
        "view": view,
        "layers": range(run.layers),
        "heads": range(run.heads),
        "kinds": presenters.KINDS,
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
        context["svg"] = visuals.heatmap_svg(
            matrix, title=_("Layer %(l)d, head %(h)d") % {"l": view.layer + 1, "h": view.head + 1}
        )
        if view.kind == "compare" and run.compare_text:
            other, diff = data.compare(view)
            context["other_svg"] = (
                visuals.heatmap_svg(other, title=run.compare_text) if other else None
            )
            context["diff_svg"] = visuals.heatmap_svg(diff, title=_("Difference")) if diff else None
    elif view.kind == "head":
        weights, labels = data.layer(view)
        heads = [view.head] if view.focus else list(range(run.heads))
        context["svg"] = visuals.head_view_svg(weights, labels, heads=heads)
        context["head_colours"] = [
            (h, visuals.HEAD_COLOURS[h % len(visuals.HEAD_COLOURS)]) for h in heads
        ]
    elif view.kind == "rollout":
        context["svg"] = visuals.heatmap_svg(data.rollout(view), title=_("Attention rollout"))
    elif view.kind == "step":
        steps = []
        for key, label, matrix, table in data.step(view):
            svg = (
                visuals.heatmap_svg(matrix, title=label)
                if matrix is not None
                else visuals.table_svg(table, data.labels(), title=label)
            )
            steps.append({"key": key, "label": label, "svg": svg})
        context["steps"] = steps
    context["view_query"] = view.query()
    return context


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
