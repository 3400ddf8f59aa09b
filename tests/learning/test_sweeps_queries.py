"""Learning's sweeps run a fixed number of queries however many reminders and reviews
are due (issue #19): read in bulk, reviews created with their history in one bulk
insert, emails queued with ``outbox.queue_many``."""

import datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import Alert
from learning import services, sweeps
from learning.models import LearningReview
from tests import factories
from tests.learning.helpers import closed_plan_with_learning, write_summary

LONDON = timezone.get_default_timezone()


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=LONDON)


def _queries(callbacks, func, *args):
    with CaptureQueriesContext(connection) as ctx, callbacks(execute=False):
        outcome = func(*args)
    return len(ctx.captured_queries), outcome


@pytest.mark.parametrize("n", [1, 30])
def test_acknowledgement_reminders_run_the_same_queries_for_1_or_30(
    n, quality_lead, manager, oakfield, django_capture_on_commit_callbacks
):
    with time_machine.travel(at(2026, 3, 2, 9), tick=False):
        for i in range(n):
            plan = factories.live_plan(owner=quality_lead, locations=[oakfield], title=f"Plan {i}")
            summary = write_summary(plan, by=quality_lead)
            with django_capture_on_commit_callbacks(execute=False):
                services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    with time_machine.travel(at(2026, 3, 10, 9), tick=False):
        count, queued = _queries(
            django_capture_on_commit_callbacks,
            sweeps.remind_outstanding_acknowledgements,
            timezone.localdate(),
        )
    assert queued == n
    assert Alert.objects.filter(kind="learning-reminder").count() == n
    # The outstanding ones, the outbox's keys (twice: the sweep's and queue_many's),
    # the acknowledgements with their plans, one bulk insert, savepoint statements.
    assert count == 9, count


@pytest.mark.parametrize("n", [1, 30])
def test_review_schedule_runs_the_same_queries_for_1_or_30(
    n, quality_lead, oakfield, django_capture_on_commit_callbacks
):
    for i in range(n):
        closed_plan_with_learning(
            owner=quality_lead,
            locations=[oakfield],
            closed_at=at(2026, 1, 15, 16),
            title=f"Plan {i}",
        )
    count, created = _queries(
        django_capture_on_commit_callbacks, sweeps.schedule_due_reviews, datetime.date(2026, 4, 15)
    )
    assert created == n
    reviews = LearningReview.objects.all()
    assert reviews.count() == n
    # Each review created with its history row.
    assert LearningReview.history.filter(history_type="+").count() == n
    assert Alert.objects.filter(kind="learning-review-due").count() == n
    assert count == 18, count
    again, created = _queries(
        django_capture_on_commit_callbacks, sweeps.schedule_due_reviews, datetime.date(2026, 4, 15)
    )
    assert created == 0 and Alert.objects.filter(kind="learning-review-due").count() == n


def test_a_review_created_by_a_concurrent_run_is_not_created_twice(
    quality_lead, oakfield, django_capture_on_commit_callbacks
):
    """The bulk insert loses the race for one review (unique per summary and interval):
    the reviews are created one by one, the one taken skipped, the rest created."""
    summaries = [
        closed_plan_with_learning(
            owner=quality_lead, locations=[oakfield], closed_at=at(2026, 1, 15, 16), title=t
        )
        for t in ("A", "B")
    ]
    taken = LearningReview(
        summary=summaries[0], months_after_closure=3, due_on=datetime.date(2026, 4, 15)
    )
    reviews = [
        LearningReview(summary=s, months_after_closure=3, due_on=datetime.date(2026, 4, 15))
        for s in summaries
    ]
    taken.save()
    assert sweeps._create_reviews(reviews) == 1
    assert LearningReview.objects.count() == 2
