"""Soak: mixed page traffic and one live-model run a second, while worker pool children are
killed (SIGKILL) every 2 minutes and Redis is restarted once.

Run from the repository root (``make bench-soak``; not part of ``make test``)::

    .venv/bin/python bench/bench_soak.py                        # 10 minutes, writes RESULTS.md
    .venv/bin/python bench/bench_soak.py --minutes 1 --kill-every 20 --no-write   # a short check

It builds its own world and tears it down (``_common.world``): a fresh PostgreSQL database, a
dedicated Redis on a free port, ``migrate`` + ``load_content`` + ``collectstatic``, TWO Celery
workers (prefork, concurrency 1 each, one torch thread each) and gunicorn, with production
settings. Everything stays on 127.0.0.1; every loop is bounded by the soak's end or a deadline,
and every request has a timeout.

- Pages: ``--page-clients`` threads, each with a pause of ``--think-ms`` between requests, go
  round the mixed list of ``bench_load.py`` (term pages in both languages and every tier, htmx
  tier swaps, quiz pages, home pages, htmx search fragments) and, one request in ten, the page of
  a finished run (``/<lang>/demo/runs/<id>/``).
- Runs: one ``POST /api/v1/attention`` a second, each a different sentence (none is reused), then
  ``GET /api/v1/attention/<id>/?layer=0&head=0&wait=10`` until the run is done or failed (each in
  its own thread, at most ``--run-deadline`` seconds a run).
- Faults: every ``--kill-every`` seconds the pool child (the process that runs tasks) of one
  worker is killed with SIGKILL; the script first looks (up to 3 s) for a run in progress so that
  the kill hits a worker mid-run when it can, else it takes the workers in turn. Redis is stopped
  and started again on the same port once, at ``--redis-restart-at`` seconds (default: half way).
  It keeps nothing on disk, so whatever messages it held are gone.
- After the soak, the runs still out get ``--run-deadline`` seconds to finish; then the rows are
  read from the database. A run that is neither done nor failed is **lost**.

Checks (the benchmark fails on any): no lost run, no 5xx (and no connection error) on pages,
no reused run, pool-child and main-process RSS of each worker grow by under 10 % from the start
(after warm-up) to the end. The section of ``bench/RESULTS.md`` is written in every case unless
``--no-write`` (a failed soak says FAILED and why); the exit status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common
import bench_load

SECTION = "## Soak: pages and a run a second, workers killed, Redis restarted"
NOUNS = bench_load.NOUNS
VERBS = ["remember", "follow", "admire", "carry", "answer", "watch", "forget", "visit"]
RSS_LIMIT = 0.10  # growth allowed from start to end


def soak_sentence(i: int) -> str:
    """Distinct for every i (the number is in it), a dozen word pieces."""
    noun, other = NOUNS[i % len(NOUNS)], NOUNS[(i * 7 + 3) % len(NOUNS)]
    return f"Soak sentence {i}: the {noun} {VERBS[i % len(VERBS)]} the {other} today."


class Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.t0


def mmss(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


# --- page traffic ---------------------------------------------------------------------------------


class Pages:
    """Page clients: each records (kind, status, ms); status 0 is a connection error."""

    def __init__(self, base_url: str, entries, *, clients: int, think_s: float, clock: Clock):
        self.base_url, self.entries, self.think_s, self.clock = base_url, entries, think_s, clock
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records: list[tuple[str, int, float, float]] = []  # kind, status, ms, at (s)
        self.errors: list[str] = []
        self.done_run_ids: list[str] = []  # filled by the run clients
        self.threads = [
            threading.Thread(target=self.client, args=(c,), daemon=True) for c in range(clients)
        ]

    def client(self, c: int) -> None:
        n = c * 17  # clients start at different places in the list
        while not self.stop.is_set():
            n += 1
            if n % 10 == 9 and self.done_run_ids:
                with self.lock:
                    run_id = self.done_run_ids[-1 - (n // 10) % min(20, len(self.done_run_ids))]
                kind, flag, path = "run page", "G", f"/{('ja', 'en')[n % 2]}/demo/runs/{run_id}/"
            else:
                kind, flag, path = self.entries[n % len(self.entries)]
            headers = {"HX-Request": "true"} if flag == "H" else {}
            at = self.clock.now()
            t0 = time.perf_counter()
            try:
                status, body = common.request(
                    "GET", self.base_url + path, headers=headers, timeout=30
                )
            except OSError as error:
                status, body = 0, str(error).encode()
            elapsed = (time.perf_counter() - t0) * 1000
            with self.lock:
                self.records.append((kind, status, elapsed, at))
                if status == 0 or status >= 400:
                    self.errors.append(f"{mmss(at)} GET {path} -> {status}: {body[:160]!r}")
            self.stop.wait(self.think_s)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=40)


# --- runs -------------------------------------------------------------------------------------------


class Runs:
    """One submission a second; a waiter thread per accepted run."""

    def __init__(self, base_url: str, *, clock: Clock, pages: Pages, deadline_s: float):
        self.base_url, self.clock, self.pages, self.deadline_s = base_url, clock, pages, deadline_s
        self.lock = threading.Lock()
        self.submitted: list[dict] = []  # accepted runs: id, i, at, seen, t_final
        self.refused: list[tuple[float, int, str]] = []  # at, status, body (not accepted)
        self.reused: list[str] = []
        self.read_errors: list[str] = []
        self.waiters = ThreadPoolExecutor(max_workers=128, thread_name_prefix="run-wait")

    def submit(self, i: int) -> None:
        at = self.clock.now()
        try:
            status, body = common.http_json(
                "POST", f"{self.base_url}/api/v1/attention", body={"text": soak_sentence(i)},
                timeout=15,
            )  # fmt: skip
        except OSError as error:
            status, body = 0, {"error": str(error)}
        if status != 202:
            with self.lock:
                self.refused.append((at, status, json.dumps(body, ensure_ascii=False)[:160]))
            return
        record = {"id": body["id"], "i": i, "at": at, "seen": body.get("status")}
        with self.lock:
            self.submitted.append(record)
            if body.get("reused") is not False:
                self.reused.append(body["id"])
        self.waiters.submit(self.wait, record)

    def wait(self, record: dict) -> None:
        url = f"{self.base_url}/api/v1/attention/{record['id']}/?layer=0&head=0&wait=10"
        deadline = time.monotonic() + self.deadline_s
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                status, body = common.http_json("GET", url, timeout=25)
            except OSError as error:
                status, body = 0, {"error": str(error)}
            if status == 200:
                record["seen"] = body.get("status")
                if record["seen"] in ("done", "failed"):
                    record["t_final"] = self.clock.now()
                    record["error_code"] = body.get("error_code")
                    if record["seen"] == "done":
                        with self.pages.lock:
                            self.pages.done_run_ids.append(record["id"])
                    return
            else:
                with self.lock:
                    self.read_errors.append(
                        f"{mmss(self.clock.now())} read {record['id']} -> {status}: "
                        f"{json.dumps(body, ensure_ascii=False)[:160]}"
                    )
            if time.monotonic() - t0 < 1.0:  # an answer that did not wait (no broker to listen to)
                time.sleep(0.5)

    def finish(self) -> None:
        self.waiters.shutdown(wait=True)  # each waiter stops at its own deadline


# --- workers ----------------------------------------------------------------------------------------


def rss_snapshot(world: common.World) -> dict[str, dict]:
    snapshot = {}
    for worker in world.workers:
        children = worker.children()
        snapshot[worker.name] = {
            "main_pid": worker.pid,
            "main": common.vm_rss_mib(worker.pid),
            "child_pids": children,
            "child": sum(common.vm_rss_mib(pid) for pid in children),
        }
    return snapshot


def kill_pool_child(world: common.World, *, turn: int, clock: Clock) -> dict:
    """SIGKILL the pool child of the worker running a run now (looked for up to 3 s on one
    open connection, the children listed beforehand, so the kill follows the sighting within a
    few ms), else of worker ``turn`` (mod the number of workers)."""
    children = {worker.name: worker.children() for worker in world.workers}
    target, busy_run = None, None
    with common.db_connect(world.database_url) as connection:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT id::text, worker FROM engine_attentionrun WHERE status = 'running' "
                "ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
            name = row[1].split("@", 1)[0] if row else None
            if children.get(name):
                busy_run, target = row[0], next(w for w in world.workers if w.name == name)
                break
            time.sleep(0.002)
        if target is None:
            target = world.workers[turn % len(world.workers)]
            children[target.name] = target.children()
        event = {"at": clock.now(), "worker": target.name, "busy_run": busy_run, "pid": None}
        if not children[target.name]:
            event["note"] = "no pool child to kill (being replaced)"
            return event
        pid = event["pid"] = children[target.name][0]
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            event["note"] = "the child had already gone"
        if busy_run:  # was the run still in progress when the child died, or had it just ended?
            event["busy_after"] = connection.execute(
                "SELECT status FROM engine_attentionrun WHERE id = %s::uuid", (busy_run,)
            ).fetchone()[0]
    event["new_pid"] = wait_new_child(target, pid, timeout=30)
    return event


def run_faults(
    world: common.World, schedule, *, clock: Clock, kills: list, redis_event: dict,
    redis_down: float, stop: threading.Event, timeline: list,
) -> None:  # fmt: skip
    """At each (time, what) of ``schedule``: kill a pool child or restart Redis."""
    try:
        for at, what in schedule:
            if stop.wait(max(0.0, at - clock.now())):
                return
            if what == "kill":
                event = kill_pool_child(world, turn=len(kills), clock=clock)
                kills.append(event)
                state = (
                    f"run {event['busy_run']} in progress, {event.get('busy_after')} after"
                    if event["busy_run"]
                    else "idle"
                )
                line = f"{mmss(event['at'])} SIGKILL pool child {event['pid']} of {event['worker']} ({state})"
                line += f" — {event['note']}" if event.get("note") else ""
            else:
                redis_event["at"] = clock.now()
                redis_event["unanswered_s"] = world.restart_redis(down_s=redis_down)
                line = (
                    f"{mmss(redis_event['at'])} Redis stopped and started again "
                    f"(did not answer for {redis_event['unanswered_s']:.2f} s)"
                )
            print(line, flush=True)
            timeline.append(line)
    except Exception as error:  # reported as a failure of the soak, never swallowed
        redis_event["error"] = repr(error)
        raise


def wait_new_child(worker: common.Proc, old_pid: int | None, timeout: float = 60) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [pid for pid in worker.children() if pid != old_pid]
        if children:
            return children[0]
        time.sleep(0.2)
    return None


# --- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak (10)")
    parser.add_argument("--kill-every", type=float, default=120.0, help="seconds between kills")
    parser.add_argument(
        "--redis-restart-at", type=float, default=None, help="seconds in (default: half way)"
    )
    parser.add_argument("--redis-down", type=float, default=1.0, help="seconds Redis stays down")
    parser.add_argument("--runs-per-second", type=float, default=1.0)
    parser.add_argument("--page-clients", type=int, default=4)
    parser.add_argument("--think-ms", type=float, default=100.0, help="pause between pages")
    parser.add_argument("--run-deadline", type=float, default=240.0, help="seconds a run may take")
    parser.add_argument(
        "--gunicorn",
        default=f"-w {common.nproc()} -k gthread --threads 8",
        help="gunicorn options (default: -w <nproc> -k gthread --threads 8)",
    )
    parser.add_argument("--db-name", default="attention_lab_bench_soak")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args()
    duration = args.minutes * 60
    if duration < 10:
        parser.error("--minutes must be at least 10 seconds' worth")
    restart_at = duration / 2 if args.redis_restart_at is None else args.redis_restart_at
    kill_times = [args.kill_every * k for k in range(1, int(duration // args.kill_every) + 1)]
    kill_times = [t for t in kill_times if t < duration - 1]

    command = "make bench-soak" if not sys.argv[1:] else shlex.join(["python", *sys.argv])
    header = common.machine_lines(command)
    gunicorn_args = shlex.split(args.gunicorn)
    log_dir = common.LOGS / "soak"
    failures: list[str] = []
    timeline: list[str] = []

    with common.world(
        db_name=args.db_name,
        worker_names=["soak1", "soak2"],
        gunicorn_args=gunicorn_args,
        log_dir=log_dir,
    ) as world:
        entries = bench_load.mixed_requests(world.base_url)
        bench_load.check_pages(world.base_url, entries)
        warm_ids = bench_load.warm_workers(world)
        warm = set(warm_ids)
        rss_start = rss_snapshot(world)
        print(f"both workers warm ({len(warm_ids)} runs); RSS at the start: {rss_start}")

        clock = Clock()
        pages = Pages(
            world.base_url,
            entries,
            clients=args.page_clients,
            think_s=args.think_ms / 1000,
            clock=clock,
        )
        runs = Runs(world.base_url, clock=clock, pages=pages, deadline_s=args.run_deadline)
        kills: list[dict] = []
        redis_event: dict = {}
        pages.start()
        faults = threading.Thread(
            target=run_faults,
            args=(world, sorted([(t, "kill") for t in kill_times] + [(restart_at, "redis")])),
            kwargs={
                "clock": clock,
                "kills": kills,
                "redis_event": redis_event,
                "redis_down": args.redis_down,
                "stop": pages.stop,
                "timeline": timeline,
            },
            daemon=True,
        )
        faults.start()
        next_run, i, next_report = 0.0, 0, 30.0
        interval = 1.0 / args.runs_per_second
        try:
            # The runs go on from this thread while the faults happen in theirs.
            while (now := clock.now()) < duration:
                if now >= next_run:
                    runs.submit(i)
                    i += 1
                    next_run += interval
                if now >= next_report:
                    with runs.lock:
                        out = sum(1 for r in runs.submitted if "t_final" not in r)
                        print(
                            f"  {mmss(now)}: {len(runs.submitted)} runs accepted ({out} out), "
                            f"{len(runs.refused)} refused; {len(pages.records)} pages, "
                            f"{len(pages.errors)} page errors",
                            flush=True,
                        )
                    next_report += 30.0
                time.sleep(0.02)
        finally:
            pages.finish()
            faults.join(timeout=60)
        if "error" in redis_event:
            failures.append(f"the faults thread stopped: {redis_event['error']}")
        soak_s = clock.now()
        rss_end_early = rss_snapshot(world)
        print(f"soak over after {soak_s:.0f} s; waiting for the runs still out")
        runs.finish()
        drain_s = clock.now() - soak_s
        rss_end = rss_snapshot(world)
        ids = [r["id"] for r in runs.submitted]
        rows = common.runs_table(world, ids)
        total_rows = world.rows("SELECT count(*) FROM engine_attentionrun")[0][0]
        gunicorn_processes = len(world.web.children())
        worker_logs = {w.name: w.log_text() for w in world.workers}

    # --- figures and checks
    p = common.percentile
    statuses = {run_id: rows[run_id]["status"] if run_id in rows else "missing" for run_id in ids}
    lost = [run_id for run_id, status in statuses.items() if status not in ("done", "failed")]
    done = [run_id for run_id, status in statuses.items() if status == "done"]
    failed = [run_id for run_id, status in statuses.items() if status == "failed"]
    codes: dict[str, int] = {}
    for run_id in failed:
        codes[rows[run_id]["error"] or "?"] = codes.get(rows[run_id]["error"] or "?", 0) + 1
    retried = [run_id for run_id in ids if run_id in rows and rows[run_id]["attempts"] > 1]
    retried_done = [run_id for run_id in retried if statuses[run_id] == "done"]
    killed_mid_run = [e["busy_run"] for e in kills if e.get("busy_after") == "running"]
    killed_outcome = [
        f"{run_id[:8]}: {statuses.get(run_id, 'warm-up')}, {rows[run_id]['attempts']} attempts"
        for run_id in killed_mid_run
        if run_id in rows
    ]
    unseen = [r["id"] for r in runs.submitted if "t_final" not in r]
    waits = [
        common.ms(rows[run_id]["finished_at"] - rows[run_id]["created_at"])
        for run_id in done
        if rows[run_id]["finished_at"] is not None
    ]
    page_ms = [ms for _kind, status, ms, _at in pages.records]
    page_5xx = [r for r in pages.records if r[1] >= 500]
    page_4xx = [r for r in pages.records if 400 <= r[1] < 500]
    page_conn = [r for r in pages.records if r[1] == 0]
    kinds = sorted({r[0] for r in pages.records})
    by_kind = {kind: [r[2] for r in pages.records if r[0] == kind] for kind in kinds}
    refused_codes: dict[int, int] = {}
    for _at, status, _body in runs.refused:
        refused_codes[status] = refused_codes.get(status, 0) + 1
    broker_lost = sum(
        text.count("consumer: Connection to broker lost") for text in worker_logs.values()
    )

    if lost:
        failures.append(f"{len(lost)} runs lost (neither done nor failed): {lost[:5]}")
    if page_5xx:
        failures.append(f"{len(page_5xx)} 5xx answers on pages")
    if page_conn:
        failures.append(f"{len(page_conn)} page requests got no answer (connection error)")
    if runs.reused:
        failures.append(f"{len(runs.reused)} submissions were answered with a reused run")
    growth_rows = []
    for name, start in rss_start.items():
        end = rss_end[name]
        for part in ("child", "main"):
            growth = (end[part] - start[part]) / start[part]
            growth_rows.append((name, part, start, end, growth))
            if not growth < RSS_LIMIT:
                failures.append(
                    f"{name} {part} RSS grew {growth:+.1%} ({start[part]:.0f} → {end[part]:.0f} MiB)"
                )

    # --- report
    verdict = "all checks passed" if not failures else "**FAILED**: " + "; ".join(failures)
    kill_lines = [
        (
            e["at"],
            f"  - {mmss(e['at'])}: SIGKILL pool child pid {e['pid']} of `{e['worker']}`, "
            + (
                (
                    f"mid-run (run `{e['busy_run'][:8]}…` still running when the child died)"
                    if e.get("busy_after") == "running"
                    else f"just as run `{e['busy_run'][:8]}…` ended (it was {e.get('busy_after')} "
                    "when the child died)"
                )
                if e["busy_run"]
                else "idle (no run in progress)"
            )
            + (f", replaced by pid {e['new_pid']}" if e.get("new_pid") else "")
            + (f" — {e['note']}" if e.get("note") else ""),
        )
        for e in kills
    ]
    if "unanswered_s" in redis_event:
        down_from, down_to = redis_event["at"], redis_event["at"] + redis_event["unanswered_s"]
        during = [r for r in runs.refused if down_from - 1 <= r[0] <= down_to + 2]
        accepted_during = [r for r in runs.submitted if down_from <= r["at"] <= down_to + 2]
        redis_line = (
            redis_event["at"],
            f"  - {mmss(down_from)}: Redis stopped (TERM; it keeps nothing on disk) and started "
            f"again on the same port after {args.redis_down:g} s; it did not answer for "
            f"{redis_event['unanswered_s']:.2f} s. Submissions meanwhile: {len(during)} refused "
            f"({', '.join(sorted({str(r[1]) for r in during})) or 'none'}), "
            f"{len(accepted_during)} accepted from the stop to 2 s after it answered. "
            f"The workers logged {broker_lost} "
            "lost broker connection(s) and reconnected by themselves.",
        )
    else:
        redis_line = (duration, "  - Redis was not restarted (the soak ended first)")
    rss_table = [
        f"| {name} | {part} | {', '.join(map(str, start['child_pids'])) if part == 'child' else start['main_pid']} "
        f"| {start[part]:.0f} | "
        f"{', '.join(map(str, end['child_pids'])) if part == 'child' else end['main_pid']} "
        f"| {end[part]:.0f} | {growth:+.1%} |"
        for name, part, start, end, growth in growth_rows
    ]
    lines = [
        SECTION,
        "",
        *header,
        f"- Setup: production settings (`config.settings.prod`), PostgreSQL (fresh database "
        f"`{args.db_name}`), a dedicated Redis on a free port, TWO Celery workers (prefork, "
        "concurrency 1 each, `ENGINE_TORCH_THREADS=1`, device cpu), gunicorn "
        f"`{args.gunicorn}` ({gunicorn_processes} worker processes; 8 threads because a `?wait=` "
        "read holds a thread while it waits). No Celery beat: stale runs are repaired by the "
        "status reads themselves.",
        f"- Soak: {soak_s / 60:.1f} minutes. Pages: {args.page_clients} clients, "
        f"{args.think_ms:g} ms pause between requests, round `bench_load.py`'s mixed list "
        "(term pages in both languages and every tier, htmx tier swaps, quiz pages, home pages, "
        "htmx search) plus, one request in ten, the page of a finished run. Runs: one "
        f"`POST /api/v1/attention` every {interval:g} s, each a different sentence "
        "(`Soak sentence {i}: the … today.`), then `GET /api/v1/attention/<id>/?layer=0&head=0"
        "&wait=10` until done or failed. After the soak the runs still out had up to "
        f"{args.run_deadline:g} s (took {drain_s:.1f} s).",
        "- Faults, with their times from the start of the soak:",
        *[text for _at, text in sorted([*kill_lines, redis_line])],
        "",
        "| runs | value |",
        "|---|---:|",
        f"| submitted (202, distinct ids) | {len(ids)} ({len(set(ids))}) |",
        f"| **lost** (neither done nor failed) | **{len(lost)}** |",
        f"| done | {len(done)} |",
        "| failed (error codes) | "
        + (
            f"{len(failed)} ("
            + ", ".join(f"`{code}` {n}" for code, n in sorted(codes.items()))
            + ")"
            if failed
            else "0"
        )
        + " |",
        f"| **retried** (`attempts > 1`), of which done | **{len(retried)}**, {len(retried_done)} |",
        "| runs hit by a kill mid-run: outcome | "
        + (
            "; ".join(killed_outcome)
            if killed_outcome
            else "none (no kill caught a run still in progress)"
        )
        + " |",
        "| submissions refused (not accepted, by status) | "
        + (", ".join(f"{s} × {n}" for s, n in sorted(refused_codes.items())) or "0")
        + " |",
        f"| reused (must be 0) | {len(runs.reused)} |",
        f"| not seen final by the client within its deadline | {len(unseen)} |",
        f"| wait `finished_at − created_at` p50 / p95 / max (ms) | {p(waits, 50):.0f} / "
        f"{p(waits, 95):.0f} / {max(waits, default=float('nan')):.0f} |",
        f"| rows in the database (with {len(warm)} warm-up runs) | {total_rows} |",
        "",
        "| pages | value |",
        "|---|---:|",
        f"| requests | {len(pages.records)} ({len(pages.records) / soak_s:.1f}/s) |",
        f"| **5xx** | **{len(page_5xx)}** |",
        f"| 4xx / no answer | {len(page_4xx)} / {len(page_conn)} |",
        f"| latency p50 / **p95** / p99 / max (ms) | {p(page_ms, 50):.1f} / "
        f"**{p(page_ms, 95):.1f}** / {p(page_ms, 99):.1f} / {max(page_ms, default=0):.0f} |",
        *[
            f"| … {kind}: n, p50 / p95 (ms) | {len(v)}, {p(v, 50):.1f} / {p(v, 95):.1f} |"
            for kind, v in by_kind.items()
        ],
        "",
        "Worker RSS (MiB), after the warm-up and at the end (after the drain; a killed child's "
        "replacement is measured in its place). The check: growth under 10 % for each.",
        "",
        "| worker | process | pid(s) at start | RSS start | pid(s) at end | RSS end | growth |",
        "|---|---|---|---:|---|---:|---:|",
        *rss_table,
        "",
        f"- Checks: {verdict}.",
        f"- Logs of this run in `{log_dir.relative_to(common.ROOT)}/`.",
    ]
    print("RSS at the end of the soak, before the drain:", rss_end_early)
    for line in pages.errors[:10] + runs.read_errors[:10]:
        print("  " + line)
    common.publish(SECTION, "\n".join(lines) + "\n", write=not args.no_write)
    if failures:
        print("\nSOAK FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
