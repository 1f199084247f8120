"""The faithfulness check of a run, in the web process: start it (once per run), read it, repair
one that nobody will finish. The worker's side is ``engine.faithfulness``; this module never
imports torch.
"""

import logging
from datetime import timedelta

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError

from .broker import broker_available, publish
from .models import AttentionRun, FaithfulnessCheck

log = logging.getLogger(__name__)
CHECK_TASK = "engine.tasks.check_faithfulness"
Status = FaithfulnessCheck.Status


class CheckRefused(Exception):
    """The check cannot start: ``message`` says why in the active language; ``status`` is the
    HTTP status to answer with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def unknown_run_message() -> str:
    return _("There is no run with this id, so there is nothing to check.")


def refusal(run: AttentionRun | None) -> CheckRefused | None:
    """Why a check of ``run`` cannot start, or None when it can."""
    if run is None:
        return CheckRefused(unknown_run_message(), 404)
    if run.status == AttentionRun.Status.FAILED:
        return CheckRefused(
            _("This run failed, so there is no result to check. Run the sentence again first."),
            409,
        )
    if run.status != AttentionRun.Status.DONE:
        return CheckRefused(
            _("This run has not finished yet. Start the check once its result is shown."), 409
        )
    return None


def send_check(*, check_id) -> bool:
    """Hand the check to the broker and record when; False (the check stays queued, and a
    later read sends it again) when the broker cannot take it."""
    try:
        publish(CHECK_TASK, [int(check_id)])
    except (OperationalError, redis.RedisError, OSError) as error:
        log.warning("could not send check %s to the broker: %s", check_id, error)
        return False
    FaithfulnessCheck.objects.filter(id=check_id, status=Status.QUEUED).update(
        sent_at=timezone.now()
    )
    return True


def start_check(*, run: AttentionRun | None) -> tuple[FaithfulnessCheck, bool]:
    """The run's check, created and queued on the first request. Returns ``(check, created)``:
    one check per run, whoever asks and however often (a double click shares the first)."""
    if (refused := refusal(run)) is not None:
        raise refused
    existing = FaithfulnessCheck.objects.filter(run=run).first()
    if existing is not None and not _may_retry(existing):
        return existing, False
    if not broker_available():
        raise CheckRefused(
            _(
                "The live model is unavailable right now, so the check cannot start. Try again in a minute."
            ),
            503,
        )
    if existing is not None:  # a failed check (not a too-short sentence) may start again
        restarted = FaithfulnessCheck.objects.filter(
            id=existing.id, status=Status.FAILED
        ).update(
            status=Status.QUEUED, error="", error_detail="", done=0, total=0, attempts=0,
            sent_at=None, started_at=None, finished_at=None,
        )  # fmt: skip
        if restarted:
            transaction.on_commit(lambda: send_check(check_id=existing.id))
        existing.refresh_from_db()
        return existing, bool(restarted)
    try:
        with transaction.atomic():
            check = FaithfulnessCheck.objects.create(run=run)
            transaction.on_commit(lambda: send_check(check_id=check.id))
    except IntegrityError:  # the other request of a double click created it a moment ago
        return FaithfulnessCheck.objects.get(run=run), False
    return check, True


def _may_retry(check: FaithfulnessCheck) -> bool:
    """A failed check starts again when asked, unless the sentence itself is too short."""
    return check.status == Status.FAILED and check.error != "too_short"


def check_of(run: AttentionRun | None) -> FaithfulnessCheck | None:
    """The run's check, or None; a stale one is repaired first (see ``repair_check``)."""
    if run is None:
        return None
    check = FaithfulnessCheck.objects.filter(run_id=run.id).first()
    if check is not None and repair_check(check=check):
        check.refresh_from_db()
    return check


def repair_check(*, check: FaithfulnessCheck, now=None) -> bool:
    """Fail a check whose worker stopped (running past the hard time limit), and send again a
    queued one that the broker never took or lost. Conditional updates: of several readers
    that saw it stale, one acts."""
    if check.is_final:
        return False
    now = now or timezone.now()
    if check.status == Status.RUNNING and check.started_at:
        if now - check.started_at > timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 15):
            return bool(
                FaithfulnessCheck.objects.filter(
                    id=check.id, status=Status.RUNNING, started_at=check.started_at
                ).update(status=Status.FAILED, error="worker_stopped", finished_at=now)
            )
        return False
    if check.status != Status.QUEUED:
        return False
    resend_after = timedelta(seconds=settings.ENGINE_QUEUED_RESEND_AFTER)
    if now - (check.sent_at or check.created_at) <= resend_after or not broker_available():
        return False
    claimed = FaithfulnessCheck.objects.filter(
        id=check.id, status=Status.QUEUED, sent_at=check.sent_at
    ).update(sent_at=now)
    if claimed and not send_check(check_id=check.id):
        FaithfulnessCheck.objects.filter(id=check.id, sent_at=now).update(sent_at=check.sent_at)
    return bool(claimed)
