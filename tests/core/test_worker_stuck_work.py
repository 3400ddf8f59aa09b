"""Background work on the real stack (a Celery worker, runserver, Redis, PostgreSQL) that
can never get stuck (qip_portal/recovery.py, core/stuck.py):

- Redis stopped while a person uploads a spreadsheet through the web: no error page,
  and once Redis is back the sweep queues the check again and the batch is checked.
- The worker's database connection cut (``pg_terminate_backend``) in the middle of an
  import's commit: nothing imported; while the commit still ran, the sweep left it
  alone; once it was dead, the sweep failed it; the person tries again through the
  page, and every row is imported.

Each test runs its own redis-server on a free port (other people's tests use the
shared one) and stops only that. No beat runs: the sweep is sent through the broker as
beat would send it, after "time has passed" (the batch's timestamps moved back by the
threshold). Every wait is bounded and every process is killed at the end."""

from __future__ import annotations

import datetime
import re
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.core.smtp_server import SMTPServer
from tests.core.worker import Browser, RedisServer, Stack, private_database, wait
from tests.factories import PASSWORD

# A live plan at Oakfield (opened 400 days ago, so 300 daily results fit), with Tom, a
# manager there, who imports its results.
SETUP = """
import datetime, json
from django.utils import timezone
from plans import services as plan_services
from tests import factories
today = timezone.localdate()
oakfield = factories.LocationFactory(name="Oakfield House")
priya = factories.UserFactory(username="priya", role="quality_lead")
tom = factories.UserFactory(username="tom", role="manager", locations=[oakfield])
plan = factories.draft_plan(
    owner=tom, locations=[oakfield], opened_on=today - datetime.timedelta(days=400))
plan = plan_services.activate_plan(plan=plan, by=priya)
indicator = plan.indicators.get()
print(json.dumps({"pk": plan.pk, "reference": plan.reference, "indicator": indicator.name,
                  "opened_on": plan.opened_on.isoformat()}))
"""
WORKING = "SELECT count(*) FROM audits_importbatch WHERE status IN ('validating', 'committing')"
NOTHING_ELSE = (
    "evidence pack(s): 0 queued again, 0 failed; closure report PDF(s): 0 queued again, "
    "0 failed; signed record(s): 0 queued again, 0 failed; audit PDF(s): 0 queued again, "
    "0 failed"
)


def _csv(plan: dict, rows: int) -> bytes:
    opened = datetime.date.fromisoformat(plan["opened_on"])
    lines = ["indicator,date,numerator,denominator,value,location,notes"]
    lines += [
        f"{plan['indicator']},{opened + datetime.timedelta(days=i)},{15 + i % 6},20,,,Row {i}"
        for i in range(rows)
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def _hx(browser: Browser, path: str) -> tuple[int, str, str]:
    """The page's own poll (htmx)."""
    return browser._open(path + "?partial=1", headers={"HX-Request": "true"})


def _batch(stack: Stack) -> tuple:
    """The test's one import batch: its status, whether a run started, runs, failure."""
    (row,) = stack.sql(
        "SELECT status, started_at IS NOT NULL, attempts, failure FROM audits_importbatch"
    )
    return row


@pytest.mark.redis
def test_redis_stopped_during_an_upload_no_error_page_and_checked_once_it_is_back(tmp_path):
    rows = 40
    with (
        SMTPServer() as smtp,
        RedisServer(tmp_path) as broker,
        Stack(tmp_path, smtp, name="redis-down", redis_server=broker.url) as stack,
    ):
        plan = stack.setup(SETUP)
        stack.purge()  # the set-up's own email tasks
        worker = stack.start_worker()
        browser = Browser(stack.start_web())
        browser.log_in("tom", PASSWORD)
        upload = f"/audits/plans/{plan['reference']}/import/"

        broker.stop()  # Redis goes away; the portal is not told
        started = time.monotonic()
        status, url, page = browser.upload(upload, "upload", "results.csv", _csv(plan, rows))
        took = time.monotonic() - started
        assert status == 200 and re.search(r"/audits/imports/\d+/$", url), page[:3000]
        # Not held up by the broker's absence (19 s a task before the settings said how
        # long to retry; about 0.3 s since).
        assert took < 8, f"the upload took {took:.1f} s with Redis down"
        path = urlsplit(url).path
        assert "Checking 0 of ? rows" in page and "updates by itself" in page
        # The file and the batch are kept; the check's task could not be queued.
        assert _batch(stack) == ("validating", False, 0, "")
        # The page and its poll keep answering while Redis is away (a while, not a
        # minute: what matters is that the broker is gone when the task is queued).
        for _ in range(5):
            assert browser.get(path)[0] == 200
            assert _hx(browser, path)[0] == 200
            time.sleep(1)
        assert browser.get(upload)[0] == 200

        broker.start()  # back, on the same port
        wait(
            lambda: len(re.findall(r"Connected to redis://", stack.log(worker))) >= 2,
            "the worker to reconnect",
            timeout=120,
            every=0.5,
        )
        assert _batch(stack)[0] == "validating"  # nothing re-sent it by itself
        # As if the queued threshold had passed since the upload.
        stack.sql(
            "UPDATE audits_importbatch SET progress_at ="
            " strftime('%Y-%m-%d %H:%M:%f', progress_at, ?)",
            (f"-{settings.STUCK_QUEUED_SECONDS + 1} seconds",),
        )
        assert stack.call("qip_portal.recovery.recover_stuck_work") == (
            f"import(s): 1 queued again, 0 failed; {NOTHING_ELSE}"
        )
        wait(lambda: _batch(stack)[0] == "valid", "the check to finish", timeout=120)
        status, _, page = browser.get(path)
        assert status == 200 and f"Import {rows} results" in page
        assert "updates by itself" not in page
        assert stack.call("qip_portal.recovery.recover_stuck_work") == (
            f"import(s): 0 queued again, 0 failed; {NOTHING_ELSE}"
        )
        assert stack.sql(WORKING) == [(0,)]
        assert 500 not in browser.statuses, browser.statuses
        assert browser.statuses.count(302) >= 2  # signed in, uploaded


TRAVELLED_SWEEP = """
import datetime, time_machine
from django.utils import timezone
from qip_portal import recovery
with time_machine.travel(timezone.now() + datetime.timedelta(hours=2), tick=False):
    print(recovery.recover_stuck_work())
"""


@pytest.mark.postgres
@pytest.mark.redis
def test_the_commit_loses_its_database_connection_nothing_imported_then_tried_again(tmp_path):
    import psycopg

    rows = 300
    with (
        private_database("worker_commit") as database,
        SMTPServer() as smtp,
        RedisServer(tmp_path) as broker,
        Stack(
            tmp_path, smtp, name="commit-cut", redis_server=broker.url, database=database
        ) as stack,
    ):
        plan = stack.setup(SETUP)
        stack.purge()
        worker = stack.start_worker()
        browser = Browser(stack.start_web())
        browser.log_in("tom", PASSWORD)
        upload = f"/audits/plans/{plan['reference']}/import/"
        status, url, _ = browser.upload(upload, "upload", "results.csv", _csv(plan, rows))
        assert status == 200
        path = urlsplit(url).path
        pk = int(path.rstrip("/").rsplit("/", 1)[1])
        wait(lambda: _batch(stack)[0] == "valid", "the check", timeout=120)
        status, _, page = browser.get(path)
        assert f"Import {rows} results" in page

        # Hold the commit mid-way: it inserts every measurement (and its history), then
        # updates the indicator's last result date; this transaction holds that row, so
        # the commit waits there with all its rows written and none committed. (NO KEY
        # UPDATE: the measurements' foreign keys still check against the row.)
        holder = psycopg.connect(database, connect_timeout=10)
        try:
            holder.execute(
                "SELECT id FROM plans_indicator WHERE plan_id = %s FOR NO KEY UPDATE",
                (plan["pk"],),
            )
            status, _, page = browser.post(f"/audits/imports/{pk}/commit/", {}, page=page)
            assert status == 200 and f"Importing {rows} rows" in page, page[:3000]
            assert "updates by itself" in page

            def waiting_commit():
                found = stack.sql(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                    " AND query LIKE 'UPDATE \"plans_indicator\"%%'"
                )
                return found[0][0] if found else None

            pid = wait(waiting_commit, "the commit to reach the indicator", timeout=120)
            # It has written to the measurements table, in its open transaction...
            assert stack.sql(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE l.pid = %s AND c.relname = 'audits_measurement'"
                " AND l.mode = 'RowExclusiveLock'",
                (pid,),
            ) == [(1,)]
            # ...which nobody else can see yet.
            assert stack.sql("SELECT count(*) FROM audits_measurement") == [(0,)]
            assert _batch(stack)[:3] == ("committing", True, 1)
            # A sweep two hours on cannot touch it: the live commit holds its batch's row.
            assert stack.manage("shell", "-c", TRAVELLED_SWEEP).strip().splitlines()[-1] == (
                f"import(s): 0 queued again, 0 failed; {NOTHING_ELSE}"
            )

            # The worker's database connection is cut.
            assert stack.sql("SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
        finally:
            holder.rollback()
            holder.close()
        wait(
            lambda: re.search(r"commit_import_task\[[\w-]+\] raised unexpected", stack.log(worker)),
            "the commit task to fail",
            timeout=60,
        )
        assert "terminating connection due to administrator command" in stack.log(worker)
        # All or nothing: nothing was imported, and the batch says it is still importing.
        assert stack.sql("SELECT count(*) FROM audits_measurement") == [(0,)]
        assert _batch(stack)[:2] == ("committing", True)
        status, _, page = browser.get(path)
        assert "updates by itself" in page  # within the threshold it may still run

        # As if the started threshold had passed.
        stack.sql(
            "UPDATE audits_importbatch SET started_at = started_at - make_interval(secs => %s),"
            " progress_at = progress_at - make_interval(secs => %s)",
            (settings.STUCK_STARTED_SECONDS + 1,) * 2,
        )
        assert stack.call("qip_portal.recovery.recover_stuck_work") == (
            f"import(s): 0 queued again, 1 failed; {NOTHING_ELSE}"
        )
        stopped = "The import stopped before finishing; nothing was imported. You can try again."
        assert _batch(stack) == ("failed", True, 1, stopped)
        status, _, page = browser.get(path)
        assert status == 200 and stopped in page and "Try again" in page
        assert "updates by itself" not in page and "hx-get" not in page
        assert _hx(browser, path)[0] == 200

        # The person tries again: every row is checked again and imported.
        status, _, page = browser.post(f"/audits/imports/{pk}/retry/", {}, page=page)
        assert status == 200 and "updates by itself" in page, page[:3000]
        wait(lambda: _batch(stack)[0] == "committed", "the import", timeout=120)
        assert stack.sql("SELECT count(*) FROM audits_measurement") == [(rows,)]
        assert stack.sql(
            "SELECT count(*) FROM audits_historicalmeasurement WHERE history_type = '+'"
        ) == [(rows,)]
        status, _, page = browser.get(path)
        assert f"{rows} results imported on" in page and "updates by itself" not in page
        assert stack.sql(WORKING) == [(0,)]
        assert stack.call("qip_portal.recovery.recover_stuck_work") == (
            f"import(s): 0 queued again, 0 failed; {NOTHING_ELSE}"
        )
        assert 500 not in browser.statuses, browser.statuses
