"""A run's life inside a worker process: claim it, load the model once, compute, store the
result, or fail it with a reason the learner reads in their own language.

Only the worker calls ``start_run`` and ``compute_run``; the web process never loads the model.
"""

import logging
import os
import threading
import time

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .arrays import pack
from .broker import announce_final
from .limits import MAX_ATTEMPTS
from .models import AttentionRun

log = logging.getLogger(__name__)
Status = AttentionRun.Status

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


def fail_run(*, run_id, code: str, detail: str = "") -> bool:
    """Mark a run failed, unless it already finished. ``code`` is a key of models.FAILURES.
    Returns whether this call failed it; the announcement goes out after the commit."""
    changed = (
        AttentionRun.objects.filter(id=run_id)
        .exclude(status__in=AttentionRun.FINAL)
        .update(
            status=Status.FAILED, error=code, error_detail=detail[:200], finished_at=timezone.now()
        )
    )
    if changed:
        announce_final(run_id=run_id)
    return bool(changed)


def start_run(*, run_id, worker: str = "") -> AttentionRun | None:
    """Claim a delivered run: mark it running and count the attempt. None when there is nothing
    to compute (deleted, finished by an earlier delivery, or failed after too many attempts)."""
    with transaction.atomic():
        run = AttentionRun.objects.select_for_update().filter(id=run_id).first()
        if run is None or run.is_final:
            return None
        if run.attempts >= MAX_ATTEMPTS:
            fail_run(run_id=run.id, code="stopped_twice")
            return None
        run.status, run.started_at, run.worker = Status.RUNNING, timezone.now(), worker
        run.attempts += 1
        run.save(update_fields=["status", "started_at", "worker", "attempts"])
    return run


def compute_run(run: AttentionRun) -> AttentionRun:
    """Read the sentence(s) with the model and store every array of the result."""
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


def execute_run(*, run_id, worker: str = "") -> AttentionRun | None:
    """What the Celery task does: claim the run, then compute it."""
    run = start_run(run_id=run_id, worker=worker)
    return compute_run(run) if run is not None else None
