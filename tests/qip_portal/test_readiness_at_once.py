"""The result that makes a plan ready for closure review announces it at once (issue
#21, item 16): the "ready for closure review" email is queued through the outbox in the
result's own transaction, the plan page says "ready" at the next view, and the nightly
sweep (the safety net) never sends it again. Built with the real rules."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from core.models import Alert
from qip_portal import closure
from tests import factories
from tests.audits.factories import measure

NOW = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo("Europe/London"))
TODAY = NOW.date()


@pytest.fixture
def almost_ready(quality_lead, manager, oakfield):
    """Everything in but the last re-audit: two results on target (120 and 60 days
    ago), actions completed, evidence added, learning and risks written."""
    with time_machine.travel(NOW, tick=False):
        plan = factories.live_plan(
            owner=quality_lead, locations=[oakfield], opened_on=TODAY - datetime.timedelta(days=200)
        )
        for days in (120, 60):
            measure(plan, by=manager, on=TODAY - datetime.timedelta(days=days))
        factories.complete_actions(plan, by=quality_lead)
        factories.add_required_evidence(plan, by=manager)
        factories.write_learning_summary(plan, by=quality_lead)
        factories.record_residual_risk(plan, by=quality_lead)
        assert not closure.is_ready(closure.closure_blockers(plan))
        yield plan


def _log(client, plan, numerator: int):
    return client.post(
        reverse("audits:log", args=[plan.reference]),
        {
            "indicator": plan.indicators.get().pk,
            "measured_on": TODAY.strftime("%d/%m/%Y"),
            "numerator": str(numerator),
            "denominator": "20",
            "value": "",
            "location": plan.locations.get().pk,
            "source": "re_audit",
            "notes": "",
        },
    )


def test_the_result_that_makes_a_plan_ready_emails_at_once_and_the_sweep_never_again(
    almost_ready, client, manager, quality_lead, mailoutbox, django_capture_on_commit_callbacks
):
    plan = almost_ready
    with time_machine.travel(NOW, tick=False):
        client.force_login(manager)
        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            response = _log(client, plan, 19)
        assert response.status_code == 302
        # Queued with the result, and sent after its commit: no sweep has run.
        (alert,) = Alert.objects.filter(kind="audits-ready-for-review")
        assert alert.recipients == [quality_lead.email]
        assert [m.subject for m in mailoutbox if "ready for closure review" in m.subject]
        # The plan page says so straight away.
        client.force_login(quality_lead)
        page = client.get(plan.get_absolute_url()).content.decode()
        assert "Ready for closure review." in page
        # The nightly sweep is the safety net: it finds the email already queued.
        with django_capture_on_commit_callbacks(execute=True):
            closure.announce_ready_plans()
            closure.announce_ready_plans()
        assert Alert.objects.filter(kind="audits-ready-for-review").count() == 1


def test_a_result_that_does_not_make_the_plan_ready_sends_nothing(almost_ready, client, manager):
    with time_machine.travel(NOW, tick=False):
        client.force_login(manager)
        assert _log(client, almost_ready, 12).status_code == 302  # 60%: a miss
        assert not Alert.objects.filter(kind="audits-ready-for-review").exists()


def test_a_correction_that_makes_the_plan_ready_announces_it_too(almost_ready, client, manager):
    with time_machine.travel(NOW, tick=False):
        client.force_login(manager)
        _log(client, almost_ready, 12)
        missed = almost_ready.indicators.get().measurements.get(measured_on=TODAY)
        response = client.post(
            reverse("audits:edit_measurement", args=[almost_ready.reference, missed.pk]),
            {
                "indicator": missed.indicator_id,
                "measured_on": TODAY.strftime("%d/%m/%Y"),
                "numerator": "19",
                "denominator": "20",
                "value": "",
                "location": missed.location_id or "",
                "source": "re_audit",
                "notes": "",
                "reason": "Typed 12 for 19",
            },
        )
        assert response.status_code == 302
        assert Alert.objects.filter(kind="audits-ready-for-review").count() == 1


def test_an_audit_conducted_with_a_tool_that_makes_a_plan_ready_emails_at_once(
    almost_ready, client, manager, quality_lead, mailoutbox, django_capture_on_commit_callbacks
):
    """The audit tool's submission writes the plan's result through the same service:
    its transaction carries the readiness email too (not the nightly sweep)."""
    from audits.tools import services as tools
    from tests.audits.tool_helpers import conduct, safeguarding_tool

    plan = almost_ready
    with time_machine.travel(NOW, tick=False):
        tool = safeguarding_tool(quality_lead)
        tools.feed_indicator(
            indicator=plan.indicators.get(), tool=tool, scope="overall", key="", by=quality_lead
        )
        audit = conduct(
            tool,
            location=plan.locations.get(),
            by=manager,
            answers=[{} for _ in range(10)],
            on=TODAY,
            plan=plan,
            submit=False,
        )
        client.force_login(manager)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("audits:audit_submit", args=[audit.pk]))
        assert response.status_code == 302
        audit.refresh_from_db()
        assert audit.is_submitted
        (alert,) = Alert.objects.filter(kind="audits-ready-for-review")
        assert alert.recipients == [quality_lead.email]
        with django_capture_on_commit_callbacks(execute=True):
            closure.announce_ready_plans()
        assert Alert.objects.filter(kind="audits-ready-for-review").count() == 1
