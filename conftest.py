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
