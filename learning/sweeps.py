"""Scheduled work for learning. Each sweep derives what is due from the database, so a
missed or doubled run is harmless; each is registered with ``core.jobs`` (run by Celery
beat through ``learning/tasks.py`` and by ``manage.py run_scheduled_jobs``)."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import jobs
from learning.models import (
    Acknowledgement,
    AcknowledgementReminder,
    LearningReview,
    LearningSummary,
    add_months,
    review_months,
)
from learning.notifications import STALE_CLAIM
from plans.models import Plan


def reminder_after_days() -> int:
    """How long an acknowledgement may stay outstanding before the first reminder."""
    return int(getattr(settings, "LEARNING_REMINDER_AFTER_DAYS", 7))


def reminder_period(day: datetime.date) -> str:
    """One reminder per ISO week at most: the week is the period's key."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@transaction.atomic
def remind_outstanding_acknowledgements(today: datetime.date) -> int:
    """Remind every manager whose acknowledgement has been outstanding for a week or
    more, at most once per ISO week. Safe to run any number of times: the reminder row
    (unique per acknowledgement and week) is created before the email is queued, and
    the sender claims it before sending. Also re-queues any "please read" email or
    reminder that was never sent (a lost task). Returns how many emails were queued."""
    from learning.tasks import send_acknowledgement_reminder, send_share_email

    period = reminder_period(today)
    cutoff = timezone.make_aware(
        datetime.datetime.combine(
            today - datetime.timedelta(days=reminder_after_days()), datetime.time.max
        )
    )
    outstanding = Acknowledgement.objects.filter(
        acknowledged_at__isnull=True,
        summary__status=LearningSummary.Status.ACTIVE,
        manager__is_active=True,
    )
    for ack_id in outstanding.filter(shared_at__lte=cutoff).values_list("pk", flat=True):
        AcknowledgementReminder.objects.get_or_create(acknowledgement_id=ack_id, period=period)
    stale = timezone.now() - STALE_CLAIM
    reminder_ids = list(
        AcknowledgementReminder.objects.filter(
            Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale),
            sent_at__isnull=True,
            acknowledgement__in=outstanding,
        ).values_list("pk", flat=True)
    )
    unsent_share_ids = list(
        outstanding.filter(notified_at__isnull=True).values_list("pk", flat=True)
    )

    def queue() -> None:
        for pk in unsent_share_ids:
            send_share_email.delay(pk)
        for pk in reminder_ids:
            send_acknowledgement_reminder.delay(pk)

    transaction.on_commit(queue)
    return len(reminder_ids) + len(unsent_share_ids)


@transaction.atomic
def schedule_due_reviews(today: datetime.date) -> int:
    """Create the relevance reviews that have fallen due: each closed plan's current
    learning comes back ``LEARNING_REVIEW_MONTHS`` (default 3 and 12) months after the
    plan closed. Safe to run any number of times: a review is unique per summary and
    interval. Queues one "review due" email per new review (and re-queues any that was
    never sent). Returns how many reviews were created."""
    from learning.tasks import send_review_due_email

    intervals = review_months()
    summaries = LearningSummary.objects.active().filter(plan__status=Plan.Status.CLOSED)
    existing = set(
        LearningReview.objects.filter(summary__in=summaries).values_list(
            "summary_id", "months_after_closure"
        )
    )
    created = 0
    for summary_id, closed_at in summaries.values_list("pk", "plan__status_changed_at"):
        closed_on = timezone.localdate(closed_at)
        for months in intervals:
            due_on = add_months(closed_on, months)
            if due_on > today or (summary_id, months) in existing:
                continue
            _, was_created = LearningReview.objects.get_or_create(
                summary_id=summary_id, months_after_closure=months, defaults={"due_on": due_on}
            )
            created += was_created
    unsent = list(
        LearningReview.objects.open()
        .filter(summary__in=summaries, notified_at__isnull=True)
        .values_list("pk", flat=True)
    )
    transaction.on_commit(lambda: [send_review_due_email.delay(pk) for pk in unsent])
    return created


@jobs.register(
    "learning_acknowledgement_reminders",
    "Remind managers, weekly, of learning they have not yet acknowledged.",
)
def run_acknowledgement_reminders() -> int:
    return remind_outstanding_acknowledgements(timezone.localdate())


@jobs.register(
    "learning_review_schedule",
    "Bring closed plans' learning back for review 3 and 12 months after closure.",
)
def run_review_schedule() -> int:
    return schedule_due_reviews(timezone.localdate())
