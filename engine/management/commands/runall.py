"""``make run``: Redis (if none answers), one Celery worker with the sweep, and the web server,
on one machine. Ctrl-C stops everything this command started."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand

from engine import redis_server


class Command(BaseCommand):
    help = "Run Redis (when needed), a Celery worker and the web server; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=1)

    def handle(self, *args, addr: str, concurrency: int, **options):
        children: list[tuple[str, subprocess.Popen]] = []
        url = settings.CELERY_BROKER_URL
        if redis_server.answers(url):
            self.stdout.write(f"Redis answers at {url}; using it.")
        else:
            port = urlparse(url).port or 6379
            self.stdout.write(f"No Redis at {url}; starting {redis_server.binary()} on {port}.")
            children.append(("redis", redis_server.start(port)))
        env = {**os.environ, "CELERY_WORKER_CONCURRENCY": str(concurrency)}
        # The beat schedule (the periodic sweep's state) lives under .run/, which git ignores,
        # so that `make run` leaves the work tree clean.
        run_dir = Path(settings.BASE_DIR) / ".run"
        run_dir.mkdir(exist_ok=True)
        worker = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "inference",
            "-c", str(concurrency), "-B", "-s", str(run_dir / "celerybeat-schedule"),
            "-l", "info", "-n", "inference@%h",
        ]  # fmt: skip
        children.append(("worker", subprocess.Popen(worker, env=env)))
        web = [sys.executable, "manage.py", "runserver", addr, "--noreload"]
        children.append(("web", subprocess.Popen(web, env=env)))
        self.stdout.write(self.style.SUCCESS(f"Attention Lab: http://{addr}/  (Ctrl-C stops it)"))

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, child in children:
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with {child.returncode}; stopping.")
                        stopping = True
                time.sleep(0.5)
        finally:
            for _name, child in reversed(children):
                if child.poll() is None:
                    child.terminate()
            for name, child in reversed(children):
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
                self.stdout.write(f"stopped {name}")
