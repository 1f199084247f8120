"""Benchmark: a burst of 200 distinct runs from 20 clients on two workers, with micro-batching
off (``ENGINE_BATCH_MAX=1``) and on (several N), side by side in one run.

Run from the repository root (``make bench-burst``)::

    .venv/bin/python bench/bench_burst.py
    .venv/bin/python bench/bench_burst.py --sizes 1,8 --reps 1 --burst 60 --no-write   # a look

It builds one world (a fresh PostgreSQL database, a dedicated Redis on a free port, gunicorn,
production settings; see ``_common.world``). For each repetition and each batch size, in turn
(1, N1, N2, … then again), it starts TWO Celery workers (prefork, concurrency 1, one torch thread
each, the configured setup) with ``ENGINE_BATCH_MAX`` set, warms both, then:

1. the burst: ``--clients`` threads submit ``--burst`` distinct sentences between them through
   ``POST /api/v1/attention`` and poll their runs (oldest first, every ``--poll-ms``) until done;
   every run must be done, once, or the benchmark fails;
2. lone runs: ``--lone`` runs one at a time (``?wait=``), each a new sentence, on the idle
   workers: what one learner alone waits, submit → seen done.

Then it stops the workers. The drain time is the server's: first ``created_at`` → last
``finished_at``. The table gives the medians over the repetitions and the ratio to batch size 1
measured in the same run.
"""

from __future__ import annotations

import argparse
import shlex
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common
import psutil
from bench_e2e import run_e2e

SECTION = "## Burst: micro-batching in the worker"
NOUNS = [
    "dogs", "tea", "rain", "music", "trains", "bread", "rivers", "clocks", "gardens", "snow",
    "books", "stars", "cities", "coffee", "boats", "apples", "mountains", "letters", "bridges",
]  # fmt: skip


def sentence(tag: str, i: int) -> str:
    """Distinct sentences of different lengths (9 to 17 word pieces)."""
    extra = " and then it rains again" if i % 3 == 0 else (" today" if i % 3 == 1 else "")
    return f"Burst {tag} sentence {i} asks whether {NOUNS[i % len(NOUNS)]} can fly{extra}."


def start_workers(world: common.World, *, batch_max: int, tag: str) -> list[common.Proc]:
    env = {**world.env, "ENGINE_BATCH_MAX": str(batch_max)}
    workers = []
    for k in (1, 2):
        name = f"burst{k}n{batch_max}{tag}"
        workers.append(
            common.start_process(
                name, common.worker_command(name), env=env, log_dir=world.log_dir / "workers"
            )
        )
    common.wait_workers(world.redis_url, workers)
    return workers


def warm(world: common.World, workers: list[common.Proc], tag: str) -> None:
    """Two runs at once until each worker has done one (each loads its model lazily)."""
    names = {worker.name for worker in workers}
    seen: set[str] = set()
    for r in range(8):
        texts = [sentence(f"warm{tag}r{r}k{k}", k) for k in range(2)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(
                pool.map(lambda t: run_e2e(world.base_url, t, poll_s=0, wait_s=10), texts)
            )
        rows = common.runs_table(world, [result["id"] for result in results])
        seen |= {row["worker"].split("@", 1)[0] for row in rows.values()}
        if names <= seen:
            return
    raise RuntimeError(f"after 8 warm-up rounds only {sorted(seen)} took a run")


CPU_PARTS = ("workers", "web", "postgres", "redis", "clients")


def _tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(world: common.World, workers: list[common.Proc]) -> dict[str, dict[int, float]]:
    """CPU seconds used so far (user + system), per process, by each part of the system: the
    two workers (with their pool children), gunicorn, PostgreSQL, Redis and this process (the
    clients)."""
    groups = {
        "workers": [p for worker in workers for p in _tree(worker.pid)],
        "web": _tree(world.web.pid),
        "postgres": [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"],
        "redis": _tree(world.redis.popen.pid) if world.redis else [],
        "clients": [psutil.Process()],
    }
    totals: dict[str, dict[int, float]] = {}
    for name, processes in groups.items():
        totals[name] = {}
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            totals[name][process.pid] = times.user + times.system
    return totals


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two snapshots of one part: a process that started in between counts
    from zero; one that ended in between (a closed PostgreSQL connection) is not seen after,
    so its last seconds are lost (a slight undercount, never a negative)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def burst(
    world: common.World,
    *,
    tag: str,
    total: int,
    clients: int,
    poll_s: float,
    wait_s: float,
    workers: list[common.Proc],
) -> dict:
    records: list[dict] = [{"text": sentence(tag, i)} for i in range(total)]
    problems: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)
    deadline = time.monotonic() + 600
    base = world.base_url

    def client(c: int) -> None:
        mine = list(range(c, total, clients))
        start.wait(timeout=30)
        for i in mine:
            records[i]["t_submit"] = time.perf_counter()
            status, body = common.http_json(
                "POST", f"{base}/api/v1/attention", body={"text": records[i]["text"]}
            )
            if status != 202 or body.get("reused") is not False:
                with lock:
                    problems.append(f"submit {i} answered {status}: {body}")
                continue
            records[i]["id"] = body["id"]
        pending = [i for i in mine if "id" in records[i]]
        while pending and time.monotonic() < deadline:
            url = f"{base}/api/v1/attention/{records[pending[0]]['id']}/?layer=0&head=0"
            if wait_s:
                url += f"&wait={wait_s:g}"
            status, body = common.http_json("GET", url)
            if status == 200 and body["status"] in ("done", "failed"):
                records[pending.pop(0)]["t_done"] = time.perf_counter()
                continue
            if not wait_s:
                time.sleep(poll_s)

    cpu_before = cpu_seconds(world, workers)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client, c) for c in range(clients)]:
            future.result()
    cpu_after = cpu_seconds(world, workers)
    ids = [record["id"] for record in records if "id" in record]
    rows = common.runs_table(world, ids)
    bad = [row for row in rows.values() if row["status"] != "done" or row["attempts"] != 1]
    if problems or len(set(ids)) != total or len(rows) != total or bad:
        raise RuntimeError(f"burst {tag}: {problems[:3]}, {len(set(ids))} ids, {len(bad)} bad")
    sizes = dict(
        world.rows(
            "SELECT id::text, batch_size FROM engine_attentionrun WHERE id = ANY(%s::uuid[])",
            (ids,),
        )
    )
    first = min(row["created_at"] for row in rows.values())
    last = max(row["finished_at"] for row in rows.values())
    submitted = max(row["created_at"] for row in rows.values())
    drain = (last - first).total_seconds()
    waits = [common.ms(row["finished_at"] - row["created_at"]) for row in rows.values()]
    return {
        "drain_s": drain,
        "client_s": max(record["t_done"] for record in records) - t0,
        "rps": total / drain,
        "wait_p50": common.percentile(waits, 50),
        "wait_p95": common.percentile(waits, 95),
        "batch_mean": statistics.fmean(sizes.values()),
        "batch_max": max(sizes.values()),
        "compute_p50": common.percentile([row["compute_ms"] for row in rows.values()], 50),
        "submit_s": (submitted - first).total_seconds(),
        "cpu_ms": {  # CPU per run, by part of the system
            name: 1000 * cpu_used(cpu_before[name], cpu_after[name]) / total for name in cpu_after
        },
    }


def queued_drain(world: common.World, *, tag: str, total: int, workers: list[common.Proc]) -> dict:
    """The workers' part alone: the burst is queued while the workers do not consume (Celery's
    ``cancel_consumer``), then they consume again and drain it with nothing else running. What
    batching does to the workers, without the web and the clients on the same two cores."""
    from celery import Celery

    control = Celery("bench-burst-control", broker=world.redis_url, set_as_current=False).control
    names = [f"{worker.name}@{socket.gethostname()}" for worker in workers]
    replies = control.cancel_consumer("inference", destination=names, reply=True, timeout=5)
    if len(replies) != len(workers):
        raise RuntimeError(f"cancel_consumer answered {replies}")
    texts = [sentence(f"queued{tag}", i) for i in range(total)]

    def submit(text: str) -> str:
        status, body = common.http_json(
            "POST", f"{world.base_url}/api/v1/attention", body={"text": text}
        )
        if status != 202:
            raise RuntimeError(f"submit answered {status}: {body}")
        return body["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(submit, texts))
    time.sleep(0.5)  # let gunicorn and PostgreSQL go quiet before the workers start
    cpu_before = cpu_seconds(world, workers)
    control.add_consumer("inference", destination=names, reply=True, timeout=5)
    deadline = time.monotonic() + 600
    sql = (
        "SELECT count(*) FROM engine_attentionrun WHERE id = ANY(%s::uuid[])"
        " AND status IN ('done', 'failed')"
    )
    while world.rows(sql, (ids,))[0][0] < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"queued drain {tag}: not drained in 600 s")
        time.sleep(0.05)
    cpu_after = cpu_seconds(world, workers)
    rows = common.runs_table(world, ids)
    bad = [row for row in rows.values() if row["status"] != "done" or row["attempts"] != 1]
    if bad:
        raise RuntimeError(f"queued drain {tag}: {len(bad)} runs not done once")
    first = min(row["started_at"] for row in rows.values())
    last = max(row["finished_at"] for row in rows.values())
    return {
        "drain_s": (last - first).total_seconds(),
        "worker_cpu_ms": 1000 * cpu_used(cpu_before["workers"], cpu_after["workers"]) / total,
    }


def lone(world: common.World, *, tag: str, count: int) -> list[float]:
    """Runs one at a time on idle workers: client submit → seen done, in ms."""
    return [
        run_e2e(world.base_url, sentence(f"lone{tag}", i), poll_s=0, wait_s=10)["total"] * 1000
        for i in range(count)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,4,8,16", help="ENGINE_BATCH_MAX values (1 first)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every size")
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument(
        "--wait-s", type=float, default=10.0,
        help="clients wait for each run with ?wait= (default 10 s); 0 polls every --poll-ms",
    )  # fmt: skip
    parser.add_argument("--poll-ms", type=float, default=200.0, help="with --wait-s 0")
    parser.add_argument("--lone", type=int, default=15, help="lone runs per size and repetition")
    parser.add_argument(
        "--queued", action=argparse.BooleanOptionalAction, default=True,
        help="also queue each burst first and time the workers draining it alone",
    )  # fmt: skip
    parser.add_argument("--db-name", default="attention_lab_bench_burst")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if sizes[0] != 1:
        parser.error("--sizes must start with 1 (the baseline of the ratios)")

    command = "make bench-burst" if not sys.argv[1:] else shlex.join(["python", *sys.argv])
    header = common.machine_lines(command)
    # Threads for the clients' waits (each holds one) and the submissions beside them.
    threads = str(args.clients + 4) if args.wait_s else "4"
    gunicorn_args = ["-w", str(common.nproc()), "-k", "gthread", "--threads", threads]
    results: dict[int, list[dict]] = {size: [] for size in sizes}
    lone_ms: dict[int, list[float]] = {size: [] for size in sizes}
    with common.world(
        db_name=args.db_name,
        worker_names=[],
        gunicorn_args=gunicorn_args,
        log_dir=common.LOGS / "burst",
    ) as world:
        for rep in range(args.reps):
            for size in sizes:
                tag = f"r{rep}n{size}"
                workers = start_workers(world, batch_max=size, tag=tag)
                try:
                    warm(world, workers, tag)
                    outcome = burst(
                        world,
                        tag=tag,
                        total=args.burst,
                        clients=args.clients,
                        poll_s=args.poll_ms / 1000,
                        wait_s=args.wait_s,
                        workers=workers,
                    )
                    lone_ms[size] += lone(world, tag=tag, count=args.lone)
                    if args.queued:
                        alone = queued_drain(world, tag=tag, total=args.burst, workers=workers)
                        outcome["queued_s"] = alone["drain_s"]
                        outcome["queued_cpu"] = alone["worker_cpu_ms"]
                finally:
                    for worker in workers:
                        common.stop_process(worker, 30)
                results[size].append(outcome)
                print(
                    f"  rep {rep} N={size:2d}: drain {outcome['drain_s']:.2f} s, "
                    f"{outcome['rps']:.1f} runs/s, mean batch {outcome['batch_mean']:.1f}, "
                    f"lone p50 {common.percentile(lone_ms[size][-args.lone :], 50):.1f} ms, "
                    f"last submit at {outcome['submit_s']:.2f} s, CPU ms/run "
                    + ", ".join(f"{k} {v:.1f}" for k, v in outcome["cpu_ms"].items())
                    + (
                        f"; queued, workers alone: drain {outcome['queued_s']:.2f} s, "
                        f"{outcome['queued_cpu']:.1f} worker CPU ms/run"
                        if args.queued
                        else ""
                    )
                )

    def median(size: int, key: str) -> float:
        return statistics.median(outcome[key] for outcome in results[size])

    def queued_drains(size: int) -> str:
        return ", ".join(f"{outcome['queued_s']:.2f}" for outcome in results[size])

    base_drain, base_lone = median(1, "drain_s"), common.percentile(lone_ms[1], 50)
    rows = []
    for size in sizes:
        drains = ", ".join(f"{outcome['drain_s']:.2f}" for outcome in results[size])
        lone50 = common.percentile(lone_ms[size], 50)
        rows.append(
            f"| {size} | {drains} | **{median(size, 'drain_s'):.2f}** | "
            f"{median(size, 'rps'):.1f} | **{median(size, 'drain_s') / base_drain:.2f}** | "
            f"{median(size, 'batch_mean'):.1f} / {max(o['batch_max'] for o in results[size])} | "
            f"{median(size, 'wait_p50'):.0f} / {median(size, 'wait_p95'):.0f} | "
            f"{median(size, 'compute_p50'):.1f} | {lone50:.1f} "
            f"({lone50 / base_lone:.2f}) | {common.percentile(lone_ms[size], 95):.1f} | "
            f"{median(size, 'submit_s'):.2f} | "
            + " / ".join(
                f"{statistics.median(o['cpu_ms'][part] for o in results[size]):.1f}"
                for part in CPU_PARTS
            )
            + " |"
            + (
                f" {queued_drains(size)} | "
                f"**{median(size, 'queued_s'):.2f}** | "
                f"**{median(size, 'queued_s') / median(1, 'queued_s'):.2f}** | "
                f"{median(size, 'queued_cpu'):.1f} |"
                if args.queued
                else ""
            )
        )
    lines = [
        SECTION,
        "",
        *header,
        "- Setup: production settings, PostgreSQL (fresh database "
        f"`{args.db_name}`), a dedicated Redis, gunicorn `{' '.join(gunicorn_args)}`, and for "
        "each batch size TWO fresh Celery workers (prefork, concurrency 1, "
        "`ENGINE_TORCH_THREADS=1`, device cpu) started with `ENGINE_BATCH_MAX=N`, both warmed.",
        f"- Per repetition and size, in turn ({args.reps} repetitions of "
        f"{', '.join(map(str, sizes))}): a burst of {args.burst} distinct sentences (9 to 17 word "
        f"pieces) from {args.clients} concurrent clients through `POST /api/v1/attention`, each "
        "client then waiting for its runs (oldest first) "
        + (
            f"with `GET …?wait={args.wait_s:g}` (woken by the worker's announcement, no polling)"
            if args.wait_s
            else f"polling every {args.poll_ms:g} ms"
        )
        + "; every run done exactly once (checked). "
        f"Then {args.lone} lone runs, one at a time on the idle workers (`?wait=`).",
        "- Drain = first `created_at` → last `finished_at` (server). Ratios are to N = 1 in "
        "this same run. Last submit: when the last run's row was created, from the first. CPU "
        "per run: user + system seconds of each part during the burst (psutil), divided by the "
        "runs: the two workers with their pool children, gunicorn, PostgreSQL, Redis, and this "
        "process (the clients).",
        *(
            [
                "- Queued, workers alone: after the lone runs, the workers stop consuming "
                "(Celery's `cancel_consumer`), the same number of new distinct sentences is "
                "submitted (8 threads), and the workers consume again and drain the queue with "
                "nothing else running: first `started_at` → last `finished_at`. This is what "
                "batching does to the workers; the burst above also has the web, PostgreSQL and "
                "the clients on the same two cores."
            ]
            if args.queued
            else []
        ),
        "",
        "| N | drain per repetition (s) | drain median (s) | runs/s | **drain / N=1** | "
        "batch mean / max | wait p50 / p95 (ms) | batch forward p50 (ms) | lone run p50 (ms, "
        "ratio to N=1) | lone run p95 (ms) | last submit (s) | CPU ms per run: "
        + " / ".join(CPU_PARTS)
        + " |"
        + (
            " queued, workers alone: drain per repetition (s) | drain median (s) | "
            "**drain / N=1** | worker CPU ms per run |"
            if args.queued
            else ""
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        + ("---|---:|---:|---:|" if args.queued else ""),
        *rows,
        "",
        *cpu_bound_lines(results, sizes, total=args.burst),
    ]
    common.publish(SECTION, "\n".join(lines) + "\n", write=not args.no_write)
    return 0


def cpu_bound_lines(results: dict[int, list[dict]], sizes: list[int], *, total: int) -> list[str]:
    """What the measured CPU says of the burst: whether the drain was CPU-bound (all parts'
    CPU over the cores, against the drain), and the lowest ratio to N = 1 that a CPU-bound
    drain can reach with the rest of the system (web, PostgreSQL, Redis, clients) costing what
    it cost here, S ms per run at any N: (W_N + S) / (W_1 + S), W the workers' CPU per run.
    0.5 needs S <= W_1 - 2 W_N."""
    cores = common.nproc()

    def cpu(size: int, part: str) -> float:
        return statistics.median(outcome["cpu_ms"][part] for outcome in results[size])

    def rest(size: int) -> float:
        return sum(cpu(size, part) for part in CPU_PARTS if part != "workers")

    lines = []
    for size in sizes:
        need = sum(cpu(size, part) for part in CPU_PARTS) * total / 1000 / cores
        drain = statistics.median(outcome["drain_s"] for outcome in results[size])
        lines.append(
            f"- N = {size}: all parts' CPU over {cores} cores = {need:.2f} s against a drain of "
            f"{drain:.2f} s ({need / drain:.0%} of the cores busy)."
        )
    w1 = cpu(1, "workers")
    for size in sizes[1:]:
        wn, s_n = cpu(size, "workers"), rest(size)
        lines.append(
            f"- N = {size}: workers {wn:.1f} ms of CPU per run against {w1:.1f} at N = 1; the "
            f"rest of the system {s_n:.1f} ms per run (N = 1: {rest(1):.1f}). A CPU-bound drain "
            f"can then reach at best (W_N + S) / (W_1 + S) = {(wn + s_n) / (w1 + s_n):.2f} of "
            f"N = 1; 0.5 would need S ≤ W_1 − 2 W_N = {w1 - 2 * wn:.1f} ms per run."
        )
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
