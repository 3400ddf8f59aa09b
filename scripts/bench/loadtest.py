"""Load test of the full stack on loopback: gunicorn with the flags of
``docker-compose.yml`` (bound to 127.0.0.1 on a free port), one Celery worker as in the
compose file, the bench PostgreSQL database and Redis; then ``users`` concurrent
signed-in users, each a thread with its own keep-alive connection and cookies, run a
mix of journeys back to back (no think time: a closed loop, so the figures are the
stack's capacity) for ``seconds``, and everything is stopped.

No third-party load tool: the client is the standard library (``http.client``), so
nothing is installed. Users sign in by posting the login form with its CSRF token,
before the clock starts, a few at a time with retries and a generous timeout (password
hashing is deliberately slow and is not what is measured); every user who could not
sign in is recorded, and the run is marked failed.

After the mix, the trivial page alone (the ceiling), then each page alone, *warm*: an
untimed warm-up pass in which the page's users request it as in the mix (random plans,
random filters), then the timed pass in which each user requests again, in turn, the
URLs it requested in the warm-up. So every timed request is of a URL the same user has
viewed since the last change (served from the cache where the page has one), as the
in-process "cached" columns are. A page's throughput alone as a share of the trivial
page's is what one request of it costs, in requests of the trivial page.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.cookies import SimpleCookie
from pathlib import Path

from scripts.bench import config

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
BASELINE = "baseline: password change page"
FILTER_LIVE = "register filtered: live, one location, by risk"
FILTER_OPEN = "register filtered: open, one theme"
SEARCH = "register search"
FILTER_OVERDUE = "register filtered: overdue actions"
ROLE_NAMES = {
    "manager": "manager",
    "quality_lead": "quality lead",
    "governance_member": "governance member",
    "viewer": "viewer",
}
# Signing in: how many users at once, how many tries each, and how long one request may
# take (a password hash under load can take many seconds; the mix's timeout is shorter).
SIGN_IN_AT_ONCE = 2
SIGN_IN_TRIES = 4
SIGN_IN_TIMEOUT = 180.0


def home_page(role: str) -> str:
    return f"home: {ROLE_NAMES.get(role, role)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- The client ---------------------------------------------------------------------


class Session:
    def __init__(self, port: int, timeout: float = 30):
        self.port, self.timeout = port, timeout
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self.conn

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Host": "127.0.0.1", "User-Agent": "qip-bench"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):  # one retry when a kept-alive connection was closed
            try:
                conn = self._connection()
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                text = response.read().decode("utf-8", "replace")
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
            except Exception:
                # A timeout or protocol error leaves the connection unusable: start afresh
                # next time rather than failing every later request at once.
                self.close()
                raise
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status, text

    def login(self, username: str, password: str) -> bool:
        from urllib.parse import urlencode

        status, text = self.request("GET", "/accounts/login/")
        match = CSRF_INPUT.search(text)
        if status != 200 or not match:
            return False
        body = urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": match.group(1)}
        )
        status, _ = self.request("POST", "/accounts/login/", body)
        return status == 302 and "sessionid" in self.cookies

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def journeys_for(role: str, data: dict) -> list[tuple[str, int, callable]]:
    """(page, weight, path()) for a user of ``role``. ``data`` holds references and ids
    read from the database before the run."""
    rng = random.Random()
    live = data["live_refs"]
    mine = data["manager_refs"].get(data["who"], live) or live
    review = data["review_refs"]
    # The four filters of the register share the weight one "register filtered" had.
    filters = [
        (
            FILTER_LIVE,
            lambda: (
                f"/plans/?status=live&sort=-risk_score&location={rng.choice(data['location_ids'])}"
            ),
        ),
        (FILTER_OPEN, lambda: f"/plans/?status=open&theme={rng.choice(data['theme_ids'])}"),
        (SEARCH, lambda: f"/plans/?q={rng.choice(['falls', 'medicines', 'night', 'QIP-2025'])}"),
        (FILTER_OVERDUE, lambda: "/plans/?overdue=on"),
    ]
    common = [
        (BASELINE, 15, lambda: "/accounts/password/"),
        (home_page(role), 15, lambda: "/"),
        ("register", 15, lambda: f"/plans/?page={rng.randint(1, 5)}"),
    ] + [(page, 15 / len(filters), path) for page, path in filters]
    if role == "manager":
        return common + [("plan page", 40, lambda: f"/plans/{rng.choice(mine)}/")]
    if role == "quality_lead":
        return common + [
            ("plan page", 30, lambda: f"/plans/{rng.choice(live)}/"),
            ("closure report page", 10, lambda: f"/governance/plans/{rng.choice(review)}/report/"),
        ]
    if role == "governance_member":
        return common + [
            ("plan page", 20, lambda: f"/plans/{rng.choice(live)}/"),
            ("governance home", 10, lambda: "/governance/"),
            ("closure report page", 10, lambda: f"/governance/plans/{rng.choice(review)}/report/"),
        ]
    return common + [("plan page", 40, lambda: f"/plans/{rng.choice(mine)}/")]  # viewers


def sign_in(
    port: int,
    people: list[tuple[str, str]],
    *,
    at_once: int = SIGN_IN_AT_ONCE,
    tries: int = SIGN_IN_TRIES,
    timeout: float = SIGN_IN_TIMEOUT,
    log=print,
) -> tuple[list[Session | None], list[str]]:
    """One signed-in ``Session`` per virtual user (None where signing in failed), and
    the users who could not sign in (one line each, with the last error). Users sign
    in through the real login form, ``at_once`` at a time (password hashing is slow on
    purpose: fifty at once on two cores outlast any client's patience), each up to
    ``tries`` times with ``timeout`` seconds per request, before any clock starts.
    Runs that share the sessions start signed in."""
    sessions: list[Session | None] = [None] * len(people)
    errors: dict[int, str] = {}
    queue = list(enumerate(people))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i, (username, _role) = queue.pop(0)
            for attempt in range(1, tries + 1):
                session = Session(port, timeout=timeout)
                try:
                    ok = session.login(username, config.PASSWORD)
                    error = "" if ok else "the login form did not sign in"
                except Exception as exc:  # noqa: BLE001 - retried, then recorded
                    ok, error = False, f"{type(exc).__name__}: {exc}"
                if ok:
                    # Later runs use their own (shorter) timeout per request.
                    session.timeout = 30
                    session.close()  # the next request opens a connection with it
                    sessions[i] = session
                    errors.pop(i, None)
                    break
                session.close()
                errors[i] = f"{username} (try {attempt} of {tries}): {error}"
                time.sleep(min(5, attempt))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, at_once))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failures = [errors[i] for i in sorted(errors)]
    if failures:
        log(f"  NOT SIGNED IN: {len(failures)} of {len(people)} users: " + "; ".join(failures))
    return sessions, failures


def run_users(
    port: int,
    people: list[tuple[str, str]],
    data: dict,
    seconds: float,
    *,
    only: str | None = None,
    sessions: list[Session | None] | None = None,
    replay: dict[int, list[str]] | None = None,
) -> dict:
    """``people``: (username, role) per virtual user. Returns per-page samples, and
    the URLs each user requested (``urls``, by the user's index).
    ``only``: every user whose journeys include this page requests just it (the others
    sit the run out). ``sessions``: from ``sign_in``, one per user; without them each
    user signs in first (before the clock starts). ``replay``: by user index, URLs
    (of the ``only`` page) the user requests again in turn, round and round, instead of
    choosing afresh: the timed pass of a warm page."""
    samples: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    error_examples: list[str] = []
    lock = threading.Lock()
    deadline = [0.0]
    began = [0.0]

    def start_clock() -> None:
        # Runs once, before any thread is released, so none sees an unset deadline.
        began[0] = time.perf_counter()
        deadline[0] = began[0] + seconds

    ready = threading.Barrier(len(people) + 1, action=start_clock)
    login_failures: list[str] = []
    if sessions is None:
        sessions, login_failures = sign_in(port, people)
    active: list[str] = []
    urls: dict[int, list[str]] = defaultdict(list)

    def user(i: int, username: str, role: str) -> None:
        session, ok = sessions[i] or Session(port), sessions[i] is not None
        menu = journeys_for(role, dict(data, who=username))
        if only:
            menu = [journey for journey in menu if journey[0] == only]
            ok = ok and bool(menu)
        weights = [w for _, w, _ in menu]
        rng = random.Random(username)
        again = (replay or {}).get(i) or []
        if replay is not None and not again:
            ok = False  # nothing requested in the warm-up: nothing to time
        ready.wait()
        if ok:
            active.append(username)
        n = 0
        while ok and time.perf_counter() < deadline[0]:
            if again:
                page, url = only, again[n % len(again)]
                n += 1
            else:
                page, _, path = rng.choices(menu, weights=weights)[0]
                url = path()
            started = time.perf_counter()
            try:
                status, _ = session.request("GET", url)
            except Exception as exc:  # noqa: BLE001
                status = f"{type(exc).__name__}"
            elapsed = time.perf_counter() - started
            with lock:
                if time.perf_counter() <= deadline[0] + 5:
                    samples[page].append(elapsed)
                if status != 200:
                    errors[page] += 1
                    if len(error_examples) < 10:
                        error_examples.append(f"{status} {url}")
                else:
                    urls[i].append(url)  # served: in the cache now, where the page has one
        session.close()

    threads = [
        threading.Thread(target=user, args=(i, *p), daemon=True) for i, p in enumerate(people)
    ]
    for t in threads:
        t.start()
    ready.wait()
    start = began[0]
    for t in threads:
        t.join(timeout=seconds + 60)
    duration = time.perf_counter() - start
    for i, t in enumerate(threads):
        if t.is_alive():  # still waiting on its request: its session is not free
            sessions[i] = None
    return {
        "samples": samples,
        "errors": errors,
        "error_examples": error_examples,
        "duration": duration,
        "login_failures": login_failures,
        "active_users": len(active),
        "stuck_threads": sum(t.is_alive() for t in threads),
        "urls": dict(urls),
    }


def pages_alone(
    port: int,
    people: list[tuple[str, str]],
    data: dict,
    sessions: list[Session | None],
    seconds: float,
    baseline_rps: float,
    *,
    cold=lambda: None,
    warmup_seconds: float | None = None,
) -> list[dict]:
    """Each page of the mix (but the baseline) alone, warm, by the users whose journeys
    include it: ``cold()`` (the cache emptied, so every page starts alike), an untimed
    warm-up pass of ``warmup_seconds`` (default ``seconds``) in which they request it as
    in the mix, then ``seconds`` timed in which each user requests again, in turn, the
    URLs it requested in the warm-up. Requests/s, latency, errors, and throughput as a
    share of the baseline's (``baseline_rps``, from the ceiling run)."""
    pages: list[str] = []
    for username, role in people:
        for page, _, _ in journeys_for(role, dict(data, who=username)):
            if page != BASELINE and page not in pages:
                pages.append(page)
    rows = []
    for page in pages:
        cold()
        warm = run_users(
            port, people, data, warmup_seconds or seconds, only=page, sessions=sessions
        )
        raw = run_users(
            port, people, data, seconds, only=page, sessions=sessions, replay=warm["urls"]
        )
        summary = summarise(raw, raw["active_users"])
        rows.append(
            {
                "page": page,
                "users": raw["active_users"],
                "seconds": summary["seconds"],
                "requests": summary["requests"],
                "rps": summary["rps"],
                "p50_ms": summary["p50_ms"],
                "p95_ms": summary["p95_ms"],
                "errors": summary["errors"] + sum(warm["errors"].values()),
                "warmup_requests": sum(len(v) for v in warm["samples"].values()),
                "distinct_urls": len({u for v in warm["urls"].values() for u in v}),
                "share_of_baseline": round(summary["rps"] / baseline_rps, 3)
                if baseline_rps
                else None,
            }
        )
    return rows


def summarise(raw: dict, users: int) -> dict:
    from scripts.bench.measure import percentile

    duration = raw["duration"]
    everything = [x for v in raw["samples"].values() for x in v]
    base = raw["samples"].get(BASELINE) or [float("nan")]
    base_mean = statistics.fmean(base)
    pages = []
    for page, values in sorted(raw["samples"].items(), key=lambda kv: -len(kv[1])):
        mean = statistics.fmean(values)
        pages.append(
            {
                "page": page,
                "requests": len(values),
                "rps": round(len(values) / duration, 1),
                "p50_ms": round(percentile(values, 50) * 1000),
                "p95_ms": round(percentile(values, 95) * 1000),
                "mean_ms": round(mean * 1000),
                "errors": raw["errors"].get(page, 0),
                "relative_capacity": round(base_mean / mean, 2) if mean else None,
            }
        )
    return {
        "users": users,
        "seconds": round(duration, 1),
        "requests": len(everything),
        "rps": round(len(everything) / duration, 1),
        "p50_ms": round(percentile(everything, 50) * 1000) if everything else None,
        "p95_ms": round(percentile(everything, 95) * 1000) if everything else None,
        "errors": sum(raw["errors"].values()),
        "error_examples": raw["error_examples"],
        "login_failures": raw["login_failures"],
        "active_users": raw.get("active_users"),
        "stuck_threads": raw["stuck_threads"],
        "pages": pages,
    }


def people_and_data(users: int) -> tuple[list[tuple[str, str]], dict]:
    """Who the virtual users are (20 managers, 15 quality-lead sessions, 10 governance
    members, 5 viewers per 50) and the references they visit."""
    from plans.models import Location, Plan, Theme, User

    def names(role, prefix):
        return list(
            User.objects.filter(role=role, username__startswith=prefix)
            .order_by("username")
            .values_list("username", flat=True)
        )

    managers = names("manager", "bench_mgr")
    leads = names("quality_lead", "bench_lead")
    members = names("governance_member", "bench_gov")
    viewers = names("viewer", "bench_viewer")
    mix = [
        ("manager", managers, 20),
        ("quality_lead", leads, 15),
        ("governance_member", members, 10),
        ("viewer", viewers, 5),
    ]
    people = []
    for role, pool, share in mix:
        n = round(users * share / 50)
        people += [(pool[i % len(pool)], role) for i in range(n)]
    people = people[:users]
    live = list(
        Plan.objects.filter(status__in=["live", "monitoring"])
        .order_by("?")
        .values_list("reference", flat=True)[:2000]
    )
    data = {
        "live_refs": live,
        "review_refs": list(
            Plan.objects.filter(status="closure_review").values_list("reference", flat=True)[:500]
        ),
        "location_ids": list(Location.objects.values_list("pk", flat=True)),
        "theme_ids": list(Theme.objects.values_list("pk", flat=True)),
        "manager_refs": {},
    }
    for username, role in people:
        if role in ("manager", "viewer") and username not in data["manager_refs"]:
            user = User.objects.get(username=username)
            data["manager_refs"][username] = list(
                Plan.objects.filter(locations__in=user.locations.all())
                .values_list("reference", flat=True)
                .distinct()[:200]
            )
    return people, data


# --- The stack ------------------------------------------------------------------------


def _start(cmd: list[str], env: dict, root: Path, log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - closed when the process is stopped
    return subprocess.Popen(
        cmd, cwd=root, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """Stop a process this harness started, and its children (its own process group)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_http(port: int, path: str, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def _wait_log(log: Path, needle: str, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if log.exists() and needle in log.read_text(errors="replace"):
            return True
        time.sleep(0.5)
    return False


def empty_cache(redis_url: str) -> int:
    """Delete the portal's cached entries from the Redis database at ``redis_url``,
    leaving the Celery worker's queues and bindings in the same database alone
    (Django's cache keys all start ":1:"). Returns how many were deleted."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=":1:*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


def run_stack(*, env: dict, users: int, seconds: int, root: Path, work: Path) -> dict:
    bin_dir = Path(sys.executable).parent
    port = free_port()
    full_env = {**os.environ, **env}
    gunicorn = [
        str(bin_dir / "gunicorn"),
        "qip_portal.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "3",
        "--threads",
        "2",
        "--timeout",
        "60",
        "--access-logfile",
        "-",
    ]
    worker = [
        str(bin_dir / "celery"),
        "-A",
        "qip_portal",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "2",
    ]
    people, data = people_and_data(users)
    # The bench's own Redis database starts empty: no task or cached figure left by an
    # earlier run, so every run starts as cold as the first (the worst case).
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()

    def cold() -> None:
        empty_cache(env["REDIS_URL"])

    from django.db import connection

    connection.close()
    web_log, worker_log = work / "gunicorn.log", work / "worker.log"
    procs = []
    try:
        procs.append(_start(worker, full_env, root, worker_log))
        procs.append(_start(gunicorn, full_env, root, web_log))
        if not _wait_http(port, "/healthz", 60):
            raise RuntimeError(f"gunicorn did not answer /healthz; see {web_log}")
        worker_ready = _wait_log(worker_log, "ready.", 60)
        started = time.perf_counter()
        load_before = os.getloadavg()
        signing_in = time.perf_counter()
        sessions, login_failures = sign_in(port, people)
        sign_in_seconds = round(time.perf_counter() - signing_in, 1)
        raw = run_users(port, people, data, seconds, sessions=sessions)
        raw["login_failures"] = login_failures
        result = summarise(raw, users)
        result["signed_in"] = sum(s is not None for s in sessions)
        result["sign_in"] = {
            "seconds": sign_in_seconds,
            "at_once": SIGN_IN_AT_ONCE,
            "tries": SIGN_IN_TRIES,
            "timeout_seconds": SIGN_IN_TIMEOUT,
        }
        # The same users on the trivial page alone, right after: what this machine, this
        # client and this stack can serve at best, so the mix's figures can be read
        # against it (the budget is absolute; the machine is not).
        ceiling_seconds = max(10, seconds // 3)
        result["ceiling"] = summarise(
            run_users(port, people, data, ceiling_seconds, only=BASELINE, sessions=sessions),
            users,
        )
        result["ceiling"]["seconds_requested"] = ceiling_seconds
        # Then each page of the mix alone, the same way: its throughput as a share of the
        # trivial page's is what one request of it costs, measured on this machine in
        # this run (latencies within the mix cannot say: every page waits in the same
        # queue, so all come out alike).
        alone_seconds = max(5, seconds // 6)
        result["alone"] = pages_alone(
            port,
            people,
            data,
            sessions,
            alone_seconds,
            result["ceiling"]["rps"],
            cold=cold,
            warmup_seconds=alone_seconds,
        )
        result["alone_seconds"] = {"warmup": alone_seconds, "timed": alone_seconds}
        for session in sessions:
            if session is not None:
                session.close()
        result["loadavg_before"] = [round(x, 2) for x in load_before]
        result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        result["wall_seconds_with_logins"] = round(time.perf_counter() - started, 1)
        result["worker_ready"] = worker_ready
        result["gunicorn"] = " ".join(gunicorn[1:])
        result["worker"] = " ".join(worker[1:])
        result["redis"] = env.get("REDIS_URL", "")
        result["conn_max_age"] = env.get("DB_CONN_MAX_AGE", "unset")
        return result
    finally:
        for proc in reversed(procs):
            _stop(proc)
