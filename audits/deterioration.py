"""Deterioration after step-down (ARCHITECTURE.md; SPC.md §6.2): what to freeze when a
monitoring period starts, and what counts as deterioration afterwards. Reads only; the
recording and escalation is ``services.check_monitoring``.

Deterioration is any result beyond its indicator's floor, or any Making Data Count
concern rule completed on the monitoring results against the *frozen* limits of the
sustained phase (``spc.assess_monitoring``): limits that kept moving with new data would
absorb the very deterioration they are meant to catch.

Limits are used only where Making Data Count would lock them (``limits_apply``): a
frozen reference of at least 12 results, the minimum of a partition (SPC.md §3.4).
Below that, the floor and the run-chart rules (Anhøj, around the reference's median)
judge alone, and no limits are drawn or stored. Limits of a proportion are clipped to
0-100 %. This is applied here, by the callers of the engine, not in it.

A monitoring period ends well only with the evidence its indicators' frequencies call
for (``evidence_gaps``): a result in every due interval, or ``MONITORING_MIN_RESULTS``
results when that setting is given.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet

from audits import spc
from audits.models import Deterioration, Measurement, MonitoredIndicator, MonitoringPeriod
from audits.spc.series import MIN_RUN_CHART_POINTS
from audits.verdicts import criteria_verdict, day, engine_direction, short_value, value_scale
from core.thresholds import MIN_PARTITION_POINTS
from plans.models import Indicator, Plan

# The sustained phase's limits are locked on its first 12 points (SPC.md §6.1 remark 3).
REFERENCE_POINTS = MIN_PARTITION_POINTS


@dataclass(frozen=True)
class Reference:
    values: list[dict]  # [{"on": "2026-03-01", "value": "93.000"}, ...] oldest first
    mean: Decimal | None
    lower: Decimal | None
    upper: Decimal | None


def freeze_reference(
    indicator: Indicator, measurements: list[Measurement], *, sustain_months: int, min_reaudits: int
) -> Reference:
    """The reference for monitoring: the first results (up to 12) of the latest
    unbroken run on target, i.e. the sustained phase; the last 12 results when that run
    is shorter than two. Fewer than two results in all: no SPC reference (floors only)."""
    verdict = criteria_verdict(
        indicator, measurements, sustain_months=sustain_months, min_reaudits=min_reaudits
    )
    run = [
        m for m in measurements if verdict.window_start and m.measured_on >= verdict.window_start
    ]
    chosen = run[:REFERENCE_POINTS] if len(run) >= 2 else measurements[-REFERENCE_POINTS:]
    if len(chosen) < 2:
        return Reference([], None, None, None)
    values = [{"on": m.measured_on.isoformat(), "value": str(m.value)} for m in chosen]
    if len(chosen) < MIN_PARTITION_POINTS:
        # Too few to lock limits on (SPC.md §3.4): kept for the run chart's median only.
        return Reference(values, None, None, None)
    limits = spc.assess_monitoring(
        [m.value for m in chosen], [], direction=engine_direction(indicator)
    ).reference_limits

    def q(x: float) -> Decimal:
        return Decimal(str(x)).quantize(Decimal("0.0001"))

    lower, upper = clip_limits(indicator, limits.lower, limits.upper)
    return Reference(values, q(limits.mean), q(lower), q(upper))


def clip_limits(indicator: Indicator, lower: float, upper: float) -> tuple[float, float]:
    """Process limits of a proportion, clipped to what a proportion can be (0 to 100 %,
    or 0 to 1): XmR limits on percentages can pass 100 %, a value no result can take."""
    if indicator.measure_type != Indicator.MeasureType.PROPORTION:
        return lower, upper
    top = float(value_scale(indicator))
    return max(lower, 0.0), min(upper, top)


def limits_apply(monitored: MonitoredIndicator) -> bool:
    """May the frozen reference's process limits be drawn and used? Only as Making Data
    Count locks limits: on a reference of at least ``MIN_PARTITION_POINTS`` results (the
    sustained phase's first 12). Limits from fewer are "trial" limits that would call
    ordinary variation a concern; the floor and the run-chart rules judge instead."""
    return len(monitored.reference_values or []) >= MIN_PARTITION_POINTS


def _run_chart_findings(
    monitored: MonitoredIndicator, measurements: list[Measurement]
) -> list[Finding]:
    """Concern-side run-chart signals (Anhøj: a run longer than chance allows) around
    the median of the frozen reference, once there are enough points for the run-chart
    rules at all (10). Anhøj's longest-run limit grows with the number of points, so
    each run is judged as of every result in turn and tied to the first result at which
    it signalled: recorded (and escalated) once, however long it grows."""
    ind = monitored.indicator
    reference = [Decimal(r["value"]) for r in monitored.reference_values or []]
    labels = [day(datetime.date.fromisoformat(r["on"])) for r in monitored.reference_values or []]
    labels += [day(m.measured_on) for m in measurements]
    values = reference + [m.value for m in measurements]
    start = len(reference)
    first: dict[int, tuple[int, spc.Signal]] = {}  # run's first point -> (result, signal)
    for end in range(max(MIN_RUN_CHART_POINTS, start + 1), len(values) + 1):
        result = spc.analyse_run_chart(
            values[:end],
            direction=engine_direction(ind),
            baseline=start or None,
            labels=labels[:end],
        )
        for signal in result.signals:
            if signal.effect is spc.Effect.CONCERN and signal.points[-1] >= start:
                first.setdefault(signal.points[0], (end - 1 - start, signal))
    return [
        Finding(
            monitored,
            measurements[at],
            Deterioration.Kind.RUN,
            signal.code,
            spc.Severity.SUSTAINED_DETERIORATION.value,
            f"Run-chart concern signal on “{ind.name}” (too few results for process "
            f"limits): {signal.explain()}",
        )
        for at, signal in first.values()
        if at >= 0
    ]


@dataclass(frozen=True)
class Finding:
    monitored: MonitoredIndicator
    measurement: Measurement
    kind: str  # Deterioration.Kind
    rule: str
    severity: str
    explanation: str


def find_deteriorations(
    monitored: MonitoredIndicator, measurements: list[Measurement]
) -> list[Finding]:
    """Every deterioration among ``measurements`` (the indicator's results inside the
    period, oldest first): floor breaches, then SPC concern signals, each tied to the
    result at which it became visible."""
    ind = monitored.indicator
    found: list[Finding] = []
    for m in measurements:
        if monitored.breaches_floor(m.value):
            found.append(
                Finding(
                    monitored,
                    m,
                    "floor",
                    "floor",
                    spc.Severity.INVESTIGATE.value,
                    f"Below the monitoring floor: “{ind.name}” was {short_value(ind, m.value)} "
                    f"on {day(m.measured_on)}, beyond the floor of {monitored.floor_display()}.",
                )
            )
    reference = monitored.reference_values or []
    if measurements and not limits_apply(monitored):
        return found + _run_chart_findings(monitored, measurements)
    if len(reference) >= 2 and measurements:
        ref_labels = [day(datetime.date.fromisoformat(r["on"])) for r in reference]
        assessment = spc.assess_monitoring(
            [Decimal(r["value"]) for r in reference],
            [m.value for m in measurements],
            direction=engine_direction(ind),
            target=ind.target,
            labels=ref_labels + [day(m.measured_on) for m in measurements],
        )
        for d in assessment.deteriorations:
            m = measurements[d.detected_at - assessment.monitoring_start]
            found.append(
                Finding(
                    monitored,
                    m,
                    "spc",
                    d.signal.code,
                    d.severity.value,
                    f"SPC concern signal on “{ind.name}”: {d.explain()}",
                )
            )
    return found


def without_limits_explanation(
    monitored: MonitoredIndicator, measurements: list[Measurement]
) -> str:
    """What judges deterioration where limits do not apply (``limits_apply``), in words
    for the plan page."""
    n = len(monitored.reference_values or [])
    text = (
        f"The sustained phase froze {n} result{'s' if n != 1 else ''}, fewer than the "
        f"{MIN_PARTITION_POINTS} that process limits are locked on (Making Data Count), so "
        "no limits are drawn or used: the floor and the run-chart rules judge deterioration."
    )
    values = [Decimal(r["value"]) for r in monitored.reference_values or []]
    values += [m.value for m in measurements]
    if len(values) < MIN_RUN_CHART_POINTS:
        return (
            f"{text} The run-chart rules start at {MIN_RUN_CHART_POINTS} points; there are "
            f"{len(values)} so far."
        )
    result = spc.analyse_run_chart(
        values, direction=engine_direction(monitored.indicator), baseline=n or None
    )
    return f"{text}\n{result.explain()}"


def assessment_for(monitored: MonitoredIndicator, measurements: list[Measurement]):
    """The engine's monitoring assessment against the frozen limits (for the plan
    page), or None where limits do not apply (``limits_apply``)."""
    reference = monitored.reference_values or []
    if len(reference) < 2 or not limits_apply(monitored):
        return None
    return spc.assess_monitoring(
        [Decimal(r["value"]) for r in reference],
        [m.value for m in measurements],
        direction=engine_direction(monitored.indicator),
        target=monitored.indicator.target,
        labels=[day(datetime.date.fromisoformat(r["on"])) for r in reference]
        + [day(m.measured_on) for m in measurements],
    )


# --- What the closure workflow asks of monitoring (qip_portal/closure/workflow.py) -------------


def deteriorating_plans(plans: QuerySet[Plan]) -> QuerySet[Plan]:
    """Plans in monitoring with a deterioration not yet dealt with (one subquery)."""
    periods = MonitoringPeriod.objects.filter(
        status=MonitoringPeriod.Status.OPEN,
        deteriorations__status=Deterioration.Status.OPEN,
    )
    return plans.filter(status=Plan.Status.MONITORING, pk__in=periods.values("plan_id"))


def reopen_gaps(plan: Plan) -> list[str]:
    """Why ``plan`` may not be re-opened now: re-opening follows deterioration, so its
    open monitoring period must have an open one. Empty when it may."""
    period = MonitoringPeriod.objects.filter(plan=plan, status=MonitoringPeriod.Status.OPEN).first()
    if period is None:
        return ["The plan has no open monitoring period."]
    if not period.deteriorations.filter(status=Deterioration.Status.OPEN).exists():
        return [
            "Re-opening follows deterioration, and none has been found in this monitoring "
            "period: every result is within its floor and shows no SPC concern signal."
        ]
    return []


def final_closure_gaps(
    plan_ids: list[int], today: datetime.date | None = None
) -> dict[int, list[str]]:
    """{plan id: why it may not yet go forward for final closure} for plans in
    monitoring: its latest monitoring period must have reached its end date with no
    open deterioration. Two queries however many plans."""
    from django.utils import timezone

    today = today or timezone.localdate()
    latest: dict[int, MonitoringPeriod] = {}
    for period in (
        MonitoringPeriod.objects.filter(plan_id__in=plan_ids)
        .exclude(status=MonitoringPeriod.Status.REOPENED)
        .order_by("plan_id", "-starts_on", "-pk")
    ):
        latest.setdefault(period.plan_id, period)
    open_in = set(
        Deterioration.objects.filter(
            period__in=[p.pk for p in latest.values()], status=Deterioration.Status.OPEN
        ).values_list("period_id", flat=True)
    )
    gaps: dict[int, list[str]] = {}
    for plan_id in plan_ids:
        period = latest.get(plan_id)
        if period is None:
            gaps[plan_id] = ["No monitoring period has been started for this plan."]
            continue
        reasons = []
        if period.status == MonitoringPeriod.Status.SHORT:
            gaps[plan_id] = [
                f"Monitoring ended on {day(period.ends_on)} without enough monitoring data. "
                f"{period.outcome_note} The governance group decides: extend the "
                "monitoring, or close the plan with a recorded rationale."
            ]
            continue
        if period.pk in open_in:
            reasons.append(
                "The monitoring period has an open deterioration: re-open the plan instead."
            )
        if not period.has_ended(today):
            reasons.append(f"The monitoring period runs until {day(period.ends_on)}.")
        gaps[plan_id] = reasons
    return gaps


def open_deterioration_summary(plan: Plan) -> dict | None:
    """The plan page's deterioration banner: the latest open deterioration of the
    plan's open monitoring period (rule, indicator, result, date, explanation) and how
    many are open, or None. One query."""
    rows = list(
        Deterioration.objects.filter(
            period__plan=plan,
            period__status=MonitoringPeriod.Status.OPEN,
            status=Deterioration.Status.OPEN,
        )
        .select_related("indicator", "measurement__indicator")
        .order_by("-measurement__measured_on", "-pk")
    )
    if not rows:
        return None
    latest = rows[0]
    same_result = [r for r in rows if r.measurement_id == latest.measurement_id]
    rules = sorted({r.get_kind_display() for r in same_result})
    return {
        "count": len(rows),
        "rule": " and ".join(rules),
        "indicator": latest.indicator.name,
        "result": latest.measurement.value_display(),
        "measured_on": latest.measurement.measured_on,
        "detected_at": latest.detected_at,
        "explanation": latest.explanation,
    }


# --- Did the monitoring period show enough? ---------------------------------------------


def due_intervals(
    indicator: Indicator, starts_on: datetime.date, ends_on: datetime.date
) -> list[tuple[datetime.date, datetime.date]]:
    """The intervals of ``starts_on``..``ends_on`` (both days included) in each of which
    the indicator's frequency calls for a result: one frequency apart from the start,
    the last running to the end date (a short remainder joins it). At least one."""
    step = datetime.timedelta(days=Indicator.FREQUENCY_DAYS.get(indicator.frequency, 31))
    days = (ends_on - starts_on).days + 1
    count = max(days // step.days, 1)
    bounds = [starts_on + step * i for i in range(count)] + [ends_on + datetime.timedelta(days=1)]
    return [(bounds[i], bounds[i + 1] - datetime.timedelta(days=1)) for i in range(count)]


def evidence_gaps(
    period: MonitoringPeriod,
    monitored: list[MonitoredIndicator],
    dates: dict[int, list[datetime.date]],
) -> list[str]:
    """Why ``period`` has not shown enough to end well, one sentence per indicator
    short of results; empty when it has. ``dates``: each watched indicator's result
    dates inside the period. The rule: a result in every due interval of the
    indicator's frequency (``due_intervals``), or, when the ``MONITORING_MIN_RESULTS``
    setting is above 0, that many results in the period."""
    if not monitored:
        return ["No indicator was watched in this monitoring period, so it has no results."]
    minimum = getattr(settings, "MONITORING_MIN_RESULTS", 0)
    gaps = []
    for watched in monitored:
        ind = watched.indicator
        on = sorted(dates.get(ind.pk, []))
        if minimum > 0:
            if len(on) < minimum:
                gaps.append(
                    f"“{ind.name}”: {len(on)} result{'s' if len(on) != 1 else ''} in the "
                    f"period, {minimum} needed."
                )
            continue
        intervals = due_intervals(ind, period.starts_on, period.ends_on)
        empty = [(a, b) for a, b in intervals if not any(a <= d <= b for d in on)]
        if empty:
            frequency = ind.get_frequency_display().lower()
            missing = ", ".join(f"{day(a)} to {day(b)}" for a, b in empty[:3])
            more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
            gaps.append(
                f"“{ind.name}” ({frequency}): a result in {len(intervals) - len(empty)} of "
                f"the {len(intervals)} intervals; none from {missing}{more}."
            )
    return gaps


def period_evidence_gaps(period: MonitoringPeriod) -> list[str]:
    """``evidence_gaps`` of one period, read from the database (two queries)."""
    monitored = list(period.monitored.select_related("indicator"))
    dates: dict[int, list[datetime.date]] = {w.indicator_id: [] for w in monitored}
    for indicator_id, on in Measurement.objects.filter(
        indicator_id__in=list(dates),
        measured_on__gte=period.starts_on,
        measured_on__lte=period.ends_on,
    ).values_list("indicator_id", "measured_on"):
        dates[indicator_id].append(on)
    return evidence_gaps(period, monitored, dates)


def periods_evidence_gaps(periods: list[MonitoringPeriod]) -> dict[int, list[str]]:
    """``evidence_gaps`` of many periods at once (two queries however many)."""
    if not periods:
        return {}
    monitored: dict[int, list[MonitoredIndicator]] = {p.pk: [] for p in periods}
    for watched in MonitoredIndicator.objects.filter(period_id__in=list(monitored)).select_related(
        "indicator"
    ):
        monitored[watched.period_id].append(watched)
    indicator_periods: dict[int, list[MonitoringPeriod]] = {}
    for period in periods:
        for watched in monitored[period.pk]:
            indicator_periods.setdefault(watched.indicator_id, []).append(period)
    dates: dict[int, dict[int, list[datetime.date]]] = {p.pk: {} for p in periods}
    first = min(p.starts_on for p in periods)
    last = max(p.ends_on for p in periods)
    for indicator_id, on in Measurement.objects.filter(
        indicator_id__in=list(indicator_periods), measured_on__gte=first, measured_on__lte=last
    ).values_list("indicator_id", "measured_on"):
        for period in indicator_periods[indicator_id]:
            if period.starts_on <= on <= period.ends_on:
                dates[period.pk].setdefault(indicator_id, []).append(on)
    return {p.pk: evidence_gaps(p, monitored[p.pk], dates[p.pk]) for p in periods}
