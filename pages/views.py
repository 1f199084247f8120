"""Pages that combine apps: the home map and the term page (lessons, coloured by the learner's
quiz mastery), the health check, robots.txt and the error pages. The term API is ``pages.api``."""

from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from engine.broker import broker_available, workers_answer
from lessons import selectors
from lessons.graph import knowledge_map, term_graph, with_mastery
from lessons.models import TIER_LABELS, TIERS
from lessons.versioning import PerVersion
from quiz.models import Mastery
from quiz.selectors import current_learner, mastery_map

DEFAULT_TIER = "beginner"
START_HERE = "transformer"


# The drawings depend only on the content: drawn once per content version and language with
# every node "not started", then coloured per learner (``with_mastery``).
_MAPS = PerVersion("knowledge maps", maxsize=4)
_TERM_GRAPHS = PerVersion("term graphs", maxsize=1000)


def _lang(request) -> str:
    return get_language() or "ja"


def _map_layout(index, lang: str):
    return _MAPS.get_or_compute(
        lang,
        lambda: knowledge_map(
            terms=[ref.as_tuple for ref in index.refs.values()],
            prerequisite_edges=index.prerequisite_edges,
            mastery={},
            default_mastery=Mastery.NOT_STARTED,
        ),
    )


def _term_layout(page, lang: str, url: str):
    return _TERM_GRAPHS.get_or_compute(
        (page.term.slug, lang, url),
        lambda: term_graph(
            current=(page.term.slug, page.text.title, url),
            prerequisites=[ref.as_tuple for ref in page.prerequisites],
            children=[ref.as_tuple for ref in page.children],
            related=[ref.as_tuple for ref in page.related],
            mastery={},
            default_mastery=Mastery.NOT_STARTED,
        ),
    )


# --- lessons with the learner's mastery ---------------------------------------------------------


@require_GET
def home(request):
    lang = _lang(request)
    index = selectors.glossary(lang=lang)
    mastery = mastery_map(learner=current_learner(request=request))
    layout = with_mastery(
        _map_layout(index, lang), mastery=mastery, default_mastery=Mastery.NOT_STARTED
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
    return render(request, "pages/home.html", context)


@require_GET
def search(request):
    """The live search: an htmx fragment, or the home page when asked without htmx."""
    if not request.htmx:
        return home(request)
    query = request.GET.get("q", "")
    results = selectors.search(query=query, lang=_lang(request)) if query.strip() else None
    return render(request, "pages/home.html#search-results", {"results": results, "query": query})


@require_GET
def term(request, slug: str):
    lang = _lang(request)
    page = selectors.term_page(slug=slug, lang=lang)
    tier = request.GET.get("tier", DEFAULT_TIER)
    if tier not in TIERS:
        tier = DEFAULT_TIER
    mastery = mastery_map(learner=current_learner(request=request))
    fragment = request.htmx and not request.htmx.history_restore_request
    context = {
        "page": page,
        "text": page.text,
        "tier": tier,
        "tiers": [(key, TIER_LABELS[key]) for key in TIERS],
        "tier_html": page.text.tier_html(tier),
        "mastery": mastery.get(slug, Mastery.NOT_STARTED),
    }
    if fragment:  # the tier panel only: no graph to draw
        return render(request, "pages/term.html#tier-panel", context)
    context["layout"] = with_mastery(
        _term_layout(page, lang, request.path), mastery=mastery, default_mastery=Mastery.NOT_STARTED
    )
    return render(request, "pages/term.html", context)


# --- health and errors ------------------------------------------------------------------------


@require_GET
def healthz(request):
    """The health of the database, Redis (the broker) and the inference workers.

    200 when all three answer; 503 with the failing part named otherwise. Lesson pages need only
    the database, so a 503 here does not mean the site is down for learners. Fast: the worker
    ping returns at the first answer, and a broker that is down is known within its 0.5 s
    connect timeout.
    """
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as error:
        checks["database"] = f"down: {error.__class__.__name__}"
    checks["broker"] = "ok" if broker_available() else "down"
    checks["workers"] = "ok" if checks["broker"] == "ok" and workers_answer() else "none"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )


@require_GET
def robots(request):
    """Crawlers may read the lessons. Also the trivial view the load benchmark compares with."""
    return HttpResponse(
        "User-agent: *\nDisallow: /admin/\nDisallow: /api/\n", content_type="text/plain"
    )


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "not found"}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "internal error; it has been logged"}, status=500)
    return render(request, "500.html", status=500)


def bad_request(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "bad request: too large or malformed"}, status=400)
    return render(request, "400.html", status=400)


def csrf_failure(request, reason=""):
    """A clear page (or JSON) instead of Django's technical 403 for a missing CSRF token."""
    if request.path.startswith("/api/") or request.htmx:
        return JsonResponse(
            {"error": "CSRF token missing or expired; reload the page."}, status=403
        )
    return render(request, "403_csrf.html", status=403)
