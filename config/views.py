"""Site-wide views: the health check and the error pages."""

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from engine.services import broker_available, worker_count


@require_GET
def healthz(request):
    """The health of the database, Redis (the broker) and the inference workers.

    200 when all three answer; 503 with the failing part named otherwise. Lesson pages need only
    the database, so a 503 here does not mean the site is down for learners.
    """
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001  any database error means "down" here
        checks["database"] = f"down: {error.__class__.__name__}"
    checks["broker"] = "ok" if broker_available() else "down"
    workers = worker_count() if checks["broker"] == "ok" else 0
    checks["workers"] = workers
    healthy = checks["database"] == "ok" and checks["broker"] == "ok" and workers > 0
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "not found"}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "internal error; it has been logged"}, status=500)
    return render(request, "500.html", status=500)


@require_GET
def robots(request):
    """Crawlers may read the lessons. Also the trivial view the load benchmark compares with."""
    return HttpResponse(
        "User-agent: *\nDisallow: /admin/\nDisallow: /api/\n", content_type="text/plain"
    )


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
