"""Cached figures across processes (issue #21, item 10). Under `make run` the scheduled
jobs run in a second process beside the web server; a change one of them makes (here:
a monitoring period that has passed its end date is ended) must be on the plan page at
the next view, not up to ``DERIVED_CACHE_SECONDS`` later. Without Redis the cache is a
folder of files that both processes share (``CACHE_DIR``)."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.core.worker import ROOT, migrated_database

# The web process: builds a plan in monitoring, then shows the plan page (the test
# client, in this process, with this process's cache) each time it reads a line.
WEB = r"""
import datetime, json, sys
from decimal import Decimal
import django
django.setup()
from django.conf import settings
if sys.argv[1] == "memory":
    # Before anything has used the cache: the per-process memory cache of old.
    settings.CACHES["default"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
from django.test import Client
from django.utils import timezone
from audits import services
from plans import services as plan_services
from plans.models import Plan
from tests import factories
from tests.audits.factories import measure

today = timezone.localdate()
oakfield = factories.LocationFactory(name="Oakfield")
lead = factories.UserFactory(username="priya", role="quality_lead")
manager = factories.UserFactory(username="tom", role="manager")
manager.locations.add(oakfield)
plan = factories.live_plan(owner=lead, locations=[oakfield],
                           opened_on=today - datetime.timedelta(days=400))
for i in range(6):
    measure(plan, by=manager, on=today - datetime.timedelta(days=30 * (6 - i)),
            numerator=19, denominator=20)
plan.status = Plan.Status.CLOSURE_REVIEW
plan_services._save(plan, by=lead, reason="test: in closure review")
period = services.start_monitoring(
    plan=plan, by=lead, floors={plan.indicators.get().pk: Decimal("85")}, escalate_to=[],
    starts_on=today - datetime.timedelta(days=100))
plan.status = Plan.Status.MONITORING
plan_services._save(plan, by=lead, reason="test: stepped down")
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(lead)
print(json.dumps({"period": period.pk}), flush=True)
for line in sys.stdin:
    html = client.get(plan.get_absolute_url()).content.decode()
    state = "open" if "Monitoring: " in html else "ended" if "Ended without" in html else "?"
    print(json.dumps({"state": state}), flush=True)
"""


def _env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return dict(
        env,
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        CACHE_DIR=str(tmp_path / "cache"),
        DJANGO_SETTINGS_MODULE="qip_portal.settings",
        PYTHONUNBUFFERED="1",
    )


def _plan_page_after_a_job(tmp_path: Path, cache: str) -> tuple[str, str]:
    env = _env(tmp_path)
    migrated_database(tmp_path / "portal.sqlite3", tmp_path=tmp_path, env=env)
    web = subprocess.Popen(
        [sys.executable, "-c", WEB, cache],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        period = json.loads(web.stdout.readline())["period"]
        web.stdin.write("view\n")
        web.stdin.flush()
        before = json.loads(web.stdout.readline())["state"]
        # Time passes behind the portal's back: the period's end date is now behind us.
        with sqlite3.connect(tmp_path / "portal.sqlite3") as db:
            db.execute(
                "UPDATE audits_monitoringperiod SET ends_on = date('now', '-2 days') WHERE id = ?",
                (period,),
            )
        # The scheduler, in its own process, as `make run` runs it.
        done = subprocess.run(
            [sys.executable, "manage.py", "run_scheduled_jobs"]
            + ["--only", "audits_monitoring_ended"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr
        assert "1 monitoring period(s) ended" in done.stdout, done.stdout
        web.stdin.write("view\n")
        web.stdin.flush()
        after = json.loads(web.stdout.readline())["state"]
    finally:
        web.stdin.close()
        web.wait(timeout=60)
    return before, after


def test_the_plan_page_shows_what_a_job_in_another_process_changed(tmp_path):
    assert _plan_page_after_a_job(tmp_path, "default") == ("open", "ended")


def test_a_cache_of_each_process_would_have_shown_the_old_state(tmp_path):
    """What the shared cache fixes: with a per-process memory cache (the old default)
    the web process keeps showing the period open after the job ended it."""
    assert _plan_page_after_a_job(tmp_path, "memory") == ("open", "open")
