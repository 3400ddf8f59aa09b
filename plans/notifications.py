"""Emails about plans, through the alert outbox (``core/outbox.py``): each is keyed by
what it is about and when, so it is queued once and sent once. Recipients see only what
they could already see in the portal."""

from __future__ import annotations

from core import outbox
from plans import lifecycle
from plans.models import Plan, User


def transition_key(plan: Plan, target: str) -> str:
    """One email per transition. The plan's history row for the transition carries the
    moment the status changed; a later save that kept the status (e.g. recording the
    plan a withdrawn one was merged into) keeps that moment, so the key is stable."""
    record = plan.history.filter(status=target).order_by("-history_date", "-history_id").first()
    changed_at = record.status_changed_at if record else plan.status_changed_at
    return f"plan-transition:{plan.pk}:{changed_at.isoformat()}"


def send_transition_email(*, plan_id: int, transition: str, by_id: int, reason: str) -> int:
    """Tell the plan's owner and the quality leads that the plan moved on. Runs as a task
    after the transition committed; safe to run again (the outbox key holds it to one
    email). Returns how many emails were sent now (0 or 1)."""
    plan = Plan.objects.select_related("owner").get(pk=plan_id)
    step = lifecycle.TRANSITIONS[transition]
    by = User.objects.filter(pk=by_id).first()
    recipients = {plan.owner.email}
    recipients |= set(
        User.objects.filter(role=User.Role.QUALITY_LEAD, is_active=True).values_list(
            "email", flat=True
        )
    )
    if by is not None:
        recipients.discard(by.email)
    alert = outbox.queue(
        "plan-transition",
        key=transition_key(plan, step.target),
        recipients=recipients,
        context={
            "plan": plan,
            "step": step,
            # The status this transition made, not the plan's status by the time the
            # email goes out (a later transition may already have happened).
            "status_label": Plan.Status(step.target).label,
            "by": by,
            "reason": reason,
        },
        # This is already a task running after commit: send from here.
        now=True,
    )
    if alert is None:
        return 0
    alert.refresh_from_db(fields=["status"])
    return int(alert.status == alert.Status.SENT)
