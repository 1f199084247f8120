"""How long ``/healthz`` takes: with the broker and a worker up, and with the broker down.

Usage:
    .venv/bin/python bench/bench_healthz.py              # writes its section of RESULTS.md
    .venv/bin/python bench/bench_healthz.py --no-write   # prints only

The whole system runs as in production (``_common.world``: PostgreSQL, a dedicated Redis, one
Celery worker, gunicorn). A second gunicorn on the same database points at a Redis port where
nothing listens, for the "broker down" figures. Side by side, interleaved, this process times
the worker ping that ``/healthz`` used to make (``control.ping(timeout=1)``, which waits out its
whole timeout however fast the workers answer) and the one it makes now (``limit=1``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    LOGS,
    machine_lines,
    percentile,
    publish,
    request,
    start_process,
    stop_process,
    wait_http,
    world,
)

HEADING = "## /healthz latency"


def timed_get(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    status, _body = request("GET", url, timeout=10)
    return status, (time.perf_counter() - started) * 1000


def ping_ms(app, *, limit: int | None, timeout: float) -> tuple[int, float]:
    started = time.perf_counter()
    replies = app.control.ping(timeout=timeout, limit=limit) or []
    return len(replies), (time.perf_counter() - started) * 1000


def row(name: str, values: list[float]) -> str:
    return f"| {name} | {len(values)} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f} | {max(values):.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    header = machine_lines("make bench-healthz")
    log_dir = LOGS / "healthz"
    log_dir.mkdir(parents=True, exist_ok=True)
    from celery import Celery

    from engine import redis_server

    with world(
        db_name="attention_lab_bench_healthz",
        worker_names=["healthz"],
        gunicorn_args=["-w", "1"],
        log_dir=log_dir,
    ) as w:
        dead_port = redis_server.free_port()
        down_env = {**w.env, "REDIS_URL": f"redis://127.0.0.1:{dead_port}/0"}
        down_port = redis_server.free_port()
        down_web = start_process(
            "gunicorn-down",
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{down_port}",
             "-w", "1"],
            env=down_env,
            log_dir=log_dir,
        )  # fmt: skip
        app = Celery("bench-healthz", broker=w.redis_url)
        try:
            wait_http(f"http://127.0.0.1:{down_port}/robots.txt", proc=down_web)
            up, down, old_ping, new_ping, statuses = [], [], [], [], set()
            for _ in range(3):  # warm-up: connections, the first ping
                timed_get(w.base_url + "/healthz")
                timed_get(f"http://127.0.0.1:{down_port}/healthz")
            for _ in range(args.requests):
                status, elapsed = timed_get(w.base_url + "/healthz")
                statuses.add(("up", status))
                up.append(elapsed)
                status, elapsed = timed_get(f"http://127.0.0.1:{down_port}/healthz")
                statuses.add(("down", status))
                down.append(elapsed)
                replies, elapsed = ping_ms(app, limit=None, timeout=1.0)
                assert replies == 1, replies
                old_ping.append(elapsed)
                replies, elapsed = ping_ms(app, limit=1, timeout=0.5)
                assert replies == 1, replies
                new_ping.append(elapsed)
        finally:
            app.close()
            stop_process(down_web, 20)
    assert statuses == {("up", 200), ("down", 503)}, statuses
    ratio = percentile(new_ping, 50) / percentile(old_ping, 50)
    lines = [
        HEADING,
        "",
        *header,
        "- Setup: production settings, PostgreSQL, a dedicated Redis, one Celery worker "
        "(prefork, concurrency 1), gunicorn `-w 1`; a second gunicorn `-w 1` whose Redis URL "
        "points at a port where nothing listens. Each request on a fresh connection, from this "
        "process; the four measures interleaved, "
        f"{args.requests} of each after 3 warm-ups.",
        "- `/healthz` answered 200 with everything up and 503 (broker down) on the second server, "
        "every time.",
        "",
        "| measure | n | p50 (ms) | p95 (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|",
        row("`GET /healthz`, broker and worker up", up),
        row("`GET /healthz`, broker down", down),
        row("worker ping as before: `control.ping(timeout=1)`", old_ping),
        row("worker ping now: `control.ping(limit=1, timeout=0.5)`", new_ping),
        "",
        f"Ping now / ping before (p50): **{ratio:.3f}**.",
        "",
    ]
    publish(HEADING, "\n".join(lines), write=not args.no_write)


if __name__ == "__main__":
    main()
