"""Scheduled work for audits. Each sweep derives what is due from the database and queues
its emails through the outbox (``core/outbox.py``) under a key naming the object and
the period it is about, so it is safe to run any number of times: a missed, doubled or
concurrent run sends nothing twice. Registered with ``core.jobs`` (Celery beat runs them
through ``audits/tasks.py``; ``manage.py run_scheduled_jobs`` runs them all once)."""

from __future__ import annotations

import datetime
from collections import defaultdict

from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from audits import services
from audits.models import (
    Deterioration,
    ImportBatch,
    MonitoringPeriod,
    next_due_on,
    next_due_q,
    with_due_from,
)
from core import freshness, jobs, outbox, stuck
from core.queueing import after_commit
from core.thresholds import DUE_SOON_DAYS
from plans.models import Indicator, Plan, User

# Plans judged per batch by the readiness sweep: bounds memory, not queries per plan.
BATCH = 500


def _quality_leads() -> set[str]:
    return set(
        User.objects.filter(role=User.Role.QUALITY_LEAD, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )


def _open_periods(**filters) -> list[MonitoringPeriod]:
    return list(
        MonitoringPeriod.objects.filter(status=MonitoringPeriod.Status.OPEN, **filters)
        .select_related("plan")
        .order_by("pk")
    )


@jobs.register("audits_deterioration", "Re-check every open monitoring period for deterioration.")
def deterioration() -> str:
    """Check every open monitoring period against its floors and frozen SPC limits, and
    escalate what is new (``services.check_monitoring``: once per period per result).
    Catches anything the per-result check missed. Safe to run any number of times.
    Queries: five to look at every period, however many; then a fixed number per 500
    periods with something new (locked, recorded and escalated together)."""
    periods = _open_periods()
    found = _check(services.periods_needing_a_check(periods))
    return f"{len(periods)} monitoring period(s) checked, {found} new deterioration(s)"


def _check(period_ids: list[int]) -> int:
    """Record and escalate what is new in these periods, ``CHECK_BATCH`` at a time (a
    fixed number of queries each: ``services.check_periods``)."""
    size = services.CHECK_BATCH
    return sum(
        services.check_periods(period_ids[start : start + size])
        for start in range(0, len(period_ids), size)
    )


@jobs.register(
    "audits_monitoring_ended", "Prompt final closure when monitoring ends without deterioration."
)
def monitoring_ended(today: datetime.date | None = None) -> str:
    """End every open monitoring period past its end date with no open deterioration
    (checked again first). With the results its indicators' frequencies call for
    (``monitoring.evidence_gaps``) it ends "without deterioration": whether the plan may
    now go forward for final closure, and the email that says so, are the closure
    workflow's (``qip_portal.closure.announce_ready_plans``). Without them it ends
    "without enough monitoring data": the period's governance group (its escalation
    list), the owner and the quality leads are asked for the group's decision (extend
    the monitoring, or close the plan with a recorded rationale), once per end date.
    Safe to run any number of times. Queries: a fixed number however many periods end
    (the check as in ``deterioration``, one locked read, the evidence of all of them,
    and a bulk update with history for each outcome, the emails in one bulk insert)."""
    from audits.deterioration import periods_evidence_gaps

    today = today or timezone.localdate()
    periods = _open_periods(ends_on__lt=today)
    _check(services.periods_needing_a_check(periods))
    if not periods:
        return "0 monitoring period(s) ended, 0 without enough monitoring data"
    with transaction.atomic():
        ending = list(
            MonitoringPeriod.objects.select_for_update(of=("self",))
            .filter(
                pk__in=[p.pk for p in periods],
                status=MonitoringPeriod.Status.OPEN,
                ends_on__lt=today,
            )
            .exclude(deteriorations__status=Deterioration.Status.OPEN)
            .select_related("plan__owner")
            .order_by("pk")
        )
        gaps = periods_evidence_gaps(ending)
        now = timezone.now()
        ended, short = [], []
        for period in ending:
            period.status_changed_at = now
            period._history_user = None
            if gaps[period.pk]:
                period.status = MonitoringPeriod.Status.SHORT
                period.outcome_note = "Too few results to show the improvement held. " + " ".join(
                    gaps[period.pk]
                )
                short.append(period)
            else:
                period.status = MonitoringPeriod.Status.ENDED
                ended.append(period)
        if ended:
            bulk_update_with_history(
                ended,
                MonitoringPeriod,
                ["status", "status_changed_at"],
                default_change_reason="Monitoring period ended without deterioration",
            )
        if short:
            bulk_update_with_history(
                short,
                MonitoringPeriod,
                ["status", "status_changed_at", "outcome_note"],
                default_change_reason="Monitoring period ended without enough monitoring data",
            )
            leads = _quality_leads()
            outbox.queue_many(
                outbox.Email(
                    "audits-monitoring-short",
                    key=f"audits-monitoring-short:{period.pk}:{period.ends_on.isoformat()}",
                    recipients={period.plan.owner.email, *period.escalate_to, *leads},
                    context={"plan": period.plan, "period": period, "gaps": gaps[period.pk]},
                )
                for period in short
            )
        if ending:
            freshness.data_changed()  # a bulk update sends no save signal
    return f"{len(ending)} monitoring period(s) ended, {len(short)} without enough monitoring data"


@jobs.register("audits_reaudits_due", "Remind location managers of re-audits due and overdue.")
def reaudits_due(today: datetime.date | None = None) -> str:
    """Email the managers of a plan's locations when an indicator's re-audit falls due
    within a week, and again once it is overdue: once per indicator per due date each
    (a new result moves the due date, and with it the key). Live and monitoring plans
    only. The link opens what the re-audit is: conducting the audit (tool and location
    pre-filled) for an indicator fed by an audit tool, the result form otherwise.
    Safe to run any number of times. Queries: a fixed number, however many
    indicators are due (the emails through ``outbox.queue_many``)."""
    today = today or timezone.localdate()
    soon = today + datetime.timedelta(days=DUE_SOON_DAYS)
    live = Indicator.objects.filter(plan__status__in=[Plan.Status.LIVE, Plan.Status.MONITORING])
    # Repair the kept latest-result dates first (one statement), so nothing a crash or
    # a concurrent edit left behind can send a false "overdue" reminder.
    services.refresh_last_measured(live.values("pk"))
    # Only indicators due by ``soon``, found in the database from ``last_measured_on``.
    indicators = (
        with_due_from(
            Indicator.objects.filter(plan__status__in=[Plan.Status.LIVE, Plan.Status.MONITORING])
        )
        .filter(next_due_q(on_or_before=soon))
        .select_related("plan", "feed__tool")
        .prefetch_related("plan__locations")
        .order_by("plan_id", "position", "pk")
    )
    managers: dict[int, set[str]] = defaultdict(set)
    for location_id, email in (
        User.objects.filter(role=User.Role.MANAGER, is_active=True)
        .exclude(email="")
        .values_list("locations", "email")
    ):
        if location_id is not None:
            managers[location_id].add(email)
    candidates = {}
    for indicator in indicators:
        due_on = next_due_on(
            frequency=indicator.frequency,
            last_measured_on=indicator.last_measured_on,
            start=indicator.plan.opened_on,
        )
        if due_on > soon:
            continue
        kind = "audits-reaudit-overdue" if due_on < today else "audits-reaudit-due"
        candidates[f"{kind}:{indicator.pk}:{due_on.isoformat()}"] = (kind, indicator, due_on)
    emails = []
    for key, (kind, indicator, due_on) in candidates.items():
        recipients = set()
        locations = list(indicator.plan.locations.all())
        for location in locations:
            recipients |= managers[location.pk]
        emails.append(
            outbox.Email(
                kind,
                key=key,
                recipients=recipients,
                context={
                    "plan": indicator.plan,
                    "indicator": indicator,
                    "due_on": due_on,
                    "days_overdue": (today - due_on).days,
                    # Fed by an audit tool: the re-audit is conducting that audit, pre-filled
                    # with the tool and (the plan's only) location, not typing a result.
                    "feed": getattr(indicator, "feed", None),
                    "location": locations[0] if len(locations) == 1 else None,
                },
            )
        )
    with transaction.atomic():
        queued = len(outbox.queue_many(emails))
    return f"{len(candidates)} re-audit(s) due or overdue, {queued} reminder(s) queued"


def recover_stuck_imports(now: datetime.datetime | None = None) -> stuck.Recovered:
    """Import batches whose task was lost or died (core/stuck.py), part of the
    "recover_stuck_work" job (qip_portal/recovery.py). A check is queued again (it
    changes nothing) until it has started ``MAX_STARTS`` times; a confirmed import is
    queued again if it never started, and otherwise failed (``ImportBatch.STOPPED``): its
    one transaction rolled back, so nothing was imported, and the person can try again.

    Never races a live task: a running commit holds its batch's row locked, and the
    rows are taken with SKIP LOCKED; a live check shows progress well within the
    threshold, and a run given up on cannot write over a newer one. Safe to run any
    number of times; four queries however many batches are stuck."""
    now = now or timezone.now()
    requeue, fail = [], []
    with transaction.atomic():
        for batch in ImportBatch.objects.stuck(stuck.cutoffs(now)).select_for_update(
            skip_locked=True
        ):
            never_started = batch.started_at is None
            if batch.status == ImportBatch.Status.VALIDATING:
                again = never_started or batch.attempts < stuck.MAX_STARTS
            else:
                again = never_started and batch.confirmed_by_id is not None
            (requeue if again else fail).append(batch)
        if requeue:
            # Operational fields only, excluded from history.
            ImportBatch.objects.filter(pk__in=[b.pk for b in requeue]).update(
                started_at=None, progress_at=now, processed_rows=0
            )
        for batch in fail:
            batch.status = ImportBatch.Status.FAILED
            batch.failure = ImportBatch.STOPPED
            batch.progress_at = now
        if fail:
            bulk_update_with_history(
                fail,
                ImportBatch,
                ["status", "failure", "progress_at"],
                default_change_reason="Stopped before finishing",
            )
    from audits.tasks import commit_import_task, validate_import_task

    for batch in requeue:
        if batch.status == ImportBatch.Status.VALIDATING:
            after_commit(validate_import_task, batch.pk)
        else:
            after_commit(commit_import_task, batch.pk, batch.confirmed_by_id)
    return stuck.Recovered(requeued=len(requeue), failed=len(fail))
