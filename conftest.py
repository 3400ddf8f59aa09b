"""Personas shared by every test: one per role, plus an outsider who works at another
location. Factories build the rest (tests/factories.py)."""

import pytest

from tests import factories


@pytest.fixture
def oakfield(db):
    return factories.LocationFactory(name="Oakfield House")


@pytest.fixture
def riverside(db):
    return factories.LocationFactory(name="Riverside Court")


@pytest.fixture
def quality_lead(db):
    return factories.UserFactory(username="lead", role="quality_lead")


@pytest.fixture
def manager(oakfield):
    return factories.UserFactory(username="manager", role="manager", locations=[oakfield])


@pytest.fixture
def outsider(riverside):
    """A manager at another location: must never see Oakfield's plans."""
    return factories.UserFactory(username="outsider", role="manager", locations=[riverside])


@pytest.fixture
def viewer(oakfield):
    return factories.UserFactory(username="viewer", role="viewer", locations=[oakfield])


@pytest.fixture
def governance_member(db):
    return factories.UserFactory(username="member", role="governance_member")


@pytest.fixture
def administrator(db):
    return factories.UserFactory(
        username="admin", role="administrator", is_staff=True, is_superuser=True
    )


@pytest.fixture
def flaky(settings):
    """The mail server fails the sends appended to ``flaky.failures``, then recovers
    (``tests/core/flaky.py``): SMTP is the outside world, the one thing mocked."""
    from tests.core.flaky import FlakyBackend

    settings.EMAIL_BACKEND = "tests.core.flaky.FlakyBackend"
    FlakyBackend.failures = []
    FlakyBackend.delay = 0.0
    yield FlakyBackend
    FlakyBackend.failures = []
    FlakyBackend.delay = 0.0


@pytest.fixture
def plan(quality_lead, oakfield):
    """A live plan at Oakfield with agreed criteria, one indicator and one action."""
    return factories.live_plan(owner=quality_lead, locations=[oakfield])


# --- Redis databases, one set per test process ----------------------------------------
# The suite may run in several processes at once (pytest-xdist: `-n 3`). Every test
# empties the Django cache (a FLUSHDB on Redis), and tests of a real worker use Redis as
# their broker, so no two processes may share a database. The process numbered N (gwN
# under xdist; 0 for a serial run) owns two databases on the REDIS_URL server, counted
# from REDIS_URL's own database B: B + 2N for the cache (and the Celery settings of the
# test process), B + 2N + 1 for `private_redis_url`. A serial run therefore keeps the
# cache where REDIS_URL points, as before.

_REDIS_DATABASES_PER_PROCESS = 2
_private_redis_key = pytest.StashKey[str]()


def _process_number() -> int:
    import os

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw3" in an xdist worker
    return int(worker[2:]) if worker.startswith("gw") else 0


def _redis_database(url: str) -> int:
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    if parts.scheme == "unix":
        return int(parse_qs(parts.query).get("db", ["0"])[0])
    return int(parts.path.strip("/") or 0)


def _with_redis_database(url: str, database: int) -> str:
    from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = parse_qs(parts.query)
        query["db"] = [str(database)]
        # Built by hand: urlunsplit would drop the empty host, writing "unix:/path".
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query, doseq=True)}"
    return urlunsplit(parts._replace(path=f"/{database}"))


def _check_redis_has_database(url: str, database: int) -> None:
    """Redis has 16 databases unless configured otherwise: say so plainly, rather than
    let a test fail on "DB index is out of range"."""
    if database < 16:
        return
    import redis

    try:
        with redis.Redis.from_url(_with_redis_database(url, 0), socket_timeout=5) as r:
            count = int(r.config_get("databases")["databases"])
    except Exception:  # unreachable, or CONFIG refused: assume the default
        count = 16
    if database >= count:
        raise pytest.UsageError(
            f"Test process {_process_number()} needs Redis database {database}, and the "
            f"server at REDIS_URL has {count}: run fewer xdist workers (-n), or a Redis "
            f"with more (redis-server --databases N)."
        )


def _process_redis_urls(base: str, process: int) -> tuple[str, str]:
    """(the cache's URL, the private one) of test process number ``process``."""
    first = _redis_database(base) + _REDIS_DATABASES_PER_PROCESS * process
    _check_redis_has_database(base, first + 1)
    return _with_redis_database(base, first), _with_redis_database(base, first + 1)


def pytest_configure(config):
    """Settings for the whole test process, made after they are loaded and before any
    test runs: fast password hashing, and this process's own Redis databases."""
    from django.conf import settings

    # PBKDF2 cost 0.64 s a password on the 2-core machine when busy (measured), and
    # every persona has one and every sign-in checks one: minutes over the suite. The portal keeps
    # Django's default hashers, unchanged, so nothing of ours goes untested. (A
    # subprocess, e.g. a real worker's set-up script, still uses the default.)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _use_own_redis_databases(config)


def _use_own_redis_databases(config) -> None:
    """Point this process's cache and Celery settings at its own Redis database, before
    any test touches the cache or Celery; the environment's REDIS_URL is rewritten too,
    so a subprocess that inherits it uses the same database."""
    import os

    from django.conf import settings

    if not settings.REDIS_URL:
        # The file cache (no Redis): a folder of this process's own, never the
        # developer's .cache, nor another test process's.
        import tempfile

        settings.CACHES["default"]["LOCATION"] = tempfile.mkdtemp(prefix="qip-test-cache-")
        os.environ["CACHE_DIR"] = settings.CACHES["default"]["LOCATION"]
        return
    ours, private = _process_redis_urls(settings.REDIS_URL, _process_number())
    settings.REDIS_URL = ours
    settings.CACHES["default"]["LOCATION"] = ours
    settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = ours
    os.environ["REDIS_URL"] = ours
    config.stash[_private_redis_key] = private

    from qip_portal.celery import app

    app.conf.broker_url = app.conf.result_backend = ours


@pytest.fixture
def private_redis_url(request):
    """A Redis database of this test's own (its process's second one, see above), empty
    when the test starts and emptied when it ends: for a broker of a real Celery worker
    or anything else that must not meet the cache. Needs REDIS_URL (fails under CI)."""
    import redis

    url = request.config.stash.get(_private_redis_key, None)
    _require("Redis (REDIS_URL=redis://...)", url is not None)
    with redis.Redis.from_url(url, socket_timeout=10) as r:
        r.flushdb()
    yield url
    with redis.Redis.from_url(url, socket_timeout=10) as r:
        r.flushdb()


# --- Tests that need a real service -------------------------------------------------
# Locally they are skipped when the service is not configured; under CI
# (REQUIRE_SERVICES=1, set by .ci/run) a missing service is a failure, never a skip.


def _require(service: str, available: bool) -> None:
    import os

    if available:
        return
    message = f"needs {service}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and REQUIRE_SERVICES=1: CI must run it", pytrace=False)
    pytest.skip(message)


def pytest_runtest_setup(item):
    from django.conf import settings

    if item.get_closest_marker("postgres"):
        engine = settings.DATABASES["default"]["ENGINE"]
        _require("PostgreSQL (DATABASE_URL=postgres://...)", "postgresql" in engine)
    if item.get_closest_marker("redis"):
        _require("Redis (REDIS_URL=redis://...)", bool(settings.REDIS_URL))


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: cached figures (core.freshness) are keyed
    on ids and dates that another test's rolled-back rows may have used."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _tasks_run_in_process(request):
    """Tasks run eagerly in tests even when REDIS_URL is set (CI), so a test sees what
    a task did. Tests of a real worker start one in a subprocess with its own settings."""
    from qip_portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


# --- Object storage (S3) -------------------------------------------------------------
# Tests of the bucket storage (STORAGE_URL) run against a local S3-compatible server:
# moto_server, which this process starts the first time a test asks for it
# (tests/s3_server.py), or TEST_STORAGE_SERVER's. Like the other services: skipped
# without it locally, a failure under REQUIRE_SERVICES=1.


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    from tests.s3_server import S3Server

    server = S3Server.from_environment()
    if server is None:
        server = S3Server.start_moto(tmp_path_factory.getbasetemp() / "moto")
    _require("an S3-compatible server (moto_server: pip install -e '.[dev]')", server is not None)
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server):
    """An empty bucket of this test's own (``.url`` is its STORAGE_URL)."""
    from tests.s3_server import Bucket

    with Bucket(s3_server) as made:
        yield made


@pytest.fixture
def bucket_storage(settings, bucket):
    """The portal's private files in ``bucket``, as STORAGE_URL would put them."""
    from qip_portal.env import parse_storage_url

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "core.s3.PrivateS3Storage",
            "OPTIONS": parse_storage_url(bucket.url),
        },
    }
    return bucket
