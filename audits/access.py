"""Who may see or change audits data. Built on ``plans.access``: whoever may not see a
plan gets the same 404 for its measurements, evidence files and imports."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from audits.models import EvidenceItem, ImportBatch, Measurement
from plans.access import can_edit_plan, get_plan_for_user, visible_plans
from plans.models import Indicator, Plan, User


def can_log(user: User, plan: Plan) -> bool:
    """Log results and evidence: quality leads, administrators and managers (on plans
    at their locations, which is all they can see); never on a closed plan."""
    return can_edit_plan(user, plan)


def can_annotate(user: User, plan: Plan) -> bool:
    """Add notes to a plan's charts: whoever may edit the plan (quality leads,
    administrators, managers at its locations); never on a closed or withdrawn plan."""
    return can_edit_plan(user, plan)


def can_recalculate_limits(user: User, plan: Plan) -> bool:
    """Recalculate an indicator's limits after a documented change: the quality lead's
    judgement (and an administrator's), while the plan is in its improvement phase.
    Whether the data allow it is ``services.rebase_problems``'s to say."""
    return user.is_organisation_lead and plan.status in (Plan.Status.DRAFT, Plan.Status.LIVE)


def get_indicator_for_user(user: User, reference: str, pk: int, *, write: bool = False):
    """The plan and one of its indicators, if ``user`` may see the plan (and change it,
    when ``write``); otherwise 404."""
    plan = get_plan_for_user(user, reference, write=write)
    try:
        return plan, plan.indicators.get(pk=pk)
    except Indicator.DoesNotExist:
        raise Http404("No such indicator.") from None


def get_plan_for_logging(user: User, reference: str) -> Plan:
    """The plan, if ``user`` may log results on it; otherwise 404."""
    plan = get_plan_for_user(user, reference, write=True)
    if not can_log(user, plan):
        raise Http404("No such plan.")
    return plan


def get_measurement_for_user(user: User, reference: str, pk: int) -> Measurement:
    plan = get_plan_for_logging(user, reference)
    try:
        return Measurement.objects.select_related("indicator", "indicator__plan").get(
            pk=pk, indicator__plan=plan
        )
    except Measurement.DoesNotExist:
        raise Http404("No such result.") from None


def get_evidence_for_user(user: User, pk: int) -> EvidenceItem:
    """An evidence item on a plan ``user`` may read; otherwise 404 (whether or not it
    exists)."""
    try:
        return EvidenceItem.objects.select_related("plan").get(pk=pk, plan__in=visible_plans(user))
    except EvidenceItem.DoesNotExist:
        raise Http404("No such evidence.") from None


def get_batch_for_user(user: User, pk: int) -> ImportBatch:
    """An import on a plan ``user`` may log results on; otherwise 404."""
    try:
        batch = ImportBatch.objects.select_related("plan", "created_by").get(pk=pk)
    except ImportBatch.DoesNotExist:
        raise Http404("No such import.") from None
    get_plan_for_logging(user, batch.plan.reference)
    return batch


def due_indicators(user: User) -> QuerySet[Indicator]:
    """Indicators of live and monitoring plans ``user`` can see, each annotated with
    ``last_measured_on`` (kept on the indicator). One query, however many rows."""
    return Indicator.objects.filter(
        plan__in=visible_plans(user).live_or_monitoring()
    ).select_related("plan", "schedule__audit_theme")
