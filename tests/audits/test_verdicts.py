"""The criteria verdict and the statistical assurance, from stored results; and the
closure workflow's readiness built on them (qip_portal/closure/workflow.py)."""

import datetime
from decimal import Decimal

import pytest

from audits.models import EvidenceItem, Measurement
from audits.verdicts import criteria_verdict, plan_verdicts
from plans import services
from plans.models import Indicator
from qip_portal import closure
from tests import factories
from tests.audits.factories import measure

D = datetime.date


def _indicator(direction="higher", target="95"):
    return Indicator(
        name="Escalated within 24h",
        measure_type="proportion",
        direction=direction,
        target=Decimal(target),
        unit="%",
    )


def _series(indicator, points):
    return [
        Measurement(indicator=indicator, measured_on=day, value=Decimal(str(value)))
        for day, value in points
    ]


def test_window_restarts_after_a_missed_target():
    ind = _indicator()
    ms = _series(
        ind,
        [
            (D(2026, 1, 5), 96),
            (D(2026, 2, 5), 90),
            (D(2026, 3, 5), 97),
            (D(2026, 4, 5), 98),
            (D(2026, 6, 10), 99),
        ],
    )
    verdict = criteria_verdict(ind, ms, sustain_months=3, min_reaudits=2)
    assert verdict.met
    assert verdict.reset_by is ms[1]
    assert verdict.window_start == D(2026, 3, 5)
    assert verdict.window_ends == D(2026, 6, 5)
    assert verdict.met_since == D(2026, 6, 10)
    assert verdict.reaudits == 3
    assert verdict.headline() == "Criteria met since 10 Jun 2026"
    assert "restarted after 90% on 5 Feb 2026" in verdict.explain()


def test_a_miss_after_the_window_elapsed_restarts_it_again():
    ind = _indicator()
    ms = _series(ind, [(D(2026, 1, 5), 96), (D(2026, 4, 6), 97), (D(2026, 5, 5), 94)])
    verdict = criteria_verdict(ind, ms, sustain_months=3, min_reaudits=2)
    assert not verdict.met and verdict.window_start is None
    assert verdict.reset_by is ms[-1]
    assert "missed the target" in verdict.explain()


def test_too_few_reaudits_within_the_window_is_not_met():
    ind = _indicator()
    ms = _series(ind, [(D(2026, 1, 5), 96), (D(2026, 4, 15), 97)])
    verdict = criteria_verdict(ind, ms, sustain_months=3, min_reaudits=3)
    assert not verdict.met
    assert verdict.status == "waiting"
    assert "1 more re-audit" in verdict.explain()
    assert verdict.headline() == (
        "Window started 5 Jan 2026, ends 5 Apr 2026 (2 re-audits, 3 needed)"
    )


def test_window_not_yet_spanned_is_not_met_however_many_reaudits():
    ind = _indicator()
    ms = _series(ind, [(D(2026, 1, 5), 96), (D(2026, 2, 5), 97), (D(2026, 3, 5), 98)])
    verdict = criteria_verdict(ind, ms, sustain_months=3, min_reaudits=2)
    assert not verdict.met
    assert "a result on target on or after 5 Apr 2026" in verdict.explain()


def test_lower_is_better_works():
    ind = _indicator(direction="lower", target="0")
    ind.unit, ind.measure_type = "alerts", "count"
    ms = _series(
        ind, [(D(2026, 1, 1), 2), (D(2026, 2, 1), 0), (D(2026, 3, 1), 0), (D(2026, 5, 2), 0)]
    )
    verdict = criteria_verdict(ind, ms, sustain_months=3, min_reaudits=2)
    assert verdict.met and verdict.window_start == D(2026, 2, 1)
    assert verdict.met_since == D(2026, 5, 2)
    assert "2 alerts on 1 Jan 2026" in verdict.explain()
    worse = _series(ind, [(D(2026, 1, 1), 0), (D(2026, 4, 2), 1)])
    assert not criteria_verdict(ind, worse, sustain_months=3, min_reaudits=1).met


def test_a_result_exactly_on_the_target_counts_as_met():
    ind = _indicator(target="95")
    ms = _series(ind, [(D(2026, 1, 1), "95.000"), (D(2026, 4, 1), "95.000")])
    assert criteria_verdict(ind, ms, sustain_months=3, min_reaudits=2).met


def test_no_results_is_not_met():
    verdict = criteria_verdict(_indicator(), [], sustain_months=3, min_reaudits=2)
    assert not verdict.met and "No results yet" in verdict.explain()


# --- From the database ----------------------------------------------------------------


@pytest.fixture
def sustained(quality_lead, manager, oakfield):
    """A live plan whose one indicator has met its criteria (3 months, 2 re-audits)."""
    opened = datetime.date.today() - datetime.timedelta(days=200)
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield], opened_on=opened)
    for months in (6, 4, 3, 2, 1):
        measure(plan, by=manager, on=datetime.date.today() - datetime.timedelta(days=30 * months))
    return plan


def _blockers(plan) -> list[str]:
    return [b.text for b in closure.closure_blockers(plan)]


def test_readiness_lists_every_reason_in_plain_english(sustained, quality_lead):
    verdicts = plan_verdicts(sustained)
    assert verdicts.all_met
    assert verdicts.indicators[0].assurance.headline() == (
        "Not enough data for statistical confirmation (5 results; at least 10 are needed)"
    )
    factories.write_learning_summary(sustained, by=quality_lead)
    factories.record_residual_risk(sustained, by=quality_lead)
    assert _blockers(sustained) == [
        "1 action is not completed: Refresher training.",
        "No evidence of the required kind “Re-audit” has been added.",
    ]
    action = sustained.actions.get()
    services.save_action(
        plan=sustained, by=quality_lead, fields={"status": "completed"}, action=action
    )
    EvidenceItem.objects.create(
        plan=sustained,
        kind="re_audit",
        title="Audit",
        occurred_on=datetime.date.today(),
        uploaded_by=quality_lead,
    )
    assert _blockers(sustained) == []


def test_unmet_indicator_is_a_readiness_reason(plan, manager):
    measure(plan, by=manager, on=plan.opened_on, numerator=10, denominator=20)
    reasons = _blockers(plan)
    assert any("Escalated within 24h" in r and "missed the target" in r for r in reasons)


def test_a_concern_signal_inside_the_window_blocks_readiness(quality_lead, manager, oakfield):
    today = datetime.date.today()
    plan = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        opened_on=today - datetime.timedelta(days=400),
        indicators=[
            {
                "name": "Score",
                "measure_type": "score",
                "direction": "higher",
                "target": Decimal("90"),
                "unit": "",
                "frequency": "fortnightly",
            }
        ],
    )
    # On target throughout, but the last seven fall one after another: a trend of concern.
    values = [99, 98, 99, 98, 99, 98, 99, 98, 99, 98.5, 97.5, 96.5, 95.5, 94.5, 93.5, 92.5]
    for i, value in enumerate(values):
        measure(
            plan,
            by=manager,
            on=today - datetime.timedelta(days=14 * (len(values) - i)),
            numerator=None,
            denominator=None,
            value=Decimal(str(value)),
        )
    verdict = plan_verdicts(plan).indicators[0]
    assert verdict.criteria.met
    assert verdict.assurance.method.value == "xmr"
    assert verdict.assurance.concerns_in_window
    assert any("concern signal inside the sustain window" in r for r in _blockers(plan))


@pytest.mark.parametrize("per_indicator", [1, 20])
def test_verdicts_run_a_fixed_number_of_queries(
    quality_lead, manager, oakfield, per_indicator, django_assert_num_queries
):
    indicators = [
        {
            "name": f"Indicator {n}",
            "measure_type": "proportion",
            "direction": "higher",
            "target": Decimal("90"),
            "unit": "%",
            "frequency": "monthly",
        }
        for n in range(3)
    ]
    plan = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        indicators=indicators,
        opened_on=datetime.date(2024, 1, 1),
    )
    for ind in plan.indicators.all():
        for i in range(per_indicator):
            measure(
                plan,
                by=manager,
                indicator=ind,
                on=datetime.date(2024, 1, 1) + datetime.timedelta(days=20 * i),
            )
    # Five reads, and one for the chart notes and recalculations.
    with django_assert_num_queries(6):
        verdicts = plan_verdicts(plan)
        for v in verdicts.indicators:
            v.criteria.explain()
            v.assurance.explain()
            [m.value_display() for m in v.measurements]


@pytest.mark.django_db
def test_verdicts_from_the_plan_pages_rows_are_the_verdicts_read_afresh(quality_lead, oakfield):
    """The plan page passes the rows it read (preloaded): indicators in display order
    (not id order), completed actions left out, a plan without criteria, and results
    logged on both indicators give exactly what reading everything afresh gives."""
    from django.db.models import Prefetch, prefetch_related_objects

    from audits.verdicts import verdicts_for_plans
    from plans.models import Action, ClosureCriteria, Plan

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    first = plan.indicators.get()
    second = Indicator.objects.create(
        plan=plan,
        name="Reviewed within 7 days",
        measure_type="proportion",
        direction="higher",
        target=Decimal("90"),
        unit="%",
        frequency="monthly",
        position=0,
    )
    Indicator.objects.filter(pk=first.pk).update(position=1)  # shown second, older id
    for i, ind in enumerate([first, second]):
        measure(
            plan, by=quality_lead, on=plan.opened_on + datetime.timedelta(days=i + 1), indicator=ind
        )
    Action.objects.create(
        plan=plan,
        description="Done already",
        owner=quality_lead,
        due_date=plan.opened_on,
        status="completed",
        completed_on=plan.opened_on,
    )
    bare = factories.live_plan(owner=quality_lead, locations=[oakfield], title="No criteria")
    ClosureCriteria.objects.filter(plan=bare).delete()

    for reference in (plan.reference, bare.reference):
        afresh = plan_verdicts(Plan.objects.get(reference=reference))
        page = Plan.objects.select_related("criteria").get(reference=reference)
        prefetch_related_objects(
            [page],
            "indicators",
            Prefetch("actions", queryset=Action.objects.select_related("owner")),
        )
        preloaded = verdicts_for_plans([page], preloaded=True)[page.pk]
        assert [v.indicator.pk for v in preloaded.indicators] == [
            v.indicator.pk for v in afresh.indicators
        ]
        assert [[m.pk for m in v.measurements] for v in preloaded.indicators] == [
            [m.pk for m in v.measurements] for v in afresh.indicators
        ]
        assert [v.criteria.explain() for v in preloaded.indicators] == [
            v.criteria.explain() for v in afresh.indicators
        ]
        assert preloaded.open_actions == afresh.open_actions
        assert preloaded.criteria == afresh.criteria
        assert preloaded.missing_evidence == afresh.missing_evidence
    assert [v.indicator.pk for v in plan_verdicts(plan).indicators] == [second.pk, first.pk]
    assert plan_verdicts(plan).open_actions == ("Refresher training",)  # not the completed one
    assert plan_verdicts(bare).criteria is None
