"""A database outage answered clearly: 503 with ``Retry-After``, never a 500.

While PostgreSQL is down (restarting, failing over), every page that needs it raises
``OperationalError`` or ``InterfaceError``. This middleware turns those into a 503 page in the
learner's language (a fragment for htmx, JSON for ``/api/``) that says nothing was saved, and
drops the broken connection at the end of the request, so that the first request after the
database is back reconnects: the process recovers without a restart.

We answer 503 rather than a cached copy of the page: pages carry the learner's own mastery and
forms with their session's token, so a copy would show stale or someone else's progress and its
forms would fail anyway; a clear "try again in a moment" is honest.
"""

import logging

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30  # seconds a client is asked to wait before trying again
OUTAGE_ERRORS = (OperationalError, InterfaceError)


def _api_message(request) -> JsonResponse:
    # The API speaks English, or Japanese with ?lang=ja (it has no URL prefix to tell).
    with translation.override("ja" if request.GET.get("lang") == "ja" else "en"):
        message = gettext("The database is unavailable for a moment; nothing was saved. Try again.")
    return JsonResponse(
        {"error": message, "retry_after": RETRY_AFTER_S},
        status=503,
        json_dumps_params={"ensure_ascii": False},
    )


def database_unavailable(request) -> HttpResponse:
    """The 503 answer for a request that needed the database while it was down."""
    if request.path.startswith("/api/"):
        response = _api_message(request)
    else:
        # Who is logged in is in the session, which lives in the database: show the page as
        # to a visitor rather than try to read it again.
        request.user = AnonymousUser()
        context = {"sent": request.method == "POST"}
        htmx = getattr(request, "htmx", None)
        fragment = bool(htmx) and not htmx.history_restore_request
        try:
            response = render(
                request, "503.html#message" if fragment else "503.html", context, status=503
            )
        except DatabaseError:
            # Something in the page's frame still needed the database: the message alone.
            response = render(None, "503.html#message", context, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


def drop_broken_connections() -> None:
    """Close every connection that an error left unusable (Django does this at the start and
    end of a request in a server; doing it here also covers whatever serves requests without
    those signals). Outside a transaction only; a working connection is kept."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or connection.in_atomic_block:
            continue
        if not connection.errors_occurred:
            continue
        if connection.is_usable():
            connection.errors_occurred = False
            continue
        try:
            connection.close()
        except DatabaseError as error:
            log.info("closing a broken database connection: %r", error)


class DatabaseUnavailableMiddleware:
    """Turns a database outage into a clear 503 (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        drop_broken_connections()
        return response

    def process_exception(self, request, exception):
        if not isinstance(exception, OUTAGE_ERRORS):
            return None
        log.warning("database unavailable for %s %s: %r", request.method, request.path, exception)
        drop_broken_connections()
        return database_unavailable(request)
