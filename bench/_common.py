"""Shared helpers for the benchmarks that run the whole system (``bench_e2e.py``, ``bench_load.py``).

- the machine and software, for the header of a RESULTS.md section;
- ``write_section``: replace one ``## <heading>`` section of ``bench/RESULTS.md`` (the text from
  that heading to the next line starting with ``## ``), keep the others, create the file if needed
  (same rules as ``bench_forward.py``'s own writer);
- ``percentile``;
- subprocesses: start one in its own process group with its output in a log file, stop it (TERM,
  then KILL of its group after a timeout);
- ``world``: a fresh PostgreSQL database, a dedicated Redis on a free port, ``migrate``,
  ``load_content``, ``collectstatic``, Celery workers and gunicorn with production settings, all
  torn down on the way out, whatever happens.

Everything stays on the loopback interface. Every wait is bounded in time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "RESULTS.md"
LOGS = ROOT / ".run" / "bench"  # git-ignored
PYTHON = sys.executable
PG_ADMIN = os.environ.get(
    "BENCH_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


# --- the machine ----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: fall back to what platform knows
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def nproc() -> int:
    """What ``nproc`` says: the cores this process may use."""
    try:
        out = subprocess.run(["nproc"], capture_output=True, text=True, timeout=5, check=True)
        return int(out.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return len(os.sched_getaffinity(0))


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def now_text() -> str:
    return dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def machine_lines(command: str) -> list[str]:
    """Markdown bullets: date, machine, software, command, load average (call at the start)."""
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    software = ", ".join(
        f"{name} {version(name)}" for name in ("torch", "Django", "celery", "gunicorn", "psycopg")
    )
    return [
        f"- Date: {now_text()}",
        f"- Machine: {cpu_model()}, {nproc()} cores (nproc), "
        f"{os.cpu_count()} logical CPUs in /proc/cpuinfo",
        f"- Software: Python {platform.python_version()}, {software}",
        f"- Command: `{command}`",
        f"- Load average when the run started: {load} (the machine is shared and noisy: read the "
        "ratios measured side by side in this run, not the absolute times).",
    ]


# --- figures ----------------------------------------------------------------------------------------


def percentile(values, p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return float("nan")
    rank = (len(data) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def publish(heading: str, section: str, *, write: bool) -> None:
    """Print a section and, unless ``write`` is false, replace it in bench/RESULTS.md."""
    print()
    print(section)
    if write:
        write_section(heading, section)
        print(f"(written to {RESULTS})")


def write_section(heading: str, section: str, path: Path = RESULTS) -> None:
    """Replace the text from ``heading`` up to the next ``## `` line (or append the section).

    ``section`` starts with ``heading`` and ends with a newline. The other sections stay as they
    are; a missing file starts as ``# Benchmarks``. Same rules as bench_forward.py's writer.
    """
    if not path.exists():
        path.write_text("# Benchmarks\n\n" + section, encoding="utf-8")
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        body = "".join(lines)
        path.write_text(body.rstrip("\n") + "\n\n" + section, encoding="utf-8")
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    path.write_text(new, encoding="utf-8")


# --- subprocesses ----------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path
    log_file: object = field(repr=False, default=None)
    own_group: bool = True  # started in its own session: its process group can be killed

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def children(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False, timeout=5
        )
        return [int(pid) for pid in out.stdout.split()]


def start_process(
    name: str, args: list[str], *, env: dict, log_dir: Path, root: Path = ROOT
) -> Proc:
    """Start ``args`` in its own session (so its whole group can be stopped), output to a log.
    ``root``: the checkout it runs in (another one to compare with, see bench_e2e --baseline)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115  closed in stop_process()
    popen = subprocess.Popen(
        args, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Proc(name, popen, log_path, log_file)


def stop_process(proc: Proc, timeout: float = 20) -> None:
    """TERM the process; after ``timeout`` seconds, KILL its process group. Then reap it."""
    if proc.alive():
        with contextlib.suppress(ProcessLookupError):
            proc.popen.terminate()
        try:
            proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"  {proc.name} (pid {proc.pid}) did not stop in {timeout:.0f} s; killing it")
    # Whatever is left in the group we started (pool children, gunicorn workers) goes too.
    if proc.own_group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=5)
    if proc.log_file is not None:
        proc.log_file.close()


def run_checked(args: list[str], *, env: dict, timeout: float = 300, root: Path = ROOT) -> str:
    """Run a short command to completion; raise with its output if it fails."""
    out = subprocess.run(
        args, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out.stdout


def vm_rss_mib(pid: int) -> float:
    """VmRSS of a process from /proc/<pid>/status, in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # the process is gone
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


# --- HTTP on loopback ---------------------------------------------------------------------------


def request(
    method: str, url: str, *, body=None, headers=None, timeout: float = 30
) -> tuple[int, bytes]:
    """One request on a fresh connection; returns (status, body)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        data = None
        send_headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=send_headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def http_json(method: str, url: str, *, body=None, timeout: float = 30) -> tuple[int, dict]:
    status, data = request(method, url, body=body, timeout=timeout)
    try:
        return status, json.loads(data)
    except ValueError:
        return status, {"raw": data[:200].decode(errors="replace")}


def wait_http(url: str, *, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early; see {proc.log_path}")
        try:
            status, _ = request("GET", url, timeout=2)
        except OSError:  # not listening yet
            status = None
        if status == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s; see {proc.log_path}")


# --- the world: database, Redis, workers, web server -------------------------------------------


def _pg_admin():
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)


def fresh_database(name: str) -> str:
    """Drop and create database ``name``; return its DATABASE_URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"bad database name {name!r}")
    with _pg_admin() as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def drop_database(name: str) -> None:
    with _pg_admin() as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def db_connect(database_url: str):
    import psycopg

    return psycopg.connect(database_url, autocommit=True, connect_timeout=5)


def prod_env(*, database_url: str, redis_url: str) -> dict:
    """The environment of every subprocess: production settings against this run's services."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DEBUG", "CACHE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.prod",
        SECRET_KEY=secrets.token_urlsafe(64),  # 86 random characters
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ENGINE_RATE_LIMIT="100000/m",
        ENGINE_DEVICE="cpu",
        CELERY_WORKER_CONCURRENCY="1",
        ENGINE_TORCH_THREADS="1",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def worker_command(name: str, *, loglevel: str = "info") -> list[str]:
    return [
        PYTHON, "-m", "celery", "-A", "config", "worker", "-Q", "inference", "-c", "1",
        "-P", "prefork", "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
        "-l", loglevel,
    ]  # fmt: skip


def wait_workers(broker_url: str, workers: list[Proc], timeout: float = 120) -> None:
    """Ping until every worker answers (celery control ping, a bare app on the same broker)."""
    from celery import Celery

    app = Celery("bench-ping", broker=broker_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in workers:
                if not worker.alive():
                    raise RuntimeError(f"worker {worker.name} exited; see {worker.log_path}")
            replies = app.control.ping(timeout=1.0) or []
            seen = {name.split("@", 1)[0] for reply in replies for name in reply}
            if all(worker.name in seen for worker in workers):
                return
            time.sleep(0.2)
    finally:
        app.close()
    raise RuntimeError(f"workers not ready after {timeout:.0f} s; logs in {workers[0].log_path}")


@dataclass
class World:
    env: dict
    base_url: str
    redis_url: str
    database_url: str
    log_dir: Path
    workers: list[Proc]
    web: Proc
    gunicorn_args: list[str]
    redis: Proc | None = None  # the dedicated redis-server; restart_redis() swaps its process

    def rows(self, sql: str, params=()) -> list[tuple]:
        with db_connect(self.database_url) as connection:
            return connection.execute(sql, params).fetchall()

    def restart_redis(self, *, down_s: float = 0.0, timeout: float = 10) -> float:
        """Stop the dedicated Redis (TERM; it keeps nothing on disk, so every queued message
        goes), wait ``down_s`` seconds, start it again with the same arguments (same port, same
        folder) and wait until it answers. Returns the seconds it did not answer. The teardown
        stops whichever process is current (the ``Proc`` is updated in place)."""
        from engine import redis_server

        if self.redis is None:
            raise RuntimeError("this World has no handle on its Redis")
        args = list(self.redis.popen.args)
        t0 = time.perf_counter()
        stop_process(self.redis, timeout)
        time.sleep(down_s)
        self.redis.popen = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while not redis_server.answers(self.redis_url):
            if not self.redis.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not come back on {self.redis_url}")
            time.sleep(0.05)
        return time.perf_counter() - t0


@contextlib.contextmanager
def world(
    *,
    db_name: str,
    worker_names: list[str],
    gunicorn_args: list[str],
    log_dir: Path,
    worker_loglevel: str = "info",
    root: Path = ROOT,
) -> Iterator[World]:
    """Set up everything a benchmark talks to, yield it, and tear all of it down. ``root``: the
    checkout whose code the web server and the workers run (this one by default)."""
    from engine import redis_server

    with contextlib.ExitStack() as stack:
        t0 = time.perf_counter()
        print(f"database {db_name}: drop and create")
        database_url = fresh_database(db_name)
        stack.callback(drop_database, db_name)

        port = redis_server.free_port()
        redis = redis_server.start(port)
        redis_dir = redis.args[redis.args.index("--dir") + 1]
        stack.callback(shutil.rmtree, redis_dir, True)
        # Callbacks run last-in first-out: Redis stops, then its folder goes.
        redis_proc = Proc("redis", redis, Path(os.devnull), own_group=False)
        stack.callback(stop_process, redis_proc, 10)
        redis_url = f"redis://127.0.0.1:{port}/0"
        print(f"redis on port {port} (dedicated to this run)")

        env = prod_env(database_url=database_url, redis_url=redis_url)
        manage = [PYTHON, "manage.py"]
        run_checked([*manage, "migrate", "--noinput", "-v0"], env=env, root=root)
        print("  " + run_checked([*manage, "load_content"], env=env, root=root).strip())
        run_checked([*manage, "collectstatic", "--noinput", "-v0"], env=env, root=root)

        workers = []
        for name in worker_names:
            proc = start_process(
                name,
                worker_command(name, loglevel=worker_loglevel),
                env=env,
                log_dir=log_dir,
                root=root,
            )
            stack.callback(stop_process, proc, 30)
            workers.append(proc)
        web_port = redis_server.free_port()
        web = start_process(
            "gunicorn",
            [
                PYTHON,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-b",
                f"127.0.0.1:{web_port}",
                *gunicorn_args,
            ],
            env=env,
            log_dir=log_dir,
            root=root,
        )
        stack.callback(stop_process, web, 20)
        base_url = f"http://127.0.0.1:{web_port}"
        wait_workers(redis_url, workers)
        wait_http(base_url + "/robots.txt", proc=web)
        print(
            f"world ready in {time.perf_counter() - t0:.1f} s: {len(workers)} worker(s), "
            f"gunicorn {' '.join(gunicorn_args)} on {base_url}; logs in {log_dir}"
        )
        yield World(
            env,
            base_url,
            redis_url,
            database_url,
            log_dir,
            workers,
            web,
            list(gunicorn_args),
            redis=redis_proc,
        )
        print("tearing down")


def runs_table(world_: World, ids: list[str]) -> dict[str, dict]:
    """The AttentionRun rows of ``ids``, straight from the database."""
    rows = world_.rows(
        "SELECT id::text, status, attempts, created_at, sent_at, started_at, finished_at, "
        "compute_ms, worker, error FROM engine_attentionrun WHERE id = ANY(%s::uuid[])",
        (ids,),
    )
    keys = (
        "id",
        "status",
        "attempts",
        "created_at",
        "sent_at",
        "started_at",
        "finished_at",
        "compute_ms",
        "worker",
        "error",
    )
    return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}


def ms(delta: dt.timedelta | None) -> float:
    return float("nan") if delta is None else delta.total_seconds() * 1000.0
