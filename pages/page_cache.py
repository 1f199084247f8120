"""The lesson pages at nearly the speed of a static file.

A visitor (no session cookie, no pending messages, so no account, no anonymous learner and no
mastery) sees the same lesson page as every other visitor, except for the CSRF token in its
forms. So for the pages in ``CACHED_VIEWS``:

* the page is rendered once per content version (``lessons.versioning``), URL (path, query,
  hence language) and htmx variant, with a placeholder where the CSRF token goes
  (``csrf_placeholder``), and kept in process (``PAGES``, bounded); every visitor gets a copy
  with their own token put in;
* the answer has an ``ETag`` made of the content version, that key and the visitor's CSRF
  secret (the page embeds a token of that secret), ``Cache-Control: private, no-cache`` (the
  page carries a token bound to the visitor's cookie, so no shared cache may keep it; the
  browser keeps it and asks again) and ``Vary: Cookie, HX-Request, HX-History-Restore-Request``;
  a conditional GET whose ``If-None-Match`` matches is answered ``304`` with no body;
* a learner (a session: signed in, or an anonymous learner with progress) gets the page rendered
  for them (from the cached content parts, with their mastery: one query), with
  ``Cache-Control: private, no-cache`` and no ETag, so nothing of theirs is kept or shared.

No page carries a CSP nonce (the policy allows our own files only), so nothing else in a page
is per request: the language switch and the log-in link depend on the URL, which is in the key.
"""

import hashlib
import logging
import os

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.db import DatabaseError
from django.http import HttpResponse
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers

from lessons import versioning

log = logging.getLogger(__name__)

CACHED_VIEWS = frozenset({"lessons:home", "lessons:search", "lessons:term", "quiz:quiz"})
VARY = ("Cookie", "HX-Request", "HX-History-Restore-Request")
# Where a visitor's CSRF token goes in a cached page: as long as a token, letters only, so that
# no escaping changes it.
PLACEHOLDER = "PageCacheCsrfTokenPlaceholder".ljust(64, "X")
_PLACEHOLDER = PLACEHOLDER.encode()

# (body, content type) by key; bounded in entries and in bytes, whatever URLs are asked for.
PAGES = versioning.PerVersion(
    "pages",
    maxsize=settings.PAGE_CACHE_ENTRIES,
    weigh=lambda kept: len(kept[0]),
    max_weight=settings.PAGE_CACHE_BYTES,
)


def csrf_placeholder(request) -> dict:
    """Context processor: while a page is rendered for the cache, its CSRF token is the
    placeholder (this runs after Django's own csrf processor, so it wins)."""
    if getattr(request, "_page_cache_recording", False):
        return {"csrf_token": PLACEHOLDER}
    return {}


def _random_chars(count: int) -> str:
    """``count`` characters drawn uniformly from CSRF_ALLOWED_CHARS, from one ``os.urandom`` call
    (rejection sampling: 248 = 4 x 62 byte values are used, the other 8 are drawn again)."""
    chars, size = CSRF_ALLOWED_CHARS, len(CSRF_ALLOWED_CHARS)
    limit = 256 - 256 % size
    out: list[str] = []
    while len(out) < count:
        out += [chars[b % size] for b in os.urandom(count + 8) if b < limit]
    return "".join(out[:count])


def visitor_csrf_token(request) -> str:
    """What ``django.middleware.csrf.get_token`` does (a new secret for the cookie when the
    request has none, then the secret masked with a fresh random mask, in Django's format), with
    the randomness from one system call instead of one per character: Django's version costs
    about 0.4 ms, as much as a whole kept page, and every visitor without a cookie needs one.
    Django's own CsrfViewMiddleware checks what it gives (tests post with it)."""
    meta = request.META
    secret = meta.get("CSRF_COOKIE")
    if secret is None:
        secret = _random_chars(CSRF_SECRET_LENGTH)
        meta["CSRF_COOKIE"] = secret
    meta["CSRF_COOKIE_NEEDS_UPDATE"] = True
    chars, size = CSRF_ALLOWED_CHARS, len(CSRF_ALLOWED_CHARS)
    mask = _random_chars(CSRF_SECRET_LENGTH)
    cipher = "".join(
        chars[(chars.index(x) + chars.index(y)) % size] for x, y in zip(secret, mask, strict=True)
    )
    return mask + cipher


def is_visitor(request) -> bool:
    """No session and no pending messages: the page is the same for every visitor."""
    cookies = request.COOKIES
    return settings.SESSION_COOKIE_NAME not in cookies and CookieStorage.cookie_name not in cookies


class _Plan:
    __slots__ = ("csrf_token", "etag", "key", "recording", "token", "visitor")

    def __init__(self, *, visitor: bool, token: str = "", key=None, etag: str = ""):
        self.visitor, self.token, self.key, self.etag = visitor, token, key, etag
        self.recording = False
        self.csrf_token = ""  # the masked token put in this visitor's page


def _etag(token: str, key: tuple, csrf_secret: str) -> str:
    digest = hashlib.blake2b(
        "\n".join((token, *key, csrf_secret)).encode(), digest_size=12
    ).hexdigest()
    return f'"{digest}"'


class PageCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        plan = getattr(request, "_page_cache", None)
        if plan is None:
            return response
        return self._finish(request, response, plan)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in ("GET", "HEAD"):
            return None
        match = request.resolver_match
        if match is None or match.view_name not in CACHED_VIEWS:
            return None
        if not is_visitor(request):
            request._page_cache = _Plan(visitor=False)
            return None
        try:
            token = versioning.current()
        except DatabaseError as error:  # the view itself will meet the outage and answer 503
            log.info("content version unavailable, page not cached: %r", error)
            return None
        meta = request.META
        key = (
            request.get_full_path(),
            meta.get("HTTP_HX_REQUEST", ""),
            meta.get("HTTP_HX_HISTORY_RESTORE_REQUEST", ""),
        )
        secret = request.META.get("CSRF_COOKIE")
        csrf_token = ""
        if secret is None:  # a first visit: its new secret goes in the cookie and the ETag
            csrf_token = visitor_csrf_token(request)
            secret = request.META["CSRF_COOKIE"]
        plan = _Plan(visitor=True, token=token, key=key, etag=_etag(token, key, secret))
        plan.csrf_token = csrf_token
        request._page_cache = plan
        not_modified = get_conditional_response(request, etag=plan.etag)
        if not_modified is not None:
            return not_modified
        if settings.PAGE_CACHE and versioning.caching_enabled():
            kept = PAGES.get(key, token=token)
            if kept is not None:
                body, content_type = kept
                return HttpResponse(body, content_type=content_type)
        plan.recording = request.method == "GET"
        request._page_cache_recording = plan.recording
        return None

    def _finish(self, request, response, plan: _Plan):
        keep = (
            plan.visitor
            and plan.recording
            and response.status_code == 200
            and not response.streaming
            and not request.session.modified  # the view wrote something for this visitor
            and self._keepable(response)
        )
        patch_vary_headers(response, VARY)
        if response.status_code in (200, 304):
            patch_cache_control(response, private=True, no_cache=True)
        if not plan.visitor or response.streaming:
            return response
        if response.status_code in (200, 304):
            response["ETag"] = plan.etag
        content = response.content
        if keep:
            PAGES.put(plan.key, (content, response["Content-Type"]), token=plan.token)
        if _PLACEHOLDER in content:
            csrf_token = plan.csrf_token or visitor_csrf_token(request)
            response.content = content.replace(_PLACEHOLDER, csrf_token.encode())
        return response

    @staticmethod
    def _keepable(response) -> bool:
        """A plain HTML page, with no cookie or cache header of its own (which would mean the
        view did something for this request only)."""
        return (
            settings.PAGE_CACHE
            and versioning.caching_enabled()
            and not response.cookies
            and response.get("Content-Type", "").startswith("text/html")
            and not response.has_header("Cache-Control")
        )
