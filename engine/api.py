"""The JSON API of the live model: submit a sentence, read a run (optionally waiting for it).

A django-ninja router (``pages.api`` mounts it with the term API under ``/api/v1/``): request
bodies are checked by the pydantic schemas in ``engine.schemas``, which also describe every
answer in the OpenAPI document. Messages are in English, or Japanese with ``?lang=ja`` (the API
has no language prefix)."""

import functools
from typing import Annotated, Literal

from django.http import JsonResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from ninja import Query, Router, Status
from ninja.decorators import decorate_view

from . import catalogue, checks, limits, model_view, presenters, selectors, services
from .broker import broker_available, final_announced, wait_for
from .models import AttentionRun
from .schemas import (
    AttentionIn,
    ErrorOut,
    FaithfulnessOut,
    HeadsOut,
    ModelsOut,
    RunOut,
    SubmittedOut,
    explained,
)
from .transformer.contributions import norm_based
from .validation import InputError, validate_options
from .views import rate_limited, read_run

router = Router(tags=["live models"])

LANG = Query(None, description="`ja` for messages in Japanese; English otherwise.")
RETRY_AFTER = {
    "responses": {
        429: {
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before submitting again.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        }
    }
}


def _error(message: str, status: int, **extra) -> JsonResponse:
    response = JsonResponse(
        {"error": message, **extra}, status=status, json_dumps_params={"ensure_ascii": False}
    )
    if status == 429:
        response["Retry-After"] = str(extra.get("retry_after", 60))
    return response


def _unavailable() -> JsonResponse:
    return _error("The live model is unavailable right now; try again in a minute.", 503)


def _run_url(request, run: AttentionRun) -> str:
    return request.build_absolute_uri(reverse("api:attention-run", kwargs={"run_id": run.id}))


def in_api_language(view):
    """Speak English, or Japanese with ?lang=ja (the API has no URL prefix to tell), from
    before the body is parsed: the schema's refusals are in the learner's language too."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        with translation.override("ja" if request.GET.get("lang") == "ja" else "en"):
            return view(request, *args, **kwargs)

    return wrapper


def body_size_capped(view):
    """413 for a body over ``limits.API_MAX_BODY``, before anything reads or parses it."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limits.API_MAX_BODY or len(request.body) > limits.API_MAX_BODY:
            kib = limits.API_MAX_BODY // 1024
            return _error(f"The request body is too large; send at most {kib} KiB of JSON.", 413)
        return view(request, *args, **kwargs)

    return wrapper


@router.post(
    "attention",
    url_name="attention",
    summary="Submit a sentence to a live model",
    response={202: SubmittedOut, 400: ErrorOut, 413: ErrorOut, 429: ErrorOut, 503: ErrorOut},
    openapi_extra=RETRY_AFTER,
)
@decorate_view(in_api_language, body_size_capped)
def api_submit(request, payload: AttentionIn, lang: str | None = LANG):
    """Queue a run, or return an identical request's finished result at once (`reused`)."""
    if not broker_available():
        return _unavailable()
    if wait := rate_limited(request):
        return _error(f"Too many submissions; retry in {wait} seconds.", 429, retry_after=wait)
    compare_text = payload.compare_text or ""
    try:
        options = validate_options(
            model=payload.model,
            generate=payload.generate,
            temperature=payload.temperature,
            top_k=payload.top_k,
            seed=payload.seed,
            compare_text=compare_text,
        )
        run, reused = services.submit_run(
            text=payload.text, compare_text=compare_text, options=options
        )
    except InputError as error:
        return _error(error.message, 400, field=error.field)
    except services.Unavailable:
        return _unavailable()
    return Status(
        202,
        {
            "id": str(run.id),
            "model": run.model,
            "status": run.status,
            "reused": reused,
            "url": _run_url(request, run),
        },
    )


@router.get("models", url_name="models", summary="The live models", response=ModelsOut)
def api_models(request):
    """What each model is, its size, what it was trained on, where its files are."""
    return {
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
    }


def _top(entries: list[dict]) -> list[dict]:
    return [{"token": entry["token"], "p": round(entry["p"], 5)} for entry in entries]


def _wait_message(_value) -> str:
    return f"wait must be a number of seconds, at most {limits.MAX_WAIT:g}."


def _index_message(_value) -> str:
    return "layer and head must be whole numbers from 0."


Wait = Annotated[float, explained(_wait_message)]
Index = Annotated[int | None, explained(_index_message)]
WAIT = Query(0.0, description=f"Seconds (at most {limits.MAX_WAIT:g}) to wait for the run to end.")
LAYER = Query(None, ge=0, description="Only this layer's attention.")
HEAD = Query(None, ge=0, description="Only this head's attention.")
LANG_RUN = Query(None, description="`ja` for messages in Japanese; English otherwise.")


def _values_message(_value) -> str:
    return "values must be weights, scores or norm."


Values = Annotated[Literal["weights", "scores", "norm"], explained(_values_message)]
VALUES = Query(
    "weights",
    description=(
        "`weights`: attention after softmax (rows sum to 1). `scores`: raw QKᵀ/√d before the "
        "mask and softmax. `norm`: norm-based attention ‖α_ij f(x_j)‖ (Kobayashi et al. 2020, "
        "arXiv:2004.10102), the weight times the length of the key's value vector after the "
        "output projection; rows do not sum to 1."
    ),
)


# The stored arrays each kind of ``values`` is computed from.
NEEDED = {"weights": ("weights",), "scores": ("scores",), "norm": ("weights", "value_norms")}


@router.get(
    "attention/{run_id}/",
    url_name="attention-run",
    summary="Read a run",
    response={200: RunOut, 400: ErrorOut, 404: ErrorOut},
    exclude_unset=True,
)
@decorate_view(in_api_language)
def api_run(
    request,
    run_id: str,
    wait: Wait = WAIT,
    layer: Index = LAYER,
    head: Index = HEAD,
    values: Values = VALUES,
    lang: str | None = LANG_RUN,
):
    """A run as JSON: its status, and once done its attention."""
    # Listening before the first read: an end committed after that read is always heard.
    with final_announced(run_id, wait=wait) as announced:
        run = read_run(run_id)
        if run is None:
            return _error("No run with this id.", 404)
        if wait > 0 and not run.is_final:
            wait_for(announced, wait)
            run = selectors.run_after_wait(run.id, arrays=NEEDED[values])
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
        if (layer is not None and layer >= run.layers) or (head is not None and head >= run.heads):
            return _error(
                gettext("layer must be 0-%(l)d and head 0-%(h)d.")
                % {"l": run.layers - 1, "h": run.heads - 1},
                400,
            )
        selectors.load_arrays(run=run, names=[*NEEDED[values], *selectors.API_ARRAYS])
        data = presenters.RunData(run)
        if values == "scores":
            weights = data.scores  # [L, H, T, T]
        elif values == "norm":
            if not run.value_norms:
                return _error(
                    gettext("This run was computed before norm-based values were kept."), 400
                )
            weights = norm_based(data.weights, data.value_norms)
        else:
            weights = data.weights
        body["values"] = values
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
            if run.similarity_pairs:
                body["similarity_pairs"] = [
                    {"a": a, "b": b, "contribution": value}
                    for a, row in enumerate(run.similarity_pairs)
                    for b, value in enumerate(row)
                ]
                body["layer_similarity"] = run.layer_similarity
    return body


# --- the faithfulness check ------------------------------------------------------------------


def _check_body(request, run: AttentionRun, check) -> dict:
    url = reverse("api:attention-faithfulness", kwargs={"run_id": run.id})
    return {
        "run": str(run.id),
        "status": check.status,
        "done": check.done,
        "total": check.total,
        "error": check.error_message or None,
        "error_code": check.error or None,
        "url": request.build_absolute_uri(url),
        "result": check.result if check.status == check.Status.DONE else None,
    }


@router.post(
    "attention/{run_id}/faithfulness",
    url_name="attention-faithfulness-start",
    summary="Start a run's faithfulness check (a deletion test)",
    response={
        202: FaithfulnessOut,
        200: FaithfulnessOut,
        404: ErrorOut,
        409: ErrorOut,
        503: ErrorOut,
    },
)
@decorate_view(in_api_language)
def api_faithfulness_start(request, run_id: str, lang: str | None = LANG):
    """Idempotent: one check per finished run. 202 when this request started it, 200 with the
    check as it stands when it already exists. Read it with GET at the same address."""
    run = selectors.run_for_read(run_id)
    try:
        check, created = checks.start_check(run=run)
    except checks.CheckRefused as refused:
        return _error(refused.message, refused.status)
    return Status(202 if created else 200, _check_body(request, run, check))


@router.get(
    "attention/{run_id}/faithfulness",
    url_name="attention-faithfulness",
    summary="Read a run's faithfulness check",
    response={200: FaithfulnessOut, 404: ErrorOut},
)
@decorate_view(in_api_language)
def api_faithfulness(request, run_id: str, lang: str | None = LANG):
    """The check's progress (``done`` of ``total``), and once done the curves: for each method
    the output's shift after removing its top k tokens, and the random baseline."""
    run = selectors.run_for_read(run_id)
    if run is None:
        return _error(checks.unknown_run_message(), 404)
    check = checks.check_of(run)
    if check is None:
        return _error(
            gettext("This run has no faithfulness check yet. Start one with POST at this address."),
            404,
        )
    return _check_body(request, run, check)


@router.get(
    "attention/{run_id}/heads",
    url_name="attention-heads",
    summary="Every head's role on a run",
    response={200: HeadsOut, 404: ErrorOut, 409: ErrorOut},
)
@decorate_view(in_api_language)
def api_heads(request, run_id: str, lang: str | None = LANG_RUN):
    """What each head does on this sentence, with a score (after Clark et al. 2019, "What Does
    BERT Look At?", arXiv:1906.04341; the rules and thresholds are on the run's model view).
    409 until the run is done."""
    run = read_run(run_id)
    if run is None:
        return _error(gettext("No run with this id."), 404)
    if run.status == AttentionRun.Status.FAILED:
        return _error(gettext("This run failed, so its heads have no roles."), 409)
    if run.status != AttentionRun.Status.DONE:
        return _error(gettext("This run is not done yet; its heads have roles once it is."), 409)
    labels = model_view.run_roles(run, presenters.RunData(run))
    return {"heads": [label.as_dict() for label in labels]}
