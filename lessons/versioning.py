"""The content version: one token that changes whenever the glossary does.

Everything that depends only on the content (the glossary index, term pages' data, layouts, the
search index, whole rendered pages for visitors) is cached in process under the current token,
so a change is seen on the next request that reads the token.

* ``bump()`` gives the content a new token. ``lessons.services.load_glossary`` calls it once
  inside its transaction; saves and deletes of terms, texts, sources and relations (the admin,
  the shell, a test) call it through the signals connected in ``LessonsConfig.ready``. Inside
  ``one_bump()`` (the loader) those signals wait, and a single bump happens at the end.
* ``current()`` reads the token: from the database, at most once per
  ``settings.CONTENT_VERSION_CHECK_S`` seconds per process (other processes see a change within
  that time; the process that made it sees it at once). Inside a transaction it always reads the
  database, so a rolled-back change is never remembered.
* ``PerVersion``: a bounded in-process memo whose entries belong to one token and are dropped
  when the token changes.
"""

import contextlib
import contextvars
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from django.conf import settings
from django.db import connection, transaction

_ROW = 1
_suspended = contextvars.ContextVar("content_version_bump_suspended", default=False)
_memo: tuple[str, float] = ("", 0.0)  # (token, monotonic time until which it is trusted)


def _forget() -> None:
    global _memo
    _memo = ("", 0.0)


def bump() -> str:
    """Give the content a new token (in the caller's transaction) and return it."""
    from .models import ContentVersion

    token = uuid.uuid4().hex
    if not ContentVersion.objects.filter(pk=_ROW).update(token=token):
        ContentVersion.objects.update_or_create(pk=_ROW, defaults={"token": token})
    _forget()
    transaction.on_commit(_forget)
    return token


def content_changed(**_kwargs) -> None:
    """Signal receiver: a term, text, source or relation was saved or deleted."""
    if not _suspended.get():
        bump()


@contextlib.contextmanager
def one_bump() -> Iterator[None]:
    """Hold the signals' bumps while the block writes, then bump once (the loader's writes)."""
    reset = _suspended.set(True)
    try:
        yield
    finally:
        _suspended.reset(reset)
    bump()


def current() -> str:
    """The current token (see the module's docstring for how fresh it is)."""
    global _memo
    token, until = _memo
    now = time.monotonic()
    atomic = connection.in_atomic_block
    if token and now < until and not atomic:
        return token
    from .models import ContentVersion

    token = ContentVersion.objects.filter(pk=_ROW).values_list("token", flat=True).first()
    if token is None:  # a fresh (or emptied) database: the first reader starts a version
        row, _created = ContentVersion.objects.get_or_create(
            pk=_ROW, defaults={"token": uuid.uuid4().hex}
        )
        token = row.token
    if not atomic:
        _memo = (token, now + settings.CONTENT_VERSION_CHECK_S)
    return token


def caching_enabled() -> bool:
    """``settings.CONTENT_CACHE``: off, everything is computed for every request (the
    benchmark's "before")."""
    return settings.CONTENT_CACHE


class PerVersion:
    """A bounded, thread-safe in-process memo for values that depend only on the content.

    Its entries belong to one content token; asking with another token empties it. At most
    ``maxsize`` entries and, when ``weigh`` is given, ``max_weight`` in all (``weigh(value)``:
    bytes, say); the least recently used go first. Callers must not change what it returns (it
    is shared by every request of the process)."""

    def __init__(
        self,
        name: str,
        maxsize: int,
        *,
        weigh: Callable[[Any], int] | None = None,
        max_weight: int = 0,
    ):
        self.name = name
        self.maxsize = maxsize
        self._weigh = weigh
        self.max_weight = max_weight
        self.weight = 0
        self._token = ""
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, *, token: str) -> Any:
        """The value kept for ``key`` under ``token``, or None."""
        with self._lock:
            if token != self._token:
                return None
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any, *, token: str) -> None:
        weigh = self._weigh or (lambda _value: 0)
        with self._lock:
            if token != self._token:
                self._entries.clear()
                self.weight = 0
                self._token = token
            if key in self._entries:
                self.weight -= weigh(self._entries.pop(key))
            self._entries[key] = value
            self.weight += weigh(value)
            while len(self._entries) > self.maxsize or (
                self._weigh and self.weight > self.max_weight and len(self._entries) > 1
            ):
                self.weight -= weigh(self._entries.popitem(last=False)[1])

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value for ``key`` under the current token, computed once (``compute`` is called
        outside the lock; two threads may both compute it the first time, and one wins)."""
        if not caching_enabled():
            return compute()
        token = current()
        value = self.get(key, token=token)
        if value is None:
            value = compute()
            self.put(key, value, token=token)
        return value

    def __len__(self) -> int:
        return len(self._entries)
