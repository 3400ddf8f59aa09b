"""Sessions read from the shared cache and kept in the database (core/sessions.py): a
signed-in page reads no session row, and the idle limit, the absolute limit and
signing out hold as with the database engine, also when the cache's copy outlives
them or the cache is down. Across two web processes: tests/qip_portal/test_nodes.py."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import time_machine
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.sessions import SessionStore
from tests.core.worker import free_port
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
START = datetime.datetime(2026, 11, 27, 8, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def _cached_sessions(settings):
    settings.SESSION_ENGINE = "core.sessions"


def _sign_in(client: Client, username: str = "manager") -> str:
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def _signed_out(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


def _session_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if "django_session" in q["sql"]]


def _engine(redis_url: str) -> str:
    script = "from django.conf import settings; print(settings.SESSION_ENGINE)"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "qip_portal.settings", "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_settings_use_cached_sessions_only_with_a_shared_cache():
    assert _engine("redis://127.0.0.1:6399/0") == "core.sessions"
    # Without Redis the cache is each process's own memory, where a sign-out would not
    # reach the other processes: the database alone.
    assert _engine("") == "django.contrib.sessions.backends.db"


def test_a_signed_in_page_reads_no_session_row(client, manager):
    _sign_in(client)
    assert client.get(reverse("home")).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("home")).status_code == 200
    assert _session_queries(captured) == []


def test_the_session_is_read_from_the_database_when_the_cache_lost_it(client, manager):
    key = _sign_in(client)
    assert client.get(reverse("home")).status_code == 200
    cache.clear()  # Redis emptied or restarted
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("home")).status_code == 200
    assert len(_session_queries(captured)) == 1
    assert cache.get(SessionStore.cache_key_prefix + key) is not None  # cached again


def test_the_idle_limit_holds_even_if_the_cache_keeps_the_session(client, manager):
    with time_machine.travel(START, tick=False) as clock:
        key = _sign_in(client)
        clock.shift(datetime.timedelta(minutes=29))
        assert client.get(reverse("home")).status_code == 200
        cached = cache.get(SessionStore.cache_key_prefix + key)
        clock.shift(datetime.timedelta(minutes=31))
        # A cache whose clock is behind (Redis does not see this test's clock) still
        # holds the session: its own expiry, carried with it, is what counts.
        cache.set(SessionStore.cache_key_prefix + key, cached, 24 * 3600)
        assert _signed_out(client.get(reverse("home")))


def test_the_absolute_limit_holds(client, manager, settings):
    settings.SESSION_ABSOLUTE_SECONDS = 3600
    with time_machine.travel(START, tick=False) as clock:
        _sign_in(client)
        for _ in range(2):  # busy, never idle
            clock.shift(datetime.timedelta(minutes=25))
            assert client.get(reverse("home")).status_code == 200
        clock.shift(datetime.timedelta(minutes=11))  # 61 minutes after signing in
        assert _signed_out(client.get(reverse("home")))


def test_signing_out_ends_the_session_everywhere_it_was_kept(client, manager):
    key = _sign_in(client)
    assert client.get(reverse("home")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert cache.get(SessionStore.cache_key_prefix + key) is None
    assert not Session.objects.filter(session_key=key).exists()
    # The old cookie, replayed (a copy taken before the sign-out), no longer works.
    replay = Client()
    replay.cookies[django_settings.SESSION_COOKIE_NAME] = key
    assert _signed_out(replay.get(reverse("home")))


def _take_the_cache_down(settings) -> None:
    """The shared cache moves to an address where nothing answers."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }


def test_with_the_cache_down_pages_still_serve_and_a_sign_out_refuses_to_half_happen(
    client, manager, settings
):
    key = _sign_in(client)
    assert client.get(reverse("home")).status_code == 200
    _take_the_cache_down(settings)
    before = Session.objects.get(session_key=key).expire_date
    for _ in range(3):  # read from the database
        assert client.get(reverse("home")).status_code == 200
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=70)
    with time_machine.travel(later, tick=False):  # due to be saved again: to the database
        assert client.get(reverse("home")).status_code == 200
    assert Session.objects.get(session_key=key).expire_date > before
    # The cached copy cannot be removed: the sign-out fails whole, so no node is left
    # accepting a session the person believes ended.
    with pytest.raises(redis.exceptions.ConnectionError):
        client.post(reverse("logout"))
    assert Session.objects.filter(session_key=key).exists()
