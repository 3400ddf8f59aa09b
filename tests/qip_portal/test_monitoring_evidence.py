"""A monitoring period must show its own evidence to end well (issue #21, item 1).

Without a result in every due interval of each watched indicator's frequency (or
``MONITORING_MIN_RESULTS`` results), it ends "without enough monitoring data": the
group that stepped the plan down, the owner and the quality leads are asked for the
group's decision, nobody is prompted to put the plan forward for final closure, and
the group's chair records the decision in the browser: extend the monitoring, or close
the plan with a recorded rationale. Built through the services with the real rules."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from audits import sweeps as audit_sweeps
from audits.deterioration import due_intervals, period_evidence_gaps
from audits.models import MonitoringPeriod
from core.models import Alert
from governance import services as governance
from governance.models import Membership
from plans.models import Plan, SignOffLevel
from plans.services import TransitionRefused
from qip_portal import closure
from tests import factories
from tests.audits.factories import measure
from tests.factories import PASSWORD

LONDON = ZoneInfo("Europe/London")
NOW = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=LONDON)
TODAY = NOW.date()
ENDS = TODAY + datetime.timedelta(days=92)  # three monthly (31-day) intervals


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run


@pytest.fixture
def chair(db):
    return factories.UserFactory(username="chair", role="governance_member")


@pytest.fixture
def group(quality_lead, chair):
    group = governance.create_group(
        by=quality_lead, name="Quality and Safety Committee", authority_level=SignOffLevel.BOARD
    )
    governance.set_membership(group=group, user=chair, role=Membership.Role.CHAIR, by=quality_lead)
    return group


@pytest.fixture
def stepped_down(clock, quality_lead, manager, oakfield, chair, group):
    """A plan stepped down by the committee on 1 Jun 2026, monitored until 1 Sep."""
    plan = factories.live_plan(
        owner=quality_lead, locations=[oakfield], opened_on=TODAY - datetime.timedelta(days=200)
    )
    factories.make_ready(plan, by=manager)
    report = closure.submit_for_closure(plan=plan, by=quality_lead, group=group)
    meeting = governance.schedule_meeting(
        group=group, held_on=TODAY, by=quality_lead, attendees=[chair]
    )
    indicator = plan.indicators.get()
    closure.sign_decision(
        report=report,
        meeting=meeting,
        by=chair,
        otp_token=factories.signing_code(chair),
        password=PASSWORD,
        outcome="step_down",
        reasons="Improvement delivered; keep watching",
        monitoring_indicators=[indicator],
        monitoring_floors={indicator.pk: "85"},
        monitoring_ends_on=ENDS,
    )
    plan.refresh_from_db()
    assert plan.status == Plan.Status.MONITORING
    return plan


def _log(plan, manager, clock, on):
    clock.move_to(datetime.datetime.combine(on, NOW.timetz()))
    measure(plan, by=manager, on=on)


def _end(run, clock):
    """The day after the period ends: both sweeps, twice each (a doubled beat tick)."""
    clock.move_to(NOW + datetime.timedelta(days=93))
    for _ in range(2):
        run(audit_sweeps.monitoring_ended)
        run(closure.announce_ready_plans)


def test_due_intervals_follow_the_indicator_frequency(stepped_down):
    indicator = stepped_down.indicators.get()
    assert due_intervals(indicator, TODAY, ENDS) == [
        (TODAY, datetime.date(2026, 7, 1)),
        (datetime.date(2026, 7, 2), datetime.date(2026, 8, 1)),
        (datetime.date(2026, 8, 2), ENDS),  # the remainder joins the last interval
    ]
    indicator.frequency = "quarterly"
    assert due_intervals(indicator, TODAY, ENDS) == [(TODAY, ENDS)]  # at least one


def test_no_result_ends_without_enough_data_and_asks_the_group_not_final_closure(
    stepped_down, run, clock, quality_lead, chair, mailoutbox
):
    mailoutbox.clear()
    _end(run, clock)
    period = MonitoringPeriod.objects.get(plan=stepped_down)
    assert period.status == MonitoringPeriod.Status.SHORT
    assert period.get_status_display() == "Ended without enough monitoring data"
    # Only the result of the step-down day itself (1 Jun) falls in the period.
    assert "a result in 1 of the 3 intervals" in period.outcome_note
    assert period.history.first().history_change_reason == (
        "Monitoring period ended without enough monitoring data"
    )
    # One email, to the group, the owner and the quality leads; no final-closure prompt.
    kinds = list(Alert.objects.filter(kind__startswith="audits-monitoring").values_list("kind"))
    assert kinds == [("audits-monitoring-short",)]
    (email,) = [m for m in mailoutbox if "without enough monitoring data" in m.subject]
    assert set(email.to) == {chair.email, quality_lead.email}
    assert "extend the monitoring, or close the plan with a recorded rationale" in email.body
    # Not ready for final closure: the group's decision stands in the way.
    blockers = closure.closure_blockers(stepped_down)
    assert not closure.is_ready(blockers)
    assert any("without enough monitoring data" in b.text for b in blockers)


def test_a_missed_interval_is_named_and_a_configured_minimum_replaces_the_rule(
    stepped_down, run, clock, manager, settings
):
    _log(stepped_down, manager, clock, datetime.date(2026, 6, 20))
    _log(stepped_down, manager, clock, datetime.date(2026, 8, 20))
    period = MonitoringPeriod.objects.get(plan=stepped_down)
    assert period_evidence_gaps(period) == [
        f"“{stepped_down.indicators.get().name}” (monthly): a result in 2 of the 3 "
        "intervals; none from 2 Jul 2026 to 1 Aug 2026."
    ]
    # With the step-down day's own result, three results in the period.
    settings.MONITORING_MIN_RESULTS = 4
    assert period_evidence_gaps(period) == [
        f"“{stepped_down.indicators.get().name}”: 3 results in the period, 4 needed."
    ]
    settings.MONITORING_MIN_RESULTS = 3
    assert period_evidence_gaps(period) == []
    _end(run, clock)
    period.refresh_from_db()
    assert period.status == MonitoringPeriod.Status.ENDED
    assert Alert.objects.filter(kind="audits-monitoring-ended").count() == 1


def test_a_result_in_every_interval_ends_well(stepped_down, run, clock, manager):
    for on in (datetime.date(2026, 6, 20), datetime.date(2026, 7, 20), datetime.date(2026, 8, 20)):
        _log(stepped_down, manager, clock, on)
    _end(run, clock)
    assert MonitoringPeriod.objects.get(plan=stepped_down).status == MonitoringPeriod.Status.ENDED
    assert not Alert.objects.filter(kind="audits-monitoring-short").exists()
    assert Alert.objects.filter(kind="audits-monitoring-ended").count() == 1


# --- The group's decision, in the browser's requests --------------------------------------


def _sign_in(client, user) -> None:
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


@pytest.fixture
def short(stepped_down, run, clock, group, chair, quality_lead):
    """Ended without enough data; the committee meets two days later."""
    _end(run, clock)
    clock.move_to(NOW + datetime.timedelta(days=95))
    meeting = governance.schedule_meeting(
        group=group, held_on=clock_today(), by=quality_lead, attendees=[chair]
    )
    return stepped_down, meeting


def clock_today() -> datetime.date:
    from django.utils import timezone

    return timezone.localdate()


def _decide(client, plan, meeting, chair, **fields):
    return client.post(
        reverse("governance:monitoring_decision", args=[plan.reference]),
        {
            "meeting": meeting.pk,
            "password": PASSWORD,
            "otp_token": factories.signing_code(chair),
            **fields,
        },
    )


def test_only_the_chair_of_the_group_that_stepped_it_down_is_offered_the_decision(
    short, client, chair, quality_lead, manager
):
    plan, _meeting = short
    url = reverse("governance:monitoring_decision", args=[plan.reference])
    for person in (quality_lead, manager):
        client.force_login(person)
        assert client.get(url).status_code == 404
        page = client.get(plan.get_absolute_url()).content.decode()
        assert "Monitoring ended without enough monitoring data" in page
        assert url not in page
    _sign_in(client, chair)
    page = client.get(plan.get_absolute_url()).content.decode()
    assert "Record the group's decision" in page and url in page
    assert client.get(url).status_code == 200


def test_the_chair_extends_the_monitoring_with_a_reason(short, client, chair, run, clock):
    plan, meeting = short
    _sign_in(client, chair)
    new_end = clock_today() + datetime.timedelta(days=90)
    response = _decide(
        client,
        plan,
        meeting,
        chair,
        outcome="extend",
        ends_on=new_end.strftime("%d/%m/%Y"),
        rationale="Audits paused over the summer; three more months of monthly audits.",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    period = MonitoringPeriod.objects.get(plan=plan)
    assert period.status == MonitoringPeriod.Status.OPEN and period.ends_on == new_end
    assert "three more months" in period.history.first().history_change_reason
    assert period.history.first().history_user == chair
    assert "Audits paused over the summer" in period.outcome_note
    plan.refresh_from_db()
    assert plan.status == Plan.Status.MONITORING
    # The plan is monitored again: no decision is awaited, so none is offered.
    assert not closure.may_decide_monitoring(plan, chair)


def test_the_chair_closes_the_plan_with_a_recorded_rationale(
    short, client, chair, quality_lead, mailoutbox, django_capture_on_commit_callbacks
):
    plan, meeting = short
    _sign_in(client, chair)
    rationale = (
        "The home's own quality audits over the same months (care-plan sampling at every "
        "handover) showed reviews with the person held at 95%; no need to extend."
    )
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = _decide(client, plan, meeting, chair, outcome="close", rationale=rationale)
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.status == Plan.Status.CLOSED
    assert plan.history.first().history_user == chair
    period = MonitoringPeriod.objects.get(plan=plan)
    assert period.status == MonitoringPeriod.Status.CLOSED_SHORT
    assert rationale in period.outcome_note
    (email,) = [m for m in mailoutbox if "close without enough monitoring data" in m.subject]
    assert quality_lead.email in email.to
    assert rationale in " ".join(email.body.split())  # whole, never cut with "…"


def test_a_wrong_code_or_an_absent_chair_changes_nothing(short, chair, group, quality_lead):
    plan, meeting = short
    with pytest.raises(TransitionRefused):
        closure.decide_monitoring(
            plan=plan,
            by=chair,
            password=PASSWORD,
            otp_token="000000",
            meeting=meeting,
            outcome="close",
            rationale="Enough.",
        )
    # A meeting the chair did not attend (the day before: a group meets once a day).
    elsewhere = governance.schedule_meeting(
        group=group,
        held_on=clock_today() - datetime.timedelta(days=1),
        by=quality_lead,
        attendees=[],
    )
    with pytest.raises(TransitionRefused) as refused:
        closure.decide_monitoring(
            plan=plan,
            by=chair,
            password=PASSWORD,
            otp_token=factories.signing_code(chair),
            meeting=elsewhere,
            outcome="close",
            rationale="Enough.",
        )
    assert any("not recorded as attending" in r for r in refused.value.reasons)
    plan.refresh_from_db()
    assert plan.status == Plan.Status.MONITORING
    assert MonitoringPeriod.objects.get(plan=plan).status == MonitoringPeriod.Status.SHORT
