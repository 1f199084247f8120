"""Writes for the live model: validate and submit runs, execute them in a worker, fail and sweep.

The web process never loads the model; it only tokenises (to count word pieces) and talks to the
database and the broker. The worker process loads the model once, lazily, on its first run.
"""

import functools
import hashlib
import logging
import os
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu import pools
from kombu.exceptions import OperationalError

from .arrays import pack
from .models import AttentionRun

log = logging.getLogger(__name__)
Status = AttentionRun.Status

MAX_ATTEMPTS = 2  # a run whose worker died once is tried once more, then failed


# --- input ------------------------------------------------------------------------------------


@dataclass
class InputError(ValueError):
    """Bad input, with a message for the learner. ``status`` is 400, or 413 for a huge body."""

    field: str
    message: str
    status: int = 400

    def __str__(self):
        return self.message


class Unavailable(Exception):
    """The broker cannot be reached: the live model is unavailable for now."""


def normalise(text: str) -> str:
    """NFC, trimmed, runs of white space folded to one space: what we compute and compare."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _control_characters(text: str) -> list[str]:
    return sorted(
        {
            f"U+{ord(ch):04X}"
            for ch in text
            if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r"
        }
    )


def validate_text(value, *, field: str = "text", required: bool = True) -> str:
    """Return the normalised sentence, or raise InputError with a message that says what to fix.

    The text is never cut short: a sentence that is too long is refused, with its length.
    """
    if not required and (value is None or (isinstance(value, str) and not value.strip())):
        return ""
    if value is None:
        raise InputError(field, _("Type a sentence for the model to read."))
    if not isinstance(value, str):
        raise InputError(field, _("The sentence must be text."))
    if not value.strip():
        raise InputError(field, _("The sentence is empty. Type a few words for the model to read."))
    controls = _control_characters(value)
    if controls:
        raise InputError(
            field,
            _("The sentence contains control characters (%(chars)s). Remove them and try again.")
            % {"chars": ", ".join(controls[:5])},
        )
    text = normalise(value)
    if len(text) > settings.ENGINE_MAX_CHARS:
        raise InputError(
            field,
            _("The sentence has %(n)d characters; the limit is %(max)d. Shorten it and try again.")
            % {"n": len(text), "max": settings.ENGINE_MAX_CHARS},
        )
    from .transformer.tokenizer import count_pieces

    pieces = count_pieces(text)
    if pieces > settings.ENGINE_MAX_PIECES:
        raise InputError(
            field,
            _(
                "The sentence becomes %(n)d word pieces (with [CLS] and [SEP]); the model reads at "
                "most %(max)d. Shorten it and try again."
            )
            % {"n": pieces, "max": settings.ENGINE_MAX_PIECES},
        )
    return text


def input_key(text: str, compare_text: str = "") -> str:
    return hashlib.sha256(f"{text}\x1f{compare_text}".encode()).hexdigest()


# --- the broker -------------------------------------------------------------------------------


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


def worker_count(timeout: float = 1.0) -> int:
    """How many inference workers answer a ping now."""
    from config.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
            replies = app.control.ping(timeout=timeout, connection=connection) or []
    except (OperationalError, redis.RedisError, OSError):
        return 0
    return len(replies)


def queue_position(run: AttentionRun) -> int:
    """How many runs are waiting ahead of this one."""
    return AttentionRun.objects.filter(status=Status.QUEUED, created_at__lt=run.created_at).count()


# --- submitting -------------------------------------------------------------------------------


def submit_run(*, text: str, compare_text: str = "") -> tuple[AttentionRun, bool]:
    """Validate, then reuse a finished identical run or create and enqueue a new one.

    Returns ``(run, reused)``. Raises InputError for bad input and Unavailable when the broker is
    down (checked before anything is written, so nothing half-made stays behind).
    """
    text = validate_text(text, field="text")
    compare_text = validate_text(compare_text, field="compare_text", required=False)
    key = input_key(text, compare_text)
    done = AttentionRun.objects.filter(input_key=key, status=Status.DONE).order_by("-created_at")
    existing = done.first()
    if existing is not None:
        return existing, True
    if not broker_available():
        raise Unavailable
    with transaction.atomic():
        run = AttentionRun.objects.create(text=text, compare_text=compare_text, input_key=key)
        transaction.on_commit(lambda: send_run(run_id=run.id))
    return run, False


def send_run(*, run_id) -> bool:
    """Hand the run to the broker. If that fails the run stays queued, and the check on read or
    the periodic sweep sends it again once the broker is back."""
    from config.celery import app

    from .tasks import run_attention

    # The time limits travel with the message (the worker obeys the message's). Producers are
    # pooled per broker URL, so a submission reuses a connection instead of opening one; one
    # quick retry replaces a connection that went stale while Redis restarted.
    connection = app.connection_for_write(settings.CELERY_BROKER_URL)
    try:
        with pools.producers[connection].acquire(block=True, timeout=2) as producer:
            run_attention.apply_async(
                args=[str(run_id)],
                producer=producer,
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2},
                time_limit=settings.CELERY_TASK_TIME_LIMIT,
                soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
            )
    except (OperationalError, redis.RedisError, OSError) as error:
        log.warning("could not send run %s to the broker: %s", run_id, error)
        return False
    AttentionRun.objects.filter(id=run_id, status=Status.QUEUED).update(sent_at=timezone.now())
    return True


# --- executing (inside a worker process) ------------------------------------------------------

_model = None
_model_lock = threading.Lock()


def torch_threads() -> int:
    """Threads per worker process, so that concurrency × threads ≤ cores."""
    if settings.ENGINE_TORCH_THREADS:
        return settings.ENGINE_TORCH_THREADS
    concurrency = max(1, int(getattr(settings, "CELERY_WORKER_CONCURRENCY", 1) or 1))
    return max(1, (os.cpu_count() or 1) // concurrency)


def get_model():
    """The model of this process, loaded on first use (never in the parent before fork)."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                import torch

                from .transformer import AttentionModel

                torch.set_num_threads(torch_threads())
                started = time.perf_counter()
                _model = AttentionModel.load(device=settings.ENGINE_DEVICE)
                log.info(
                    "model loaded on %s in %.0f ms with %d threads",
                    _model.device,
                    (time.perf_counter() - started) * 1000,
                    torch.get_num_threads(),
                )
    return _model


def _token_rows(tokens) -> list[dict]:
    return [
        {
            "piece": piece,
            "text": display,
            "word": word,
            "special": special,
            "start": start,
            "end": end,
        }
        for piece, display, word, special, (start, end) in zip(
            tokens.pieces,
            tokens.display,
            tokens.word_ids,
            tokens.special,
            tokens.offsets,
            strict=True,
        )
    ]


def _test_hook(text: str) -> None:
    """A slow path for the fault tests only (settings.ENGINE_TEST_HOOKS is off elsewhere):
    "__test_sleep__ 3 The cat sat." sleeps three seconds, then the model reads the text."""
    if settings.ENGINE_TEST_HOOKS and text.startswith("__test_sleep__"):
        time.sleep(float(text.split()[1]))


def execute_run(*, run_id, worker: str = "") -> AttentionRun | None:
    """Compute a run and store its result. Called by the Celery task, in the worker."""
    with transaction.atomic():
        run = AttentionRun.objects.select_for_update().filter(id=run_id).first()
        if run is None or run.is_final:
            return run  # deleted, or already finished by an earlier delivery
        if run.attempts >= MAX_ATTEMPTS:
            fail_run(run_id=run.id, code="stopped_twice")
            return None
        run.status, run.started_at, run.worker = Status.RUNNING, timezone.now(), worker
        run.attempts += 1
        run.save(update_fields=["status", "started_at", "worker", "attempts"])

    _test_hook(run.text)
    model = get_model()
    started = time.perf_counter()
    if run.compare_text:
        first, second, similarity = model.run_pair(run.text, run.compare_text, keep_qkv=True)
    else:
        first, second, similarity = model.run(run.text, keep_qkv=True), None, None
    compute_ms = (time.perf_counter() - started) * 1000

    run.status = Status.DONE
    run.device = first.device
    run.compute_ms = compute_ms
    run.layers, run.heads = first.weights.shape[:2]
    run.tokens = _token_rows(first.tokens)
    run.weights = pack(first.weights)
    run.scores = pack(first.scores)
    run.qkv = pack(np.stack([first.queries, first.keys, first.values]))
    if second is not None:
        run.compare_tokens = _token_rows(second.tokens)
        run.compare_weights = pack(second.weights)
        run.similarity = float(similarity)
    run.finished_at = timezone.now()
    run.save()
    announce_final(run_id=run.id)
    return run


def fail_run(*, run_id, code: str, detail: str = "") -> None:
    """Mark a run failed, unless it already finished. ``code`` is a key of models.FAILURES: the
    learner reads its message in their own language."""
    AttentionRun.objects.filter(id=run_id).exclude(status__in=AttentionRun.FINAL).update(
        status=Status.FAILED, error=code, error_detail=detail[:200], finished_at=timezone.now()
    )
    announce_final(run_id=run_id)


# --- waiting for a run ------------------------------------------------------------------------
# A client may wait for a run to finish instead of polling (the API's ?wait=): the worker
# announces every final state on a Redis channel, and the waiting request wakes at once.

MAX_WAIT = 10.0  # seconds a request may hold a web thread


def _channel(run_id) -> str:
    return f"attention-lab:run:{run_id}"


def announce_final(*, run_id) -> None:
    """Tell waiting requests that the run reached done or failed. Best effort: the database is
    the truth, and a waiter re-reads it when its wait ends anyway."""
    try:
        _redis().publish(_channel(run_id), "final")
    except (redis.RedisError, OSError) as error:
        log.info("could not announce run %s: %s", run_id, error)


def wait_until_final(*, run_id, timeout: float) -> None:
    """Block until the run's final state is announced, or ``timeout`` seconds pass. The caller
    re-reads the row afterwards; subscribing before that read means no announcement is missed."""
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


# --- stale runs -------------------------------------------------------------------------------


def _running_deadline() -> timedelta:
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 15)


def refresh_if_stale(run: AttentionRun, *, now=None) -> AttentionRun:
    """The check on read: a run that nobody will finish is failed or sent again, so that no run
    stays queued or running forever. Cheap when the run is fine (no query)."""
    if run.is_final:
        return run
    now = now or timezone.now()
    if (
        run.status == Status.RUNNING
        and run.started_at
        and now - run.started_at > _running_deadline()
    ):
        fail_run(run_id=run.id, code="worker_stopped")
    elif run.status == Status.QUEUED and now - run.created_at > timedelta(
        seconds=settings.ENGINE_QUEUED_GIVE_UP_AFTER
    ):
        fail_run(run_id=run.id, code="unavailable")
    elif (
        run.status == Status.QUEUED
        and now - (run.sent_at or run.created_at)
        > timedelta(seconds=settings.ENGINE_QUEUED_RESEND_AFTER)
        and broker_available()
    ):
        send_run(run_id=run.id)
    else:
        return run
    run.refresh_from_db()
    return run


def sweep_stale_runs() -> int:
    """Apply the check on read to every unfinished run (the periodic sweep)."""
    now = timezone.now()
    changed = 0
    for run in AttentionRun.objects.exclude(status__in=AttentionRun.FINAL).order_by("created_at"):
        before = (run.status, run.sent_at)
        after = refresh_if_stale(run, now=now)
        changed += (after.status, after.sent_at) != before
    return changed
