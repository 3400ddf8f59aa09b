"""The two verdicts on a plan, computed from stored measurements, never typed in.

1. **Criteria verdict** (the contract), per indicator: the latest unbroken run of results
   on the right side of the target must span at least the sustain period and hold at
   least the minimum number of re-audits. Any miss restarts the window. A result exactly
   on the target is met. The run is judged by its own results: its first result starts
   the window and a result at or after the window's end confirms it, so improvement is
   never declared on silence. Every result logged for the indicator counts as a
   re-audit of it, whatever its source (re-audit, incident panel, KPI report, import).
2. **Statistical assurance**, per indicator, from the pure engine (``audits.spc``): a
   p-chart when every result has a denominator, an XmR chart otherwise, a run chart for
   10-14 results, and "not enough data for statistical confirmation" below that.

Whether a plan may go to closure review (these verdicts, its actions, evidence, learning
and report together) is the closure workflow's to say: ``qip_portal/closure/workflow.py``.

``verdicts_for_plans`` reads everything for any number of plans in a fixed number of
queries (six), so the plan page and the nightly sweeps cost the same for 1 or 10,000.
"""

from __future__ import annotations

import copy as copy_module
import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from dateutil.relativedelta import relativedelta

from audits import spc
from audits.models import Annotation, EvidenceItem, Measurement
from audits.spc.series import MIN_RUN_CHART_POINTS, MIN_SPC_POINTS
from audits.spc.text import plural
from core.dates import day
from core.thresholds import MIN_PARTITION_POINTS
from plans.models import Action, ClosureCriteria, EvidenceKind, Indicator, Plan


def engine_direction(indicator: Indicator) -> str:
    return "up" if indicator.direction == Indicator.Direction.HIGHER else "down"


def value_scale(indicator: Indicator) -> Decimal:
    """Stored value per engine proportion: 100 for "%" proportions, else 1."""
    if indicator.measure_type == Indicator.MeasureType.PROPORTION and indicator.unit == "%":
        return Decimal(100)
    return Decimal(1)


def short_value(indicator: Indicator, value: Decimal | float) -> str:
    text = spc.format_number(float(value))
    if indicator.unit == "%":
        return f"{text}%"
    return f"{text} {indicator.unit_for(value)}".rstrip()


# --- 1. The criteria verdict -----------------------------------------------------------


@dataclass(frozen=True)
class CriteriaVerdict:
    """Where one indicator stands against the plan's own closure criteria."""

    indicator: Indicator
    sustain_months: int
    min_reaudits: int
    met: bool
    window_start: datetime.date | None  # first result of the latest unbroken run on target
    window_ends: datetime.date | None  # window_start + the sustain period
    met_since: datetime.date | None  # the result at which both conditions first held
    reset_by: Measurement | None  # the latest miss, which started this window
    reaudits: int  # results inside the run
    n_results: int

    @property
    def status(self) -> str:
        if self.met:
            return "met"
        return "waiting" if self.window_start else "not_met"

    def headline(self) -> str:
        if self.met:
            assert self.met_since is not None
            return f"Criteria met since {day(self.met_since)}"
        if self.window_start is None:
            return (
                "Not met: no results yet" if not self.n_results else "Not met: latest result missed"
            )
        assert self.window_ends is not None
        return (
            f"Window started {day(self.window_start)}, ends {day(self.window_ends)} "
            f"({plural(self.reaudits, 're-audit')}, {self.min_reaudits} needed)"
        )

    def explain(self) -> str:
        ind = self.indicator
        months = f"{self.sustain_months} month{'s' if self.sustain_months != 1 else ''}"
        reset = ""
        if self.reset_by is not None:
            reset = (
                f" The window restarted after {short_value(ind, self.reset_by.value)} on "
                f"{day(self.reset_by.measured_on)} missed the target."
            )
        if self.n_results == 0:
            return (
                f"No results yet for “{ind.name}”. The sustain window starts with the first "
                f"result on target ({ind.target_display()})."
            )
        if self.window_start is None:
            return (
                f"The latest result for “{ind.name}”, {short_value(ind, self.reset_by.value)} "  # type: ignore[union-attr]
                f"on {day(self.reset_by.measured_on)}, missed the target "  # type: ignore[union-attr]
                f"({ind.target_display()}), so the sustain window has restarted. It begins "
                "again with the next result on target."
            )
        assert self.window_ends is not None
        if self.met:
            return (
                f"Every result since {day(self.window_start)} "
                f"({plural(self.reaudits, 're-audit')}) has "
                "been on target "
                f"({ind.target_display()}) for the {months} sustain period, with at least "
                f"{plural(self.min_reaudits, 're-audit')}.{reset}"
            )
        needs = []
        if self.reaudits < self.min_reaudits:
            more = self.min_reaudits - self.reaudits
            needs.append(f"{more} more re-audit{'s' if more != 1 else ''}")
        needs.append(f"a result on target on or after {day(self.window_ends)}")
        return (
            f"Sustain window started {day(self.window_start)} and ends "
            f"{day(self.window_ends)} ({months}). {plural(self.reaudits, 're-audit')} "
            f"({self.min_reaudits} needed) so far, all on target ({ind.target_display()}). "
            "Still needed: "
            f"{' and '.join(needs)}, with no miss in between.{reset}"
        )


def criteria_verdict(
    indicator: Indicator,
    measurements: list[Measurement],
    *,
    sustain_months: int,
    min_reaudits: int,
) -> CriteriaVerdict:
    """The criteria verdict from ``measurements`` (one indicator's, oldest first)."""
    last_miss = None
    for position, m in enumerate(measurements):
        if not indicator.meets_target(m.value):
            last_miss = position
    run = measurements if last_miss is None else measurements[last_miss + 1 :]
    reset_by = None if last_miss is None else measurements[last_miss]
    verdict = {
        "indicator": indicator,
        "sustain_months": sustain_months,
        "min_reaudits": min_reaudits,
        "reset_by": reset_by,
        "n_results": len(measurements),
    }
    if not run:
        return CriteriaVerdict(
            **verdict, met=False, window_start=None, window_ends=None, met_since=None, reaudits=0
        )
    start = run[0].measured_on
    ends = start + relativedelta(months=sustain_months)
    met_since = None
    for count, m in enumerate(run, start=1):
        if m.measured_on >= ends and count >= min_reaudits:
            met_since = m.measured_on
            break
    return CriteriaVerdict(
        **verdict,
        met=met_since is not None,
        window_start=start,
        window_ends=ends,
        met_since=met_since,
        reaudits=len(run),
    )


# --- 2. Statistical assurance ------------------------------------------------------------

# The fewest results from before a plan opened that make a frozen baseline.
BASELINE_MIN = MIN_PARTITION_POINTS


@dataclass(frozen=True)
class StatisticalAssurance:
    """The engine's assessment of one indicator's whole series, in display units."""

    indicator: Indicator
    assessment: spc.SeriesAssessment
    scale: Decimal  # multiply an engine value by this to get the stored (display) value
    concerns_in_window: tuple[spc.Signal, ...]

    @property
    def method(self) -> spc.Method:
        return self.assessment.method

    @property
    def method_label(self) -> str:
        return {
            spc.Method.INSUFFICIENT_DATA: "Not enough data for statistical confirmation",
            spc.Method.RUN_CHART: "Run chart (Anhøj rules)",
            spc.Method.XMR: "XmR chart (Making Data Count)",
            spc.Method.P_CHART: "p-chart (Making Data Count rules)",
        }[self.assessment.method]

    @property
    def has_concern(self) -> bool:
        return self.assessment.has_concern

    @property
    def is_judged(self) -> bool:
        """Enough results for the statistics to say anything."""
        return self.assessment.result is not None

    def headline(self) -> str:
        """The verdict in one line. Below the fewest results any rule needs, it says
        "not enough data for statistical confirmation", and nothing else that goes with
        it repeats that (``summary``, ``explain``)."""
        if not self.is_judged:
            return (
                f"{spc.NOT_ENOUGH_DATA.capitalize()} ({plural(self.assessment.n_points, 'result')}"
                f"; at least {MIN_RUN_CHART_POINTS} are needed)"
            )
        if self.concerns_in_window:
            return "Concern signal inside the sustain window"
        signals = self.assessment.signals
        if any(s.effect is spc.Effect.CONCERN for s in signals):
            return "Concern signal before the sustain window"
        if any(s.effect is spc.Effect.IMPROVEMENT for s in signals):
            return "Special cause improvement"
        if signals:
            return "Non-random variation (the process has changed; see how this was judged)"
        if self.method is spc.Method.RUN_CHART:
            return "Random variation only"
        return "Common cause variation only"

    def summary(self) -> str:
        """The method and the headline, as shown beside a chart: the method is left out
        when there was too little data for one."""
        if not self.is_judged:
            return self.headline()
        return f"{self.method_label}: {self.headline()}"

    def explain(self) -> str:
        if not self.is_judged:
            return (
                f"Only {plural(self.assessment.n_points, 'result')} so far. Run-chart rules "
                f"need at least {MIN_RUN_CHART_POINTS} and control limits at least "
                f"{MIN_SPC_POINTS}."
            )
        text = self.assessment.explain()
        if self.method is spc.Method.P_CHART and self.scale != 1:
            text += "\nProportions are written as fractions: 0.95 is 95%."
        return text


def baseline_points(measurements: list[Measurement], opened_on: datetime.date | None) -> int | None:
    """How many results form the frozen baseline: those from before the plan opened,
    when there are at least 12 of them and at least one result after."""
    before = sum(1 for m in measurements if opened_on and m.measured_on < opened_on)
    return before if BASELINE_MIN <= before < len(measurements) else None


def recalculation_points(
    measurements: list[Measurement], rebases: Iterable[datetime.date], baseline: int | None
) -> tuple[int, ...]:
    """The indices at which recorded recalculations start a new phase: the first result
    on or after each date. One that no longer falls after the first result and the
    baseline (a result since corrected or removed) is left out rather than guessed."""
    points = set()
    for when in rebases:
        index = next((i for i, m in enumerate(measurements) if m.measured_on >= when), None)
        if index is not None and index > 0 and index >= (baseline or 0):
            points.add(index)
    return tuple(sorted(points))


def statistical_assurance(
    indicator: Indicator,
    measurements: list[Measurement],
    *,
    window_start: datetime.date | None,
    opened_on: datetime.date | None = None,
    rebases: Iterable[datetime.date] = (),
) -> StatisticalAssurance:
    """The engine's verdict on the whole series. Results from before the plan opened
    (e.g. imported from a previous register) form a frozen baseline when there are at
    least 12 of them (SPC.md §0.6: a common-cause baseline of 12 or more points).
    ``rebases``: the dates from which the quality lead recalculated the limits
    (``services.recalculate_limits``); each starts a partition with its own limits."""
    baseline = baseline_points(measurements, opened_on)
    recalc_at = recalculation_points(measurements, rebases, baseline)
    labels = [day(m.measured_on) for m in measurements]
    direction = engine_direction(indicator)
    with_counts = bool(measurements) and all(
        m.denominator and m.numerator is not None for m in measurements
    )
    if not measurements:
        scale = Decimal(1)
        assessment = spc.SeriesAssessment(spc.Method.INSUFFICIENT_DATA, 0, None)
    elif with_counts and indicator.measure_type == Indicator.MeasureType.PROPORTION:
        scale = value_scale(indicator)
        assessment = spc.assess_series(
            numerators=[m.numerator for m in measurements],
            denominators=[m.denominator for m in measurements],
            direction=direction,
            target=indicator.target / scale,
            labels=labels,
            baseline=baseline,
            recalc_at=recalc_at,
        )
    else:
        scale = Decimal(1)
        assessment = spc.assess_series(
            [m.value for m in measurements],
            direction=direction,
            target=indicator.target,
            labels=labels,
            baseline=baseline,
            recalc_at=recalc_at,
        )
    in_window: tuple[spc.Signal, ...] = ()
    if window_start is not None:
        in_window = tuple(
            s
            for s in assessment.signals
            if s.effect is spc.Effect.CONCERN
            and any(measurements[i].measured_on >= window_start for i in s.points)
        )
    return StatisticalAssurance(indicator, assessment, scale, in_window)


# --- 3. Per plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorVerdict:
    indicator: Indicator
    measurements: list[Measurement]  # oldest first
    criteria: CriteriaVerdict
    assurance: StatisticalAssurance
    # Notes on the chart, oldest first, recalculations of the limits among them.
    annotations: tuple[Annotation, ...] = ()

    @property
    def rebases(self) -> tuple[Annotation, ...]:
        return tuple(a for a in self.annotations if a.is_rebase)


@dataclass(frozen=True)
class PlanVerdicts:
    plan: Plan
    criteria: ClosureCriteria | None
    indicators: list[IndicatorVerdict]
    # What else the closure workflow needs, read in the same queries: the descriptions
    # of actions not completed (in due-date order), and the labels of required kinds
    # of evidence with no item yet.
    open_actions: tuple[str, ...] = ()
    missing_evidence: tuple[str, ...] = ()

    @property
    def all_met(self) -> bool:
        return bool(self.indicators) and all(v.criteria.met for v in self.indicators)

    @property
    def window_start(self) -> datetime.date | None:
        """The latest restart among the indicators: when every window had begun."""
        starts = [v.criteria.window_start for v in self.indicators]
        if not starts or any(s is None for s in starts):
            return None
        return max(starts)  # type: ignore[type-var]

    @property
    def met_since(self) -> datetime.date | None:
        dates = [v.criteria.met_since for v in self.indicators]
        if not self.all_met:
            return None
        return max(dates)  # type: ignore[type-var]


class _Point(NamedTuple):
    """The two columns ``criteria_verdict`` reads of a result."""

    measured_on: datetime.date
    value: Decimal


class CriteriaMet(NamedTuple):
    """When a plan's every indicator had met its criteria, and when its windows began
    (``PlanVerdicts.met_since`` and ``window_start``)."""

    since: datetime.date
    window_start: datetime.date


def _criteria_and_indicators(
    ids: list[int],
) -> tuple[dict[int, ClosureCriteria], dict[int, list[Indicator]]]:
    """Each plan's criteria, and its indicators in display order (two queries)."""
    criteria = {c.plan_id: c for c in ClosureCriteria.objects.filter(plan_id__in=ids)}
    indicators: dict[int, list[Indicator]] = defaultdict(list)
    for ind in Indicator.objects.filter(plan_id__in=ids).order_by("plan_id", "position", "pk"):
        indicators[ind.plan_id].append(ind)
    return criteria, indicators


def _criteria_verdict(ind: Indicator, results, crit: ClosureCriteria | None) -> CriteriaVerdict:
    """``criteria_verdict`` with the plan's sustain period and re-audit count (or the
    defaults, for a plan without criteria)."""
    return criteria_verdict(
        ind,
        results,
        sustain_months=crit.sustain_months if crit else 3,
        min_reaudits=crit.min_reaudits if crit else 1,
    )


def plans_meeting_criteria(plans: Iterable[Plan]) -> dict[int, CriteriaMet]:
    """{plan id: CriteriaMet} for the plans in ``plans`` whose every indicator has met its
    criteria (what ``PlanVerdicts.all_met`` and ``met_since`` say), without the
    statistics and without loading results as models: three queries however many
    plans. The readiness sweep asks this first and builds full verdicts only for the
    few plans it finds."""
    ids = [p.pk for p in plans]
    criteria, indicators = _criteria_and_indicators(ids)
    series: dict[int, list[_Point]] = defaultdict(list)
    for indicator_id, measured_on, value in (
        Measurement.objects.filter(indicator__plan_id__in=ids)
        .order_by("indicator_id", "measured_on", "pk")
        .values_list("indicator_id", "measured_on", "value")
    ):
        series[indicator_id].append(_Point(measured_on, value))
    met = {}
    for plan_id in ids:
        crit = criteria.get(plan_id)
        verdicts = [
            _criteria_verdict(ind, series[ind.pk], crit)  # type: ignore[arg-type]
            for ind in indicators[plan_id]
        ]
        if verdicts and all(v.met for v in verdicts):
            met[plan_id] = CriteriaMet(
                since=max(v.met_since for v in verdicts),  # type: ignore[type-var]
                window_start=max(v.window_start for v in verdicts),  # type: ignore[type-var]
            )
    return met


def _detached(row):
    """A copy of a model instance without the rows it was read with (related objects,
    prefetched lists): the same fields, and nothing else goes into a cache with it."""
    copy = copy_module.copy(row)
    copy._state = copy_module.copy(row._state)
    copy._state.fields_cache = {}
    copy.__dict__.pop("_prefetched_objects_cache", None)
    return copy


def verdicts_for_plans(
    plans: Iterable[Plan], *, preloaded: bool = False
) -> dict[int, PlanVerdicts]:
    """Both verdicts of every plan in ``plans``: six queries in all,
    however many plans, indicators and results. The verdicts depend only on stored
    results (a window is confirmed by a result, never by the calendar alone).

    ``preloaded``: the plans were read in this request with their criteria
    (``select_related("criteria")``), indicators and actions (``prefetch_related``), as
    the plan page reads its plan; those are used, not read again (two queries)."""
    plans = list(plans)
    ids = [p.pk for p in plans]
    if preloaded:
        # Detached copies: the verdicts are cached (pickled), and the page's rows carry
        # what they were read with (the plan, its people, its actions).
        criteria = {
            p.pk: _detached(c) for p in plans if (c := getattr(p, "criteria", None)) is not None
        }
        indicators = {p.pk: [_detached(i) for i in p.indicators.all()] for p in plans}
        plans_by_id = {p.pk: _detached(p) for p in plans}
    else:
        criteria, indicators = _criteria_and_indicators(ids)
        plans_by_id = {p.pk: p for p in plans}
    by_id = {ind.pk: ind for inds in indicators.values() for ind in inds}
    series: dict[int, list[Measurement]] = defaultdict(list)
    # Results as models (the verdicts quote them), without their location and author:
    # no verdict or chart names either, and a plan page would load a location and a
    # user per result (then cache them: see core.freshness).
    rows = Measurement.objects.filter(indicator__plan_id__in=ids).order_by(
        "indicator_id", "measured_on", "pk"
    )
    for m in rows:
        indicator = by_id.get(m.indicator_id)
        if indicator is None:  # an indicator added since the plan's were read
            continue
        m.indicator = indicator  # share the loaded indicator: no extra query
        series[m.indicator_id].append(m)
    open_actions: dict[int, list[Action]] = defaultdict(list)
    actions = (
        [a for p in plans for a in p.actions.all()]  # in their order: due date, then id
        if preloaded
        else Action.objects.filter(plan_id__in=ids)
        .exclude(status=Action.Status.COMPLETED)
        .order_by("due_date", "pk")
    )
    for action in actions:
        if action.status != Action.Status.COMPLETED:
            open_actions[action.plan_id].append(action)
    kinds: dict[int, set[str]] = defaultdict(set)
    for plan_id, kind in (
        EvidenceItem.objects.filter(plan_id__in=ids).values_list("plan_id", "kind").distinct()
    ):
        kinds[plan_id].add(kind)
    # Chart notes and recalculations (their authors are in history, not in the figures).
    notes: dict[int, list[Annotation]] = defaultdict(list)
    for note in Annotation.objects.filter(indicator__plan_id__in=ids).order_by(
        "indicator_id", "noted_on", "pk"
    ):
        notes[note.indicator_id].append(note)

    labels = dict(EvidenceKind.choices)
    result: dict[int, PlanVerdicts] = {}
    for plan in plans:
        crit = criteria.get(plan.pk)
        verdicts = []
        for ind in indicators[plan.pk]:
            ms = series[ind.pk]
            cv = _criteria_verdict(ind, ms, crit)
            marks = tuple(notes[ind.pk])
            sa = statistical_assurance(
                ind,
                ms,
                window_start=cv.window_start,
                opened_on=plan.opened_on,
                rebases=[a.noted_on for a in marks if a.is_rebase],
            )
            verdicts.append(IndicatorVerdict(ind, ms, cv, sa, marks))
        required = crit.required_evidence if crit else []
        missing = [labels.get(k, k) for k in required if k not in kinds[plan.pk]]
        result[plan.pk] = PlanVerdicts(
            plan=plans_by_id[plan.pk],
            criteria=crit,
            indicators=verdicts,
            open_actions=tuple(a.description for a in open_actions[plan.pk]),
            missing_evidence=tuple(missing),
        )
    return result


def plan_verdicts(plan: Plan, *, preloaded: bool = False) -> PlanVerdicts:
    """Both verdicts of one plan, in six queries (four when
    ``preloaded``: see ``verdicts_for_plans``)."""
    return verdicts_for_plans([plan], preloaded=preloaded)[plan.pk]
