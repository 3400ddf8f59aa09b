"""The alert outbox with a real Celery worker on Redis and a real SMTP conversation
(ARCHITECTURE.md, "Scheduled jobs and alerts"): the mail server down for a while, then
back, and every alert arrives once; two beat ticks at once, and nothing is sent twice.

No beat runs: the test sends ``core.tasks.deliver_due`` through the broker as beat's
minute tick would, and reads each tick's result. The time that passes between retries
(the outbox's backoff: one minute, then two) is simulated by moving the alerts'
``next_attempt_at`` back by exactly that backoff in the database, as if the clock had
moved on; nothing else about the alerts is touched."""

import datetime
import json
import re

import pytest

from core import outbox
from tests.core.smtp_server import SMTPServer
from tests.core.worker import Stack, Tally, tally, wait

# Three overdue actions: three reminders (one per action), to two people.
SETUP = """
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
ALERTS = 3


def _alerts(stack: Stack) -> list[tuple]:
    return stack.sql(
        "SELECT id, status, attempts, error, next_attempt_at, recipients, subject"
        " FROM core_alert ORDER BY id"
    )


def _utc(value: str) -> datetime.datetime:
    # Django keeps SQLite datetimes as naive UTC text.
    return datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.UTC)


def _backoff_elapses(stack: Stack, attempts: int) -> None:
    """The retry's time comes: as if ``outbox.backoff(attempts)`` had passed."""
    seconds = int(outbox.backoff(attempts).total_seconds())
    stack.sql(
        "UPDATE core_alert SET next_attempt_at ="
        " strftime('%Y-%m-%d %H:%M:%f', next_attempt_at, ?) WHERE status = 'pending'",
        (f"-{seconds} seconds",),
    )


def _delivered(smtp: SMTPServer) -> list[tuple[tuple[str, ...], str]]:
    pairs = zip(smtp.envelopes, smtp.messages, strict=True)
    return sorted((tuple(to), str(message["Subject"])) for to, message in pairs)


def _queued(stack: Stack) -> list[tuple[tuple[str, ...], str]]:
    return sorted((tuple(json.loads(row[5])), row[6]) for row in _alerts(stack))


@pytest.mark.redis
def test_smtp_down_for_a_while_then_back_every_alert_arrives_once(tmp_path, private_redis_url):
    with (
        SMTPServer() as smtp,
        Stack(tmp_path, smtp, redis_url=private_redis_url, name="smtp-down") as stack,
    ):
        smtp.refusing = True  # down for maintenance: every connection greeted with 421
        # The sweep queues the alerts; after its commit each alert's delivery task goes
        # to the broker, and the worker picks them up as soon as it starts.
        assert stack.setup(SETUP) == f"{ALERTS} overdue action(s), {ALERTS} reminder(s) queued"
        worker = stack.start_worker()

        def tried(attempts: int, error: str):
            rows = _alerts(stack)
            return len(rows) == ALERTS and all(
                status == "pending" and tries == attempts and error in text
                for _, status, tries, text, *_ in rows
            )

        # 1. The after-commit delivery: refused, put back with a retry in a minute.
        wait(lambda: tried(1, "421"), "each alert's first attempt to fail", timeout=90)
        assert smtp.messages == [] and smtp.sessions == ALERTS
        tasks = re.findall(r"Task ([\w.]+)\[[\w-]+\] received", stack.log(worker))
        assert tasks.count("core.tasks.deliver_alert") == ALERTS  # one per alert, on commit
        assert "core.tasks.deliver_due" not in tasks  # no tick yet
        for _, _, _, error, next_attempt_at, *_ in _alerts(stack):
            assert error.startswith("421 ") and error.endswith("(SMTPConnectError)")
            wait_left = _utc(next_attempt_at) - datetime.datetime.now(datetime.UTC)
            assert datetime.timedelta(0) < wait_left <= outbox.backoff(1)
        # Beat's next tick, before the backoff has passed: nothing is due, no one tries.
        assert stack.call("core.tasks.deliver_due") == "0 of 0 due alert(s) sent"
        assert smtp.sessions == ALERTS

        # 2. A minute on, the server answers but defers mail (451): tried, put back
        # again, now for two minutes.
        smtp.refusing = False
        smtp.temporary_failure = "451 4.3.2 System not accepting messages, try again later"
        _backoff_elapses(stack, 1)
        assert stack.call("core.tasks.deliver_due") == f"0 of {ALERTS} due alert(s) sent"
        assert tried(2, "451"), _alerts(stack)
        assert smtp.messages == [] and smtp.sessions == 2 * ALERTS
        for _, _, _, error, next_attempt_at, *_ in _alerts(stack):
            assert error.startswith("451 4.3.2") and error.endswith("(SMTPSenderRefused)")
            wait_left = _utc(next_attempt_at) - datetime.datetime.now(datetime.UTC)
            assert outbox.backoff(1) < wait_left <= outbox.backoff(2)

        # 3. The server is back. Before the backoff has passed nothing is sent; after
        # it, one tick sends every alert.
        smtp.temporary_failure = None
        assert stack.call("core.tasks.deliver_due") == "0 of 0 due alert(s) sent"
        assert smtp.messages == []
        _backoff_elapses(stack, 2)
        assert stack.call("core.tasks.deliver_due") == f"{ALERTS} of {ALERTS} due alert(s) sent"
        assert [(status, tries, error) for _, status, tries, error, *_ in _alerts(stack)] == [
            ("sent", 3, "")
        ] * ALERTS
        assert len(smtp.messages) == ALERTS
        assert _delivered(smtp) == _queued(stack)  # each alert, to its people, once
        assert tally(stack, smtp) == Tally(ALERTS, ALERTS, 0, True, True)
        assert {to for to, _ in _delivered(smtp)} == {
            ("lead@example.test",),
            ("manager@example.test",),
        }

        # 4. More ticks, doubled, the stuck-claim recovery and the sweep again: nothing.
        ticks = [stack.send("core.tasks.deliver_due") for _ in range(2)]
        assert [tick.get(timeout=120) for tick in ticks] == ["0 of 0 due alert(s) sent"] * 2
        assert stack.call("core.tasks.recover_stuck_claims") == "0 stuck alert(s) put back"
        assert stack.call("plans.tasks.overdue_actions") == (
            f"{ALERTS} overdue action(s), 0 reminder(s) queued"
        )
        assert stack.call("core.tasks.deliver_due") == "0 of 0 due alert(s) sent"
        assert len(smtp.messages) == ALERTS and smtp.sessions == 3 * ALERTS


@pytest.mark.redis
def test_two_beat_ticks_at_once_send_each_alert_once(tmp_path, private_redis_url):
    """Two ``deliver_due`` tasks running at the same moment in two worker processes
    (``--concurrency 2``). The SMTP server holds the first conversation at DATA until
    both tasks have started, so the two runs overlap for certain: one is mid-send while
    the other looks for due alerts and claims what it can."""
    with (
        SMTPServer() as smtp,
        Stack(tmp_path, smtp, redis_url=private_redis_url, name="double-tick") as stack,
    ):
        smtp.hold_first_data = True
        assert stack.setup(SETUP) == f"{ALERTS} overdue action(s), {ALERTS} reminder(s) queued"
        # The alerts' own delivery tasks are lost (as by a broker restart), so only the
        # beat ticks below can send them.
        stack.purge()
        stack.start_worker(concurrency=2)
        ticks = [stack.send("core.tasks.deliver_due") for _ in range(2)]
        wait(smtp.holding.is_set, "a tick to reach SMTP DATA", timeout=90)
        wait(
            lambda: all(tick.state in {"STARTED", "SUCCESS"} for tick in ticks),
            "both ticks to be running at once",
            timeout=90,
        )
        assert not all(tick.state == "SUCCESS" for tick in ticks)  # one is still held
        smtp.release.set()
        results = [tick.get(timeout=120) for tick in ticks]
        sent = sorted(int(result.split(" ", 1)[0]) for result in results)
        assert sum(sent) == ALERTS, results
        assert len(smtp.messages) == ALERTS
        assert _delivered(smtp) == _queued(stack)
        assert tally(stack, smtp) == Tally(ALERTS, ALERTS, 0, True, True)
        # Each alert claimed once: one attempt each, none lost.
        assert [(status, tries) for _, status, tries, *_ in _alerts(stack)] == [
            ("sent", 1)
        ] * ALERTS
        # And the next doubled tick has nothing to do.
        again = [stack.send("core.tasks.deliver_due") for _ in range(2)]
        assert [tick.get(timeout=120) for tick in again] == ["0 of 0 due alert(s) sent"] * 2
        assert len(smtp.messages) == ALERTS
