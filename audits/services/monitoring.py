"""Monitoring after step-down: opening the period with its floors and frozen limits,
checking each new result for deterioration and escalating it at once, and monitoring's
part of re-opening a plan."""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from simple_history.utils import bulk_create_with_history

from audits.models import (
    AuditTheme,
    Deterioration,
    IndicatorSchedule,
    Measurement,
    MonitoredIndicator,
    MonitoringPeriod,
)
from audits.services.measurements import MeasurementRefused
from core import outbox
from core.history import save_with_history as _save
from core.thresholds import DEFAULT_MONITORING_MONTHS
from plans.models import Plan, User
from plans.services import touch_plan

# --- Monitoring after step-down ---------------------------------------------------------


class MonitoringRefused(MeasurementRefused):
    """A monitoring period could not be started or changed; ``reasons`` say why."""


# Months a stepped-down plan is monitored unless whoever starts it says otherwise.


def _parse_floor(raw) -> Decimal:
    if raw is None or not str(raw).strip():
        raise MonitoringRefused(["Set a floor for every indicator that will be monitored."])
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise MonitoringRefused([f"“{raw}” is not a number, so it cannot be a floor."]) from None
    if not value.is_finite():
        raise MonitoringRefused([f"“{raw}” is not a number, so it cannot be a floor."])
    return value


def monitoring_problems(
    *,
    plan: Plan,
    floors: dict,
    audit_theme: object = None,
    end_date: datetime.date | None = None,
    starts_on: datetime.date | None = None,
) -> tuple[dict[int, Decimal], datetime.date, list[str]]:
    """Check what a step-down will monitor, once, for the governance decision that
    describes it and for ``start_monitoring`` that opens it: ``floors`` maps this plan's
    indicator ids (int or text) to a floor; with no floors an audit theme must be named;
    the period must end in the future. Returns (floors parsed, the end date, every
    problem in words). Reads the plan's indicators (one query)."""
    today = timezone.localdate()
    reasons: list[str] = []
    indicator_ids = set(plan.indicators.values_list("pk", flat=True))
    parsed: dict[int, Decimal] = {}
    for key, raw in (floors or {}).items():
        try:
            pk = int(key)
        except (TypeError, ValueError):
            pk = None
        if pk not in indicator_ids:
            reasons.append(f"Indicator {key} is not one of this plan's indicators.")
            continue
        try:
            parsed[pk] = _parse_floor(raw)
        except MonitoringRefused as refused:
            reasons.extend(r for r in refused.reasons if r not in reasons)
    named_theme = audit_theme.strip() if isinstance(audit_theme, str) else audit_theme
    if not parsed and not named_theme and not reasons:
        reasons.append("Say what will be monitored: a floor for each indicator, or an audit theme.")
    ends_on = end_date or (starts_on or today) + relativedelta(months=DEFAULT_MONITORING_MONTHS)
    if ends_on <= today:
        reasons.append("The monitoring period must end in the future.")
    return parsed, ends_on, reasons


@transaction.atomic
def start_monitoring(
    *,
    plan: Plan,
    by: User,
    floors: dict[int, Decimal],
    end_date: datetime.date | None = None,
    escalate_to: list[str],
    audit_theme: AuditTheme | str | None = None,
    starts_on: datetime.date | None = None,
) -> MonitoringPeriod:
    """Open the monitoring period of a plan that a governance group has stepped down.

    Contract (called by the governance step-down decision, inside its transaction):

    - ``floors``: indicator id (int, or its text) -> floor (Decimal, or its text), one per
      indicator to watch; every id must be one of ``plan``'s indicators. A result beyond
      the floor (below it when higher is better, above it when lower is better; on it is
      fine) is deterioration. May be empty only when ``audit_theme`` is given: then the
      plan's indicators measured by that theme are watched by SPC rules alone.
    - ``end_date``: the last day of monitoring; default six months from today; must be in
      the future.
    - ``escalate_to``: addresses (e.g. the group that stepped the plan down) told at once
      of deterioration, with the plan's owner and the quality leads.
    - ``audit_theme``: an ``AuditTheme`` or its name (created if new).
    - ``starts_on``: default today; an earlier date only to carry over a period begun
      before the portal was adopted (the demo data). Results before it form the
      reference; results from it on are monitored.
    - The plan must be in closure review or monitoring and have no open period.

    Freezes, per indicator, the reference values and limits of the sustained phase (the
    latest unbroken run on target, first 12 results), which are never recalculated.
    Saves with history attributed to ``by``. Sends no email (the decision does). Raises
    ``MonitoringRefused`` with every reason, having changed nothing."""
    from audits.deterioration import freeze_reference

    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    today = timezone.localdate()
    reasons: list[str] = []
    if locked.status not in (Plan.Status.CLOSURE_REVIEW, Plan.Status.MONITORING):
        reasons.append(
            f"Monitoring starts at step-down; the plan is {locked.get_status_display().lower()}."
        )
    if MonitoringPeriod.objects.filter(plan=locked, status=MonitoringPeriod.Status.OPEN).exists():
        reasons.append("This plan already has an open monitoring period.")
    indicators = {i.pk: i for i in locked.indicators.all()}
    parsed, ends_on, problems = monitoring_problems(
        plan=locked, floors=floors, audit_theme=audit_theme, end_date=end_date, starts_on=starts_on
    )
    reasons.extend(problems)
    theme = audit_theme
    if isinstance(theme, str):
        theme = theme.strip()
        theme = AuditTheme.objects.get_or_create(name=theme[:120])[0] if theme else None
    starts_on = starts_on or today
    addresses = sorted({a.strip() for a in escalate_to or [] if a and a.strip()})
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            reasons.append(f"“{address}” is not an email address.")
    if reasons:
        raise MonitoringRefused(reasons)

    watched = dict(parsed)
    if theme is not None:
        for schedule in IndicatorSchedule.objects.filter(
            indicator__plan=locked, audit_theme=theme
        ).select_related("indicator"):
            watched.setdefault(schedule.indicator_id, None)
    period = MonitoringPeriod(
        plan=locked,
        audit_theme=theme,
        starts_on=starts_on,
        ends_on=ends_on,
        escalate_to=addresses,
        started_by=by,
    )
    _save(period, by=by, reason="Monitoring started at step-down")
    criteria = locked.criteria
    series: dict[int, list[Measurement]] = {pk: [] for pk in watched}
    before = Measurement.objects.filter(indicator_id__in=watched, measured_on__lt=starts_on)
    for m in before.order_by("measured_on", "pk"):
        series[m.indicator_id].append(m)
    for pk, floor in watched.items():
        ref = freeze_reference(
            indicators[pk],
            series[pk],
            sustain_months=criteria.sustain_months,
            min_reaudits=criteria.min_reaudits,
        )
        _save(
            MonitoredIndicator(
                period=period,
                indicator=indicators[pk],
                floor=floor,
                reference_values=ref.values,
                reference_from=datetime.date.fromisoformat(ref.values[0]["on"])
                if ref.values
                else None,
                reference_to=datetime.date.fromisoformat(ref.values[-1]["on"])
                if ref.values
                else None,
                reference_mean=ref.mean,
                reference_lower=ref.lower,
                reference_upper=ref.upper,
            ),
            by=by,
            reason="Floor set and reference frozen at step-down",
        )
    touch_plan(locked.pk)
    return period


def _escalation_recipients(period: MonitoringPeriod) -> set[str]:
    recipients = {period.plan.owner.email, *period.escalate_to}
    recipients |= set(
        User.objects.filter(role=User.Role.QUALITY_LEAD, is_active=True).values_list(
            "email", flat=True
        )
    )
    return recipients


def _reconcile(period: MonitoringPeriod) -> None:
    """The plan left monitoring some other way (e.g. the plan page's Re-open button, or
    final closure): bring the period into line, with history saying why."""
    plan = period.plan
    if plan.status == Plan.Status.LIVE:
        opened = list(period.deteriorations.filter(status=Deterioration.Status.OPEN))
        _mark_reopened(period, opened, by=None, note="Plan re-opened")
    else:
        period.status = MonitoringPeriod.Status.ENDED
        period.status_changed_at = timezone.now()
        _save(
            period,
            by=None,
            reason=f"Monitoring ended: the plan is {plan.get_status_display().lower()}",
        )


def _triggering(deteriorations: list[Deterioration]) -> tuple[str, str]:
    """The results behind ``deteriorations``: short ("results #12, #15", for history
    reasons, which hold 100 characters) and in full (for ``outcome_note``)."""
    seen: dict[int, Deterioration] = {}
    for d in deteriorations:
        seen.setdefault(d.measurement_id, d)
    if not seen:
        return "", ""
    short = "result" + ("s" if len(seen) > 1 else "") + " " + ", ".join(f"#{pk}" for pk in seen)
    full = "; ".join(
        f"result #{d.measurement_id} ({d.indicator.name}, "
        f"{date_format(d.measurement.measured_on)}: {d.measurement.value_display()})"
        for d in seen.values()
    )
    return short, full


def _fit(reason: str, suffix: str = "", limit: int = 90) -> str:
    """A history reason within the column's 100 characters (room left for a label
    such as "Re-open: "), keeping ``suffix`` whole."""
    room = limit - len(suffix)
    if len(reason) > room:
        reason = reason[: max(room - 1, 0)].rstrip() + "…"
    return reason + suffix


def _mark_reopened(
    period: MonitoringPeriod, deteriorations: list[Deterioration], *, by: User | None, note: str
) -> None:
    short, full = _triggering(deteriorations)
    period.status = MonitoringPeriod.Status.REOPENED
    period.status_changed_at = timezone.now()
    period.outcome_note = f"{note}. Triggered by {full}." if full else f"{note}."
    _save(period, by=by, reason=_fit("Plan re-opened", f"; triggered by {short}" if short else ""))
    for d in deteriorations:
        d.status = Deterioration.Status.ACTED_ON
        _save(d, by=by, reason="Plan re-opened")


def check_monitoring(*, period_id: int) -> int:
    """Record every new deterioration in an open monitoring period and escalate it at
    once (owner, quality leads, ``escalate_to``) with the rule that fired. One email per
    period per result, whatever rules it broke and however often this runs: rows are
    unique per rule per result, and the outbox key names the period and the result.
    Returns how many new deteriorations were recorded. Safe to run any number of times."""
    return check_periods([period_id])


# Periods checked (locked, recorded, escalated) in one transaction by the sweeps.
CHECK_BATCH = 500


@transaction.atomic
def check_periods(period_ids: list[int]) -> int:
    """``check_monitoring`` for many periods at once, in a fixed number of queries
    however many periods, results and deteriorations (the sweeps pass at most
    ``CHECK_BATCH``): the periods locked in one statement (in id order, so two checks
    never deadlock), their watched indicators, results and known deteriorations read
    in one query each, the new deteriorations created with their history in one bulk
    insert, and their emails queued with ``outbox.queue_many`` in this transaction.
    Periods whose plan has left monitoring are brought into line (``_reconcile``),
    one by one: that is the rare case of a plan moved on some other way."""
    from audits.deterioration import find_deteriorations

    periods = [
        period
        for period in MonitoringPeriod.objects.select_for_update(of=("self",))
        .select_related("plan__owner")
        .filter(pk__in=list(period_ids))
        .order_by("pk")
        if period.is_open
    ]
    for period in periods:
        if period.plan.status != Plan.Status.MONITORING:
            _reconcile(period)
    periods = [p for p in periods if p.plan.status == Plan.Status.MONITORING]
    if not periods:
        return 0
    ids = [p.pk for p in periods]
    watched: dict[int, list[MonitoredIndicator]] = {pk: [] for pk in ids}
    for w in MonitoredIndicator.objects.filter(period_id__in=ids).select_related("indicator"):
        watched[w.period_id].append(w)
    indicator_ids = {w.indicator_id for ws in watched.values() for w in ws}
    results: dict[int, list[Measurement]] = {pk: [] for pk in indicator_ids}
    if indicator_ids:
        for m in (
            Measurement.objects.filter(
                indicator_id__in=indicator_ids,
                measured_on__gte=min(p.starts_on for p in periods),
                measured_on__lte=max(p.ends_on for p in periods),
            )
            .select_related("indicator")
            .order_by("measured_on", "pk")
        ):
            results[m.indicator_id].append(m)
    known = set(
        Deterioration.objects.filter(period_id__in=ids).values_list(
            "period_id", "measurement_id", "rule"
        )
    )
    rows: list[Deterioration] = []
    new: dict[tuple[int, int], list[Deterioration]] = {}  # (period, result) -> rows
    for period in periods:
        for w in watched[period.pk]:
            window = [
                m
                for m in results[w.indicator_id]
                if period.starts_on <= m.measured_on <= period.ends_on
            ]
            for finding in find_deteriorations(w, window):
                if (period.pk, finding.measurement.pk, finding.rule) in known:
                    continue
                known.add((period.pk, finding.measurement.pk, finding.rule))
                row = Deterioration(
                    period=period,
                    indicator=w.indicator,
                    measurement=finding.measurement,
                    kind=finding.kind,
                    rule=finding.rule,
                    severity=finding.severity,
                    explanation=finding.explanation,
                )
                row._history_user = None  # found by the check, not by whoever asked
                rows.append(row)
                new.setdefault((period.pk, finding.measurement.pk), []).append(row)
    if not rows:
        return 0
    bulk_create_with_history(
        rows, Deterioration, batch_size=500, default_change_reason="Deterioration detected"
    )
    leads = set(
        User.objects.filter(role=User.Role.QUALITY_LEAD, is_active=True).values_list(
            "email", flat=True
        )
    )
    by_pk = {p.pk: p for p in periods}
    outbox.queue_many(
        outbox.Email(
            "audits-deterioration",
            key=f"audits-deterioration:{period_id}:{measurement_id}",
            recipients={by_pk[period_id].plan.owner.email, *by_pk[period_id].escalate_to, *leads},
            context={
                "plan": by_pk[period_id].plan,
                "period": by_pk[period_id],
                "measurement": found[0].measurement,
                "deteriorations": found,
            },
        )
        for (period_id, measurement_id), found in new.items()
    )
    return len(rows)


def periods_needing_a_check(periods: list[MonitoringPeriod]) -> list[int]:
    """Of ``periods`` (open, with ``plan`` loaded), the ids that ``check_monitoring`` has
    something to do for: a plan that has left monitoring, or a deterioration not yet
    recorded. Reads only, in four queries however many periods and results: the sweeps
    look at every period this way and lock only the few that changed."""
    from audits.deterioration import find_deteriorations

    if not periods:
        return []
    ids = [p.pk for p in periods]
    watched: dict[int, list[MonitoredIndicator]] = {pk: [] for pk in ids}
    for w in MonitoredIndicator.objects.filter(period_id__in=ids).select_related("indicator"):
        watched[w.period_id].append(w)
    indicator_ids = {w.indicator_id for ws in watched.values() for w in ws}
    results: dict[int, list[Measurement]] = {pk: [] for pk in indicator_ids}
    if indicator_ids:
        for m in (
            Measurement.objects.filter(
                indicator_id__in=indicator_ids,
                measured_on__gte=min(p.starts_on for p in periods),
                measured_on__lte=max(p.ends_on for p in periods),
            )
            .select_related("indicator")
            .order_by("measured_on", "pk")
        ):
            results[m.indicator_id].append(m)
    known = set(
        Deterioration.objects.filter(period_id__in=ids).values_list(
            "period_id", "measurement_id", "rule"
        )
    )
    due = []
    for period in periods:
        if period.plan.status != Plan.Status.MONITORING:
            due.append(period.pk)
            continue
        for w in watched[period.pk]:
            window = [
                m
                for m in results[w.indicator_id]
                if period.starts_on <= m.measured_on <= period.ends_on
            ]
            if any(
                (period.pk, f.measurement.pk, f.rule) not in known
                for f in find_deteriorations(w, window)
            ):
                due.append(period.pk)
                break
    return due


def check_plan_monitoring(*, plan_id: int) -> int:
    """Check every open monitoring period of one plan (after a result is logged)."""
    ids = MonitoringPeriod.objects.filter(
        plan_id=plan_id, status=MonitoringPeriod.Status.OPEN
    ).values_list("pk", flat=True)
    return check_periods(list(ids))


@transaction.atomic
def record_reopening(*, plan: Plan, by: User, reason: str) -> str:
    """Monitoring's part of re-opening a plan after deterioration (the closure workflow,
    ``qip_portal/closure/workflow.py``, checks it may happen and moves the plan): the open period
    is marked re-opened, its open deteriorations acted on, and both histories name the
    triggering results. Returns the reason for the plan's own history, which names them
    too."""
    period = (
        MonitoringPeriod.objects.select_for_update()
        .filter(plan=plan, status=MonitoringPeriod.Status.OPEN)
        .first()
    )
    opened = []
    if period is not None:
        opened = list(
            period.deteriorations.filter(status=Deterioration.Status.OPEN).select_related(
                "indicator", "measurement__indicator"
            )
        )
    reason = (reason or "").strip()
    short, _full = _triggering(opened)
    if period is not None and reason:
        _mark_reopened(period, opened, by=by, note=f"Plan re-opened: {reason}")
    return _fit(reason, f" ({short})" if reason and short else "")


# --- After a period ended without enough monitoring data --------------------------------


def short_period(plan: Plan) -> MonitoringPeriod | None:
    """The plan's latest monitoring period if it ended without enough monitoring data
    and awaits the governance group's decision; None otherwise."""
    latest = (
        MonitoringPeriod.objects.filter(plan=plan)
        .exclude(status=MonitoringPeriod.Status.REOPENED)
        .order_by("-starts_on", "-pk")
        .first()
    )
    if latest is None or latest.status != MonitoringPeriod.Status.SHORT:
        return None
    return latest


@transaction.atomic
def extend_monitoring(
    *, period: MonitoringPeriod, by: User, ends_on: datetime.date, rationale: str
) -> MonitoringPeriod:
    """Monitoring's part of the group's decision to extend a period that ended without
    enough monitoring data: the same period opens again until ``ends_on`` (in the
    future), with its floors and frozen reference, and deterioration is checked and
    escalated again. History names who decided and why. Raises ``MonitoringRefused``,
    changing nothing, when the period is not awaiting that decision or the date is not
    in the future."""
    locked = MonitoringPeriod.objects.select_for_update().get(pk=period.pk)
    reasons = []
    if locked.status != MonitoringPeriod.Status.SHORT:
        reasons.append("This monitoring period is not awaiting a decision.")
    if ends_on is None or ends_on <= timezone.localdate():
        reasons.append("The extended monitoring must end in the future.")
    if reasons:
        raise MonitoringRefused(reasons)
    previous = locked.ends_on
    locked.status = MonitoringPeriod.Status.OPEN
    locked.status_changed_at = timezone.now()
    locked.ends_on = ends_on
    locked.outcome_note = (
        f"{locked.outcome_note}\nExtended from {date_format(previous)} to "
        f"{date_format(ends_on)} by {by}: {rationale}"
    ).strip()
    _save(locked, by=by, reason=_fit(f"Extended to {ends_on:%d %b %Y}: {rationale}"))
    touch_plan(locked.plan_id)
    return locked


@transaction.atomic
def close_short_monitoring(*, period: MonitoringPeriod, by: User, rationale: str) -> None:
    """Monitoring's part of the group's decision to close a plan whose period ended
    without enough monitoring data: the period is marked so, with the rationale in
    full on it and in history."""
    locked = MonitoringPeriod.objects.select_for_update().get(pk=period.pk)
    if locked.status != MonitoringPeriod.Status.SHORT:
        raise MonitoringRefused(["This monitoring period is not awaiting a decision."])
    locked.status = MonitoringPeriod.Status.CLOSED_SHORT
    locked.status_changed_at = timezone.now()
    locked.outcome_note = f"{locked.outcome_note}\nPlan closed by {by}: {rationale}".strip()
    _save(locked, by=by, reason=_fit(f"Plan closed without enough data: {rationale}"))
