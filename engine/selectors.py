"""Reads for the live model. Selectors only read: repairing a stale run is
``engine.services.repair_stale_run``, which the status views call explicitly."""

import uuid

from .models import AttentionRun


def run_for_read(run_id) -> AttentionRun | None:
    """A run by id without its arrays, or None for a malformed or unknown id. A status poll
    never loads the arrays; a view loads the one it needs."""
    try:
        run_uuid = uuid.UUID(str(run_id))
    except ValueError:
        return None
    return AttentionRun.objects.filter(id=run_uuid).defer(*AttentionRun.ARRAY_FIELDS).first()


def run_after_wait(run_id) -> AttentionRun | None:
    """A run read again once its wait is over, with ``weights`` (the attention the API answers
    with once it is done) in the same query; the other arrays stay deferred."""
    arrays = [name for name in AttentionRun.ARRAY_FIELDS if name != "weights"]
    return AttentionRun.objects.filter(id=run_id).defer(*arrays).first()


def queue_position(*, run: AttentionRun) -> int:
    """How many runs are waiting ahead of this one."""
    return AttentionRun.objects.filter(
        status=AttentionRun.Status.QUEUED, created_at__lt=run.created_at
    ).count()
