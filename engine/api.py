"""The JSON API of the live model: submit a sentence, read a run (optionally waiting for it).

Messages are in English, or Japanese with ``?lang=ja`` (the API has no language prefix)."""

import json

from django.http import JsonResponse
from django.urls import reverse
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import catalogue, limits, presenters, selectors, services
from .broker import broker_available, wait_until_final
from .models import AttentionRun
from .validation import InputError, validate_options
from .views import rate_limited, read_run


def _error(message: str, status: int, **extra) -> JsonResponse:
    response = JsonResponse(
        {"error": message, **extra}, status=status, json_dumps_params={"ensure_ascii": False}
    )
    if status == 429:
        response["Retry-After"] = str(extra.get("retry_after", 60))
    return response


def _run_url(request, run: AttentionRun) -> str:
    return request.build_absolute_uri(reverse("api-attention-run", kwargs={"run_id": run.id}))


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
    if length > limits.API_MAX_BODY or len(request.body) > limits.API_MAX_BODY:
        kib = limits.API_MAX_BODY // 1024
        return _error(f"The request body is too large; send at most {kib} KiB of JSON.", 413)
    try:
        payload = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error('The body must be JSON in UTF-8, such as {"text": "The cat sat."}.', 400)
    if not isinstance(payload, dict):
        return _error('The body must be a JSON object with a "text" field.', 400)
    if "text" not in payload:
        return _error('The field "text" is missing.', 400, field="text")
    if not broker_available():
        return _error("The live model is unavailable right now; try again in a minute.", 503)
    if wait := rate_limited(request):
        return _error(f"Too many submissions; retry in {wait} seconds.", 429, retry_after=wait)
    try:
        options = validate_options(
            model=payload.get("model"),
            generate=payload.get("generate"),
            temperature=payload.get("temperature"),
            top_k=payload.get("top_k"),
            seed=payload.get("seed"),
            compare_text=payload.get("compare_text") or "",
        )
        run, reused = services.submit_run(
            text=payload["text"], compare_text=payload.get("compare_text") or "", options=options
        )
    except InputError as error:
        return _error(error.message, 400, field=error.field)
    except services.Unavailable:
        return _error("The live model is unavailable right now; try again in a minute.", 503)
    return JsonResponse(
        {
            "id": str(run.id),
            "model": run.model,
            "status": run.status,
            "reused": reused,
            "url": _run_url(request, run),
        },
        status=202,
    )


@require_GET
def api_models(request):
    """The live models: what each is, its size, what it was trained on, where its files are."""
    return JsonResponse(
        {
            "models": [
                {
                    "id": model.id,
                    "name": model.name,
                    "kind": model.kind,
                    "layers": model.layers,
                    "heads": model.heads,
                    "hidden_size": model.hidden,
                    "context": model.context,
                    "vocab_size": model.vocab,
                    "parameters": model.parameters,
                    "trained_on": model.trained_on,
                    "checkpoint": model.checkpoint,
                }
                for model in catalogue.all_models()
            ]
        },
        json_dumps_params={"ensure_ascii": False},
    )


def _top(entries: list[dict]) -> list[dict]:
    return [{"token": entry["token"], "p": round(entry["p"], 5)} for entry in entries]


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
    run = read_run(run_id)
    if run is None:
        return _error("No run with this id.", 404)
    try:
        wait = float(request.GET.get("wait") or 0)
    except ValueError:
        return _error(f"wait must be a number of seconds, at most {limits.MAX_WAIT:g}.", 400)
    if wait > 0 and not run.is_final:
        wait_until_final(run_id=run.id, timeout=wait)
        run = selectors.run_for_read(run.id)
    body = {
        "id": str(run.id),
        "status": run.status,
        "error": run.error_message or None,
        "error_code": run.error or None,
        "device": run.device or None,
        "model": run.model,
        "elapsed_ms": run.elapsed_ms,
        "compute_ms": run.compute_ms,
        "text": run.text,
        "compare_text": run.compare_text or None,
        "tokens": [token["piece"] for token in run.tokens],
        "input_ids": run.input_ids or None,
        "attention": None,
    }
    if run.is_decoder:
        body["generate"] = run.generate
        body["generated"] = _top(run.generated)  # grows while the worker generates
        body["generated_text"] = run.generated_text or None
    if run.status == AttentionRun.Status.QUEUED:
        body["ahead"] = selectors.queue_position(run=run)
    if run.status == AttentionRun.Status.DONE:
        try:
            layer = _index(request.GET.get("layer"), run.layers)
            head = _index(request.GET.get("head"), run.heads)
        except ValueError:
            return _error(f"layer must be 0-{run.layers - 1} and head 0-{run.heads - 1}.", 400)
        weights = presenters.RunData(run).weights  # [L, H, T, T]
        if layer is not None:
            weights = weights[layer]
        if head is not None:
            weights = weights[head] if layer is not None else weights[:, head]
        body["attention"] = weights.round(5).tolist()
        if run.is_decoder:
            body["predictions"] = [_top(position) for position in run.predictions]
            body["lens"] = [_top(layer) for layer in run.lens]
        else:
            body["similarity"] = run.similarity
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})
