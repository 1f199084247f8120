"""A run's life inside a worker process: claim it, load the model once, compute, store the
result, or fail it with a reason the learner reads in their own language.

Only the worker calls ``start_run`` and ``compute_run``; the web process never loads the model.
"""

import contextlib
import functools
import logging
import os
import threading
import time

import numpy as np
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
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


def claim_batch(*, run_id, worker: str = "", limit: int | None = None) -> list[AttentionRun]:
    """Claim a delivered run and, with it, up to ``limit - 1`` other queued runs of the same
    model (default ``ENGINE_BATCH_MAX``), to compute them as one padded batch. Empty when there
    is nothing to compute.

    Why claiming from the database and not a collection window (``celery-batches``): the runs
    waiting in the queue are already rows, so a worker that takes one message can take the other
    waiting runs at once, in the same statement, and a lone run never waits for a window to
    close. Each message keeps its own acks_late / reject_on_worker_lost life:

    - ONE conditional UPDATE marks the delivered run (the *leader*) and the queued runs of its
      model closest to it in length (the oldest first among equals: less padding) running, with
      ``batch_leader`` = the leader's id, and returns them. The conditions on each row are
      checked again by PostgreSQL on the row version it locks, so two workers never claim one
      run.
    - when the message of a run that another run's batch claimed arrives, that run is
      ``running`` with someone else as ``batch_leader``: the message is skipped, not re-claimed.
    - a leader's message delivered again (its worker died) finds it ``running`` with itself as
      leader: it claims it again, with the runs of its batch that are still running, and counts
      an attempt for each; a run at ``MAX_ATTEMPTS`` is failed instead (``stopped_twice``).
    - a GPT run that generates only ever leads: it is not taken into another run's batch,
      because its generation (token by token) would hold that batch's results back.

    ``batch_size`` is set on the returned runs and written with their results.
    """
    limit = max(1, settings.ENGINE_BATCH_MAX if limit is None else limit)
    # One cheap read first: in a burst most messages are of runs already in a batch, skipped here.
    state = _claim_state(run_id)
    if state is None or state["status"] in AttentionRun.FINAL:
        return []
    again = state["status"] == Status.RUNNING
    if again and state["batch_leader"] is not None and str(state["batch_leader"]) != str(run_id):
        return []  # in a live batch led by another run: that task computes it
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        claimed = _claim_update(run_id=run_id, worker=worker, limit=limit)
    claimed.sort(key=lambda run: (str(run.id) != str(run_id), run.created_at))
    if again or state["attempts"] >= MAX_ATTEMPTS:
        # Delivered again: fail what has been tried too often.
        rows = AttentionRun.objects
        leads = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, batch_leader__isnull=True)
        leads |= Q(status=Status.RUNNING, batch_leader=run_id)
        tired = (Q(id=run_id) & leads) | Q(status=Status.RUNNING, batch_leader=run_id)
        for tired_id in rows.filter(tired, attempts__gte=MAX_ATTEMPTS).values_list("id", flat=True):
            fail_run(run_id=tired_id, code="stopped_twice")
    for run in claimed:
        run.batch_size = len(claimed)
    return claimed


# The claim in SQL written by hand: the ORM took about 6 ms of a 10 ms claim only to compile the
# Q / Subquery / Exists UPDATE and the SELECT after it. The same conditions, as one statement:
#
#   UPDATE run AS r SET attempts = attempts + 1, batch_leader = :lead, status = 'running', ...
#   WHERE r.attempts < MAX_ATTEMPTS AND (
#       r.id = :lead AND LEADS(r)                 -- the delivered run, when it may lead
#       OR r.id IN (SELECT f.id FROM run AS f WHERE FOLLOWS(f)
#                   ORDER BY |length(f.text) - length(lead's text)|, f.created_at LIMIT n)
#          AND FOLLOWS(r)                         -- checked again on the row version it locks
#          AND EXISTS (SELECT 1 FROM run AS l WHERE l.id = :lead AND LEADS(l)))
#   RETURNING <every column but the arrays>
#
#   LEADS(x):   queued, or running with no leader (claimed alone before), or running with
#               :lead as its leader (delivered again after a crash)
#   MINE(x):    queued, or running with :lead as its leader
#   FOLLOWS(x): MINE(x), the leader's model, a minilm run or one that does not generate, under
#               MAX_ATTEMPTS, not the leader itself
#
# PostgreSQL (READ COMMITTED) checks the WHERE again on the newest version of each row it is
# about to update, after waiting for a concurrent claim's lock: a run that another worker has
# just claimed no longer matches LEADS / FOLLOWS and is left out, so two workers never claim one
# run (the subquery's pick is not re-run, which is why FOLLOWS(r) is repeated outside it).
# SQLite (the dev database) runs the same statement (RETURNING: SQLite 3.35 or later); it writes
# one transaction at a time. Only identifiers (from the model) are formatted into the SQL (hence
# the noqa: S608); every value is a bound parameter.


def _leads(alias: str) -> str:
    return (
        f"({alias}.status = %(queued)s OR ({alias}.status = %(running)s AND "
        f"({alias}.batch_leader IS NULL OR {alias}.batch_leader = %(lead)s)))"
    )


def _follows(alias: str, table: str) -> str:
    mine = f"({alias}.status = %(queued)s OR ({alias}.status = %(running)s AND {alias}.batch_leader = %(lead)s))"
    return (
        f"({mine} AND {alias}.model = (SELECT m.model FROM {table} AS m WHERE m.id = %(lead)s)"  # noqa: S608
        f" AND ({alias}.model = %(minilm)s OR {alias}.generate = 0)"
        f" AND {alias}.attempts < %(max_attempts)s AND {alias}.id <> %(lead)s)"
    )


@functools.cache
def _claim_sql(vendor: str, batch: bool) -> tuple[str, tuple]:
    """The claim statement (``batch``: with followers) and the fields it returns, in model order."""
    qn = connection.ops.quote_name
    table = qn(AttentionRun._meta.db_table)
    fields = tuple(
        f for f in AttentionRun._meta.concrete_fields if f.name not in AttentionRun.ARRAY_FIELDS
    )
    claim = f"(r.id = %(lead)s AND {_leads('r')})"
    if batch:
        # Followers of about the leader's length first (a batch is padded to its longest
        # sentence), the oldest among equals. No run waits longer for it: a run that is never
        # picked still leads its own batch when its own message arrives, in queue order.
        length = f"(SELECT length(m.text) FROM {table} AS m WHERE m.id = %(lead)s)"  # noqa: S608
        picked = (
            f"SELECT f.id FROM {table} AS f WHERE {_follows('f', table)}"  # noqa: S608
            f" ORDER BY abs(length(f.text) - {length}), f.created_at LIMIT %(followers)s"
        )
        leader = f"EXISTS (SELECT 1 FROM {table} AS l WHERE l.id = %(lead)s AND {_leads('l')})"  # noqa: S608
        claim = f"({claim} OR (r.id IN ({picked}) AND {_follows('r', table)} AND {leader}))"
    sql = (
        f"UPDATE {table} AS r SET attempts = r.attempts + 1, batch_leader = %(lead)s,"  # noqa: S608
        " status = %(running)s, started_at = %(now)s, worker = %(worker)s"
        f" WHERE r.attempts < %(max_attempts)s AND {claim}"
        f" RETURNING {', '.join(qn(f.column) for f in fields)}"
    )
    return sql, fields


def _converted(fields, row) -> list:
    """The values of a row of ``fields``, converted as the ORM would (JSON; UUIDs, datetimes
    and more on SQLite)."""
    values = []
    for field, value in zip(fields, row, strict=True):
        col = field.cached_col
        for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            value = convert(value, col, connection)
        values.append(value)
    return values


def _from_row(fields, row) -> AttentionRun:
    """A model instance from a row of ``fields`` (in model order; the others deferred)."""
    return AttentionRun.from_db(
        connection.alias, [f.attname for f in fields], _converted(fields, row)
    )


def _claim_state(run_id) -> dict | None:
    """The delivered run's status, leader and attempts (None if it is gone)."""
    meta = AttentionRun._meta
    fields = [meta.get_field(name) for name in ("status", "batch_leader", "attempts")]
    qn = connection.ops.quote_name
    sql = (
        f"SELECT {', '.join(qn(f.column) for f in fields)} FROM {qn(meta.db_table)}"  # noqa: S608
        f" WHERE {qn(meta.pk.column)} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [meta.pk.get_db_prep_value(run_id, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip(("status", "batch_leader", "attempts"), _converted(fields, row), strict=True))


def _claim_update(*, run_id, worker: str, limit: int) -> list[AttentionRun]:
    """Run the claim statement; the runs it claimed, arrays deferred."""
    sql, fields = _claim_sql(connection.vendor, limit > 1)
    meta = AttentionRun._meta
    params = {
        "lead": meta.pk.get_db_prep_value(run_id, connection),
        "now": meta.get_field("started_at").get_db_prep_value(timezone.now(), connection),
        "worker": worker,
        "queued": Status.QUEUED.value,
        "running": Status.RUNNING.value,
        "minilm": LiveModel.MINILM.value,
        "max_attempts": MAX_ATTEMPTS,
        "followers": limit - 1,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [_from_row(fields, row) for row in cursor.fetchall()]


def _commit_without_waiting_for_disk() -> None:
    """On PostgreSQL, let this transaction's commit return before its WAL reaches the disk
    (``synchronous_commit = off``, this transaction only; the commit is still atomic, and
    what others see is the same). Used for the claim only: should PostgreSQL itself crash
    within that fraction of a second, the row may come back as it was before the claim, and the
    worker still writes the whole row with its result once the database is back (or, if the
    worker is gone too, the repair sends the run again). A result is always written with a
    full, durable commit."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def start_run(*, run_id, worker: str = "") -> AttentionRun | None:
    """Claim a delivered run alone: mark it running and count the attempt. None when there is
    nothing to compute (deleted, finished by an earlier delivery, in another run's batch, or
    failed after too many attempts)."""
    claimed = claim_batch(run_id=run_id, worker=worker, limit=1)
    return claimed[0] if claimed else None


def fail_batch(*, run_id, code: str, detail: str = "") -> int:
    """Fail the run ``run_id`` and the unfinished runs its task claimed with it (a task that
    fails or hits its time limit takes its whole batch down). Returns how many it failed."""
    followers = AttentionRun.objects.filter(batch_leader=run_id, status=Status.RUNNING)
    ids = [run_id, *followers.exclude(id=run_id).values_list("id", flat=True)]
    return sum(fail_run(run_id=one, code=code, detail=detail) for one in ids)


def _close_broken_connection() -> None:
    try:
        connection.close()
    except DatabaseError as error:
        log.info("closing the broken database connection: %r", error)


# What a submission set and the worker never changes: not written again with the result.
_INPUT_FIELDS = frozenset(
    {"id", "text", "compare_text", "input_key", "model", "generate", "temperature", "top_k"}
    | {"created_at", "sent_at"}
)


def _result_values(run: AttentionRun) -> dict:
    """The fields of ``run`` that the worker writes: everything it holds (the claim's state,
    the result, ``error`` cleared) but the submission's inputs; arrays it did not compute stay
    deferred and are not written (an encoder run has no ``generated_attention``)."""
    deferred = run.get_deferred_fields()
    return {
        field.attname: getattr(run, field.attname)
        for field in AttentionRun._meta.concrete_fields
        if field.name not in _INPUT_FIELDS and field.attname not in deferred
    }


@contextlib.contextmanager
def _parameters_apart():
    """On PostgreSQL, send the parameters of this block's statements apart from the SQL
    (psycopg's server-side binding, the cursor Django's ``server_side_binding`` option uses).
    Django binds on the client by default: a result's arrays (about 400 KB at T = 20) were sent
    as hex inside the SQL text and parsed back by PostgreSQL, 6 of the 7 ms of the write. Only
    here: the ORM's other queries are not all written for server-side binding."""
    if connection.vendor != "postgresql":
        yield
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    raw = connection.connection
    before = raw.cursor_factory
    raw.cursor_factory = ServerBindingCursor
    try:
        yield
    finally:
        raw.cursor_factory = before


def _store_results(runs: list[AttentionRun]) -> None:
    """Write the finished runs (one transaction) and announce each after the commit. A database
    that is down at that moment (restarting, failing over) is waited for: the results are kept
    in memory and the write tried again with backoff, on a fresh connection, for up to
    ENGINE_RESULT_WRITE_RETRY_S seconds, so that no finished run is lost to a short outage. Past
    that the error goes up and the task fails the runs as usual."""
    deadline = time.monotonic() + settings.ENGINE_RESULT_WRITE_RETRY_S
    delay = 0.2
    while True:
        try:
            with _parameters_apart(), transaction.atomic():
                for run in runs:
                    AttentionRun.objects.filter(id=run.id).update(**_result_values(run))
                    announce_final(run_id=run.id)  # sent once this transaction commits
            return
        except (OperationalError, InterfaceError) as error:
            if time.monotonic() + delay > deadline:
                raise
            log.warning(
                "run %s computed; database unavailable (%s), writing it again in %.1f s%s",
                runs[0].id,
                error.__class__.__name__,
                delay,
                f" (with {len(runs) - 1} more of its batch)" if len(runs) > 1 else "",
            )
            _close_broken_connection()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _finish(run: AttentionRun) -> None:
    run.status = Status.DONE
    run.finished_at = timezone.now()


def _top(entries) -> list[dict]:
    return [{"id": int(i), "token": text, "p": float(p)} for i, text, p in entries]


def _fill_gpt(run: AttentionRun, result) -> None:
    """Everything the worker stores of one GPT prompt pass (a ``GPTRunResult``): attention on
    the prompt, the next-token predictions at every position, the logit lens at the last one."""
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


def _generate(run: AttentionRun, model) -> None:
    """The continuation, token by token. Each new token is written to the row as it comes, so
    the page shows the generation progress."""
    generated: list[dict] = []

    def on_token(token_id: int, text: str, p: float) -> None:
        generated.append({"id": int(token_id), "token": text, "p": float(p)})
        try:
            AttentionRun.objects.filter(id=run.id).update(generated=generated)
        except (OperationalError, InterfaceError) as error:
            # Progress only: the whole result is written at the end (see _store_results).
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


def _compute_gpt(runs: list[AttentionRun]) -> None:
    """The prompts of all ``runs`` in one padded batch; the runs that only read are stored at
    once, then each run that generates continues alone (generation goes token by token, with
    its own length, sampler and progress), and is stored when it ends."""
    model = get_model(LiveModel.GPT)
    started = time.perf_counter()
    results = model.run_batch([run.text for run in runs], keep_qkv=True)
    compute_ms = (time.perf_counter() - started) * 1000
    for run, result in zip(runs, results, strict=True):
        _fill_gpt(run, result)
        run.compute_ms = compute_ms
    reading = [run for run in runs if not run.generate]
    for run in reading:
        _finish(run)
    if reading:
        _store_results(reading)
    for run in runs:
        if run.generate:
            started = time.perf_counter()
            _generate(run, model)
            run.compute_ms += (time.perf_counter() - started) * 1000
            _finish(run)
            _store_results([run])


def _fill_encoder(run: AttentionRun, first, second, similarity) -> None:
    """Everything the worker stores of one encoder run: ``first`` (and for a pair ``second``)
    are ``RunResult``s of its sentence(s), ``similarity`` their cosine similarity (or None)."""
    run.device = first.device
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


def _compute_encoder(runs: list[AttentionRun]) -> None:
    """Every sentence of ``runs`` (two for a pair run) in one padded batch, then one write."""
    from .transformer.analysis import cosine_similarity

    model = get_model(LiveModel.MINILM)
    texts = [text for run in runs for text in (run.text, run.compare_text) if text]
    started = time.perf_counter()
    results = iter(model.run_batch(texts, keep_qkv=True))
    compute_ms = (time.perf_counter() - started) * 1000
    for run in runs:
        first = next(results)
        second = next(results) if run.compare_text else None
        similarity = None
        if second is not None:
            similarity = cosine_similarity(first.embedding, second.embedding)
        _fill_encoder(run, first, second, similarity)
        run.compute_ms = compute_ms  # the batch's forward pass, shared by its runs
        _finish(run)
    _store_results(runs)


def compute_batch(runs: list[AttentionRun]) -> list[AttentionRun]:
    """Read the sentences of ``runs`` with their model, one padded batch per model, and store
    every array of each result."""
    encoder = [run for run in runs if not run.is_decoder]
    decoder = [run for run in runs if run.is_decoder]
    if encoder:
        _compute_encoder(encoder)
    if decoder:
        _compute_gpt(decoder)
    return runs


def compute_run(run: AttentionRun) -> AttentionRun:
    """Read the sentence(s) of one run with the model and store every array of the result."""
    return compute_batch([run])[0]


def execute_run(*, run_id, worker: str = "") -> list[AttentionRun]:
    """What the Celery task does: claim the run (and a batch of queued ones), then compute."""
    runs = claim_batch(run_id=run_id, worker=worker)
    if runs:
        log.info("run %s: computing a batch of %d", run_id, len(runs))
    return compute_batch(runs)
