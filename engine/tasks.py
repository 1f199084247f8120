"""Thin Celery tasks: fetch by id, call a service. Queue: ``inference``."""

import logging

from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import faithfulness, lifecycle, services

log = logging.getLogger(__name__)


class JobTask(Task):
    """A task whose first argument is the id of the job it works on (a run, a check): when the
    task fails, the job ends failed, with a reason the learner reads in their own language.
    ``on_failure`` runs in the worker for an error, and in the pool's parent for a hard time
    limit."""

    job = "job"  # what the id names, for the log; each subclass says how it fails: ``fail``

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, WorkerLostError):
            # acks_late + reject_on_worker_lost hand the message out again: the retry decides.
            return
        timeout = isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded)
        log.error("%s %s failed: %r", self.job, args[0] if args else "?", exc)
        self.fail(args[0], code="timeout" if timeout else "error", detail=exc.__class__.__name__)


class RunTask(JobTask):
    """Fails the run, and the runs its task claimed with it (a micro-batch, see
    ``lifecycle.claim_batch``)."""

    job = "run"

    def fail(self, job_id, *, code: str, detail: str) -> None:
        lifecycle.fail_batch(run_id=job_id, code=code, detail=detail)


@shared_task(base=RunTask, name="engine.tasks.run_attention", queue="inference")
def run_attention(run_id: str) -> str:
    runs = lifecycle.execute_run(run_id=run_id, worker=run_attention.request.hostname or "")
    return f"{len(runs)} run(s)" if runs else "skipped"


@shared_task(name="engine.tasks.sweep_stale_runs", queue="inference")
def sweep_stale_runs() -> int:
    return services.sweep_stale_runs()


class CheckTask(JobTask):
    """Fails the faithfulness check."""

    job = "check"

    def fail(self, job_id, *, code: str, detail: str) -> None:
        faithfulness.fail_check(check_id=job_id, code=code, detail=detail)


@shared_task(base=CheckTask, name="engine.tasks.check_faithfulness", queue="inference")
def check_faithfulness(check_id: int) -> str:
    check = faithfulness.execute_check(check_id=check_id)
    return check.status if check else "skipped"
