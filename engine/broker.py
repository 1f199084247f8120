"""Talking to the broker (Redis): is it up, do workers answer, hand a run over, announce a run's
end to whoever waits for it.

Used by the web process and the worker alike. It never imports ``config``: the Celery app is
``celery.current_app`` (set by ``config.celery``), and tasks are sent by name, so this module
does not import ``engine.tasks`` either.
"""

import functools
import logging
import time

import redis
from celery import Celery, current_app
from django.conf import settings
from django.db import transaction
from kombu import pools
from kombu.exceptions import OperationalError

from .limits import MAX_WAIT
from .models import AttentionRun

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


def _channel(run_id) -> str:
    return f"attention-lab:run:{run_id}"


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


def wait_until_final(*, run_id, timeout: float) -> None:
    """Block until the run's final state is announced, or ``timeout`` seconds (at most
    ``MAX_WAIT``) pass. The caller re-reads the row afterwards; subscribing before that read
    means no announcement is missed."""
    timeout = max(0.0, min(timeout, MAX_WAIT))
    try:
        pubsub = _redis().pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(_channel(run_id))
    except (redis.RedisError, OSError):
        return  # no broker to listen to: the caller reads the row as it is
    try:
        if AttentionRun.objects.filter(id=run_id, status__in=AttentionRun.FINAL).exists():
            return
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if pubsub.get_message(timeout=min(left, 1.0)) is not None:
                return
    except (redis.RedisError, OSError) as error:
        log.info("stopped waiting for run %s: %s", run_id, error)
    finally:
        pubsub.close()
