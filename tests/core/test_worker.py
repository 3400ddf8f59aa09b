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
import time

import pytest

from tests.core.smtp_server import SMTPServer
from tests.core.worker import Stack, wait

SETUP = """
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


@pytest.mark.redis
def test_a_worker_killed_mid_send_is_restarted_and_the_alert_arrives_once(
    tmp_path, private_redis_url
):
    with (
        SMTPServer() as smtp,
        Stack(tmp_path, smtp, redis_url=private_redis_url, name="kill-test") as stack,
    ):
        smtp.hold_first_data = True

        def alerts():
            return stack.sql("SELECT status, attempts FROM core_alert")

        # The sweep queues the reminder; after its commit the alert's delivery task goes
        # to the broker, and the worker picks it up as soon as it starts.
        assert stack.setup(SETUP) == "1 overdue action(s), 1 reminder(s) queued"
        worker = stack.start_worker(1)
        wait(smtp.holding.is_set, "the worker to reach SMTP DATA", timeout=60)
        assert alerts() == [("sending", 1)]
        os.killpg(worker.pid, signal.SIGKILL)  # mid-send, claim held
        worker.wait(timeout=30)
        smtp.release.set()
        time.sleep(0.5)  # the server reads the dead connection's end
        assert smtp.messages == []  # the conversation died before the message was complete
        assert alerts() == [("sending", 1)]

        # Ten minutes on, beat's ticks reach a new worker.
        stack.sql("UPDATE core_alert SET claimed_at = datetime(claimed_at, '-11 minutes')")
        stack.start_worker(2)
        assert stack.call("core.tasks.recover_stuck_claims") == ("1 stuck alert(s) put back")
        assert stack.call("core.tasks.deliver_due") == "1 of 1 due alert(s) sent"
        assert alerts() == [("sent", 2)]
        # More ticks, doubled, and the sweep again: nothing more.
        assert stack.call("core.tasks.recover_stuck_claims") == ("0 stuck alert(s) put back")
        ticks = [stack.send("core.tasks.deliver_due") for _ in range(2)]
        assert [tick.get(timeout=120) for tick in ticks] == ["0 of 0 due alert(s) sent"] * 2
        assert stack.call("plans.tasks.overdue_actions") == (
            "1 overdue action(s), 0 reminder(s) queued"
        )
        assert len(smtp.messages) == 1
        assert smtp.messages[0]["To"] == "lead@example.test"
        assert "overdue" in smtp.messages[0]["Subject"]
        assert alerts() == [("sent", 2)]
