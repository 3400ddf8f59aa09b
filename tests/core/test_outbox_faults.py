"""Fault tests of the outbox on the real stack: a Celery worker on Redis, the portal's
web server, and a real SMTP conversation with a local server (``tests/core/worker.py``,
``tests/core/smtp_server.py``). Each test counts the emails expected (the outbox's
rows), delivered (at the SMTP server) and duplicated. The one duplicate SMTP allows is
a message the server took (its final "." received) whose "250" the sender never saw;
that copy must carry the same Message-ID, so a mail client shows it once.

The outbox's timeouts are made short through settings (a claim is "stuck" after 4 s,
a retry waits 1 s, then 2 s), so each test takes seconds. A test that stops Redis
starts a redis-server of its own and stops only that one; every process a test starts
is killed when it ends."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.core.smtp_server import SMTPServer
from tests.core.worker import Browser, PrivateRedis, Stack, Tally, tally, wait

FAST = {
    "OUTBOX_SMTP_TIMEOUT_SECONDS": "3",
    "OUTBOX_CLAIM_TIMEOUT_SECONDS": "4",
    "OUTBOX_BACKOFF_FIRST_SECONDS": "1",
    "OUTBOX_BACKOFF_MAX_SECONDS": "2",
}

# One overdue action owned by the lead: one reminder.
ONE_ALERT = """
import datetime, json
from django.utils import timezone
from plans import sweeps
from tests import factories
lead = factories.UserFactory(username="lead", role="quality_lead")
place = factories.LocationFactory(name="Oakfield House")
factories.live_plan(owner=lead, locations=[place], actions=[{
    "description": "Refresher training", "owner": lead, "status": "open",
    "due_date": timezone.localdate() - datetime.timedelta(days=3), "completion_note": ""}])
print(json.dumps(sweeps.overdue_actions()))
"""

# Three overdue actions, to two people: three reminders.
THREE_ALERTS = """
import datetime, json
from django.utils import timezone
from plans import sweeps
from tests import factories
lead = factories.UserFactory(username="lead", role="quality_lead")
place = factories.LocationFactory(name="Oakfield House")
manager = factories.UserFactory(username="manager", role="manager", locations=[place])
overdue = timezone.localdate() - datetime.timedelta(days=3)
factories.live_plan(owner=lead, locations=[place], actions=[
    {"description": f"Overdue action {n}", "owner": owner, "status": "open",
     "due_date": overdue, "completion_note": ""}
    for n, owner in enumerate([lead, manager, lead], start=1)])
print(json.dumps(sweeps.overdue_actions()))
"""


def _status(stack: Stack) -> list[str]:
    return [row[0] for row in stack.sql("SELECT status FROM core_alert ORDER BY id")]


def _tick(stack: Stack) -> None:
    """What beat does every minute (and every five for recovery), through the broker."""
    stack.call("core.tasks.recover_stuck_claims")
    stack.call("core.tasks.deliver_due")


# --- A worker killed mid-conversation ---------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize(
    ("moment", "delivered_before_kill", "status_at_kill", "duplicates"),
    [
        # Killed before the message was sent: nothing arrived, sent once after recovery.
        ("DATA", 0, "sending", 0),
        # Killed after the server took the message, before its "250": the one duplicate
        # SMTP allows, under the same Message-ID.
        ("DATA-END", 1, "sending", 1),
        # Killed while QUIT was unanswered: the "250" had been seen and recorded, so the
        # alert was already sent and is not sent again.
        ("QUIT", 1, "sent", 0),
    ],
)
def test_a_worker_killed_while_the_server_holds_the_conversation(
    tmp_path, private_redis_url, moment, delivered_before_kill, status_at_kill, duplicates
):
    with (
        SMTPServer() as smtp,
        Stack(
            tmp_path, smtp, redis_url=private_redis_url, name=f"kill-{moment}", env=FAST
        ) as stack,
    ):
        smtp.hold_first = moment
        worker = stack.start_worker(1)
        assert stack.setup(ONE_ALERT) == "1 overdue action(s), 1 reminder(s) queued"
        wait(smtp.holding.is_set, f"the worker to reach {moment}", timeout=90)
        os.killpg(worker.pid, signal.SIGKILL)  # kill -9, the whole group, mid-send
        worker.wait(timeout=30)
        smtp.release.set()
        time.sleep(0.5)  # the server sees the client gone
        assert len(smtp.messages) == delivered_before_kill
        assert _status(stack) == [status_at_kill]

        stack.start_worker(2)
        # Beat's ticks until the stuck claim has aged past its timeout and is sent.
        wait(
            lambda: (_tick(stack), _status(stack) == ["sent"])[1],
            "the alert to be recovered and sent",
            timeout=60,
            every=1,
        )
        for _ in range(3):
            _tick(stack)
        counted = tally(stack, smtp)
        assert counted == Tally(
            expected=1,
            delivered=1,
            duplicated=duplicates,
            one_id_per_email=True,
            ids_distinct=True,
        ), counted
        if duplicates:
            first, second = smtp.messages
            assert first["Message-ID"] == second["Message-ID"]
            assert first["Message-ID"].startswith("<alert-")


# --- The mail server deferring mail ------------------------------------------------------


@pytest.mark.redis
def test_smtp_451_for_a_while_then_every_alert_arrives_once(tmp_path, private_redis_url):
    with (
        SMTPServer() as smtp,
        Stack(tmp_path, smtp, redis_url=private_redis_url, name="smtp-451", env=FAST) as stack,
    ):
        smtp.temporary_failure = "451 4.3.2 System not accepting messages, try again later"
        stack.start_worker(concurrency=2)
        assert stack.setup(THREE_ALERTS) == "3 overdue action(s), 3 reminder(s) queued"

        def deferred_twice():
            _tick(stack)
            rows = stack.sql("SELECT status, attempts, error FROM core_alert")
            return len(rows) == 3 and all(
                status == "pending" and attempts >= 2 and "451" in error
                for status, attempts, error in rows
            )

        wait(deferred_twice, "each alert to be deferred twice", timeout=60, every=0.5)
        assert smtp.messages == []
        smtp.temporary_failure = None
        wait(
            lambda: (_tick(stack), _status(stack) == ["sent"] * 3)[1],
            "every alert to be sent once the server accepts mail",
            timeout=60,
            every=0.5,
        )
        for _ in range(3):
            _tick(stack)
        assert tally(stack, smtp) == Tally(3, 3, 0, True, True)


# --- Two relays at once: tests/core/test_worker_outbox.py (two beat ticks overlapping) ---


# --- Redis stopped while a plan moves on through the web ---------------------------------

PLAN_SETUP = """
import json
from tests import factories
lead = factories.UserFactory(username="lead", role="quality_lead")
place = factories.LocationFactory(name="Oakfield House")
manager = factories.UserFactory(username="manager", role="manager", locations=[place])
plan = factories.draft_plan(owner=manager, locations=[place])
print(json.dumps(plan.reference))
"""


@pytest.mark.redis
def test_redis_stopped_during_a_plan_transition_loses_nothing(tmp_path):
    from tests.factories import PASSWORD

    with (
        SMTPServer() as smtp,
        PrivateRedis(tmp_path) as broker,
        Stack(tmp_path, smtp, name="redis-down", redis=broker.url, env=FAST) as stack,
    ):
        reference = stack.setup(PLAN_SETUP)
        stack.start_worker()
        base = stack.start_web()
        lead = Browser(base)
        lead.log_in("lead", PASSWORD)
        status, _, page = lead.get(f"/plans/{reference}/activate/")
        assert status == 200, page[:2000]

        broker.stop()  # the broker (and the cache) gone
        started = time.monotonic()
        status, url, page = lead.submit(f"/plans/{reference}/activate/", {"reason": ""})
        took = time.monotonic() - started
        assert status == 200, page[:3000]  # the plan page after the redirect, not a 500
        # Not held for long either (asking the down result backend first took 19 s).
        assert took < 8, f"the two requests took {took:.1f} s"
        assert url.endswith(f"/plans/{reference}/"), url
        assert stack.sql("SELECT status FROM plans_plan") == [("live",)]
        # The email was written with the change; it waits for the broker.
        assert stack.sql("SELECT kind, status FROM core_alert") == [("plan-transition", "pending")]
        assert smtp.messages == []

        broker.start()  # back (empty: whatever it held is lost, as after a crash)
        wait(
            lambda: (_ticked(stack), _status(stack) == ["sent"])[1],
            "the email to be sent once Redis is back",
            timeout=90,
            every=1,
        )
        assert tally(stack, smtp) == Tally(1, 1, 0, True, True)
        assert smtp.envelopes == [["manager@example.test"]]


def _ticked(stack: Stack) -> bool:
    """A tick, tolerating the moments while the worker reconnects to the new broker."""
    try:
        stack.send("core.tasks.deliver_due").get(timeout=10)
    except Exception:  # noqa: BLE001 - the worker may still be reconnecting
        return False
    return True
