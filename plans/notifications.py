"""Emails about plans, through the alert outbox (``core/outbox.py``): each is keyed by
what caused it, queued in the transaction of its cause, and sent once. Recipients see
only what they could already see in the portal."""

from __future__ import annotations

from collections.abc import Iterable

from core import outbox
from core.models import Alert
from plans import lifecycle
from plans.models import Plan, User

# Transitions after which the managers of the plan's locations are told too: they are
# the ones who keep logging results in monitoring, and who deliver a re-opened plan.
TELL_MANAGERS = frozenset({"step_down", "reopen"})


def queue_transition(
    *,
    plan: Plan,
    transition: lifecycle.Transition,
    by: User | None,
    reason: str,
    also_tell: Iterable[str] = (),
    already_told: Iterable[str] = (),
) -> Alert | None:
    """Queue the email telling the plan's owner and the quality leads that the plan
    moved on (and, after a step-down or a re-opening, the managers of its locations;
    plus ``also_tell``), never the person who acted, nor ``already_told`` (people
    another email of the same cause reaches). Call inside the transition's transaction,
    right after the plan was saved with history: the key is that history row, so each
    transition is one email, even when a plan reaches the same status twice before any
    worker runs. ``reason`` is shown in full."""
    record = plan.history.order_by("-history_id").values_list("history_id", flat=True).first()
    recipients = {plan.owner.email, *also_tell}
    recipients |= set(
        User.objects.filter(role=User.Role.QUALITY_LEAD, is_active=True).values_list(
            "email", flat=True
        )
    )
    if transition.name in TELL_MANAGERS:
        recipients |= set(
            User.objects.filter(
                role=User.Role.MANAGER, is_active=True, locations__in=plan.locations.all()
            ).values_list("email", flat=True)
        )
    recipients -= set(already_told)
    if by is not None:
        recipients.discard(by.email)
    return outbox.queue(
        "plan-transition",
        key=f"plan-transition:{plan.pk}:{record}",
        recipients=recipients,
        context={
            "plan": plan,
            "step": transition,
            # The status this transition made, not the plan's status by the time the
            # email goes out (a later transition may already have happened).
            "status_label": Plan.Status(transition.target).label,
            "by": by,
            "reason": reason,
        },
    )
