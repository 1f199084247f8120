from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from quiz.selectors import current_learner, mastery_map

from . import selectors
from .graph import knowledge_map, term_graph
from .models import LANGS, TIER_LABELS, TIERS

DEFAULT_TIER = "beginner"
START_HERE = "transformer"


def _lang(request) -> str:
    return get_language() or "ja"


def _api_lang(request) -> str:
    lang = request.GET.get("lang", "ja")
    return lang if lang in LANGS else ""


@require_GET
def home(request):
    lang = _lang(request)
    index = selectors.glossary(lang=lang)
    mastery = mastery_map(learner=current_learner(request=request))
    layout = knowledge_map(
        terms=[ref.as_tuple for ref in index.refs.values()],
        prerequisite_edges=index.prerequisite_edges,
        mastery=mastery,
    )
    query = request.GET.get("q", "")
    context = {
        "layout": layout,
        "refs": index.refs,
        "start": index.refs.get(START_HERE),
        "query": query,
        "results": selectors.search(query=query, lang=lang) if query else None,
        "mastery": mastery,
    }
    return render(request, "lessons/home.html", context)


@require_GET
def search(request):
    """The live search: an htmx fragment, or the home page when asked without htmx."""
    if not request.htmx:
        return home(request)
    query = request.GET.get("q", "")
    results = selectors.search(query=query, lang=_lang(request)) if query.strip() else None
    return render(request, "lessons/home.html#search-results", {"results": results, "query": query})


@require_GET
def term(request, slug: str):
    lang = _lang(request)
    page = selectors.term_page(slug=slug, lang=lang)
    tier = request.GET.get("tier", DEFAULT_TIER)
    if tier not in TIERS:
        tier = DEFAULT_TIER
    learner = current_learner(request=request)
    mastery = mastery_map(learner=learner)
    layout = term_graph(
        current=(page.term.slug, page.text.title, request.path),
        prerequisites=[ref.as_tuple for ref in page.prerequisites],
        children=[ref.as_tuple for ref in page.children],
        related=[ref.as_tuple for ref in page.related],
        mastery=mastery,
    )
    context = {
        "page": page,
        "text": page.text,
        "tier": tier,
        "tiers": [(key, TIER_LABELS[key]) for key in TIERS],
        "tier_html": page.text.tier_html(tier),
        "layout": layout,
        "mastery": mastery.get(slug, "not_started"),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "lessons/term.html#tier-panel", context)
    return render(request, "lessons/term.html", context)


# --- JSON API (read-only) -------------------------------------------------------------------


def _bad_lang():
    return JsonResponse({"error": "lang must be 'ja' or 'en'"}, status=400)


@require_GET
def api_terms(request):
    lang = _api_lang(request)
    if not lang:
        return _bad_lang()
    refs = selectors.glossary(lang=lang).refs.values()
    return JsonResponse(
        {
            "terms": [
                {
                    "slug": ref.slug,
                    "title": ref.title,
                    "summary": ref.summary,
                    "url": request.build_absolute_uri(ref.url),
                }
                for ref in refs
            ]
        },
        json_dumps_params={"ensure_ascii": False},
    )


@require_GET
def api_term(request, slug: str):
    lang = _api_lang(request)
    if not lang:
        return _bad_lang()
    try:
        page = selectors.term_page(slug=slug, lang=lang)
    except Http404:
        return JsonResponse({"error": f"no term with slug {slug!r}"}, status=404)
    text = page.text
    return JsonResponse(
        {
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
        },
        json_dumps_params={"ensure_ascii": False},
    )
