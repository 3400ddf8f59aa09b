"""How conftest.py sets up a test process. The suite runs in several processes at once
(pytest-xdist, `make test TEST_WORKERS=3`): each has its own test database and its own
Redis databases, so no test empties or reads another's cache, broker or rows. And
passwords are hashed fast."""

import os

import pytest
from django.conf import settings
from django.db import connection

import conftest

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def test_the_process_number_comes_from_the_xdist_worker_id(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    assert conftest._process_number() == 7
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert conftest._process_number() == 0  # a serial run


@pytest.mark.parametrize(
    ("url", "database", "expected"),
    [
        ("redis://127.0.0.1:6379/0", 5, "redis://127.0.0.1:6379/5"),
        ("redis://127.0.0.1:6379", 3, "redis://127.0.0.1:6379/3"),
        ("rediss://:secret@cache.example:6380/2", 9, "rediss://:secret@cache.example:6380/9"),
        ("unix:///run/redis.sock?db=1", 4, "unix:///run/redis.sock?db=4"),
        ("unix:///run/redis.sock", 6, "unix:///run/redis.sock?db=6"),
    ],
)
def test_a_redis_url_is_pointed_at_another_database(url, database, expected):
    assert conftest._with_redis_database(url, database) == expected
    assert conftest._redis_database(expected) == database


@pytest.mark.parametrize("base", ["redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/3"])
def test_test_processes_never_share_a_redis_database(base):
    urls = [conftest._process_redis_urls(base, n) for n in range(4)]
    assert urls[0][0] == base  # a serial run keeps the cache where REDIS_URL points
    owned = [conftest._redis_database(url) for pair in urls for url in pair]
    assert len(set(owned)) == 8 and min(owned) == conftest._redis_database(base)


def test_a_redis_without_the_databases_needed_is_a_usage_error():
    # Nothing listens on port 1, so the default of 16 databases (0 to 15) is assumed.
    base = "redis://127.0.0.1:1/0"
    assert conftest._process_redis_urls(base, 7) == (f"{base[:-1]}14", f"{base[:-1]}15")
    with pytest.raises(pytest.UsageError, match="run fewer xdist workers"):
        conftest._process_redis_urls(base, 8)


@pytest.mark.redis
def test_the_cache_and_celery_use_this_processs_own_redis_database(private_redis_url):
    import redis
    from django.core.cache import cache

    from qip_portal.celery import app

    ours = conftest._redis_database(settings.REDIS_URL)
    private = conftest._redis_database(private_redis_url)
    assert private == ours + 1
    assert os.environ["REDIS_URL"] == settings.REDIS_URL  # what subprocesses inherit
    assert app.conf.broker_url == app.conf.result_backend == settings.REDIS_URL
    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_URL

    cache.set("parallel-runs-probe", "here")
    with redis.Redis.from_url(settings.REDIS_URL) as r:
        assert r.keys("*parallel-runs-probe") != []
    with redis.Redis.from_url(private_redis_url) as r:
        assert r.keys("*parallel-runs-probe") == []  # a database of its own, empty
        r.set("private-probe", "1")
    assert cache.get("private-probe") is None


@pytest.mark.postgres
@pytest.mark.django_db
def test_each_xdist_worker_has_its_own_postgresql_test_database():
    name = connection.settings_dict["NAME"]
    assert name.startswith("test_")
    if WORKER:
        assert name.endswith(f"_{WORKER}")


def test_passwords_are_hashed_fast_in_tests_and_still_checked():
    from django.contrib.auth.hashers import check_password, make_password

    hashed = make_password("correct-horse-battery-staple")
    assert hashed.startswith("md5$")
    assert check_password("correct-horse-battery-staple", hashed)
    assert not check_password("wrong", hashed)
