"""Monitoring after step-down: floors, frozen SPC limits, escalation once, the guards."""

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from audits import services, sweeps
from audits.deterioration import final_closure_gaps, reopen_gaps
from audits.models import Deterioration, MonitoringPeriod
from plans import services as plan_services
from plans.models import Plan
from qip_portal import closure
from tests import factories
from tests.audits.factories import measure

NOW = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo("Europe/London"))
TODAY = NOW.date()


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run


@pytest.fixture
def stepped_down(frozen, quality_lead, manager, oakfield):
    """A plan stepped down into monitoring: twelve monthly results alternating 95% and
    97.5% (frozen mean 96.25%, limits about 89.6% to 102.9%), floor 85%."""
    plan = factories.live_plan(
        owner=quality_lead, locations=[oakfield], opened_on=TODAY - datetime.timedelta(days=400)
    )
    for i in range(12):
        on = TODAY - datetime.timedelta(days=30 * (12 - i))
        measure(
            plan, by=manager, on=on, numerator=19 if i % 2 else 39, denominator=20 if i % 2 else 40
        )
    plan.status = Plan.Status.CLOSURE_REVIEW
    plan_services._save(plan, by=quality_lead, reason="test: in closure review")
    indicator = plan.indicators.get()
    period = services.start_monitoring(
        plan=plan,
        by=quality_lead,
        floors={indicator.pk: Decimal("85")},
        escalate_to=["chair@example.test"],
    )
    plan.status = Plan.Status.MONITORING
    plan_services._save(plan, by=quality_lead, reason="Step down into monitoring")
    return period


def test_start_monitoring_freezes_the_sustained_phase_for_six_months(stepped_down):
    period = stepped_down
    assert period.starts_on == TODAY and period.ends_on == datetime.date(2026, 12, 1)
    watched = period.monitored.get()
    assert watched.floor == Decimal("85")
    assert len(watched.reference_values) == 12
    assert watched.reference_mean == Decimal("96.2500")
    assert Decimal("89") < watched.reference_lower < Decimal("90")
    assert period.history.first().history_change_reason == "Monitoring started at step-down"


def test_start_monitoring_refuses_bad_input_and_changes_nothing(plan, quality_lead):
    plan.status = Plan.Status.CLOSURE_REVIEW
    plan_services._save(plan, by=quality_lead)
    with pytest.raises(services.MonitoringRefused) as refused:
        services.start_monitoring(
            plan=plan,
            by=quality_lead,
            floors={999999: "85", plan.indicators.get().pk: "eighty"},
            end_date=datetime.date(2000, 1, 1),
            escalate_to=["not an address"],
        )
    text = " ".join(refused.value.reasons)
    assert "not one of this plan's indicators" in text
    assert "“eighty” is not a number" in text
    assert "must end in the future" in text
    assert "“not an address” is not an email address" in text
    assert not MonitoringPeriod.objects.exists()


def test_a_result_below_the_floor_escalates_once(stepped_down, manager, run, mailoutbox):
    plan = stepped_down.plan
    mailoutbox.clear()
    m = run(measure, plan, by=manager, on=TODAY, numerator=16, denominator=20)  # 80%
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.subject.startswith(f"Deterioration: {plan.reference}")
    assert set(email.to) == {"lead@example.test", "chair@example.test"}
    assert "below the monitoring floor" in email.body.lower() or "beyond the floor" in email.body
    rules = set(Deterioration.objects.filter(measurement=m).values_list("rule", flat=True))
    assert rules == {"floor", "astro_lo"}  # both rules, one email
    run(sweeps.deterioration)
    run(sweeps.deterioration)
    run(services.check_plan_monitoring, plan_id=plan.pk)
    assert len(mailoutbox) == 1


def test_an_spc_concern_above_the_floor_escalates_once(stepped_down, manager, run, mailoutbox):
    plan = stepped_down.plan
    mailoutbox.clear()
    run(measure, plan, by=manager, on=TODAY, numerator=17, denominator=20)  # 85%: on the floor
    assert len(mailoutbox) == 1
    row = Deterioration.objects.get()
    assert (row.kind, row.rule, row.severity) == ("spc", "astro_lo", "investigate")
    assert "lower process limit" in mailoutbox[0].body
    run(sweeps.deterioration)
    assert len(mailoutbox) == 1


def test_results_within_floor_and_limits_raise_nothing(stepped_down, manager, run, mailoutbox):
    mailoutbox.clear()
    run(measure, stepped_down.plan, by=manager, on=TODAY, numerator=19, denominator=20)
    assert not Deterioration.objects.exists() and not mailoutbox


def test_reopen_needs_an_open_deterioration_and_links_the_results(
    stepped_down, quality_lead, manager, run
):
    plan = stepped_down.plan
    assert "none has been found" in reopen_gaps(plan)[0]
    with pytest.raises(plan_services.TransitionRefused):
        closure.reopen_plan(plan=plan, by=quality_lead, reason="Worried")
    m = run(measure, plan, by=manager, on=TODAY, numerator=16, denominator=20)
    assert reopen_gaps(plan) == []
    reopened = closure.reopen_plan(plan=plan, by=quality_lead, reason="Audit fell to 80%")
    assert reopened.status == Plan.Status.LIVE
    reason = reopened.history.first().history_change_reason
    assert "Audit fell to 80%" in reason and f"result #{m.pk}" in reason
    assert len(reason) <= 100
    stepped_down.refresh_from_db()
    assert stepped_down.status == MonitoringPeriod.Status.REOPENED
    assert f"result #{m.pk}" in stepped_down.history.first().history_change_reason
    assert "Audit fell to 80%" in stepped_down.outcome_note and "80.0% (16 of 20)" in (
        stepped_down.outcome_note
    )
    assert set(Deterioration.objects.values_list("status", flat=True)) == {"acted_on"}


def test_final_closure_needs_the_end_date_and_no_deterioration(stepped_down, frozen, manager, run):
    plan = stepped_down.plan

    def gaps():
        return final_closure_gaps([plan.pk])[plan.pk]

    assert gaps() == ["The monitoring period runs until 1 Dec 2026."]
    frozen.move_to(datetime.datetime(2026, 12, 2, 9, 0, tzinfo=ZoneInfo("Europe/London")))
    assert gaps() == []
    run(measure, plan, by=manager, on=datetime.date(2026, 11, 30), numerator=10, denominator=20)
    assert "open deterioration" in gaps()[0]


def test_deterioration_is_escalated_end_to_end_through_the_log_form(
    stepped_down, client, manager, run, mailoutbox
):
    plan = stepped_down.plan
    mailoutbox.clear()
    client.force_login(manager)
    data = {
        "indicator": plan.indicators.get().pk,
        "measured_on": TODAY.isoformat(),
        "numerator": "15",
        "denominator": "20",
        "location": plan.locations.get().pk,
        "source": "re_audit",
        "notes": "",
    }
    response = run(client.post, f"/audits/plans/{plan.reference}/log/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert len(mailoutbox) == 1 and "Deterioration" in mailoutbox[0].subject
    page = client.get(plan.get_absolute_url()).content.decode()
    assert "Deterioration signal" in page
    # The page leads with it, before anything else the plan needs.
    assert page.index('id="deterioration-banner"') < page.index('id="readiness"')


def test_reopen_page_is_the_quality_leads(stepped_down, client, manager, quality_lead, run):
    plan = stepped_down.plan
    url = f"/audits/plans/{plan.reference}/reopen/"
    client.force_login(manager)
    assert client.get(url).status_code == 404
    run(measure, plan, by=manager, on=TODAY, numerator=16, denominator=20)
    client.force_login(quality_lead)
    response = run(client.post, url, {"reason": "Below the floor"})
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.status == Plan.Status.LIVE


def test_cached_monitoring_figures_carry_no_ones_password_hash(stepped_down, client, quality_lead):
    """The plan page's figures, monitoring included, go into the shared cache: no one's
    password hash goes with them (the period's starter, the plan's owner...)."""
    import pickle

    from core import freshness

    client.force_login(quality_lead)
    freshness.data_changed()
    response = client.get(stepped_down.plan.get_absolute_url())
    data = response.context["audits"]
    assert data["monitoring"]["period"].pk == stepped_down.pk
    pickled = pickle.dumps({k: data[k] for k in ("verdicts", "monitoring", "charts")})
    quality_lead.refresh_from_db()
    assert quality_lead.password and quality_lead.password.encode() not in pickled
