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


# What every finished run page reads: its attention, and the norms that decide whether the
# norm-based view is offered. Loaded in one query (each would otherwise be a query of its own).
RUN_PAGE_ARRAYS = ("weights", "value_norms")


def run_after_wait(run_id, *, arrays=("weights",)) -> AttentionRun | None:
    """A run read again once its wait is over, with ``arrays`` (the ones the API answers with
    once it is done) and ``API_ARRAYS`` in the same query; the other arrays stay deferred."""
    wanted = (*arrays, *API_ARRAYS)
    deferred = [name for name in AttentionRun.ARRAY_FIELDS if name not in wanted]
    return AttentionRun.objects.filter(id=run_id).defer(*deferred).first()


def load_arrays(*, run: AttentionRun, names) -> None:
    """Load those of the arrays ``names`` that ``run`` deferred, in one query (read one by one
    on first use, each would be a query of its own)."""
    deferred = run.get_deferred_fields()
    missing = [name for name in names if name in deferred]
    if missing:
        run.refresh_from_db(fields=missing)


def queue_position(*, run: AttentionRun) -> int:
    """How many runs are waiting ahead of this one."""
    return AttentionRun.objects.filter(
        status=AttentionRun.Status.QUEUED, created_at__lt=run.created_at
    ).count()
