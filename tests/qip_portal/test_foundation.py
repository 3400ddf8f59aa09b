import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from plans.models import Plan

ROOT = Path(__file__).resolve().parents[2]
PROD_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x9!" + "k2Lq8vR4tY7uP0wZ3sD6fG1hJ5mN" * 2,
    "ALLOWED_HOSTS": "qip.example.org",
    "DATABASE_URL": "sqlite:////tmp/qip-deploy-check.sqlite3",
}


def _django(env_overrides: dict, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_with_no_warnings():
    result = _django(PROD_ENV, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_behind_pgbouncer_server_side_cursors_are_off_and_otherwise_on():
    script = (
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['DISABLE_SERVER_SIDE_CURSORS'])"
    )
    result = _django({**PROD_ENV, "DB_BEHIND_PGBOUNCER": "true"}, "shell", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"
    result = _django(PROD_ENV, "shell", "-c", script)
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "short"}, "at least 50"),
        ({"DATABASE_URL": "nosuchdb://x/y"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL must start with"),
        ({"EMAIL_URL": "pigeon://loft"}, "EMAIL_URL"),
        ({"ALLOWED_HOSTS": "a.example,,b.example"}, "ALLOWED_HOSTS"),
        ({"EVIDENCE_MAX_UPLOAD_MB": "ten"}, "EVIDENCE_MAX_UPLOAD_MB must be a whole number"),
        ({"STORAGE_URL": "s3://key:secret@s3.example"}, "STORAGE_URL names no bucket"),
        ({"DB_POOL_MAX_SIZE": "4"}, "DB_POOL_MAX_SIZE needs PostgreSQL"),
        (
            {
                "DATABASE_URL": "postgres://qip@127.0.0.1:5432/qip",
                "DB_POOL_MAX_SIZE": "4",
                "DB_CONN_MAX_AGE": "60",
            },
            "cannot both be set",
        ),
    ],
)
def test_malformed_settings_fail_loudly_at_start(overrides, message):
    result = _django({**PROD_ENV, **overrides}, "check")
    assert result.returncode != 0
    assert message in result.stderr


def test_every_page_requires_login(client, plan):
    for url in [
        reverse("home"),
        reverse("plans:register"),
        plan.get_absolute_url(),
        reverse("plans:create"),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login"))


def test_login_page_and_health_check_are_public(client, db):
    assert client.get(reverse("login")).status_code == 200
    response = client.get(reverse("healthz"))
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_login_with_a_wrong_password_says_so_without_naming_the_account(client, manager):
    response = client.post(reverse("login"), {"username": "manager", "password": "wrong"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_home_page_shows_what_needs_attention(client, quality_lead, plan):
    client.force_login(quality_lead)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Needs your attention" in body
    assert 'href="#main"' in body  # skip link


def test_unknown_page_is_a_friendly_404(client, quality_lead):
    client.force_login(quality_lead)
    response = client.get("/no/such/page/")
    assert response.status_code == 404


def test_run_scheduled_jobs_runs_with_nothing_registered(capsys, db, monkeypatch):
    from core import jobs

    # Imported before core.jobs.JOBS is swapped: a first import inside the swap would bind
    # the command to the empty stand-in for good, and a later test in this process (in
    # any order, as under pytest-xdist) would find no jobs at all.
    from qip_portal.management.commands import run_scheduled_jobs

    monkeypatch.setattr(jobs, "JOBS", [])
    monkeypatch.setattr(run_scheduled_jobs, "JOBS", [])
    call_command("run_scheduled_jobs")
    assert "No scheduled jobs are registered." in capsys.readouterr().out


def test_run_scheduled_jobs_runs_each_registered_job_once(capsys, db, monkeypatch):
    from core.jobs import Job

    calls = []
    fake = [Job(name="count", run=lambda: calls.append(1) or "1 thing", description="test")]
    monkeypatch.setattr("qip_portal.management.commands.run_scheduled_jobs.JOBS", fake)
    call_command("run_scheduled_jobs")
    assert calls == [1]
    assert "count: 1 thing" in capsys.readouterr().out


def test_seed_demo_is_idempotent_and_covers_every_status(db, capsys, settings):
    settings.DEBUG = True
    call_command("seed_demo")
    first = Plan.objects.count()
    call_command("seed_demo")
    assert Plan.objects.count() == first
    assert set(Plan.objects.values_list("status", flat=True)) == set(Plan.Status.values)
    out = capsys.readouterr().out
    assert "priya" in out and "demo-portal-2026" in out


def test_seed_demo_refuses_to_run_in_production(db, settings):
    settings.DEBUG = False
    with pytest.raises(Exception, match="Refusing"):
        call_command("seed_demo")


@pytest.mark.redis
def test_redis_is_reachable_as_cache_and_broker():
    from django.core.cache import cache

    from qip_portal.celery import app

    cache.set("qip-ci-probe", "ok", 10)
    assert cache.get("qip-ci-probe") == "ok"
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)


@pytest.mark.postgres
def test_database_is_postgresql_under_ci(db):
    from django.db import connection

    assert connection.vendor == "postgresql"
