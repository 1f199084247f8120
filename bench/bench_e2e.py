"""Benchmark: one demo run end to end (HTTP → PostgreSQL → Redis → a Celery worker → back) vs the
same forward pass called in-process.

Run from the repository root (``make bench-e2e``)::

    .venv/bin/python bench/bench_e2e.py
    .venv/bin/python bench/bench_e2e.py --runs 20 --no-write     # a quick look

It builds its own world and tears it down: a fresh PostgreSQL database, a dedicated Redis on a
free port, ``migrate`` + ``load_content`` + ``collectstatic``, ONE Celery worker (prefork,
concurrency 1, one torch thread) and gunicorn (``-w 2``), all with production settings.

Each measured run is a different sentence (so a finished identical run is never reused). It is
submitted with ``POST /api/v1/attention`` (202) and polled with
``GET /api/v1/attention/<id>/?layer=0&head=0`` every 2 ms until it is done, one at a time, after
5 warm-up runs. Interleaved with those (one end-to-end run, one in-process call), this process
times ``AttentionModel.run(text, keep_qkv=True)`` on the same sentence with one torch thread.

The table is printed and written to ``bench/RESULTS.md`` under the section below (only that
section is replaced).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

SECTION = "## End-to-end latency through Redis and a worker"
WORDS = [
    "dogs", "tea", "rain", "music", "trains", "bread", "rivers", "clocks", "gardens", "snow",
    "books", "stars", "cities", "coffee", "boats", "apples", "mountains", "letters", "bridges",
]  # fmt: skip
LOADED = re.compile(r"model (?:\S+ )?loaded on (\S+) in (\d+(?:\.\d+)?) ms with (\d+) threads")


def sentence(i: int) -> str:
    return f"Sentence number {i} is about cats and {WORDS[i % len(WORDS)]}."


def run_e2e(
    base_url: str,
    text: str,
    *,
    poll_s: float,
    wait_s: float,
    timeout_s: float = 30,
    model: str = "minilm",
) -> dict:
    """Submit, then wait (``?wait=``, one long request) or poll until done. Durations in seconds
    (perf_counter); wall_* are time.time()."""
    wall0, t0 = time.time(), time.perf_counter()
    status, body = common.http_json(
        "POST", f"{base_url}/api/v1/attention", body={"text": text, "model": model}
    )
    t_submitted = time.perf_counter()
    if status != 202 or body.get("reused") is not False:
        raise RuntimeError(f"submit of {text!r} answered {status}: {body}")
    run_id = body["id"]
    url = f"{base_url}/api/v1/attention/{run_id}/?layer=0&head=0"
    if wait_s:
        url += f"&wait={wait_s:g}"
    poll_times = []
    while True:
        t_poll = time.perf_counter()
        status, body = common.http_json("GET", url)
        poll_times.append(time.perf_counter() - t_poll)
        if status != 200:
            raise RuntimeError(f"poll of {run_id} answered {status}: {body}")
        if body["status"] == "done":
            break
        if body["status"] == "failed":
            raise RuntimeError(f"run {run_id} failed: {body.get('error')}")
        if time.perf_counter() - t0 > timeout_s:
            raise RuntimeError(f"run {run_id} still {body['status']} after {timeout_s} s")
        if not wait_s:
            time.sleep(poll_s)
    t_done, wall_done = time.perf_counter(), time.time()
    if not body.get("attention"):
        raise RuntimeError(f"run {run_id} is done without attention: {body}")
    return {
        "id": run_id,
        "total": t_done - t0,
        "submit": t_submitted - t0,
        "polls": len(poll_times),
        "poll_times": poll_times,
        "wall_start": wall0,  # the same clock as the database timestamps (one machine)
        "wall_done": wall_done,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="measured runs (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up runs, not counted")
    parser.add_argument(
        "--wait-s", type=float, default=10.0,
        help="wait for the result with ?wait= (default 10 s); 0 polls instead",
    )  # fmt: skip
    parser.add_argument("--poll-ms", type=float, default=2.0, help="poll interval with --wait-s 0")
    parser.add_argument("--target-ms", type=float, default=30.0, help="overhead target (p50)")
    parser.add_argument("--db-name", default="attention_lab_bench_e2e")
    parser.add_argument("--model", default="minilm", choices=["minilm", "gpt"])
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    parser.add_argument(
        "--baseline", type=Path, default=None,
        help="another checkout (e.g. `git worktree add /tmp/base <commit>`) measured side by "
        "side: its own world, one run there before each run here",
    )  # fmt: skip
    args = parser.parse_args()

    command = "make bench-e2e" if not sys.argv[1:] else shlex.join(["python", *sys.argv])
    section = SECTION if args.model == "minilm" else f"{SECTION}: the GPT"
    header = common.machine_lines(command)
    poll_s = args.poll_ms / 1000.0
    gunicorn_args = ["-w", "2"]

    import torch

    from engine.transformer import AttentionModel, GPTModel

    torch.set_num_threads(1)
    model = (GPTModel if args.model == "gpt" else AttentionModel).load(device="cpu")
    print(f"in-process model loaded in {model.load_ms:.0f} ms, torch threads 1")

    e2e, inproc, ids, base_e2e = [], [], [], []
    with contextlib.ExitStack() as stack:
        world = stack.enter_context(
            common.world(
                db_name=args.db_name,
                worker_names=["bench1"],
                gunicorn_args=gunicorn_args,
                log_dir=common.LOGS / "e2e",
                worker_loglevel="info",  # the worker logs "model loaded on ... in N ms" at INFO
            )
        )
        base = None
        if args.baseline is not None:
            base = stack.enter_context(
                common.world(
                    db_name=f"{args.db_name}_base",
                    worker_names=["base1"],
                    gunicorn_args=gunicorn_args,
                    log_dir=common.LOGS / "e2e-base",
                    root=args.baseline.resolve(),
                )
            )
        worker = world.workers[0]
        for i in range(args.warmup):
            text = sentence(10_000 + i)
            run_e2e(world.base_url, text, poll_s=poll_s, wait_s=args.wait_s, model=args.model)
            if base is not None:
                run_e2e(base.base_url, text, poll_s=poll_s, wait_s=args.wait_s, model=args.model)
            model.run(text, keep_qkv=True)
        print(f"{args.warmup} warm-up runs done; measuring {args.runs}")
        deadline = time.monotonic() + 30 * 60
        for i in range(args.runs):
            if time.monotonic() > deadline:
                raise RuntimeError("the measured runs took more than 30 minutes; stopping")
            text = sentence(i)
            if base is not None:
                base_e2e.append(
                    run_e2e(
                        base.base_url, text, poll_s=poll_s, wait_s=args.wait_s, model=args.model
                    )["total"]
                    * 1000
                )
            result = run_e2e(
                world.base_url, text, poll_s=poll_s, wait_s=args.wait_s, model=args.model
            )
            e2e.append(result)
            ids.append(result["id"])
            t0 = time.perf_counter()
            model.run(text, keep_qkv=True)
            inproc.append(time.perf_counter() - t0)
            if (i + 1) % 20 == 0:
                print(f"  {i + 1}/{args.runs}: last e2e {result['total'] * 1000:.1f} ms")

        rows = common.runs_table(world, ids)
        children = worker.children()
        child_rss = [common.vm_rss_mib(pid) for pid in children]
        parent_rss = common.vm_rss_mib(worker.pid)
        loaded = LOADED.findall(worker.log_text())
        gunicorn_children = world.web.children()

    if len(rows) != len(ids) or any(row["status"] != "done" for row in rows.values()):
        raise RuntimeError("some measured runs are not done in the database")
    ms = 1000.0
    client = [r["total"] * ms for r in e2e]
    submit = [r["submit"] * ms for r in e2e]
    polls = [r["polls"] for r in e2e]
    server = [common.ms(row["finished_at"] - row["created_at"]) for row in rows.values()]
    to_start = [common.ms(row["started_at"] - row["created_at"]) for row in rows.values()]
    in_worker = [common.ms(row["finished_at"] - row["started_at"]) for row in rows.values()]
    compute = [row["compute_ms"] for row in rows.values()]
    local = [t * ms for t in inproc]
    poll_ms = [t * ms for r in e2e for t in r["poll_times"]]
    to_created = [(rows[r["id"]]["created_at"].timestamp() - r["wall_start"]) * ms for r in e2e]
    to_seen = [(r["wall_done"] - rows[r["id"]]["finished_at"].timestamp()) * ms for r in e2e]
    p = common.percentile
    overhead = p(client, 50) - p(local, 50)
    overhead_server = p(server, 50) - p(local, 50)

    def line(name: str, values) -> str:
        return f"| {name} | {p(values, 50):.1f} | {p(values, 95):.1f} |"

    load_text = (
        ", ".join(
            f"{ms_} ms on {device} with {threads} thread(s)" for device, ms_, threads in loaded
        )
        or "not found in the worker log"
    )
    rss_text = ", ".join(f"{value:.0f} MiB" for value in child_rss) or "no child found"
    within = "within" if overhead <= args.target_ms else "**over**"
    lines = [
        section,
        "",
        *header,
        f"- Setup: production settings (`config.settings.prod`), PostgreSQL (fresh database "
        f"`{args.db_name}`), a dedicated Redis on a free port, ONE Celery worker "
        "(prefork, concurrency 1, `ENGINE_TORCH_THREADS=1`, device cpu), gunicorn "
        f"`{' '.join(gunicorn_args)}` (sync workers). Torch threads 1 in the benchmark process too.",
        f"- {args.runs} runs after {args.warmup} warm-up runs, one at a time, each a different "
        "sentence (`Sentence number {i} is about cats and {word}.`, 11 word pieces) so no finished "
        "run is reused. Each is `POST /api/v1/attention` (202), then "
        + (
            f"`GET /api/v1/attention/<id>/?layer=0&head=0&wait={args.wait_s:g}`, which answers as "
            "soon as the worker announces the run final (Redis pub/sub), repeated until done. "
            if args.wait_s
            else f"`GET /api/v1/attention/<id>/?layer=0&head=0` every {args.poll_ms:g} ms until done. "
        )
        + "Interleaved with them (one end-to-end run, one in-process call), this process times "
        f"`{type(model).__name__}.run(text, keep_qkv=True)` on the same sentence.",
        f"- Worker model load (its log, first run): {load_text}. Worker pool child RSS after the "
        f"runs: {rss_text} (the worker's main process: {parent_rss:.0f} MiB).",
        "",
        "| measure | p50 (ms) | p95 (ms) |",
        "|---|---:|---:|",
        line("**end to end, client**: submit → seen done", client),
        line("… of which the `POST` (202 back)", submit),
        line("… client sends the `POST` → row created (`created_at`)", to_created),
        line("… `finished_at` → the client sees done", to_seen),
        line("one `GET …` (any status; with `wait`, it lasts until the run is final)", poll_ms),
        line("**server**: `finished_at − created_at` (database row)", server),
        line("… created → a worker starts it (`started_at`)", to_start),
        line("… started → finished, in the worker", in_worker),
        line("… of which the forward pass (`compute_ms`)", compute),
        line("**in-process** `model.run(text, keep_qkv=True)`", local),
        f"| polls per run | {p(polls, 50):.0f} | {p(polls, 95):.0f} |",
        "",
        f"- **Overhead** = end-to-end p50 − in-process p50 = **{overhead:.1f} ms** "
        f"({within} the target of {args.target_ms:g} ms); measured on the server "
        f"(`finished_at − created_at`) it is {overhead_server:.1f} ms. "
        f"Ratio end-to-end / in-process (p50): {p(client, 50) / p(local, 50):.2f}.",
        *(
            [
                f"- **Side by side with the baseline** `{args.baseline}` (its own world, same "
                "setup, one run there right before each run here, same sentences): end to end "
                f"p50 {p(base_e2e, 50):.1f} ms there, {p(client, 50):.1f} ms here; overhead "
                f"(minus the same in-process p50) {p(base_e2e, 50) - p(local, 50):.1f} ms there, "
                f"**{overhead:.1f} ms** here: ratio here / there "
                f"**{overhead / (p(base_e2e, 50) - p(local, 50)):.2f}**."
            ]
            if base_e2e
            else []
        ),
        "- What the path does now (issue 12), each change against the baseline: the arrays "
        "are stored as float16 without zlib (it shrank them by 7-12 % for 0.9 ms per array at "
        "T = 16 and about 60 ms at T = 128), and PostgreSQL does not try to compress them "
        "again (STORAGE EXTERNAL); a publish is no longer followed by an `UPDATE … sent_at` (set in the "
        "INSERT instead; that UPDATE also held the row lock the worker's claim waited for); the "
        "claim is one hand-written conditional `UPDATE … RETURNING` (the ORM took most of the "
        "claim compiling its Q/Subquery/Exists UPDATE and the SELECT after it: about 6 → 2.5 ms "
        "in-process) in a transaction that commits without waiting for the disk, instead of "
        "`SELECT … FOR UPDATE` + `save()`; the result write sends only the worker's fields, "
        "with its parameters bound on the server (client-side binding sent the ~400 KB of "
        "arrays as hex inside the SQL: that UPDATE 6.5 → 2.4 ms); the worker keeps its "
        "database connection between tasks (Celery's Django fixup opened a new one for every "
        "run unless `CELERY_DB_REUSE_MAX` is set; old or broken ones are still replaced: "
        "created → started about 11 → 7 ms); the submit reads identical runs in one query "
        "instead of two; the read after a `?wait=` brings the attention and the pair "
        "contributions in the same query (they were each loaded by a query of their own); a "
        "`?wait=` waits on its web process's one pattern subscription (a thread that wakes the "
        "requests of the announced run), entered before the first read, instead of a Redis "
        "connection, a SUBSCRIBE, a second SELECT and a teardown per request (a waiting read "
        "13.3 → 9.6 ms of CPU in-process). A lone run is claimed alone at once: micro-batching "
        "has no collection window.",
        f"- gunicorn: {len(gunicorn_children)} worker processes; logs of this run in "
        f"`{world.log_dir.relative_to(common.ROOT)}/`.",
    ]
    common.publish(section, "\n".join(lines) + "\n", write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
