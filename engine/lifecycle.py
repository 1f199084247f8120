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
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from .arrays import pack
from .broker import announce_final
from .limits import MAX_ATTEMPTS
from .models import AttentionRun, LiveModel
from .transformer.contributions import layer_similarity, similarity_split

log = logging.getLogger(__name__)
Status = AttentionRun.Status

_models: dict[str, object] = {}
_model_lock = threading.Lock()


def torch_threads() -> int:
    """Threads per worker process, so that concurrency × threads ≤ cores."""
    if settings.ENGINE_TORCH_THREADS:
        return settings.ENGINE_TORCH_THREADS
    concurrency = max(1, int(getattr(settings, "CELERY_WORKER_CONCURRENCY", 1) or 1))
    return max(1, (os.cpu_count() or 1) // concurrency)


def get_model(name: str = LiveModel.MINILM):
    """The live model ``name`` of this process, loaded on first use (never in the parent
    before fork) and kept: the encoder (``AttentionModel``) or the GPT (``GPTModel``)."""
    model = _models.get(name)
    if model is None:
        with _model_lock:
            model = _models.get(name)
            if model is None:
                import torch

                from .transformer import AttentionModel, GPTModel

                torch.set_num_threads(torch_threads())
                started = time.perf_counter()
                kind = GPTModel if name == LiveModel.GPT else AttentionModel
                model = _models[name] = kind.load(device=settings.ENGINE_DEVICE)
                log.info(
                    "model %s loaded on %s in %.0f ms with %d threads",
                    name,
                    model.device,
                    (time.perf_counter() - started) * 1000,
                    torch.get_num_threads(),
                )
    return model


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


def _close_broken_connection() -> None:
    try:
        connection.close()
    except DatabaseError as error:
        log.info("closing the broken database connection: %r", error)


def _store_result(run: AttentionRun) -> None:
    """Write the finished run and announce it. A database that is down at that moment
    (restarting, failing over) is waited for: the result is kept in memory and the write tried
    again with backoff, on a fresh connection, for up to ENGINE_RESULT_WRITE_RETRY_S seconds, so
    that no finished run is lost to a short outage. Past that the error goes up and the task
    fails the run as usual."""
    deadline = time.monotonic() + settings.ENGINE_RESULT_WRITE_RETRY_S
    delay = 0.2
    while True:
        try:
            run.save()
            break
        except (OperationalError, InterfaceError) as error:
            if time.monotonic() + delay > deadline:
                raise
            log.warning(
                "run %s computed; database unavailable (%s), writing it again in %.1f s",
                run.id,
                error.__class__.__name__,
                delay,
            )
            _close_broken_connection()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    announce_final(run_id=run.id)


def _top(entries) -> list[dict]:
    return [{"id": int(i), "token": text, "p": float(p)} for i, text, p in entries]


def _compute_gpt(run: AttentionRun) -> AttentionRun:
    """The GPT: attention on the prompt, the next-token predictions at every position, the
    logit lens at the last one; then, if asked, the continuation, token by token. Each new
    token is written to the row as it comes, so the page shows the generation progress."""
    model = get_model(LiveModel.GPT)
    started = time.perf_counter()
    result = model.run(run.text, keep_qkv=True)
    run.device = result.device
    run.layers, run.heads = result.weights.shape[:2]
    run.tokens = _token_rows(result.tokens)
    run.input_ids = [int(i) for i in result.input_ids]
    run.weights = pack(result.weights)
    run.scores = pack(result.scores)
    run.qkv = pack(np.stack([result.queries, result.keys, result.values]))
    run.value_norms = pack(result.value_norms)
    run.predictions = [_top(position) for position in result.predictions]
    run.lens = [_top(layer) for layer in result.lens]
    if run.generate:
        generated: list[dict] = []

        def on_token(token_id: int, text: str, p: float) -> None:
            generated.append({"id": int(token_id), "token": text, "p": float(p)})
            try:
                AttentionRun.objects.filter(id=run.id).update(generated=generated)
            except (OperationalError, InterfaceError) as error:
                # Progress only: the whole result is written at the end (see _store_result).
                log.warning("run %s: progress not written (%r)", run.id, error)
                _close_broken_connection()

        generation = model.generate(
            run.text,
            run.generate,
            temperature=run.temperature,
            top_k=run.top_k,
            seed=run.seed,
            on_token=on_token,
        )
        run.generated = _top(generation.new_tokens)
        run.generated_text = generation.continuation  # decoded together: no character cut
        run.seed = generation.seed  # the sampler's seed, drawn if none was given: repeatable
        total = len(run.input_ids) + len(generation.new_tokens)
        padded = np.zeros((len(generation.new_tokens), run.layers, run.heads, total), np.float32)
        for index, attention in enumerate(generation.attention):
            padded[index, :, :, : attention.shape[-1]] = attention
        run.generated_attention = pack(padded)
    run.compute_ms = (time.perf_counter() - started) * 1000
    run.status = Status.DONE
    run.finished_at = timezone.now()
    _store_result(run)
    return run


def compute_run(run: AttentionRun) -> AttentionRun:
    """Read the sentence(s) with the model and store every array of the result."""
    if run.is_decoder:
        return _compute_gpt(run)
    model = get_model(LiveModel.MINILM)
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
    run.value_norms = pack(first.value_norms)
    if second is not None:
        run.compare_tokens = _token_rows(second.tokens)
        run.compare_weights = pack(second.weights)
        run.similarity = float(similarity)
        run.compare_value_norms = pack(second.value_norms)
        # the cosine split into token pairs, [n][m], to 1e-8: the sum stays within 1e-4
        split = similarity_split(first.last_hidden, second.last_hidden)
        run.similarity_pairs = np.round(split, 8).tolist()
        run.layer_similarity = layer_similarity(first.layer_means, second.layer_means)
    run.finished_at = timezone.now()
    _store_result(run)
    return run


def execute_run(*, run_id, worker: str = "") -> AttentionRun | None:
    """What the Celery task does: claim the run, then compute it."""
    run = start_run(run_id=run_id, worker=worker)
    return compute_run(run) if run is not None else None
