"""Deterioration after step-down (ARCHITECTURE.md; SPC.md §6.2): what to freeze when a
monitoring period starts, and what counts as deterioration afterwards. Reads only; the
recording and escalation is ``services.check_monitoring``.

Deterioration is any result beyond its indicator's floor, or any Making Data Count
concern rule completed on the monitoring results against the *frozen* limits of the
sustained phase (``spc.assess_monitoring``): limits that kept moving with new data would
absorb the very deterioration they are meant to catch.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from audits import spc
from audits.models import Deterioration, Measurement, MonitoredIndicator, MonitoringPeriod
from audits.verdicts import criteria_verdict, day, engine_direction, short_value
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
    limits = spc.assess_monitoring(
        [m.value for m in chosen], [], direction=engine_direction(indicator)
    ).reference_limits

    def q(x: float) -> Decimal:
        return Decimal(str(x)).quantize(Decimal("0.0001"))

    return Reference(values, q(limits.mean), q(limits.lower), q(limits.upper))


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


def assessment_for(monitored: MonitoredIndicator, measurements: list[Measurement]):
    """The engine's monitoring assessment (for the plan page), or None without a
    reference."""
    reference = monitored.reference_values or []
    if len(reference) < 2:
        return None
    return spc.assess_monitoring(
        [Decimal(r["value"]) for r in reference],
        [m.value for m in measurements],
        direction=engine_direction(monitored.indicator),
        target=monitored.indicator.target,
        labels=[day(datetime.date.fromisoformat(r["on"])) for r in reference]
        + [day(m.measured_on) for m in measurements],
    )


# --- What the closure workflow asks of monitoring (qip_portal/closure.py) -------------


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
