"""Emails about learning, through the alert outbox (``core/outbox.py``): each is queued
in the transaction of its cause (sharing, the weekly reminder sweep, the review
schedule) under a key naming the object and, for reminders, the ISO week, so each is
sent once, recovered if its worker dies, and seen by administrators with every other
alert."""

from __future__ import annotations

from core import outbox
from core.models import Alert
from learning.models import Acknowledgement, LearningReview
from plans.models import User


def queue_share(ack: Acknowledgement) -> Alert | None:
    """Ask one manager to read and acknowledge the learning shared with them."""
    summary = ack.summary
    return outbox.queue(
        "learning-shared",
        key=f"learning-shared:{ack.pk}",
        recipients=[ack.manager.email],
        context={"ack": ack, "summary": summary, "plan": summary.plan},
    )


def reminder_key(ack_id: int, period: str) -> str:
    return f"learning-reminder:{ack_id}:{period}"


def reminder(ack: Acknowledgement, period: str) -> outbox.Email:
    """Remind a manager, once for ``period`` (an ISO week), that learning is waiting
    (queued with ``outbox.queue_many``; ``ack`` read with its summary, plan and
    manager)."""
    summary = ack.summary
    return outbox.Email(
        "learning-reminder",
        key=reminder_key(ack.pk, period),
        recipients=[ack.manager.email],
        context={"ack": ack, "summary": summary, "plan": summary.plan},
    )


def review_due_key(review_id: int) -> str:
    return f"learning-review-due:{review_id}"


def review_due(review: LearningReview, quality_leads: list[str]) -> outbox.Email:
    """Tell the quality leads that learning is due for its relevance review (queued
    with ``outbox.queue_many``; ``review`` read with its summary and plan)."""
    summary = review.summary
    return outbox.Email(
        "learning-review-due",
        key=review_due_key(review.pk),
        recipients=quality_leads,
        context={"review": review, "summary": summary, "plan": summary.plan},
    )


def quality_lead_addresses() -> list[str]:
    return list(
        User.objects.filter(role=User.Role.QUALITY_LEAD, is_active=True).values_list(
            "email", flat=True
        )
    )
