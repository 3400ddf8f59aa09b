"""The outside world for tests of a real Celery worker: a private SQLite file, a Redis
database of the test's own (conftest.py's ``private_redis_url``), the local SMTP server
(``tests/core/smtp_server.py``), and the portal's own processes (``manage.py`` commands,
``celery worker``, ``runserver``), each started in a process group of its own and always
killed when the test ends.

Tasks are sent the way beat sends them, through the broker, by a small Celery client in
the test process (no beat runs), and the test reads their results from Redis. Only
127.0.0.1 is used, and every wait is bounded."""

from __future__ import annotations

import contextlib
import fcntl
import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import redis
from celery import Celery

from tests.core.smtp_server import SMTPServer

ROOT = Path(__file__).resolve().parents[2]
# Generous: the machine that runs the suite may be small and busy.
START_TIMEOUT = 120.0
TASK_TIMEOUT = 120.0


def wait(condition, what: str, timeout: float = 60.0, every: float = 0.1):
    """Poll ``condition`` until it returns something true (which is returned), or fail
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def migrated_database(target: Path, *, tmp_path: Path, env: dict) -> None:
    """Write at ``target`` a SQLite database with every migration: a copy of one that
    ``manage.py migrate`` built once for the whole run (a migrate costs about ten seconds
    of CPU here). Under pytest-xdist the processes share it: it lives in the run's
    temporary folder (``tmp_path`` is the test's), and the first to need it builds it
    while holding a lock."""
    basetemp = tmp_path.parent  # tmp_path is <basetemp>/<test name>N
    shared = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    template = shared / "migrated-template.sqlite3"
    with (shared / "migrated-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not template.exists():
            building = shared / f"migrated-template-{os.getpid()}.sqlite3"
            done = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput"],
                cwd=ROOT,
                env=dict(env, DATABASE_URL=f"sqlite:///{building}"),
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert done.returncode == 0, f"migrate failed:\n{done.stdout}\n{done.stderr}"
            # Everything in the one file (no write-ahead log beside it) before it is
            # renamed; each copy goes back to WAL when the portal opens it.
            with contextlib.closing(sqlite3.connect(building)) as db:
                db.execute("PRAGMA journal_mode=DELETE")
            building.rename(template)
    # SQLite's backup API: a consistent copy, even while another process reads it.
    with (
        contextlib.closing(sqlite3.connect(template)) as source,
        contextlib.closing(sqlite3.connect(target)) as target_db,
    ):
        source.backup(target_db)


class Stack:
    """One test's processes. Use as a context manager: on exit every process it started
    is killed (its whole process group), the Celery client is closed and its Redis
    database is emptied."""

    def __init__(self, tmp_path: Path, smtp: SMTPServer, *, redis_url: str, name: str):
        """``redis_url``: a database no other test uses at the same time (the
        ``private_redis_url`` fixture), so no other test's tasks are picked up (or ours
        lost)."""
        self.tmp_path = tmp_path
        self.name = name
        self.db_path = tmp_path / f"{name}.sqlite3"
        self.redis_url = redis_url
        self.env = dict(
            os.environ,
            DEBUG="true",
            DATABASE_URL=f"sqlite:///{self.db_path}",
            REDIS_URL=self.redis_url,
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            MEDIA_ROOT=str(tmp_path / "media"),
            PYTHONUNBUFFERED="1",
        )
        self.processes: list[subprocess.Popen] = []
        self.logs: dict[subprocess.Popen, Path] = {}
        self.client = Celery(
            f"{name}-client", broker=self.redis_url, backend=self.redis_url, set_as_current=False
        )
        self.client.conf.broker_connection_retry_on_startup = True

    def __enter__(self) -> Stack:
        self.flush_redis()
        return self

    def __exit__(self, *exc) -> None:
        try:
            for process in self.processes:
                self.stop(process)
        finally:
            self.client.close()
            self.flush_redis()

    def flush_redis(self) -> None:
        with redis.Redis.from_url(self.redis_url, socket_timeout=10) as r:
            r.flushdb()

    # --- Processes ----------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 240) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def migrate(self) -> None:
        """Give the private database every migration (``migrated_database``)."""
        migrated_database(self.db_path, tmp_path=self.tmp_path, env=self.env)

    def setup(self, script: str) -> dict:
        """Migrate the private database and run ``script`` in ``manage.py shell``; the
        script's last line of output is JSON, returned."""
        self.migrate()
        out = self.manage("shell", "-c", script)
        return json.loads(out.strip().splitlines()[-1])

    def _start(self, args: list[str], log_name: str) -> subprocess.Popen:
        log_path = self.tmp_path / log_name
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one
            )
        self.processes.append(process)
        self.logs[process] = log_path
        return process

    def log(self, process: subprocess.Popen) -> str:
        return self.logs[process].read_text(errors="replace")

    def _alive(self, process: subprocess.Popen, what: str) -> None:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited ({process.returncode}):\n{self.log(process)}")

    def start_worker(self, n: int = 1, *, concurrency: int = 1) -> subprocess.Popen:
        """A worker as deployed (``celery -A qip_portal worker``), without beat; returns
        once it is ready to take tasks."""
        worker = self._start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "qip_portal",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                f"{self.name}-{os.getpid()}-{n}@%h",
            ],
            f"worker{n}.log",
        )

        def ready():
            self._alive(worker, "the worker")
            return " ready." in self.log(worker)

        wait(ready, "the worker to be ready", timeout=START_TIMEOUT, every=0.2)
        return worker

    def start_web(self) -> str:
        """The portal's web server on a free port; returns its base URL once it answers."""
        port = free_port()
        web = self._start(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            "web.log",
        )
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def answers():
            self._alive(web, "the web server")
            try:
                with opener.open(f"{base}/healthz", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait(answers, "the web server to answer", timeout=START_TIMEOUT, every=0.3)
        return base

    def stop(self, process: subprocess.Popen) -> None:
        """Ask the main process politely (a worker's warm shutdown lets its pool finish
        their tasks), then kill whatever is left of the group."""
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # and any child left behind
        process.wait(timeout=30)

    # --- Tasks, as beat sends them --------------------------------------------------

    def send(self, task: str, *args):
        return self.client.send_task(task, args=args)

    def call(self, task: str, *args):
        """Send ``task`` through the broker and wait for the worker's result."""
        return self.send(task, *args).get(timeout=TASK_TIMEOUT)

    def purge(self) -> int:
        """Drop every task waiting in the broker (as a broker that lost them would)."""
        return self.client.control.purge()

    # --- The database, read (and time moved) behind the portal's back -----------------

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.db_path, timeout=30) as db:
            return db.execute(query, params).fetchall()


class Browser:
    """A person with a browser: cookies kept, forms posted with their CSRF token. No
    proxy: everything is on 127.0.0.1."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        )

    def _open(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.geturl(), error.read().decode(errors="replace")

    def get(self, path: str) -> tuple[int, str, str]:
        """(status, final URL after redirects, page)."""
        return self._open(path)

    def submit(self, path: str, data: dict) -> tuple[int, str, str]:
        """Load the form at ``path`` and post ``data`` to it with the page's CSRF token."""
        status, _, page = self.get(path)
        assert status == 200, f"GET {path}: {status}\n{page[:2000]}"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, f"no CSRF token on {path}"
        return self._open(path, {**data, "csrfmiddlewaretoken": token.group(1)})

    def log_in(self, username: str, password: str) -> None:
        status, url, page = self.submit(
            "/accounts/login/", {"username": username, "password": password}
        )
        assert status == 200 and "/accounts/login/" not in url, f"login failed:\n{page[:2000]}"
