"""The faithfulness check in the worker: claim it, run the deletion test on the run's model
(``engine.transformer.faithfulness``), write the progress as it goes, store the curves.

Worker only: the web process starts and reads checks through ``engine.checks``. torch is
imported inside the functions, as ``engine.lifecycle.get_model`` does.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.db.models import F
from django.utils import timezone

from .lifecycle import get_model
from .limits import MAX_ATTEMPTS
from .models import AttentionRun, FaithfulnessCheck, LiveModel

log = logging.getLogger(__name__)
Status = FaithfulnessCheck.Status


def claim_check(*, check_id) -> FaithfulnessCheck | None:
    """Mark a delivered check running (one delivery wins). None when there is nothing to do:
    unknown, already running or final, or failed after too many attempts."""
    claimed = FaithfulnessCheck.objects.filter(
        id=check_id, status=Status.QUEUED, attempts__lt=MAX_ATTEMPTS
    ).update(status=Status.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1)
    if not claimed:
        return None
    # The check reads the run's text, tokens and model, never its arrays (often megabytes).
    arrays = [f"run__{name}" for name in AttentionRun.ARRAY_FIELDS]
    return FaithfulnessCheck.objects.select_related("run").defer(*arrays).get(id=check_id)


def fail_check(*, check_id, code: str, detail: str = "") -> bool:
    """End a check failed with a reason (a key of ``models.CHECK_FAILURES``), unless it is final."""
    return bool(
        FaithfulnessCheck.objects.filter(id=check_id)
        .exclude(status__in=FaithfulnessCheck.FINAL)
        .update(
            status=Status.FAILED, error=code, error_detail=detail[:200], finished_at=timezone.now()
        )
    )


def _write_progress(check_id, done: int, total: int) -> None:
    try:
        FaithfulnessCheck.objects.filter(id=check_id, status=Status.RUNNING).update(
            done=done, total=total
        )
    except (OperationalError, InterfaceError) as error:  # progress only: the result comes later
        log.warning("check %s: progress not written (%r)", check_id, error)


def result_json(test, run: AttentionRun) -> dict:
    """What is stored and what the API returns: the curves, and which tokens each method took."""
    labels = [token["text"] or token["piece"] for token in run.tokens]
    return {
        "model": run.model,
        "measure": "next_token_tv" if test.decoder else "embedding_cosine",
        "k": test.k,
        "tokens": labels,
        "removable": test.removable,
        "methods": {
            name: {"shift": [round(v, 6) for v in test.shift[name]], "removed": test.rankings[name]}
            for name in test.shift
        },
        "random": {
            "mean": [round(v, 6) for v in test.random_mean],
            "sd": [round(v, 6) for v in test.random_sd],
            "draws": test.random_draws,
        },
        "forward_passes": test.forward_passes,
        "compute_ms": round(test.compute_ms, 1),
    }


def compute_check(check: FaithfulnessCheck) -> FaithfulnessCheck:
    """The deletion test of the check's run, on the run's own model and tokenization."""
    from .transformer.faithfulness import TooShort, deletion_test

    run = check.run
    model = get_model(LiveModel.GPT if run.is_decoder else LiveModel.MINILM)
    tokens = model.encode(run.text)
    try:
        test = deletion_test(
            model,
            tokens.ids,
            tokens.special,
            on_progress=lambda done, total: _write_progress(check.id, done, total),
        )
    except TooShort:
        fail_check(check_id=check.id, code="too_short")
        check.refresh_from_db()
        return check
    check.result = result_json(test, run)
    check.done = check.total = test.batches + 1
    check.status, check.finished_at = Status.DONE, timezone.now()
    check.save(update_fields=["result", "done", "total", "status", "finished_at"])
    log.info("check %s of run %s: %.0f ms", check.id, run.id, test.compute_ms)
    return check


def execute_check(*, check_id) -> FaithfulnessCheck | None:
    """What the Celery task does: claim the check, then compute it."""
    check = claim_check(check_id=check_id)
    return compute_check(check) if check is not None else None
