"""Deterioration is escalated within one worker cycle of the result being saved, end to
end: a person signs in to the real web server, logs a re-audit below the monitoring
floor through the form, and the escalation email reaches the (local) mail server,
carried by the after-commit task on a real Celery worker on Redis. No beat runs, so no
scheduled sweep can be what sent it; the nightly sweep run afterwards, a second load of
the page and the same form posted again send nothing more."""

import email.message
import re
import time
from urllib.parse import urlsplit

import pytest

from tests.core.smtp_server import SMTPServer
from tests.core.worker import Browser, Stack, wait
from tests.factories import PASSWORD

# The deterioration email must reach the mail server this soon after the form's
# response (a few seconds on a quiet machine; generous for a busy one).
WITHIN_SECONDS = 30

# A plan stepped down into monitoring (as tests/audits/test_monitoring.py builds it, on
# today's date): twelve monthly results alternating 95% and 97.5% (frozen mean 96.25%,
# lower limit about 89.6%), floor 85%. Owned by Tom, a manager at Oakfield; Priya is
# the quality lead; the committee named chair@example.test for escalation.
SETUP = """
import datetime, json
from decimal import Decimal
from django.utils import timezone
from audits import services
from plans import services as plan_services
from plans.models import Plan
from tests import factories
from tests.audits.factories import measure
today = timezone.localdate()
oakfield = factories.LocationFactory(name="Oakfield House")
priya = factories.UserFactory(username="priya", role="quality_lead")
tom = factories.UserFactory(username="tom", role="manager", locations=[oakfield])
plan = factories.draft_plan(
    owner=tom, locations=[oakfield], opened_on=today - datetime.timedelta(days=400))
plan = plan_services.activate_plan(plan=plan, by=priya)
for i in range(12):
    measure(plan, by=tom, on=today - datetime.timedelta(days=30 * (12 - i)),
            numerator=19 if i % 2 else 39, denominator=20 if i % 2 else 40)
plan.status = Plan.Status.CLOSURE_REVIEW
plan_services._save(plan, by=priya, reason="test: in closure review")
indicator = plan.indicators.get()
services.start_monitoring(plan=plan, by=priya, floors={indicator.pk: Decimal("85")},
                          escalate_to=["chair@example.test"])
plan.status = Plan.Status.MONITORING
plan_services._save(plan, by=priya, reason="Step down into monitoring")
print(json.dumps({
    "pk": plan.pk, "reference": plan.reference, "url": plan.get_absolute_url(),
    "indicator": indicator.pk, "indicator_name": indicator.name, "location": oakfield.pk,
    "today": today.isoformat()}))
"""


def _text(message: email.message.Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


@pytest.mark.redis
def test_deterioration_logged_through_the_form_is_escalated_within_one_worker_cycle(
    tmp_path, private_redis_url
):
    with (
        SMTPServer() as smtp,
        Stack(tmp_path, smtp, redis_url=private_redis_url, name="escalation") as stack,
    ):
        plan = stack.setup(SETUP)
        # Only what the web server queues from here on: the set-up's own tasks (the
        # activation email's delivery) are dropped; the relay sends that email later.
        stack.purge()
        worker = stack.start_worker()
        browser = Browser(stack.start_web())
        browser.log_in("tom", PASSWORD)

        log_url = f"/audits/plans/{plan['reference']}/log/"
        form = {
            "indicator": plan["indicator"],
            "measured_on": plan["today"],
            "numerator": "15",  # 75%: below the 85% floor and the lower process limit
            "denominator": "20",
            "location": plan["location"],
            "source": "re_audit",
            "notes": "Spot check after staff changes",
        }
        status, url, page = browser.submit(log_url, form)
        saved_at = time.monotonic()
        assert status == 200 and urlsplit(url).path == plan["url"], page[:2000]
        assert "Result logged" in page

        wait(lambda: smtp.messages, "the escalation email", timeout=WITHIN_SECONDS)
        took = time.monotonic() - saved_at
        assert took < WITHIN_SECONDS

        # Carried by the after-commit tasks, not by any sweep: the monitoring check the
        # form queued, then the alert's delivery that the check queued.
        sent = r"core\.tasks\.deliver_alert\[[\w-]+\] succeeded in \S+: True"
        wait(lambda: re.search(sent, stack.log(worker)), "the delivery task to finish")
        # (The plan page, viewed before the result, is also drawn again for its viewer:
        # not part of the escalation.)
        received = re.findall(r"Task ([\w.]+)\[[\w-]+\] received", stack.log(worker))
        assert [t for t in received if t != "qip_portal.tasks.rerender_plan_page"] == [
            "audits.tasks.check_plan_monitoring_task",
            "core.tasks.deliver_alert",
        ]

        (message,) = smtp.messages
        (recipients,) = smtp.envelopes
        # The plan's owner, the quality lead and the address named at step-down.
        assert sorted(recipients) == [
            "chair@example.test",
            "priya@example.test",
            "tom@example.test",
        ]
        assert message["Subject"].startswith(f"Deterioration: {plan['reference']}")
        body = " ".join(_text(message).split())
        assert f"{plan['indicator_name']}: 75.0% (15 of 20)" in body
        # It names the rules that fired: the floor, and the SPC concern signal.
        assert "Below the monitoring floor" in body and "beyond the floor of ≥ 85%" in body
        assert "SPC concern signal" in body and "below the lower process limit" in body
        assert stack.sql("SELECT rule FROM audits_deterioration ORDER BY rule") == [
            ("astro_lo",),
            ("floor",),
        ]

        # The same form posted again is refused (one result per indicator per date), the
        # plan page shows the signal, and neither sends anything.
        status, _, page = browser.submit(log_url, form)
        assert status == 200 and "already has a result" in page
        status, _, page = browser.get(plan["url"])
        assert status == 200 and "Deterioration signal" in page
        # The nightly safety-net sweep, the per-plan check and the outbox's tick, as
        # beat would send them: nothing new.
        assert stack.call("audits.tasks.deterioration") == (
            "1 monitoring period(s) checked, 0 new deterioration(s)"
        )
        assert stack.call("audits.tasks.check_plan_monitoring_task", plan["pk"]) == 0
        # The tick does send one email: the activation email of the set-up, an outbox
        # row written with the activation, whose delivery task was dropped above. That
        # is the relay doing its job; the escalation is not sent again.
        assert stack.call("core.tasks.deliver_due") == "1 of 1 due alert(s) sent"
        assert stack.call("core.tasks.deliver_due") == "0 of 0 due alert(s) sent"
        assert sorted(stack.sql("SELECT kind, status, attempts FROM core_alert")) == [
            ("audits-deterioration", "sent", 1),
            ("plan-transition", "sent", 1),
        ]
        assert len(smtp.messages) == 2
        assert smtp.messages[1]["Subject"] == f"{plan['reference']}: activate (live)"
