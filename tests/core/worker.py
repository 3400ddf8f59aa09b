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
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass
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


class RedisServer:
    """A redis-server of the test's own, on a free port: for tests that stop the broker
    (never the shared one, which other people's tests are using). Started on entry;
    ``stop()`` and ``start()`` take it away and bring it back on the same port; always
    killed on exit. Nothing is kept on disk."""

    def __init__(self, tmp_path: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _answers(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2) as r:
                return bool(r.ping())
        except redis.exceptions.RedisError:
            return False

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with (self.tmp_path / f"redis-{self.port}.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.tmp_path),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait(self._answers, f"redis-server on port {self.port}", timeout=30, every=0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)
        wait(lambda: not self._answers(), f"redis-server on port {self.port} to stop", 30)


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


@contextlib.contextmanager
def private_database(suffix: str):
    """A PostgreSQL database of the test's own beside the configured one (DATABASE_URL's
    name and ``suffix``), dropped at the end (with anyone still connected)."""
    import psycopg
    from psycopg import sql

    parts = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    name = f"{parts.path.lstrip('/') or 'qip'}_{suffix}"
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))

    def run(statement):
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as db:
            db.execute(statement)

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    run(drop)
    run(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        run(drop)


class Stack:
    """One test's processes. Use as a context manager: on exit every process it started
    is killed (its whole process group), the Celery client is closed and its Redis
    database is emptied.

    By default the portal uses a private SQLite file (a copy of one migrated once for
    the run); ``database`` (a PostgreSQL URL the test created) replaces it. The broker
    is ``redis_url`` (a database no other test uses at the same time: the
    ``private_redis_url`` fixture), or ``redis_server`` / ``redis``: the URL of a server
    of the test's own (a ``RedisServer``'s or a ``PrivateRedis``'s), for tests that
    stop it. ``env`` adds settings, e.g. the outbox's timeouts made short."""

    def __init__(
        self,
        tmp_path: Path,
        smtp: SMTPServer,
        *,
        name: str,
        redis_url: str | None = None,
        redis_server: str | None = None,
        redis: str | None = None,
        database: str | None = None,
        env: dict[str, str] | None = None,
    ):
        self.tmp_path = tmp_path
        self.name = name
        self.db_path = tmp_path / f"{name}.sqlite3"
        self.database_url = database or f"sqlite:///{self.db_path}"
        self.redis_url = redis_url or redis_server or redis
        assert self.redis_url, "give the stack a Redis of its own (private_redis_url)"
        self.env = dict(
            os.environ,
            DEBUG="true",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            MEDIA_ROOT=str(tmp_path / "media"),
            PYTHONUNBUFFERED="1",
            **(env or {}),
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
            # A test that stopped its own Redis has nothing left to empty.
            with contextlib.suppress(redis.exceptions.ConnectionError):
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
        """Give the private database every migration: a copy of the run's migrated
        SQLite (``migrated_database``), or ``manage.py migrate`` on a PostgreSQL one."""
        if self.database_url.startswith("postgres"):
            self.manage("migrate", "--noinput")
        else:
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

    def start_gunicorn(self, name: str, *, workers: int = 2, threads: int = 2) -> str:
        """A web node as deployed (gunicorn, as docker-compose.yml runs it) on a free port;
        returns its base URL once it answers. ``name`` tells the nodes' logs apart."""
        port = free_port()
        web = self._start(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "qip_portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "60",
            ],
            f"gunicorn-{name}.log",
        )
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def answers():
            self._alive(web, f"web node {name}")
            try:
                with opener.open(f"{base}/healthz", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait(answers, f"web node {name} to answer", timeout=START_TIMEOUT, every=0.3)
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
        """Run one statement (``?`` placeholders on SQLite, ``%s`` on PostgreSQL)."""
        if self.database_url.startswith("postgres"):
            import psycopg

            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=10) as db:
                cursor = db.execute(query, params)
                return cursor.fetchall() if cursor.description else []
        with sqlite3.connect(self.db_path, timeout=30) as db:
            return db.execute(query, params).fetchall()


class PrivateRedis:
    """A redis-server of the test's own on a free port, for tests that stop and start
    it: the shared one (``REDIS_URL``) serves other people's tests and is never
    touched. A context manager: on exit the server is killed, whatever happened."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path / "redis"
        self.dir.mkdir(exist_ok=True)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def answers():
            try:
                with redis.Redis(port=self.port, socket_timeout=1) as r:
                    return r.ping()
            except redis.RedisError:
                return False

        wait(answers, "the private redis-server to answer", timeout=30)

    def stop(self) -> None:
        """Kill this server (only this one: by its own process id)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@dataclass(frozen=True)
class Tally:
    expected: int  # emails the outbox holds
    delivered: int  # of those, how many reached the server
    duplicated: int  # extra copies the server received
    one_id_per_email: bool  # every copy of an email had the same Message-ID
    ids_distinct: bool  # no two different emails shared a Message-ID


def tally(stack: Stack, smtp: SMTPServer) -> Tally:
    """Compare the outbox's rows with what the SMTP server received: each email is
    matched by its recipients and subject; copies beyond the rows are duplicates."""
    rows = stack.sql("SELECT recipients, subject FROM core_alert")
    expected = Counter((tuple(json.loads(to)), subject) for to, subject in rows)
    received = Counter()
    ids: dict[tuple, set[str]] = defaultdict(set)
    for to, message in zip(smtp.envelopes, smtp.messages, strict=True):
        key = (tuple(to), str(message["Subject"]))
        received[key] += 1
        ids[key].add(str(message["Message-ID"]))
    every_id = {str(m["Message-ID"]) for m in smtp.messages}
    delivered = sum(min(n, received[key]) for key, n in expected.items())
    return Tally(
        expected=sum(expected.values()),
        delivered=delivered,
        duplicated=sum(max(n - expected[key], 0) for key, n in received.items()),
        # A copy adds no Message-ID of its own...
        one_id_per_email=all(len(ids[key]) <= expected[key] for key in received),
        # ...and different emails never share one.
        ids_distinct=len(every_id) == delivered,
    )


class Browser:
    """A person with a browser: cookies kept, forms posted with their CSRF token. No
    proxy: everything is on 127.0.0.1."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        )
        # Every answer's status, redirects included, in order.
        self.statuses: list[int] = []
        self.opener.add_handler(_StatusRecorder(self.statuses))

    def _open(
        self, path: str, data: dict | bytes | None = None, headers: dict | None = None
    ) -> tuple[int, str, str]:
        body = data
        if isinstance(data, dict):
            body = urllib.parse.urlencode(data, doseq=True).encode()
        # Always http://127.0.0.1 (self.base).
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {})  # noqa: S310
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.geturl(), error.read().decode(errors="replace")

    @staticmethod
    def token(page: str) -> str:
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert found, "no CSRF token on the page"
        return found.group(1)

    def post(self, path: str, data: dict, *, page: str) -> tuple[int, str, str]:
        """Post ``data`` to ``path`` (a form's action) with the CSRF token of ``page``,
        the page that holds the form."""
        return self._open(path, {**data, "csrfmiddlewaretoken": self.token(page)})

    def upload(
        self, path: str, field: str, filename: str, content: bytes, data: dict | None = None
    ) -> tuple[int, str, str]:
        """Load the form at ``path`` and post one file to it, with the form's other
        ``data``, as a browser does (multipart/form-data, with the page's CSRF token)."""
        status, _, page = self.get(path)
        assert status == 200, f"GET {path}: {status}\n{page[:2000]}"
        boundary = f"----qip{os.getpid()}{time.monotonic_ns()}"
        fields = {"csrfmiddlewaretoken": self.token(page), **(data or {})}
        body = "".join(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        ).encode() + (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self._open(path, body, headers)

    def get(self, path: str) -> tuple[int, str, str]:
        """(status, final URL after redirects, page)."""
        return self._open(path)

    def submit(self, path: str, data: dict) -> tuple[int, str, str]:
        """Load the form at ``path`` and post ``data`` to it with the page's CSRF token."""
        status, _, page = self.get(path)
        assert status == 200, f"GET {path}: {status}\n{page[:2000]}"
        return self.post(path, data, page=page)

    def log_in(self, username: str, password: str) -> None:
        status, url, page = self.submit(
            "/accounts/login/", {"username": username, "password": password}
        )
        assert status == 200 and "/accounts/login/" not in url, f"login failed:\n{page[:2000]}"


class _StatusRecorder(urllib.request.BaseHandler):
    """Notes the status of every response, before redirects are followed."""

    handler_order = 100  # before the redirect and error handlers

    def __init__(self, statuses: list[int]):
        self.statuses = statuses

    def http_response(self, request, response):
        self.statuses.append(response.status)
        return response
