"""The move of learning's emails to the outbox: emails already sent before it are
recorded as sent alerts under the new keys, so the new code never sends them again."""

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core import outbox
from core.models import Alert
from learning import sweeps
from tests.learning.helpers import close_plan, write_summary

BEFORE = [("learning", "0001_initial")]
AFTER = [("learning", "0002_emails_through_the_outbox")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _migrate_to_the_latest():
    """Every app's latest migration: going back to BEFORE also unapplied what depends
    on it in other apps, and the rest of the suite runs in this database."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_emails_sent_before_the_outbox_are_not_sent_again(
    plan, quality_lead, manager, oakfield, mailoutbox
):
    summary = write_summary(plan, by=quality_lead)
    close_plan(plan, by=quality_lead, when=timezone.now() - datetime.timedelta(days=400))
    old = _migrate(BEFORE)
    try:
        Ack = old.get_model("learning", "Acknowledgement")
        Reminder = old.get_model("learning", "AcknowledgementReminder")
        Review = old.get_model("learning", "LearningReview")
        shared = timezone.now() - datetime.timedelta(days=10)
        ack = Ack.objects.create(
            summary_id=summary.pk,
            manager_id=manager.pk,
            location_id=oakfield.pk,
            shared_by_id=quality_lead.pk,
            shared_at=shared,
            notified_at=shared,
        )
        period = sweeps.reminder_period(timezone.localdate())
        Reminder.objects.create(acknowledgement=ack, period=period, sent_at=timezone.now())
        review = Review.objects.create(
            summary_id=summary.pk,
            months_after_closure=3,
            due_on=timezone.localdate() - datetime.timedelta(days=300),
            notified_at=timezone.now(),
        )
    finally:
        _migrate(AFTER)
        _migrate_to_the_latest()
    keys = set(Alert.objects.values_list("key", flat=True))
    assert keys == {
        f"learning-shared:{ack.pk}",
        f"learning-reminder:{ack.pk}:{period}",
        f"learning-review-due:{review.pk}",
    }
    assert set(Alert.objects.values_list("status", flat=True)) == {Alert.Status.SENT}
    # This week's reminder and the old review's email were sent: nothing again. The
    # 12-month review is new, and owes its one email.
    assert sweeps.remind_outstanding_acknowledgements(timezone.localdate()) == 0
    sweeps.schedule_due_reviews(timezone.localdate())
    outbox.deliver_due()
    assert [m.subject.split(":")[0] for m in mailoutbox] == ["Learning review due"]
    assert "12 months" in mailoutbox[0].subject
