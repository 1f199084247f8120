"""Thin Celery tasks: fetch by id, call a service. Queue: ``inference``."""

import logging

from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import faithfulness, lifecycle, services

log = logging.getLogger(__name__)


class RunTask(Task):
    """A task whose first argument is a run id: when it fails, the run ends failed."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """Runs in the worker for an error, and in the pool's parent for a hard time limit: either
        way the run ends failed, with a reason the learner reads in their own language; so do
        the runs that its task claimed with it (a micro-batch, see ``lifecycle.claim_batch``)."""
        if isinstance(exc, WorkerLostError):
            # acks_late + reject_on_worker_lost hand the message out again: the retry decides.
            return
        timeout = isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded)
        log.error("run %s failed: %r", args[0] if args else "?", exc)
        lifecycle.fail_batch(
            run_id=args[0], code="timeout" if timeout else "error", detail=exc.__class__.__name__
        )


@shared_task(base=RunTask, name="engine.tasks.run_attention", queue="inference")
def run_attention(run_id: str) -> str:
    runs = lifecycle.execute_run(run_id=run_id, worker=run_attention.request.hostname or "")
    return f"{len(runs)} run(s)" if runs else "skipped"


@shared_task(name="engine.tasks.sweep_stale_runs", queue="inference")
def sweep_stale_runs() -> int:
    return services.sweep_stale_runs()


class CheckTask(Task):
    """A task whose first argument is a faithfulness check's id: when it fails, the check ends
    failed with a reason in the learner's language."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, WorkerLostError):
            return
        timeout = isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded)
        log.error("check %s failed: %r", args[0] if args else "?", exc)
        faithfulness.fail_check(
            check_id=args[0], code="timeout" if timeout else "error", detail=exc.__class__.__name__
        )


@shared_task(base=CheckTask, name="engine.tasks.check_faithfulness", queue="inference")
def check_faithfulness(check_id: int) -> str:
    check = faithfulness.execute_check(check_id=check_id)
    return check.status if check else "skipped"
