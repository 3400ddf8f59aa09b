"""Audits' sweeps: run twice under frozen time, one email."""

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from audits import services, sweeps
from audits.models import MonitoringPeriod
from plans import services as plan_services
from plans.models import Plan
from tests import factories
from tests.audits.factories import measure

NOW = datetime.datetime(2026, 6, 1, 7, 0, tzinfo=ZoneInfo("Europe/London"))
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


def _days_ago(n):
    return TODAY - datetime.timedelta(days=n)


@pytest.fixture
def monitored(frozen, quality_lead, manager, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield], opened_on=_days_ago(400))
    for i in range(6):
        measure(plan, by=manager, on=_days_ago(30 * (6 - i)))
    plan.status = Plan.Status.MONITORING
    plan_services._save(plan, by=quality_lead)
    return services.start_monitoring(
        plan=plan,
        by=quality_lead,
        floors={plan.indicators.get().pk: Decimal("85")},
        end_date=TODAY + datetime.timedelta(days=30),
        escalate_to=[],
    )


def test_nightly_deterioration_check_escalates_what_was_missed_once(
    monitored, manager, run, mailoutbox
):
    # Logged without its after-commit check running (a lost task): the sweep catches it.
    measure(monitored.plan, by=manager, on=TODAY, numerator=10, denominator=20)
    mailoutbox.clear()
    run(sweeps.deterioration)
    run(sweeps.deterioration)
    assert len(mailoutbox) == 1 and "Deterioration" in mailoutbox[0].subject


def test_monitoring_ended_without_deterioration_is_marked_ended_once(
    monitored, frozen, manager, run, mailoutbox
):
    """The final-closure email is the closure workflow's, once nothing else stands in
    the way (tests/qip_portal/test_closure.py)."""
    none = "0 monitoring period(s) ended, 0 without enough monitoring data"
    assert run(sweeps.monitoring_ended) == none  # not yet
    measure(monitored.plan, by=manager, on=TODAY)  # its one monthly interval has a result
    frozen.move_to(NOW + datetime.timedelta(days=31))
    assert run(sweeps.monitoring_ended) == (
        "1 monitoring period(s) ended, 0 without enough monitoring data"
    )
    assert run(sweeps.monitoring_ended) == none
    monitored.refresh_from_db()
    assert monitored.status == MonitoringPeriod.Status.ENDED
    assert monitored.history.first().history_change_reason == (
        "Monitoring period ended without deterioration"
    )


def test_monitoring_with_open_deterioration_does_not_end(
    monitored, frozen, manager, run, mailoutbox
):
    run(measure, monitored.plan, by=manager, on=TODAY, numerator=10, denominator=20)
    mailoutbox.clear()
    frozen.move_to(NOW + datetime.timedelta(days=31))
    run(sweeps.monitoring_ended)
    assert not mailoutbox
    monitored.refresh_from_db()
    assert monitored.is_open


def test_reaudits_due_and_overdue_remind_location_managers_once_each(
    frozen, quality_lead, manager, outsider, oakfield, run, mailoutbox
):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield], opened_on=_days_ago(28))
    mailoutbox.clear()
    run(sweeps.reaudits_due)  # due on opened + 31 days = in 3 days
    run(sweeps.reaudits_due)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["manager@example.test"]
    assert mailoutbox[0].subject.startswith("Re-audit due 4 Jun 2026")
    frozen.move_to(NOW + datetime.timedelta(days=5))
    run(sweeps.reaudits_due)
    run(sweeps.reaudits_due)
    assert len(mailoutbox) == 2 and mailoutbox[1].subject.startswith("Re-audit overdue")
    measure(plan, by=manager, on=TODAY + datetime.timedelta(days=5))
    run(sweeps.reaudits_due)  # next due in a month: nothing
    assert len(mailoutbox) == 2


def test_the_cheap_criteria_check_agrees_with_the_full_verdicts(
    frozen, quality_lead, manager, oakfield
):
    """The readiness sweep asks ``plans_meeting_criteria`` first and builds full verdicts
    only for what it finds: both must say the same of every kind of plan."""
    from audits.verdicts import plans_meeting_criteria, verdicts_for_plans

    met = factories.live_plan(owner=quality_lead, locations=[oakfield], opened_on=_days_ago(200))
    for n in (120, 90, 60, 30):
        measure(met, by=manager, on=_days_ago(n))
    slipped = factories.live_plan(
        owner=quality_lead, locations=[oakfield], opened_on=_days_ago(200), title="Slipped"
    )
    for n in (120, 90, 60):
        measure(slipped, by=manager, on=_days_ago(n))
    measure(slipped, by=manager, on=_days_ago(30), numerator=10)
    too_few = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        opened_on=_days_ago(200),
        title="Too few",
        criteria={
            "success_in_practice": "Every concern escalated.",
            "sustain_months": 3,
            "min_reaudits": 6,
            "required_evidence": [],
            "sign_off_level": 3,
        },
    )
    for n in (120, 90, 60, 30):
        measure(too_few, by=manager, on=_days_ago(n))
    untouched = factories.live_plan(owner=quality_lead, locations=[oakfield], title="No results")
    plans = list(Plan.objects.filter(pk__in=[p.pk for p in (met, slipped, too_few, untouched)]))
    full = {
        pk: (v.met_since, v.window_start)
        for pk, v in verdicts_for_plans(plans).items()
        if v.all_met
    }
    assert plans_meeting_criteria(plans) == full and set(full) == {met.pk}


def test_kept_dates_follow_criteria_revisions_and_are_repaired_nightly(
    frozen, quality_lead, manager, oakfield, run
):
    from plans.models import Indicator

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield], opened_on=_days_ago(200))
    for n in (120, 90, 60, 30):
        measure(plan, by=manager, on=_days_ago(n))
    plan.refresh_from_db()
    assert plan.criteria_met_since == _days_ago(30)
    stale = plan.indicators.get()  # loaded before the next result
    measure(plan, by=manager, on=_days_ago(2))
    # Revising the criteria (with an indicator instance loaded earlier) clears the
    # "met since" date and never writes back the stale latest-result date.
    plan_services.revise_criteria(
        plan=plan,
        by=quality_lead,
        criteria_fields={"sustain_months": 6},
        indicators=[(stale, {"target": Decimal("97")})],
        reason="Raised the bar after the review",
    )
    plan.refresh_from_db()
    stale.refresh_from_db()
    assert plan.criteria_met_since is None
    assert stale.last_measured_on == _days_ago(2) and stale.target == Decimal("97")
    # Whatever went wrong, the nightly re-audit sweep puts the kept date right.
    Indicator.objects.filter(pk=stale.pk).update(last_measured_on=_days_ago(300))  # set-up
    run(sweeps.reaudits_due)
    stale.refresh_from_db()
    assert stale.last_measured_on == _days_ago(2)


def _monitoring_periods(count, *, quality_lead, manager, oakfield):
    periods = []
    for n in range(count):
        plan = factories.live_plan(
            owner=quality_lead, locations=[oakfield], opened_on=_days_ago(400), title=f"P{n}"
        )
        for i in range(3):
            measure(plan, by=manager, on=_days_ago(30 * (3 - i)))
        plan.status = Plan.Status.MONITORING
        plan_services._save(plan, by=quality_lead)
        periods.append(
            services.start_monitoring(
                plan=plan,
                by=quality_lead,
                floors={plan.indicators.get().pk: Decimal("85")},
                end_date=TODAY + datetime.timedelta(days=30),
                escalate_to=[],
            )
        )
    return periods


@pytest.mark.django_db
@pytest.mark.parametrize("n_periods", [1, 50])
def test_monitoring_sweeps_run_the_same_queries_for_1_or_50_periods(
    n_periods,
    frozen,
    quality_lead,
    manager,
    oakfield,
    run,
    mailoutbox,
    django_assert_max_num_queries,
):
    """The deterioration pass looks at every open period in a fixed number of queries
    (it was four per period), and locks and records only where something is new; ending
    monitoring is a fixed number of queries however many periods end."""
    periods = _monitoring_periods(
        n_periods, quality_lead=quality_lead, manager=manager, oakfield=oakfield
    )
    # One result below its floor, logged without its after-commit check (a lost task);
    # every other period has its month's result, so it may end well.
    measure(periods[0].plan, by=manager, on=TODAY, numerator=10, denominator=20)
    for period in periods[1:]:
        measure(period.plan, by=manager, on=TODAY)
    mailoutbox.clear()
    with django_assert_max_num_queries(40):  # the one period with news: recorded, escalated
        assert run(sweeps.deterioration).startswith(f"{n_periods} monitoring period(s) checked")
    assert len(mailoutbox) == 1
    with django_assert_max_num_queries(5):  # nothing new anywhere
        assert run(sweeps.deterioration).endswith(", 0 new deterioration(s)")
    frozen.move_to(NOW + datetime.timedelta(days=31))
    # The check, one locked read, the periods' evidence (two), the bulk update with its
    # history, and the plans and locations whose cached pages it moves on (core.freshness:
    # at the update and again at commit): 16 however many periods end.
    with django_assert_max_num_queries(16):
        assert run(sweeps.monitoring_ended) == (
            f"{n_periods - 1} monitoring period(s) ended, 0 without enough monitoring data"
        )
    assert MonitoringPeriod.objects.filter(status=MonitoringPeriod.Status.ENDED).count() == (
        n_periods - 1
    )
    ended = MonitoringPeriod.objects.filter(status=MonitoringPeriod.Status.ENDED).first()
    if ended is not None:
        assert ended.history.first().history_change_reason == (
            "Monitoring period ended without deterioration"
        )
    with django_assert_max_num_queries(8):  # the one with its open deterioration stays open
        assert run(sweeps.monitoring_ended) == (
            "0 monitoring period(s) ended, 0 without enough monitoring data"
        )


def _captured(django_capture_on_commit_callbacks, func, *args, **kwargs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with (
        CaptureQueriesContext(connection) as ctx,
        django_capture_on_commit_callbacks(execute=False),
    ):
        outcome = func(*args, **kwargs)
    return len(ctx.captured_queries), outcome


@pytest.mark.parametrize("n", [1, 30])
def test_reaudit_reminders_run_the_same_queries_for_1_or_30_indicators(
    n, frozen, quality_lead, manager, oakfield, django_capture_on_commit_callbacks
):
    from core.models import Alert

    indicators = [
        {
            "name": f"Indicator {i}",
            "measure_type": "proportion",
            "direction": "higher",
            "target": Decimal("95"),
            "unit": "%",
            "frequency": "monthly",
        }
        for i in range(n)
    ]
    factories.live_plan(
        owner=quality_lead, locations=[oakfield], opened_on=_days_ago(40), indicators=indicators
    )
    count, outcome = _captured(django_capture_on_commit_callbacks, sweeps.reaudits_due)
    assert outcome == f"{n} re-audit(s) due or overdue, {n} reminder(s) queued"
    assert Alert.objects.filter(kind="audits-reaudit-overdue").count() == n
    reminders = Alert.objects.filter(kind="audits-reaudit-overdue")
    assert all(
        r == ["manager@example.test"] for r in reminders.values_list("recipients", flat=True)
    )
    # Repair of the kept dates, the managers, the due indicators and their locations,
    # the outbox's keys, one bulk insert, and savepoint statements.
    assert count == 12, count


@pytest.mark.django_db
@pytest.mark.parametrize("n", [1, 30])
def test_deterioration_in_every_period_is_recorded_in_the_same_queries_for_1_or_30(
    n, frozen, quality_lead, manager, oakfield, django_capture_on_commit_callbacks
):
    """The first run on a fresh dataset: every period has a new deterioration (its
    after-commit check lost). They are locked, recorded with their history and escalated
    together, a fixed number of queries per 500 periods (it was about ten per period)."""
    from audits.models import Deterioration
    from core.models import Alert

    periods = _monitoring_periods(n, quality_lead=quality_lead, manager=manager, oakfield=oakfield)
    for period in periods:
        measure(period.plan, by=manager, on=TODAY, numerator=10, denominator=20)
    count, outcome = _captured(django_capture_on_commit_callbacks, sweeps.deterioration)
    assert outcome == f"{n} monitoring period(s) checked, {n} new deterioration(s)"
    assert Deterioration.objects.count() == n
    assert (
        Deterioration.history.filter(
            history_type="+", history_change_reason="Deterioration detected"
        ).count()
        == n
    )
    alerts = Alert.objects.filter(kind="audits-deterioration")
    assert sorted(alerts.values_list("key", flat=True)) == sorted(
        f"audits-deterioration:{p.pk}:{p.plan.indicators.get().measurements.get(measured_on=TODAY).pk}"
        for p in periods
    )
    assert all("lead@example.test" in a.recipients for a in alerts)
    # Five to look at every period; then the periods locked, their indicators, results
    # and known deteriorations, one bulk insert with its history, the quality leads,
    # the outbox's keys and one bulk insert, and the cached pages they move
    # (core.freshness), with savepoint statements.
    assert count == 18, count
    again, outcome = _captured(django_capture_on_commit_callbacks, sweeps.deterioration)
    assert outcome.endswith(", 0 new deterioration(s)") and alerts.count() == n
    assert again == 4, again


@pytest.mark.django_db
@pytest.mark.parametrize("n", [1, 30])
def test_monitoring_ending_short_takes_the_same_queries_for_1_or_30_periods(
    n, frozen, quality_lead, manager, oakfield, django_capture_on_commit_callbacks
):
    from core.models import Alert

    _monitoring_periods(n, quality_lead=quality_lead, manager=manager, oakfield=oakfield)
    frozen.move_to(NOW + datetime.timedelta(days=31))  # ended, no result in the period
    count, outcome = _captured(django_capture_on_commit_callbacks, sweeps.monitoring_ended)
    assert outcome == f"{n} monitoring period(s) ended, {n} without enough monitoring data"
    assert Alert.objects.filter(kind="audits-monitoring-short").count() == n
    assert count == 21, count
