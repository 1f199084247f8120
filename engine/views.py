import json

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_ratelimit.core import get_usage

from . import selectors, services, visuals
from .models import AttentionRun

EXAMPLES = [
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
    "The cat sat on the mat.",
    "She gave him the book because he asked for it.",
    "Transformers read every word at once.",
    "私は猫が好きです。",
]
MINIMAL_PAIR = EXAMPLES[:2]


def _unavailable_message() -> str:
    return _(
        "The live model is unavailable right now. Lessons and quizzes still work; try the model again in a minute."
    )


def _rate_limited(request) -> int:
    """0 when the client may submit, else the seconds to wait."""
    usage = get_usage(
        request, group="engine-submit", key="ip", rate=settings.ENGINE_RATE_LIMIT, increment=True
    )
    if usage is None or not usage["should_limit"]:
        return 0
    return max(1, int(usage["time_left"]))


# --- pages ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def demo(request):
    form = {
        "text": request.GET.get("text", MINIMAL_PAIR[0])[:600],
        "compare_text": request.GET.get("compare_text", "")[:600],
    }
    if request.method == "GET":
        return render(
            request, "engine/demo.html", {"form": form, "examples": EXAMPLES, "pair": MINIMAL_PAIR}
        )
    form = {
        "text": request.POST.get("text", ""),
        "compare_text": request.POST.get("compare_text", ""),
    }
    errors, status = {}, 400
    if not services.broker_available():
        errors["general"], status = _unavailable_message(), 503
    elif wait := _rate_limited(request):
        errors["general"], status = (
            _(
                "You have sent many sentences in a short time. Please wait %(s)d seconds and try again."
            )
            % {"s": wait},
            429,
        )
    else:
        try:
            run, _reused = services.submit_run(text=form["text"], compare_text=form["compare_text"])
        except services.InputError as error:
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
        {"form": form, "errors": errors, "examples": EXAMPLES, "pair": MINIMAL_PAIR},
        status=status,
    )
    if status == 429:
        response["Retry-After"] = str(wait)
    return response


def _run_context(request, run: AttentionRun) -> dict:
    context = {"run": run, "is_final": run.is_final}
    if run.status == AttentionRun.Status.QUEUED:
        context["ahead"] = services.queue_position(run)
    if run.status == AttentionRun.Status.DONE:
        view = selectors.parse_view(request.GET, run=run)
        context.update(view_context(run, view))
    return context


def view_context(run: AttentionRun, view: selectors.ViewParams) -> dict:
    data = selectors.RunData(run)
    context = {
        "view": view,
        "layers": range(run.layers),
        "heads": range(run.heads),
        "kinds": selectors.KINDS,
    }
    unknown = sum(1 for token in run.tokens if token["piece"] == "[UNK]")
    context["unknown_pieces"] = unknown
    if view.kind in ("heatmap", "compare"):
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
    run = selectors.run_for_read(run_id)
    if run is None:
        return render(request, "404.html", status=404)
    context = _run_context(request, run)
    if request.htmx and request.htmx.target == "view" and run.status == AttentionRun.Status.DONE:
        return render(request, "engine/run.html#view", context)
    return render(request, "engine/run.html", context)


@require_GET
def run_status(request, run_id):
    """The cheap polling fragment; once the run is final it brings the result with it."""
    run = selectors.run_for_read(run_id)
    if run is None:
        return HttpResponse(_("This run does not exist."), status=404)
    return render(request, "engine/run.html#run-state", _run_context(request, run))


@require_GET
def thumbnail(request, run_id, layer: int, head: int):
    run = selectors.run_for_read(run_id)
    if (
        run is None
        or run.status != AttentionRun.Status.DONE
        or layer >= run.layers
        or head >= run.heads
    ):
        return HttpResponse(status=404)
    data = selectors.RunData(run)
    svg = visuals.thumbnail_svg(data.thumbnail(layer, head), title=f"L{layer + 1} H{head + 1}")
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400, immutable"
    return response


# --- JSON API -----------------------------------------------------------------------------------


def _error(message: str, status: int, **extra) -> JsonResponse:
    response = JsonResponse(
        {"error": message, **extra}, status=status, json_dumps_params={"ensure_ascii": False}
    )
    if status == 429:
        response["Retry-After"] = str(extra.get("retry_after", 60))
    return response


def _run_url(request, run: AttentionRun) -> str:
    return request.build_absolute_uri(reverse("api-attention-run", kwargs={"run_id": run.id}))


API_MAX_BODY = 16 * 1024


def _api_language(request) -> None:
    """The API speaks English, or Japanese with ?lang=ja (it has no URL prefix to tell)."""
    translation.activate("ja" if request.GET.get("lang") == "ja" else "en")


@csrf_exempt  # a JSON API for scripts: no cookies are read, so there is nothing to forge
@require_POST
def api_submit(request):
    _api_language(request)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > API_MAX_BODY or len(request.body) > API_MAX_BODY:
        return _error("The request body is too large; send at most 16 KiB of JSON.", 413)
    try:
        payload = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error('The body must be JSON in UTF-8, such as {"text": "The cat sat."}.', 400)
    if not isinstance(payload, dict):
        return _error('The body must be a JSON object with a "text" field.', 400)
    if "text" not in payload:
        return _error('The field "text" is missing.', 400, field="text")
    if not services.broker_available():
        return _error("The live model is unavailable right now; try again in a minute.", 503)
    if wait := _rate_limited(request):
        return _error(f"Too many submissions; retry in {wait} seconds.", 429, retry_after=wait)
    try:
        run, reused = services.submit_run(
            text=payload["text"], compare_text=payload.get("compare_text") or ""
        )
    except services.InputError as error:
        return _error(error.message, error.status, field=error.field)
    except services.Unavailable:
        return _error("The live model is unavailable right now; try again in a minute.", 503)
    return JsonResponse(
        {"id": str(run.id), "status": run.status, "reused": reused, "url": _run_url(request, run)},
        status=202,
    )


def _index(value: str | None, upper: int) -> int | None:
    """An optional index in 0..upper-1 from the query string; ValueError for anything else."""
    if value is None:
        return None
    number = int(value)
    if not 0 <= number < upper:
        raise ValueError(value)
    return number


@require_GET
def api_run(request, run_id):
    """A run as JSON. Messages are in English, or Japanese with ?lang=ja."""
    _api_language(request)
    run = selectors.run_for_read(run_id)
    if run is None:
        return _error("No run with this id.", 404)
    try:
        wait = float(request.GET.get("wait") or 0)
    except ValueError:
        return _error(f"wait must be a number of seconds, at most {services.MAX_WAIT:g}.", 400)
    if wait > 0 and not run.is_final:
        services.wait_until_final(run_id=run.id, timeout=wait)
        run = selectors.run_for_read(run.id)
    body = {
        "id": str(run.id),
        "status": run.status,
        "error": run.error_message or None,
        "error_code": run.error or None,
        "device": run.device or None,
        "elapsed_ms": run.elapsed_ms,
        "compute_ms": run.compute_ms,
        "text": run.text,
        "compare_text": run.compare_text or None,
        "tokens": [token["piece"] for token in run.tokens],
        "attention": None,
    }
    if run.status == AttentionRun.Status.QUEUED:
        body["ahead"] = services.queue_position(run)
    if run.status == AttentionRun.Status.DONE:
        try:
            layer = _index(request.GET.get("layer"), run.layers)
            head = _index(request.GET.get("head"), run.heads)
        except ValueError:
            return _error(f"layer must be 0-{run.layers - 1} and head 0-{run.heads - 1}.", 400)
        weights = selectors.RunData(run).weights  # [L, H, T, T]
        if layer is not None:
            weights = weights[layer]
        if head is not None:
            weights = weights[head] if layer is not None else weights[:, head]
        body["attention"] = weights.round(5).tolist()
        body["similarity"] = run.similarity
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})
