"""Benchmark: the pages under 50 connections (wrk), then a burst of 200 demo runs on two workers.

Run from the repository root (``make bench-load``)::

    .venv/bin/python bench/bench_load.py
    .venv/bin/python bench/bench_load.py --seconds 8 --burst 40 --no-write    # a quick look

It builds its own world and tears it down: a fresh PostgreSQL database, a dedicated Redis on a
free port, ``migrate`` + ``load_content`` + ``collectstatic``, TWO Celery workers (two processes,
prefork, concurrency 1 each, one torch thread each) and gunicorn, all with production settings.
``wrk`` comes from Debian (``apt-get install -y wrk``, done here when it is missing).

1. Pages: ``wrk -t2 -c50 --latency -s bench/wrk_mixed.lua`` over a mixed list (term pages in both
   languages with different ``?tier=``, htmx tier swaps, quiz pages, the home page, htmx search
   fragments), and the same on the trivial view ``/robots.txt``. Side by side in the same run, two
   more gunicorns (same options, same database) serve the mixed list with the content cache
   turned down: ``PAGE_CACHE=off`` (the content parts are kept, every page is rendered) and
   ``CONTENT_CACHE=off`` (everything computed for every request: the "before"). ``--rounds``
   rounds (4) of mixed, trivial, mixed on "parts only", mixed on "cache off", each phase
   ``--seconds / (4 x rounds)`` long: short phases interleaved, so that the load of a shared
   machine weighs on all four alike.
   Any socket error or any response that is not 2xx/3xx fails the benchmark, and so does a page
   of the cached server that differs from the uncached one (CSRF tokens aside).
2. Burst: 200 distinct sentences from 20 concurrent clients through ``POST /api/v1/attention``,
   then each client polls its runs until done. Every run must be done exactly once (status done,
   one attempt, ``finished_at`` set, 200 distinct ids, none failed, none lost), or the benchmark
   fails.

The figures are printed and written to ``bench/RESULTS.md`` under the section below (only that
section is replaced, and only when every check passed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

SECTION = "## Load: pages under 50 connections, and a burst of demo runs"
LUA = common.ROOT / "bench" / "wrk_mixed.lua"
TIERS = ("eli5", "beginner", "intermediate", "expert")
SEARCHES = {
    "en": ["attention", "layer", "embed", "soft", "token", "gradient"],
    "ja": ["注意", "トークン", "層", "ベクトル"],
}
# Share of each kind of request in the mixed list (out of 100).
MIX = {
    "term page": 35,
    "tier swap (htmx)": 25,
    "quiz page": 15,
    "home page": 10,
    "search (htmx)": 15,
}
NOUNS = [
    "dogs", "tea", "rain", "music", "trains", "bread", "rivers", "clocks", "gardens", "snow",
    "books", "stars", "cities", "coffee", "boats", "apples", "mountains", "letters", "bridges",
]  # fmt: skip
BENCH_LINE = re.compile(r"^BENCH (.*)$", re.MULTILINE)
CSRF_TOKEN = re.compile(rb'(?<=value=")[A-Za-z0-9]{64}(?=")|(?<="X-CSRFToken": ")[A-Za-z0-9]{64}')
# The servers the mixed list runs on: (phase name, what it is, environment over production's).
VARIANTS = {
    "mixed": ("content cache on (pages kept per content version)", {}),
    "mixed, parts only": ("`PAGE_CACHE=off`: content parts kept, every page rendered", {"PAGE_CACHE": "off"}),
    "mixed, cache off": ("`CONTENT_CACHE=off PAGE_CACHE=off`: everything computed per request (before)", {"CONTENT_CACHE": "off", "PAGE_CACHE": "off"}),
}  # fmt: skip


# --- wrk ----------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The path of wrk; on a clean Debian machine, install its package first."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get update && apt-get install -y wrk (Debian package)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as error:
        raise SystemExit(f"could not install wrk ({error}); install Debian's wrk package") from None
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get installed wrk but it is not on the PATH")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def run_wrk(
    wrk: str, base_url: str, paths_file: Path, *, seconds: int, connections: int, threads: int,
    timeout_s: int, log: Path,
) -> dict:  # fmt: skip
    args = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
        f"--timeout={timeout_s}s", "-s", str(LUA), base_url, "--", str(paths_file),
    ]  # fmt: skip
    out = subprocess.run(
        args, cwd=common.ROOT, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    with log.open("a") as handle:
        handle.write(f"$ {shlex.join(args)}\n{out.stdout}{out.stderr}\n")
    if out.returncode != 0:
        raise RuntimeError(f"wrk exited {out.returncode}: {out.stderr[-2000:]}")
    result: dict[str, float] = {}
    for line in BENCH_LINE.findall(out.stdout):
        for item in line.split():
            key, value = item.split("=", 1)
            result[key] = float(value)
    needed = ("requests", "duration_us", "p50", "p95", "p99", "status", "connect", "read")
    if not all(key in result for key in needed):
        raise RuntimeError(f"wrk printed no BENCH lines; its output:\n{out.stdout}\n{out.stderr}")
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["socket_errors"] = sum(result[k] for k in ("connect", "read", "write", "timeout"))
    return result


# --- the mixed list ------------------------------------------------------------------------------


def mixed_requests(base_url: str) -> list[tuple[str, str, str]]:
    """(kind, "G" or "H", path): a deterministic mixed list with the shares of MIX."""
    status, body = common.http_json("GET", f"{base_url}/api/v1/terms/?lang=en")
    if status != 200 or not body.get("terms"):
        raise RuntimeError(f"/api/v1/terms/ answered {status}: {body}")
    slugs = [term["slug"] for term in body["terms"]]
    pools: dict[str, list[tuple[str, str]]] = {kind: [] for kind in MIX}
    for n, (slug, lang) in enumerate((s, lang) for s in slugs for lang in ("ja", "en")):
        pools["term page"].append(("G", f"/{lang}/terms/{slug}/?tier={TIERS[n % 4]}"))
        pools["tier swap (htmx)"].append(("H", f"/{lang}/terms/{slug}/?tier={TIERS[(n + 2) % 4]}"))
        pools["quiz page"].append(("G", f"/{lang}/terms/{slug}/quiz/"))
    pools["home page"] = [("G", "/ja/"), ("G", "/en/")]
    pools["search (htmx)"] = [
        ("H", f"/{lang}/search/?q={quote(word)}")
        for lang, words in SEARCHES.items()
        for word in words
    ]
    chooser = random.Random(20261129)
    entries = []
    for kind, share in MIX.items():
        pool = pools[kind][:]
        chooser.shuffle(pool)
        entries += [(kind, *pool[i % len(pool)]) for i in range(share)]
    chooser.shuffle(entries)
    return entries


def check_pages(base_url: str, entries) -> dict[str, list[float]]:
    """Fetch every distinct entry once, alone (200 required); times in ms per kind."""
    seen, times = set(), {kind: [] for kind in MIX}
    for kind, flag, path in entries:
        if (flag, path) in seen:
            continue
        seen.add((flag, path))
        headers = {"HX-Request": "true"} if flag == "H" else {}
        t0 = time.perf_counter()
        status, body = common.request("GET", base_url + path, headers=headers)
        times[kind].append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise RuntimeError(f"GET {path} ({kind}) answered {status}: {body[:300]!r}")
    return times


def same_pages(cached_url: str, other_url: str, entries) -> list[str]:
    """Every distinct entry from both servers: the same status and body, CSRF tokens aside."""
    problems, seen = [], set()
    for kind, flag, path in entries:
        if (flag, path) in seen:
            continue
        seen.add((flag, path))
        headers = {"HX-Request": "true"} if flag == "H" else {}
        answers = [
            common.request("GET", base + path, headers=headers) for base in (cached_url, other_url)
        ]
        (s1, b1), (s2, b2) = answers
        if s1 != s2 or CSRF_TOKEN.sub(b"", b1) != CSRF_TOKEN.sub(b"", b2):
            problems.append(
                f"{kind} {path}: the cached server's page differs from the uncached one"
            )
    return problems


def start_variant(
    world: common.World, name: str, extra_env: dict, log_dir: Path
) -> tuple[common.Proc, str]:
    """Another gunicorn like the world's, on its own port, with ``extra_env``."""
    from engine import redis_server

    port = redis_server.free_port()
    proc = common.start_process(
        "gunicorn-" + re.sub(r"[^a-z]+", "-", name),
        [
            common.PYTHON,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            *world.gunicorn_args,
        ],
        env={**world.env, **extra_env},
        log_dir=log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    common.wait_http(url + "/robots.txt", proc=proc)
    return proc, url


# --- the burst -----------------------------------------------------------------------------------


def burst_sentence(i: int) -> str:
    return f"Burst sentence {i} asks whether {NOUNS[i % len(NOUNS)]} can fly."


def warm_workers(world: common.World, *, rounds: int = 6) -> list[str]:
    """Submit two runs at once until each worker has done one (each loads its model lazily)."""
    names = {worker.name for worker in world.workers}
    seen: set[str] = set()
    ids = []
    for r in range(rounds):
        texts = [f"Warm-up sentence {r}-{k} about {NOUNS[k]}." for k in range(len(names))]
        with ThreadPoolExecutor(max_workers=len(texts)) as pool:
            results = list(pool.map(lambda t: submit_and_wait(world.base_url, t), texts))
        ids += results
        rows = common.runs_table(world, ids)
        seen |= {row["worker"].split("@", 1)[0] for row in rows.values()}
        if names <= seen:
            return ids
    raise RuntimeError(f"after {rounds} warm-up rounds only {sorted(seen)} took a run")


def submit_and_wait(base_url: str, text: str, timeout_s: float = 120) -> str:
    status, body = common.http_json("POST", f"{base_url}/api/v1/attention", body={"text": text})
    if status != 202:
        raise RuntimeError(f"warm-up submit answered {status}: {body}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, run = common.http_json("GET", f"{base_url}/api/v1/attention/{body['id']}/?layer=0")
        if run.get("status") in ("done", "failed"):
            return body["id"]
        time.sleep(0.05)
    raise RuntimeError(f"warm-up run {body['id']} not done after {timeout_s} s")


def burst(base_url: str, *, total: int, clients: int, poll_s: float, deadline_s: float) -> dict:
    """``clients`` threads submit ``total`` distinct sentences between them, then each polls its
    own runs (oldest first) until done or failed, or until the deadline."""
    records: list[dict] = [{"text": burst_sentence(i)} for i in range(total)]
    problems: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)
    deadline = time.monotonic() + deadline_s

    def client(c: int) -> None:
        mine = list(range(c, total, clients))
        start.wait(timeout=30)
        for i in mine:
            record = records[i]
            record["t_submit"] = time.perf_counter()
            status, body = common.http_json(
                "POST", f"{base_url}/api/v1/attention", body={"text": record["text"]}
            )
            record["t_accepted"] = time.perf_counter()
            record["http"] = status
            if status != 202 or body.get("reused") is not False:
                with lock:
                    problems.append(f"submit {i} answered {status}: {body}")
                continue
            record["id"] = body["id"]
        pending = [i for i in mine if "id" in records[i]]
        while pending and time.monotonic() < deadline:
            i = pending[0]
            url = f"{base_url}/api/v1/attention/{records[i]['id']}/?layer=0&head=0"
            status, body = common.http_json("GET", url)
            if status != 200:
                with lock:
                    problems.append(f"poll of {records[i]['id']} answered {status}: {body}")
                time.sleep(poll_s)
                continue
            records[i]["seen_status"] = body["status"]
            if body["status"] in ("done", "failed"):
                records[i]["t_done"] = time.perf_counter()
                pending.pop(0)
                continue
            time.sleep(poll_s)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client, c) for c in range(clients)]:
            future.result()
    return {"records": records, "problems": problems}


# --- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=80, help="wrk time in all (default 80)")
    parser.add_argument(
        "--rounds", type=int, default=4, help="rounds of the four phases (default 4)"
    )
    parser.add_argument("--warmup-seconds", type=int, default=5, help="wrk warm-up, not counted")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-timeout", type=int, default=10, help="wrk's request timeout (s)")
    parser.add_argument(
        "--gunicorn",
        default=f"-w {common.nproc()} -k gthread --threads 4",
        help="gunicorn options (default: -w <nproc> -k gthread --threads 4)",
    )
    parser.add_argument("--burst", type=int, default=200, help="demo runs in the burst")
    parser.add_argument("--clients", type=int, default=20, help="concurrent burst clients")
    parser.add_argument("--poll-ms", type=float, default=200.0, help="burst poll interval")
    parser.add_argument("--db-name", default="attention_lab_bench_load")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds < 4 * args.rounds:
        parser.error("--seconds must be at least 4 x --rounds (phases of at least 1 s)")

    command = "make bench-load" if not sys.argv[1:] else shlex.join(["python", *sys.argv])
    header = common.machine_lines(command)
    wrk = ensure_wrk()
    wrk_name = wrk_version(wrk)
    gunicorn_args = shlex.split(args.gunicorn)
    log_dir = common.LOGS / "load"
    phase_s = args.seconds // (4 * args.rounds)
    failures: list[str] = []

    with common.world(
        db_name=args.db_name,
        worker_names=["bench1", "bench2"],
        gunicorn_args=gunicorn_args,
        log_dir=log_dir,
        worker_loglevel="info",  # "Task ... succeeded" lines count the executions
    ) as world:
        wrk_log = log_dir / "wrk.log"
        wrk_log.write_text("")
        # --- pages
        entries = mixed_requests(world.base_url)
        mixed_file, trivial_file = log_dir / "mixed.paths", log_dir / "trivial.paths"
        mixed_file.write_text("".join(f"{flag}\t{path}\n" for _kind, flag, path in entries))
        trivial_file.write_text("G\t/robots.txt\n")
        single = check_pages(world.base_url, entries)
        print(f"{len(entries)} mixed requests ({len({e[2] for e in entries})} distinct) answer 200")
        wrk_options = {
            "connections": args.connections,
            "threads": args.wrk_threads,
            "timeout_s": args.wrk_timeout,
            "log": wrk_log,
        }
        servers = {"mixed": world.base_url}
        with contextlib.ExitStack() as stack:
            for name, (_what, extra_env) in VARIANTS.items():
                if extra_env:
                    proc, servers[name] = start_variant(world, name, extra_env, log_dir)
                    stack.callback(common.stop_process, proc, 20)
            for url in servers.values():
                if url != world.base_url:
                    failures += same_pages(world.base_url, url, entries)
            verdict = "DIFFERENT pages" if failures else "the same pages, CSRF tokens aside"
            print(f"{len(servers)} servers, {verdict}")
            if args.warmup_seconds:
                for url in servers.values():
                    run_wrk(wrk, url, mixed_file, seconds=args.warmup_seconds, **wrk_options)
            phases = []
            for name, paths, url in [
                ("mixed", mixed_file, servers["mixed"]),
                ("trivial", trivial_file, world.base_url),
                ("mixed, parts only", mixed_file, servers["mixed, parts only"]),
                ("mixed, cache off", mixed_file, servers["mixed, cache off"]),
            ] * args.rounds:
                result = run_wrk(wrk, url, paths, seconds=phase_s, **wrk_options)
                result["name"] = name
                phases.append(result)
                print(
                    f"  {name:18s} {result['rps']:8.1f} req/s  p50 {result['p50'] / 1000:7.1f} ms  "
                    f"p95 {result['p95'] / 1000:7.1f} ms  p99 {result['p99'] / 1000:7.1f} ms  "
                    f"non-2xx/3xx {result['status']:.0f}  socket errors {result['socket_errors']:.0f}"
                )
                if result["status"] or result["socket_errors"]:
                    failures.append(
                        f"wrk {name}: {result['status']:.0f} non-2xx/3xx responses, socket errors "
                        f"connect {result['connect']:.0f} read {result['read']:.0f} "
                        f"write {result['write']:.0f} timeout {result['timeout']:.0f}"
                    )

        # --- burst
        warm_ids = warm_workers(world)
        print(f"both workers warm ({len(warm_ids)} warm-up runs); burst of {args.burst}")
        t0 = time.perf_counter()
        outcome = burst(
            world.base_url,
            total=args.burst,
            clients=args.clients,
            poll_s=args.poll_ms / 1000.0,
            deadline_s=300,
        )
        burst_wall = time.perf_counter() - t0
        records = outcome["records"]
        failures += outcome["problems"][:20]
        ids = [r["id"] for r in records if "id" in r]
        rows = common.runs_table(world, ids)
        total_rows = world.rows("SELECT count(*) FROM engine_attentionrun")[0][0]
        executions = {
            worker.name: len(
                re.findall(
                    r"Task engine\.tasks\.run_attention\[[^\]]+\] succeeded", worker.log_text()
                )
            )
            for worker in world.workers
        }
        received = {
            worker.name: len(
                re.findall(
                    r"Task engine\.tasks\.run_attention\[[^\]]+\] received", worker.log_text()
                )
            )
            for worker in world.workers
        }
        gunicorn_processes = len(world.web.children())

    # --- checks
    statuses = [row["status"] for row in rows.values()]
    lost = [i for i in ids if i not in rows or rows[i]["status"] in ("queued", "running")]
    failed = [i for i in ids if i in rows and rows[i]["status"] == "failed"]
    retried = [i for i in ids if i in rows and rows[i]["attempts"] != 1]
    unfinished = [i for i in ids if i in rows and rows[i]["finished_at"] is None]
    not_submitted = args.burst - len(ids)
    if not_submitted:
        failures.append(f"{not_submitted} of {args.burst} submissions were not accepted")
    if len(set(ids)) != len(ids) or len(ids) != args.burst:
        failures.append(f"{len(set(ids))} distinct ids for {args.burst} submissions")
    if lost:
        failures.append(f"{len(lost)} runs lost (still queued or running): {lost[:5]}")
    if failed:
        failures.append(f"{len(failed)} runs failed: {[rows[i]['error'] for i in failed[:5]]}")
    if retried:
        failures.append(f"{len(retried)} runs took more than one attempt: {retried[:5]}")
    if unfinished:
        failures.append(f"{len(unfinished)} runs have no finished_at")
    if sum(executions.values()) != total_rows:
        print(
            f"note: {sum(executions.values())} task executions for {total_rows} runs "
            "(a duplicate delivery of a finished run is a no-op, but it is worth a look)"
        )

    done_rows = [row for row in rows.values() if row["status"] == "done"]
    waits = [common.ms(row["finished_at"] - row["created_at"]) for row in done_rows]
    p = common.percentile
    if done_rows:
        server_drain = (
            max(row["finished_at"] for row in done_rows)
            - min(row["created_at"] for row in done_rows)
        ).total_seconds()
    else:
        server_drain = float("nan")
    seen_done = [r["t_done"] for r in records if "t_done" in r]
    client_drain = (max(seen_done) - min(r["t_submit"] for r in records)) if seen_done else 0.0
    accept_ms = [(r["t_accepted"] - r["t_submit"]) * 1000 for r in records if "t_accepted" in r]
    submit_span = max(r["t_accepted"] for r in records) - min(r["t_submit"] for r in records)
    compute = [row["compute_ms"] for row in done_rows]
    per_worker: dict[str, int] = {}
    for row in done_rows:
        name = row["worker"].split("@", 1)[0]
        per_worker[name] = per_worker.get(name, 0) + 1

    # --- report
    def phase_row(label: str, items: list[dict]) -> str:
        requests = sum(r["requests"] for r in items)
        seconds = sum(r["duration_us"] for r in items) / 1e6
        mean = {k: sum(r[k] for r in items) / len(items) / 1000 for k in ("p50", "p95", "p99")}
        return (
            f"| {label} | {requests:.0f} | {requests / seconds:.1f} | {mean['p50']:.1f} | "
            f"{mean['p95']:.1f} | {mean['p99']:.1f} | {sum(r['status'] for r in items):.0f} | "
            f"{sum(r['socket_errors'] for r in items):.0f} |"
        )

    mixed = [r for r in phases if r["name"] == "mixed"]
    trivial = [r for r in phases if r["name"] == "trivial"]

    def rps(items: list[dict]) -> float:
        return sum(r["requests"] for r in items) / (sum(r["duration_us"] for r in items) / 1e6)

    ratio = rps(mixed) / rps(trivial)
    by_name = {name: [r for r in phases if r["name"] == name] for name in VARIANTS}
    ratios = {name: rps(items) / rps(trivial) for name, items in by_name.items()}
    mix_text = ", ".join(f"{kind} {share}%" for kind, share in MIX.items())
    verdict = "all checks passed" if not failures else "**FAILED**: " + "; ".join(failures)
    lines = [
        SECTION,
        "",
        *header,
        f"- Setup: production settings (`config.settings.prod`: persistent database connections, `CONN_MAX_AGE` 60), "
        f"PostgreSQL (fresh database `{args.db_name}`), a dedicated Redis on a free port, TWO "
        "Celery workers (two processes, prefork, concurrency 1 each, `ENGINE_TORCH_THREADS=1`, "
        f"device cpu), gunicorn `{args.gunicorn}` ({gunicorn_processes} worker processes): one "
        "process per core, with 4 threads each so that a process keeps its core busy while a "
        "thread waits on PostgreSQL or Redis. Tried side by side on this machine, `-w 4 "
        "--threads 4`, `-w 3 --threads 2`, `-w 2 --threads 8` and sync `-w 4` / `-w 8` did no "
        "better within the noise, and more processes cost more memory. wrk, gunicorn, PostgreSQL and the idle workers share the same cores.",
        f"- Pages: `{wrk_name}`, `wrk -t{args.wrk_threads} -c{args.connections} "
        f"-d{phase_s}s --latency --timeout={args.wrk_timeout}s -s bench/wrk_mixed.lua`, "
        f'{args.rounds} rounds of mixed, trivial, mixed on "parts only", mixed on "cache off" '
        f"({phase_s} s each, after a {args.warmup_seconds} s mixed warm-up on each server that "
        "is not counted). Three gunicorns with the same options run side by side on the same "
        "database (only the one under wrk is busy): "
        + "; ".join(f"**{name}**: {what}" for name, (what, _env) in VARIANTS.items())
        + ". Before the load, every distinct request was fetched from the cached server and "
        "from each other one: the same status and body, CSRF tokens aside. "
        f"Mixed = {len(entries)} "
        f"requests in a fixed shuffled order ({mix_text}): term pages in both languages with "
        "every `?tier=`, htmx tier swaps (`HX-Request: true`), `/<lang>/terms/<slug>/quiz/`, "
        "`/ja/` and `/en/`, htmx search fragments in both languages. Trivial = `/robots.txt`, a "
        "plain Django view on the same server. Percentiles from wrk's `latency:percentile()`; "
        "the rows over all phases show the mean of the phases' percentiles.",
        "",
        "| phase | requests | req/s | p50 (ms) | p95 (ms) | p99 (ms) | non-2xx/3xx | socket errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *[phase_row(f"{r['name']} ({n + 1})", [r]) for n, r in enumerate(phases)],
        *[phase_row(f"**{name}, all phases**", items) for name, items in by_name.items()],
        phase_row("**trivial, all phases**", trivial),
        "",
        f"- **Ratio mixed / trivial (req/s): {ratio:.3f}** (mixed {rps(mixed):.1f} req/s, "
        f"trivial {rps(trivial):.1f} req/s); the same mixed list on the other servers: "
        + ", ".join(f"{name} {ratios[name]:.3f}" for name in VARIANTS if name != "mixed")
        + ".",
        f"- What each part bought (req/s of the mixed list, same run): keeping the content parts "
        f"(glossary index, term data, layouts, search index) "
        f"{rps(by_name['mixed, parts only']) / rps(by_name['mixed, cache off']):.1f}× over "
        f"computing everything; keeping whole visitor pages on top "
        f"{rps(mixed) / rps(by_name['mixed, parts only']):.1f}× more; "
        f"{rps(mixed) / rps(by_name['mixed, cache off']):.1f}× in all.",
        "- Where a page's time went before (cProfile around Django's test client, 30 term pages "
        "on PostgreSQL, 42 ms each under the profiler): 45 % rendering the template (the term "
        "graph's SVG alone is some 10,000 template variables), 40 % `term_page` (six queries, "
        "the glossary index rebuilt, the learning path), 10 % drawing the term graph; an htmx "
        "tier swap drew the graph it never shows; Django's `get_token` took about 0.4 ms per "
        "visitor without a cookie (a system call per character). Now: the content parts are "
        "kept per content version and language (`lessons.versioning`), a tier swap draws "
        "nothing, visitors' pages are kept whole with their CSRF token put in per request "
        "(`pages.page_cache`), and a visitor's token comes from one `os.urandom` call.",
        "- One request alone, before the load, on the cached server (each distinct URL once, so "
        "computed and kept; ms, p50 / max): "
        + ", ".join(
            f"{kind} {p(values, 50):.0f} / {max(values):.0f}"
            for kind, values in single.items()
            if values
        )
        + ".",
        "",
        f"- Burst: {args.burst} distinct sentences from {args.clients} concurrent clients "
        "(threads, one connection per request) through `POST /api/v1/attention`; each client "
        f"then polls `GET /api/v1/attention/<id>/?layer=0&head=0` every {args.poll_ms:g} ms, "
        f"oldest run first. Both workers had loaded the model before ({len(warm_ids)} warm-up "
        "runs, not counted).",
        "",
        "| burst | value |",
        "|---|---:|",
        f"| runs accepted (202), distinct ids | {len(ids)}, {len(set(ids))} |",
        f"| done / failed / lost / attempts ≠ 1 | {statuses.count('done')} / {len(failed)} / "
        f"{len(lost)} / {len(retried)} |",
        f"| task executions in the worker logs (all {total_rows} runs, warm-up included) | "
        + " + ".join(f"{executions[n]}" for n in executions)
        + f" = {sum(executions.values())} (received {sum(received.values())}) |",
        "| runs per worker | "
        + ", ".join(f"{name} {count}" for name, count in sorted(per_worker.items()))
        + " |",
        f"| all {args.burst} submissions accepted in (s) | {submit_span:.2f} |",
        f"| `POST` p50 / p95 (ms) | {p(accept_ms, 50):.0f} / {p(accept_ms, 95):.0f} |",
        f"| **time to drain**, first submit → last done seen by a client (s) | "
        f"{client_drain:.2f} |",
        f"| time to drain on the server, first `created_at` → last `finished_at` (s) | "
        f"{server_drain:.2f} |",
        f"| throughput while draining (runs/s, server) | {len(done_rows) / server_drain:.1f} |",
        f"| wait `finished_at − created_at` p50 / **p95** / max (ms) | {p(waits, 50):.0f} / "
        f"**{p(waits, 95):.0f}** / {max(waits, default=float('nan')):.0f} |",
        f"| forward pass in the worker (`compute_ms`) p50 / p95 (ms) | {p(compute, 50):.1f} / "
        f"{p(compute, 95):.1f} |",
        "",
        f"- Checks: {verdict}.",
        f"- Logs of this run in `{log_dir.relative_to(common.ROOT)}/` (wrk output in `wrk.log`).",
    ]
    # a failed run is printed but never written over the last good figures
    common.publish(SECTION, "\n".join(lines) + "\n", write=not args.no_write and not failures)
    print(json.dumps({"burst_wall_s": round(burst_wall, 2), "failures": failures}))
    if failures:
        print("\nBENCHMARK FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        print("(RESULTS.md left as it was)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
