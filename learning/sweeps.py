"""Scheduled work for learning. Each sweep derives what is due from the database, so a
missed or doubled run is harmless; each is registered with ``core.jobs`` (run by Celery
beat through ``learning/tasks.py`` and by ``manage.py run_scheduled_jobs``)."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from core import jobs, outbox
from learning import notifications
from learning.models import (
    Acknowledgement,
    LearningReview,
    LearningSummary,
    add_months,
    review_months,
)
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
    more, at most once per ISO week. Safe to run any number of times: the reminder is
    an outbox alert keyed by the acknowledgement and the week, written in this
    transaction. Returns how many reminders were queued."""
    period = reminder_period(today)
    cutoff = timezone.make_aware(
        datetime.datetime.combine(
            today - datetime.timedelta(days=reminder_after_days()), datetime.time.max
        )
    )
    due = list(
        Acknowledgement.objects.filter(
            acknowledged_at__isnull=True,
            summary__status=LearningSummary.Status.ACTIVE,
            manager__is_active=True,
            shared_at__lte=cutoff,
        ).values_list("pk", flat=True)
    )
    done = outbox.existing_keys(notifications.reminder_key(pk, period) for pk in due)
    todo = [pk for pk in due if notifications.reminder_key(pk, period) not in done]
    acks = Acknowledgement.objects.filter(pk__in=todo).select_related("summary__plan", "manager")
    queued = outbox.queue_many(notifications.reminder(ack, period) for ack in acks.order_by("pk"))
    return len(queued)


@transaction.atomic
def schedule_due_reviews(today: datetime.date) -> int:
    """Create the relevance reviews that have fallen due: each closed plan's current
    learning comes back ``LEARNING_REVIEW_MONTHS`` (default 3 and 12) months after the
    plan closed. Safe to run any number of times: a review is unique per summary and
    interval, and its "review due" email is an outbox alert keyed by the review,
    written in this transaction (so it is queued once, whenever the review was
    created). Returns how many reviews were created."""
    intervals = review_months()
    summaries = LearningSummary.objects.active().filter(plan__status=Plan.Status.CLOSED)
    existing = set(
        LearningReview.objects.filter(summary__in=summaries).values_list(
            "summary_id", "months_after_closure"
        )
    )
    due = []
    for summary_id, closed_at in summaries.values_list("pk", "plan__status_changed_at"):
        closed_on = timezone.localdate(closed_at)
        for months in intervals:
            due_on = add_months(closed_on, months)
            if due_on > today or (summary_id, months) in existing:
                continue
            due.append(
                LearningReview(summary_id=summary_id, months_after_closure=months, due_on=due_on)
            )
    created = _create_reviews(due)
    # Every open review owes one email; normally it is the one just created, but a
    # review whose email was never queued (rows older than the outbox) gets it too.
    open_reviews = {
        notifications.review_due_key(pk): pk
        for pk in LearningReview.objects.open()
        .filter(summary__in=summaries)
        .values_list("pk", flat=True)
    }
    done = outbox.existing_keys(open_reviews)
    owed = [pk for key, pk in open_reviews.items() if key not in done]
    if owed:
        leads = notifications.quality_lead_addresses()
        reviews = LearningReview.objects.filter(pk__in=owed).select_related("summary__plan")
        outbox.queue_many(
            notifications.review_due(review, leads) for review in reviews.order_by("pk")
        )
    return created


def _create_reviews(reviews: list[LearningReview]) -> int:
    """Create ``reviews`` with their history in a fixed number of queries per 500. A
    review is unique per summary and interval: if a concurrent run created one of them
    meanwhile, the bulk insert fails whole (in a savepoint) and they are created one by
    one, the one taken skipped. Returns how many were created."""
    if not reviews:
        return 0
    try:
        with transaction.atomic():
            bulk_create_with_history(
                reviews,
                LearningReview,
                batch_size=500,
            )
        return len(reviews)
    except IntegrityError:
        created = 0
        for review in reviews:
            _, was_created = LearningReview.objects.get_or_create(
                summary_id=review.summary_id,
                months_after_closure=review.months_after_closure,
                defaults={"due_on": review.due_on},
            )
            created += was_created
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
