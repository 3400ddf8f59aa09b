"""A real Celery worker on Redis, sending through a real SMTP conversation: killed with
SIGKILL in the middle of sending an alert, restarted, and the alert arrives exactly once.

Deterministic by construction: the local SMTP server stalls the first session at its
DATA command (the worker has claimed the alert and is mid-conversation), the test
kills the worker's whole process group there, and only then lets the server go on (it
sees the client gone: nothing delivered). "Ten minutes later" is simulated by moving
the claim's timestamp back, after which the restarted worker's ``recover_stuck_claims``
and ``deliver_due`` (what beat triggers) send it once; more ticks send nothing more."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.smtp_server import SMTPServer

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

SETUP = """
import datetime
from django.utils import timezone
from plans import sweeps
from tests import factories
lead = factories.UserFactory(username="lead", role="quality_lead")
place = factories.LocationFactory(name="Oakfield House")
factories.live_plan(owner=lead, locations=[place], actions=[{
    "description": "Refresher training", "owner": lead, "status": "open",
    "due_date": timezone.localdate() - datetime.timedelta(days=3), "completion_note": ""}])
print(sweeps.overdue_actions())
"""


def _wait(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.redis
def test_a_worker_killed_mid_send_is_restarted_and_the_alert_arrives_once(
    tmp_path, private_redis_url
):
    db_path = tmp_path / "worker.sqlite3"
    with SMTPServer() as smtp:
        smtp.hold_first_data = True
        env = dict(
            os.environ,
            DEBUG="true",
            DATABASE_URL=f"sqlite:///{db_path}",
            REDIS_URL=private_redis_url,  # no other test's tasks picked up, or ours lost
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            MEDIA_ROOT=str(tmp_path / "media"),
        )

        def manage(*args):
            return subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=180,
            )

        def celery(*args):
            return subprocess.run(
                [str(BIN / "celery"), "-A", "qip_portal", *args],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )

        def start_worker(n: int):
            log = (tmp_path / f"worker{n}.log").open("wb")
            return subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "qip_portal",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--hostname",
                    f"kill-test-{os.getpid()}-{n}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one
            )

        def alerts():
            with sqlite3.connect(db_path, timeout=20) as db:
                return db.execute("SELECT status, attempts FROM core_alert").fetchall()

        manage("migrate", "--noinput")
        celery("purge", "-f")
        worker = start_worker(1)
        try:
            assert "1 reminder(s) queued" in manage("shell", "-c", SETUP).stdout
            _wait(lambda: smtp.holding.is_set(), "the worker to reach SMTP DATA")
            assert alerts() == [("sending", 1)]
            os.killpg(worker.pid, signal.SIGKILL)  # mid-send, claim held
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
        smtp.release.set()
        time.sleep(0.5)
        assert smtp.messages == []  # the conversation died before the message was complete
        assert alerts() == [("sending", 1)]

        # Ten minutes on, beat's ticks reach a new worker.
        with sqlite3.connect(db_path, timeout=20) as db:
            db.execute("UPDATE core_alert SET claimed_at = datetime(claimed_at, '-11 minutes')")
        worker = start_worker(2)
        try:
            celery("call", "core.tasks.recover_stuck_claims")
            celery("call", "core.tasks.deliver_due")
            _wait(lambda: alerts() == [("sent", 2)], "the alert to be sent")
            # More ticks, doubled, and the sweep again: nothing more.
            for task in [
                "core.tasks.recover_stuck_claims",
                "core.tasks.deliver_due",
                "core.tasks.deliver_due",
                "plans.tasks.overdue_actions",
            ]:
                celery("call", task)
            _wait(
                lambda: (
                    "overdue_actions" in (tmp_path / "worker2.log").read_text()
                    and (tmp_path / "worker2.log").read_text().count("succeeded") >= 6
                ),
                "the extra ticks to run",
            )
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        assert len(smtp.messages) == 1
        assert smtp.messages[0]["To"] == "lead@example.test"
        assert "overdue" in smtp.messages[0]["Subject"]
        assert alerts() == [("sent", 2)]
