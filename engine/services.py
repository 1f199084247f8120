"""Writes for the live model in the web process: submit a run, repair a stale one.

A run's life in the worker is ``engine.lifecycle``; talking to Redis is ``engine.broker``; input
rules are ``engine.validation``. Reads (the run page, the API, status polls) are
``engine.selectors`` and never write.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .broker import announce_final, broker_available, send_run
from .models import AttentionRun
from .validation import ENCODER, RunOptions, input_key, validate_text

log = logging.getLogger(__name__)
Status = AttentionRun.Status
UNFINISHED = (Status.QUEUED, Status.RUNNING)


class Unavailable(Exception):
    """The broker cannot be reached: the live model is unavailable for now."""


def submit_run(
    *, text: str, compare_text: str = "", options: RunOptions = ENCODER
) -> tuple[AttentionRun, bool]:
    """Validate, then reuse a finished identical run, or the identical run still queued or
    running, or create and enqueue a new one.

    ``options`` (from ``validation.validate_options``) choose the model and, for the GPT, the
    generation. Returns ``(run, reused)``: ``reused`` is True for a finished result or a run
    already under way. Two identical submissions at the same moment (a double click) make one
    run: the database allows one unfinished run per input (``run_one_unfinished_per_input``),
    so the second insert fails and that request takes the first one's run. Raises InputError
    for bad input and Unavailable when the broker is down (checked before anything is written,
    so nothing half-made stays behind).
    """
    text = validate_text(text, field="text", options=options)
    compare_text = validate_text(compare_text, field="compare_text", required=False)
    key = input_key(text, compare_text, options)
    done, under_way = _identical_runs(key)
    if done is not None:
        return done, True
    if not broker_available():
        raise Unavailable
    if under_way is not None:
        return under_way, True
    try:
        with transaction.atomic():
            # sent_at: handed to the broker as this commits (cleared again if that fails)
            run = AttentionRun.objects.create(
                sent_at=timezone.now(),
                text=text,
                compare_text=compare_text,
                input_key=key,
                model=options.model,
                generate=options.generate,
                temperature=options.temperature,
                top_k=options.top_k,
                seed=options.seed,
            )
            transaction.on_commit(lambda: _send_new(run.id))
    except IntegrityError:
        # Another request inserted the identical run at the same moment; the unique index made
        # this insert wait for its commit, so it can be read now: share it (the newest run of
        # this input, even if it has finished or failed in the meantime).
        shared = AttentionRun.objects.filter(input_key=key).order_by("-created_at")
        return shared.defer(*AttentionRun.ARRAY_FIELDS).first(), True
    return run, False


def _identical_runs(key: str) -> tuple[AttentionRun | None, AttentionRun | None]:
    """The newest finished run of this input and its queued or running run (at most one: a
    constraint), in one query."""
    runs = AttentionRun.objects.filter(input_key=key, status__in=(Status.DONE, *UNFINISHED))
    # At most one is unfinished, so the newest two hold the newest finished one if there is one.
    newest = list(runs.defer(*AttentionRun.ARRAY_FIELDS).order_by("-created_at")[:2])
    done = next((run for run in newest if run.status == Status.DONE), None)
    under_way = next((run for run in newest if run.status != Status.DONE), None)
    return done, (None if done is not None else under_way)


def _send_new(run_id) -> None:
    """Publish a new run; if the broker cannot take it, it was never handed over (the repair
    sends it again ``ENGINE_QUEUED_RESEND_AFTER`` after it was made)."""
    if not send_run(run_id=run_id):
        AttentionRun.objects.filter(id=run_id, status=Status.QUEUED).update(sent_at=None)


# --- stale runs -------------------------------------------------------------------------------


def _running_deadline() -> timedelta:
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 15)


def _claim_failure(run: AttentionRun, *, code: str, **unchanged) -> bool:
    """Fail ``run`` only if it is still exactly as read (same status and ``unchanged`` fields):
    of several requests that saw the same stale run, one wins and the others change nothing."""
    claimed = AttentionRun.objects.filter(id=run.id, status=run.status, **unchanged).update(
        status=Status.FAILED, error=code, finished_at=timezone.now()
    )
    if claimed:
        announce_final(run_id=run.id)
    return bool(claimed)


def _claim_resend(run: AttentionRun, *, now) -> bool:
    """Re-send a stranded queued run, once: the conditional UPDATE on ``sent_at`` lets exactly
    one of several concurrent polls go on to publish. If publishing fails, ``sent_at`` goes back
    so that the next poll tries again at once."""
    claimed = AttentionRun.objects.filter(
        id=run.id, status=Status.QUEUED, sent_at=run.sent_at
    ).update(sent_at=now)
    if not claimed:
        return False
    if not send_run(run_id=run.id):
        AttentionRun.objects.filter(id=run.id, status=Status.QUEUED, sent_at=now).update(
            sent_at=run.sent_at
        )
    return True


def repair_stale_run(*, run: AttentionRun, now=None) -> bool:
    """A run that nobody will finish is failed, and a queued run that the broker may have lost
    is sent again, so that no run stays queued or running forever. Returns whether it changed
    anything. Costs no query when the run is fine; the status view and the sweep call it."""
    if run.is_final:
        return False
    now = now or timezone.now()
    if (
        run.status == Status.RUNNING
        and run.started_at
        and now - run.started_at > _running_deadline()
    ):
        return _claim_failure(run, code="worker_stopped", started_at=run.started_at)
    if run.status != Status.QUEUED:
        return False
    if now - run.created_at > timedelta(seconds=settings.ENGINE_QUEUED_GIVE_UP_AFTER):
        return _claim_failure(run, code="unavailable", sent_at=run.sent_at)
    resend_after = timedelta(seconds=settings.ENGINE_QUEUED_RESEND_AFTER)
    if now - (run.sent_at or run.created_at) > resend_after and broker_available():
        return _claim_resend(run, now=now)
    return False


def sweep_stale_runs() -> int:
    """Repair every unfinished run (the periodic sweep). Returns how many it changed."""
    now = timezone.now()
    unfinished = AttentionRun.objects.exclude(status__in=AttentionRun.FINAL).order_by("created_at")
    return sum(
        repair_stale_run(run=run, now=now) for run in unfinished.defer(*AttentionRun.ARRAY_FIELDS)
    )
