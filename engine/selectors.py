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


# What the API answers with for a finished run, besides the attention it was asked for.
API_ARRAYS = ("similarity_pairs",)


def run_after_wait(run_id) -> AttentionRun | None:
    """A run read again once its wait is over, with ``weights`` (the attention the API answers
    with once it is done) and ``API_ARRAYS`` in the same query; the other arrays stay deferred."""
    arrays = [name for name in AttentionRun.ARRAY_FIELDS if name not in ("weights", *API_ARRAYS)]
    return AttentionRun.objects.filter(id=run_id).defer(*arrays).first()


def load_arrays(*, run: AttentionRun, names) -> None:
    """Load those of the arrays ``names`` that ``run`` deferred, in one query (read one by one
    on first use, each would be a query of its own)."""
    missing = [name for name in names if name in run.get_deferred_fields()]
    if missing:
        run.refresh_from_db(fields=missing)


def queue_position(*, run: AttentionRun) -> int:
    """How many runs are waiting ahead of this one."""
    return AttentionRun.objects.filter(
        status=AttentionRun.Status.QUEUED, created_at__lt=run.created_at
    ).count()
