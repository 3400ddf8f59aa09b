"""Emails about plans. Recipients see only what they could already see in the portal."""

from __future__ import annotations

from core import emails
from plans import lifecycle
from plans.models import Plan, User


def send_transition_email(*, plan_id: int, transition: str, by_id: int, reason: str) -> int:
    """Tell the plan's owner and the quality leads that the plan moved on."""
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
    return emails.send(
        "plan-transition",
        recipients,
        {
            "plan": plan,
            "step": step,
            # The status this transition made, not the plan's status by the time the
            # email goes out (a later transition may already have happened).
            "status_label": Plan.Status(step.target).label,
            "by": by,
            "reason": reason,
        },
    )
