"""Test-only Celery tasks, imported by the test workers (``CELERY_IMPORTS`` in the test
settings). The fault tests send these themselves; the production task has no slow path."""

import time

from celery import shared_task

from engine import broker, lifecycle
from engine.tasks import RunTask

SLOW_RUN = "tests.slow_run"


@shared_task(base=RunTask, name=SLOW_RUN, queue="inference")
def slow_run(run_id: str, seconds) -> str:
    """Claim the run, sleep ``seconds`` (a string that is no number raises ValueError, which
    fails the run like any error in a task), then compute it as the real task does."""
    run = lifecycle.start_run(run_id=run_id, worker=slow_run.request.hostname or "")
    if run is None:
        return "skipped"
    time.sleep(float(seconds))
    return lifecycle.compute_run(run).status


def send_slow_run(run_id, seconds) -> None:
    """Publish a slow run like the web process publishes a real one (time limits included)."""
    broker.publish(SLOW_RUN, [str(run_id), str(seconds)])
