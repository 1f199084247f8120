"""Talking to the broker (Redis): is it up, do workers answer, hand a run over, announce a run's
end to whoever waits for it.

Used by the web process and the worker alike. It never imports ``config``: the Celery app is
``celery.current_app`` (set by ``config.celery``), and tasks are sent by name, so this module
does not import ``engine.tasks`` either.
"""

import contextlib
import functools
import logging
import os
import threading
import time

import redis
from celery import Celery, current_app
from django.conf import settings
from django.db import transaction
from kombu import pools
from kombu.exceptions import OperationalError

from .limits import MAX_WAIT

log = logging.getLogger(__name__)

RUN_TASK = "engine.tasks.run_attention"
PING_TIMEOUT = 0.5  # seconds to wait for the first worker's answer


@functools.lru_cache(maxsize=8)
def _redis_client(url: str) -> redis.Redis:
    """One pooled client per URL for this process (a new connection per request costs time)."""
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


def _redis() -> redis.Redis:
    return _redis_client(settings.CELERY_BROKER_URL)


def broker_available() -> bool:
    try:
        return bool(_redis().ping())
    except (redis.RedisError, OSError):
        return False


@functools.lru_cache(maxsize=8)
def _ping_app(url: str) -> Celery:
    """A small Celery app bound to ``url``, for pinging workers. The main app's control
    publishes through the producer pool of the broker it first connected to, so a process whose
    broker URL changes (a test's own Redis) would ping a broker that is gone."""
    app = Celery("attention-lab-ping", broker=url, set_as_current=False)
    app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    app.conf.broker_connection_timeout = settings.CELERY_BROKER_CONNECTION_TIMEOUT
    app.conf.broker_connection_max_retries = 1
    return app


def workers_answer(*, timeout: float = PING_TIMEOUT) -> bool:
    """Whether at least one inference worker answers a ping. Returns at the first answer
    (``limit=1``) instead of waiting out the whole timeout for workers that may not exist."""
    app = _ping_app(settings.CELERY_BROKER_URL)
    try:
        replies = app.control.ping(timeout=timeout, limit=1) or []
    except (OperationalError, redis.RedisError, OSError):
        return False
    return bool(replies)


def publish(task_name: str, args: list) -> None:
    """Send one task message with the time limits from settings (the worker obeys the limits
    that travel with the message). Producers are pooled per broker URL, so a submission reuses
    a connection; one quick retry replaces a connection that went stale while Redis restarted.
    Raises OperationalError, RedisError or OSError when the broker cannot take it."""
    app = current_app
    connection = app.connection_for_write(settings.CELERY_BROKER_URL)
    with pools.producers[connection].acquire(block=True, timeout=2) as producer:
        app.send_task(
            task_name,
            args=args,
            producer=producer,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2},
            time_limit=settings.CELERY_TASK_TIME_LIMIT,
            soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
        )


def send_run(*, run_id) -> bool:
    """Hand the run to the broker. If that fails the run stays queued, and the repair (on read,
    or in the periodic sweep) sends it again once the broker is back. The caller records
    ``sent_at`` (in the same write that makes the run, or the one that claims a resend), so a
    publish costs no further write, and the worker's claim never waits for one."""
    try:
        publish(RUN_TASK, [str(run_id)])
    except (OperationalError, redis.RedisError, OSError) as error:
        log.warning("could not send run %s to the broker: %s", run_id, error)
        return False
    return True


# --- waiting for a run ------------------------------------------------------------------------
# A client may wait for a run to finish instead of polling (the API's ?wait=): every final state
# is announced on a Redis channel once it is committed, and the waiting request wakes at once.
#
# Each web process listens with ONE subscription (a pattern over every run's channel, in a
# thread of its own) and wakes the requests that wait for the announced run. A subscription per
# waiting request, as before, cost every ?wait= a new Redis connection, a SUBSCRIBE and its
# teardown: about 6 of the 13 ms of CPU that such a request took (bench/RESULTS.md).

CHANNEL_PREFIX = "attention-lab:run:"
LISTEN_READY_S = 0.5  # how long a waiter waits for the process's subscription to be confirmed
LISTEN_IDLE_S = 30.0  # the listening thread ends after this long with nobody waiting


def _channel(run_id) -> str:
    return f"{CHANNEL_PREFIX}{run_id}"


def _publish_final(run_id) -> None:
    try:
        _redis().publish(_channel(run_id), "final")
    except (redis.RedisError, OSError) as error:
        log.info("could not announce run %s: %s", run_id, error)


def announce_final(*, run_id) -> None:
    """Tell waiting requests that the run reached done or failed, once the change is committed
    (at once outside a transaction). Best effort: the database is the truth, and a waiter
    re-reads it when its wait ends anyway."""
    transaction.on_commit(functools.partial(_publish_final, run_id))


class _Listener:
    """This process's subscription to every run's announcement, and who waits for which run.

    The thread starts with the first waiter, confirms its pattern subscription before any
    waiter relies on it, and ends after ``LISTEN_IDLE_S`` with nobody waiting. If the
    connection breaks, every waiter is woken (each re-reads its run) and the thread subscribes
    again; until the subscription is confirmed again, new waiters are not told to wait.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.waiters: dict[str, set[threading.Event]] = {}
        self.ready = threading.Event()
        self.thread: threading.Thread | None = None

    def register(self, run_id) -> threading.Event | None:
        """An event set when ``run_id``'s end is announced; None if this process cannot listen
        now (no broker). Call :meth:`forget` with it when done."""
        event = threading.Event()
        with self.lock:
            self.waiters.setdefault(str(run_id), set()).add(event)
            if self.thread is None or not self.thread.is_alive():
                self.ready.clear()
                self.thread = threading.Thread(
                    target=self._listen, name="run-announcements", daemon=True
                )
                self.thread.start()
        if not self.ready.wait(LISTEN_READY_S):
            self.forget(run_id, event)
            return None
        return event

    def forget(self, run_id, event: threading.Event) -> None:
        with self.lock:
            events = self.waiters.get(str(run_id))
            if events is not None:
                events.discard(event)
                if not events:
                    del self.waiters[str(run_id)]

    def count(self, run_id=None) -> int:
        """How many requests wait for ``run_id`` (None: for any run)."""
        with self.lock:
            if run_id is None:
                return sum(len(events) for events in self.waiters.values())
            return len(self.waiters.get(str(run_id), ()))

    def _wake(self, run_id: str | None = None) -> None:
        with self.lock:
            if run_id is None:
                events = [event for group in self.waiters.values() for event in group]
            else:
                events = list(self.waiters.get(run_id, ()))
        for event in events:
            event.set()

    def _idle(self) -> bool:
        with self.lock:
            if self.waiters:
                return False
            self.thread = None  # the next waiter starts a new thread
            return True

    def _listen(self) -> None:
        client = redis.Redis.from_url(
            self.url, socket_connect_timeout=0.5, socket_keepalive=True, health_check_interval=10
        )
        delay = 0.1
        last_waiter = time.monotonic()
        while True:
            pubsub = client.pubsub()
            try:
                pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "psubscribe":
                        self.ready.set()  # confirmed: from now on no announcement is missed
                        delay = 0.1
                    elif message is not None and message["type"] == "pmessage":
                        self._wake(message["channel"].decode().removeprefix(CHANNEL_PREFIX))
                    if self.count():
                        last_waiter = time.monotonic()
                    elif time.monotonic() - last_waiter > LISTEN_IDLE_S and self._idle():
                        return
            except (redis.RedisError, OSError) as error:
                log.info("run announcements: %s; subscribing again in %.1f s", error, delay)
                self.ready.clear()
                self._wake()  # nobody may rely on an announcement that could be missed now
                if self._idle():
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                pubsub.close()


_listeners: dict[tuple[int, str], _Listener] = {}
_listeners_lock = threading.Lock()


def _listener() -> _Listener:
    """This process's listener for the configured broker (a forked child gets its own)."""
    key = (os.getpid(), settings.CELERY_BROKER_URL)
    with _listeners_lock:
        listener = _listeners.get(key)
        if listener is None:
            listener = _listeners[key] = _Listener(key[1])
        return listener


def waiting_requests(run_id) -> int:
    """How many requests of this process are waiting for ``run_id`` to end."""
    return _listener().count(run_id)


@contextlib.contextmanager
def final_announced(run_id, *, wait: float):
    """Listen for ``run_id``'s end while the block runs: yields an event that is set when the
    end is announced, or None when ``wait`` is 0 or this process cannot listen now. Enter it
    BEFORE reading the run: an end committed after that read is then always heard.
    The wait itself is :func:`wait_for`, capped at ``MAX_WAIT``."""
    if wait <= 0:
        yield None
        return
    listener = _listener()
    event = listener.register(run_id)
    try:
        yield event
    finally:
        if event is not None:
            listener.forget(run_id, event)


def wait_for(event: threading.Event | None, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds (at most ``MAX_WAIT``) for ``event``; whether it was set."""
    if event is None:
        return False
    return event.wait(max(0.0, min(timeout, MAX_WAIT)))
