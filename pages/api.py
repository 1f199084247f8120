"""The JSON API under ``/api/v1/``, described by the OpenAPI document that django-ninja builds
from the code (``/api/v1/openapi.json``; a docs page at ``/api/v1/docs`` from the Swagger UI
that django-ninja ships, served as our own static files: no CDN).

It combines the term API (here: lessons with the count of quiz questions) and the live model's
API (``engine.api``). Every refusal is JSON ``{"error": ...}``, with ``"field"`` for bad input."""

from typing import Annotated, ClassVar, Literal

from django.http import Http404
from ninja import NinjaAPI, Query, Router, Status
from ninja.errors import HttpError, ValidationError
from ninja.renderers import JSONRenderer
from pydantic import BaseModel, Field

from engine.api import router as engine_router
from engine.schemas import LEARNER_ERROR, ErrorOut, explained
from lessons import selectors
from lessons.models import LANGS, TIERS

# --- the term API (read-only) -----------------------------------------------------------------

terms = Router(tags=["lessons"])


class TermRefOut(BaseModel):
    slug: str
    title: str
    summary: str
    url: str = Field(description="The term's page.")


class TermsOut(BaseModel):
    terms: list[TermRefOut]


class TiersOut(BaseModel):
    eli5: str
    beginner: str
    intermediate: str
    expert: str


class SourceOut(BaseModel):
    authors: str
    title: str
    year: int | None
    url: str


class TermOut(BaseModel):
    slug: str
    lang: Literal[LANGS]
    title: str
    summary: str
    overview: str = Field(description="HTML.")
    tiers: TiersOut = Field(description="HTML, one explanation per level.")
    prerequisites: list[str]
    children: list[str]
    related: list[str]
    learning_path: list[str]
    sources: list[SourceOut]
    quiz_questions: int


def _lang_message(_value) -> str:
    return "lang must be " + " or ".join(f"'{lang}'" for lang in LANGS)


Lang = Annotated[Literal[LANGS], explained(_lang_message)]
LANG = Query(LANGS[0], description="The language of the lessons.")


@terms.get(
    "terms/", url_name="terms", summary="Every term", response={200: TermsOut, 400: ErrorOut}
)
def api_terms(request, lang: Lang = LANG):
    refs = selectors.glossary(lang=lang).refs.values()
    return {
        "terms": [
            {
                "slug": ref.slug,
                "title": ref.title,
                "summary": ref.summary,
                "url": request.build_absolute_uri(ref.url),
            }
            for ref in refs
        ]
    }


@terms.get(
    "terms/{slug:slug}/",
    url_name="term",
    summary="One term",
    response={200: TermOut, 400: ErrorOut, 404: ErrorOut},
)
def api_term(request, slug: str, lang: Lang = LANG):
    try:
        page = selectors.term_page(slug=slug, lang=lang)
    except Http404:
        return Status(404, {"error": f"no term with slug {slug!r}"})
    text = page.text
    return {
        "slug": page.term.slug,
        "lang": text.lang,
        "title": text.title,
        "summary": text.summary,
        "overview": text.overview_html,
        "tiers": {tier: text.tier_html(tier) for tier in TIERS},
        "prerequisites": [ref.slug for ref in page.prerequisites],
        "children": [ref.slug for ref in page.children],
        "related": [ref.slug for ref in page.related],
        "learning_path": [ref.slug for ref in page.learning_path],
        "sources": [
            {"authors": s.authors, "title": s.title, "year": s.year, "url": s.url}
            for s in page.sources
        ],
        "quiz_questions": page.term.questions.count(),
    }


# --- the API ----------------------------------------------------------------------------------


class Renderer(JSONRenderer):
    json_dumps_params: ClassVar[dict] = {"ensure_ascii": False}  # Japanese as it is


api = NinjaAPI(
    title="Attention Lab API",
    version="1",
    description=(
        'The glossary (read-only) and the live models. Errors are JSON `{"error": ...}`, with '
        '`"field"` for bad input; messages are in English, or Japanese with `?lang=ja`.'
    ),
    urls_namespace="api",
    renderer=Renderer(),
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("", terms)
api.add_router("", engine_router)

JSON_EXAMPLE = 'The body must be JSON in UTF-8, such as {"text": "The cat sat."}.'


def _field_and_message(error: dict) -> tuple[str | None, str]:
    """The field to fix and the message for one pydantic error, located as ninja locates it:
    ``("body", "payload", field)``, ``("query", name)``, ``("path", name)``."""
    source, *names = error["loc"]
    if source == "body":
        names = names[1:]  # the body parameter's own name
    field = str(names[0]) if names else None
    if error["type"] == LEARNER_ERROR:
        return field, error["msg"]
    if field is None:
        return None, JSON_EXAMPLE  # no body at all
    if error["type"] == "missing":
        return field, f'The field "{field}" is missing.'
    return field, f"{field}: {error['msg']}"


@api.exception_handler(ValidationError)
def refused(request, exc: ValidationError):
    field, message = _field_and_message(exc.errors[0])
    body = {"error": message} if field is None else {"error": message, "field": field}
    return api.create_response(request, body, status=400)


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    """ninja's refusals (a body that is not JSON is one), as our JSON errors."""
    if isinstance(exc.__cause__, ValueError):  # UnicodeDecodeError and JSONDecodeError are
        return api.create_response(request, {"error": JSON_EXAMPLE}, status=exc.status_code)
    return api.create_response(request, {"error": str(exc)}, status=exc.status_code)
