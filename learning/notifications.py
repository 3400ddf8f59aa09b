"""Emails about learning. Each sender claims its row with a conditional UPDATE before
sending, so a retried or doubled task cannot send the same email twice; a claim that
is older than ``STALE_CLAIM`` (the worker died mid-send) may be taken again."""

from __future__ import annotations

import datetime

from django.db.models import Q
from django.utils import timezone

from core import emails
from learning.models import Acknowledgement, AcknowledgementReminder, LearningReview
from plans.models import User

STALE_CLAIM = datetime.timedelta(minutes=15)


def send_share_email(*, ack_id: int) -> int:
    """Ask one manager to read and acknowledge the learning shared with them."""
    now = timezone.now()
    claimed = Acknowledgement.objects.filter(pk=ack_id, notified_at__isnull=True).update(
        notified_at=now
    )
    if not claimed:
        return 0
    ack = Acknowledgement.objects.select_related("summary__plan", "manager", "shared_by").get(
        pk=ack_id
    )
    try:
        return emails.send(
            "learning-shared",
            [ack.manager.email],
            {"ack": ack, "summary": ack.summary, "plan": ack.summary.plan},
        )
    except Exception:
        # Give the claim back so a retry can send it.
        Acknowledgement.objects.filter(pk=ack_id, notified_at=now).update(notified_at=None)
        raise


def send_acknowledgement_reminder(*, reminder_id: int) -> int:
    """Remind a manager, once for this period, that learning is waiting to be read."""
    now = timezone.now()
    claimable = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - STALE_CLAIM)
    claimed = AcknowledgementReminder.objects.filter(
        claimable, pk=reminder_id, sent_at__isnull=True
    ).update(claimed_at=now)
    if not claimed:
        return 0
    reminder = AcknowledgementReminder.objects.select_related(
        "acknowledgement__summary__plan", "acknowledgement__manager"
    ).get(pk=reminder_id)
    ack = reminder.acknowledgement
    if not ack.is_outstanding:
        # Acknowledged between the sweep and now: nothing to remind about.
        AcknowledgementReminder.objects.filter(pk=reminder_id).update(sent_at=now, error="")
        return 0
    try:
        sent = emails.send(
            "learning-reminder",
            [ack.manager.email],
            {"ack": ack, "summary": ack.summary, "plan": ack.summary.plan},
        )
    except Exception as exc:
        AcknowledgementReminder.objects.filter(pk=reminder_id).update(
            claimed_at=None, error=str(exc)[:1000]
        )
        raise
    AcknowledgementReminder.objects.filter(pk=reminder_id).update(sent_at=timezone.now(), error="")
    return sent


def send_review_due_email(*, review_id: int) -> int:
    """Tell the quality leads that learning is due for its relevance review."""
    now = timezone.now()
    claimed = LearningReview.objects.filter(pk=review_id, notified_at__isnull=True).update(
        notified_at=now
    )
    if not claimed:
        return 0
    review = LearningReview.objects.select_related("summary__plan").get(pk=review_id)
    recipients = User.objects.filter(role=User.Role.QUALITY_LEAD, is_active=True).values_list(
        "email", flat=True
    )
    try:
        return emails.send(
            "learning-review-due",
            recipients,
            {"review": review, "summary": review.summary, "plan": review.summary.plan},
        )
    except Exception:
        LearningReview.objects.filter(pk=review_id, notified_at=now).update(notified_at=None)
        raise
