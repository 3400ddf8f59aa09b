import datetime

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from core import outbox
from core.models import Alert
from learning import services, sweeps
from learning.models import (
    Acknowledgement,
    Embedding,
    LearningReview,
    LearningSummary,
    add_months,
)
from qip_portal import closure
from tests import factories
from tests.learning.helpers import close_plan, closed_plan_with_learning, write_summary

LONDON = timezone.get_default_timezone()


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=LONDON)


# --- What closure asks of learning ---------------------------------------------------


def test_a_plan_without_a_complete_summary_is_not_ready_for_closure(plan, quality_lead):
    assert services.plans_with_complete_summary([plan.pk]) == set()
    blockers = [b.text for b in closure.closure_blockers(plan)]
    assert any(text.startswith("Write the learning summary") for text in blockers)
    write_summary(plan, by=quality_lead, key_messages="  ")
    assert services.plans_with_complete_summary([plan.pk]) == set()


def test_a_complete_summary_clears_that_blocker(plan, quality_lead):
    write_summary(plan, by=quality_lead)
    assert services.plans_with_complete_summary([plan.pk]) == {plan.pk}
    blockers = [b.text for b in closure.closure_blockers(plan)]
    assert not any("learning summary" in text for text in blockers)



# --- Summary and history -------------------------------------------------------------


def test_editing_the_summary_keeps_the_old_text_in_history(plan, quality_lead, manager):
    summary = write_summary(plan, by=quality_lead, key_messages="First version.")
    services.save_summary(
        plan=plan,
        by=manager,
        what_happened=summary.what_happened,
        what_changed=summary.what_changed,
        key_messages="Second version.",
    )
    summary.refresh_from_db()
    assert summary.key_messages == "Second version."
    versions = list(summary.history.order_by("history_date"))
    assert [v.key_messages for v in versions] == ["First version.", "Second version."]
    assert [v.history_user for v in versions] == [quality_lead, manager]
    assert versions[0].history_change_reason == "Learning summary written"
    assert LearningSummary.objects.count() == 1


# --- Sharing and acknowledgement ---------------------------------------------------


def test_sharing_asks_every_active_manager_of_the_chosen_locations_once(
    plan, quality_lead, manager, oakfield, riverside, outsider, django_capture_on_commit_callbacks
):
    retired = factories.UserFactory(
        username="gone", role="manager", locations=[oakfield], is_active=False
    )
    factories.UserFactory(username="viewer2", role="viewer", locations=[oakfield])
    both = factories.UserFactory(username="both", role="manager", locations=[oakfield, riverside])
    summary = write_summary(plan, by=quality_lead)
    with django_capture_on_commit_callbacks(execute=True):
        created = services.share_summary(
            summary=summary, by=quality_lead, locations=[oakfield, riverside]
        )
    assert {a.manager for a in created} == {manager, outsider, both}
    assert retired not in {a.manager for a in created}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        u.email for u in (manager, outsider, both)
    )
    assert "Please read: learning from" in mail.outbox[0].subject
    # Sharing again asks no one twice and sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        again = services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    assert again == [] and len(mail.outbox) == 3
    assert Acknowledgement.objects.filter(summary=summary).count() == 3


def test_no_email_is_sent_when_sharing_rolls_back(plan, quality_lead, manager, oakfield):
    summary = write_summary(plan, by=quality_lead)
    # Without the on-commit callbacks running, nothing is sent.
    services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    assert mail.outbox == []


def test_a_manager_acknowledges_once_and_only_their_own(
    plan, quality_lead, manager, oakfield, outsider
):
    summary = write_summary(plan, by=quality_lead)
    [ack] = services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    with pytest.raises(services.LearningRefused):
        services.acknowledge(ack=ack, by=outsider)
    first = services.acknowledge(ack=ack, by=manager).acknowledged_at
    assert first is not None
    assert services.acknowledge(ack=ack, by=manager).acknowledged_at == first
    assert ack.history.count() == 2  # shared, acknowledged (not again)


# --- Reminders ---------------------------------------------------------------------


def test_reminder_sweep_run_twice_sends_one_email(
    plan, quality_lead, manager, oakfield, django_capture_on_commit_callbacks
):
    with time_machine.travel(at(2026, 3, 2, 9), tick=False):
        summary = write_summary(plan, by=quality_lead)
        with django_capture_on_commit_callbacks(execute=True):
            services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    mail.outbox.clear()
    # Too early: shared less than a week ago.
    with (
        time_machine.travel(at(2026, 3, 5, 9), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        sweeps.remind_outstanding_acknowledgements(timezone.localdate())
    assert mail.outbox == []
    with time_machine.travel(at(2026, 3, 10, 9), tick=False):
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                sweeps.remind_outstanding_acknowledgements(timezone.localdate())
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [manager.email]
    assert mail.outbox[0].subject.startswith("Reminder: learning from")
    reminder = Alert.objects.get(kind="learning-reminder")
    assert reminder.key.endswith(":2026-W11") and reminder.status == Alert.Status.SENT
    # The next week brings one more reminder; after acknowledging, none.
    with time_machine.travel(at(2026, 3, 17, 9), tick=False):
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                sweeps.remind_outstanding_acknowledgements(timezone.localdate())
    assert len(mail.outbox) == 2
    services.acknowledge(ack=Acknowledgement.objects.get(), by=manager)
    with (
        time_machine.travel(at(2026, 3, 24, 9), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        sweeps.remind_outstanding_acknowledgements(timezone.localdate())
    assert len(mail.outbox) == 2


def test_emails_whose_delivery_tasks_were_lost_are_sent_by_the_relay(
    plan, quality_lead, manager, oakfield, django_capture_on_commit_callbacks
):
    with time_machine.travel(at(2026, 3, 2, 9), tick=False):
        summary = write_summary(plan, by=quality_lead)
        services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    with time_machine.travel(at(2026, 3, 10, 9), tick=False):
        # The after-commit tasks never ran (broker lost them): the alerts exist, unsent.
        sweeps.remind_outstanding_acknowledgements(timezone.localdate())
        assert mail.outbox == []
        assert Alert.objects.filter(status=Alert.Status.PENDING).count() == 2
        outbox.deliver_due()
        with django_capture_on_commit_callbacks(execute=True):
            sweeps.remind_outstanding_acknowledgements(timezone.localdate())
        outbox.deliver_due()
    # The "please read" email and the reminder, once each.
    assert sorted(m.subject.split(":")[0] for m in mail.outbox) == ["Please read", "Reminder"]
    assert Alert.objects.filter(kind="learning-reminder").count() == 1


def test_a_reminder_refused_for_now_is_retried_and_sent_once(
    plan, quality_lead, manager, oakfield, flaky, django_capture_on_commit_callbacks
):
    with time_machine.travel(at(2026, 3, 2, 9), tick=False):
        summary = write_summary(plan, by=quality_lead)
        with django_capture_on_commit_callbacks(execute=True):
            services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    mail.outbox.clear()
    flaky.failures.append(ConnectionRefusedError("SMTP down"))
    with time_machine.travel(at(2026, 3, 10, 9), tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            sweeps.remind_outstanding_acknowledgements(timezone.localdate())
        reminder = Alert.objects.get(kind="learning-reminder")
        assert reminder.status == Alert.Status.PENDING and "SMTP down" in reminder.error
        assert mail.outbox == []
        clock.shift(datetime.timedelta(minutes=1))
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                sweeps.remind_outstanding_acknowledgements(timezone.localdate())
            outbox.deliver_due()
    assert len(mail.outbox) == 1


def test_the_sweeps_are_registered_as_scheduled_jobs():
    from core.jobs import JOBS

    names = {job.name for job in JOBS}
    assert {"learning_acknowledgement_reminders", "learning_review_schedule"} <= names


# --- Relevance reviews ---------------------------------------------------------------


def test_add_months_keeps_to_the_end_of_short_months():
    assert add_months(datetime.date(2026, 1, 15), 3) == datetime.date(2026, 4, 15)
    assert add_months(datetime.date(2025, 11, 30), 3) == datetime.date(2026, 2, 28)
    assert add_months(datetime.date(2026, 1, 31), 12) == datetime.date(2027, 1, 31)


def test_reviews_fall_due_three_and_twelve_months_after_closure_once_each(
    quality_lead, oakfield, django_capture_on_commit_callbacks
):
    summary = closed_plan_with_learning(
        owner=quality_lead, locations=[oakfield], closed_at=at(2026, 1, 15, 16)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert sweeps.schedule_due_reviews(datetime.date(2026, 4, 14)) == 0
    assert not LearningReview.objects.exists()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            sweeps.schedule_due_reviews(datetime.date(2026, 4, 15))
    review = LearningReview.objects.get()
    assert (review.months_after_closure, review.due_on) == (3, datetime.date(2026, 4, 15))
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [quality_lead.email]
    assert "Learning review due" in mail.outbox[0].subject
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            sweeps.schedule_due_reviews(datetime.date(2027, 1, 20))
    assert list(summary.reviews.values_list("months_after_closure", flat=True)) == [3, 12]
    assert len(mail.outbox) == 2


def test_review_intervals_come_from_settings(quality_lead, oakfield, settings):
    settings.LEARNING_REVIEW_MONTHS = (1,)
    closed_plan_with_learning(
        owner=quality_lead, locations=[oakfield], closed_at=at(2026, 1, 15, 16)
    )
    assert sweeps.schedule_due_reviews(datetime.date(2026, 2, 15)) == 1
    assert LearningReview.objects.get().months_after_closure == 1


def test_open_or_unsummarised_or_retired_plans_get_no_reviews(plan, quality_lead, oakfield):
    write_summary(plan, by=quality_lead)  # live, not closed
    bare = factories.live_plan(owner=quality_lead, locations=[oakfield], title="No summary")
    close_plan(bare, by=quality_lead, when=at(2025, 1, 1, 9))
    retired = closed_plan_with_learning(
        owner=quality_lead, locations=[oakfield], closed_at=at(2025, 1, 1, 9), title="Old"
    )
    retired.status = LearningSummary.Status.RETIRED
    services._save(retired, by=quality_lead)
    assert sweeps.schedule_due_reviews(datetime.date(2026, 6, 1)) == 0


@pytest.fixture
def due_review(quality_lead, oakfield):
    closed_plan_with_learning(
        owner=quality_lead, locations=[oakfield], closed_at=at(2026, 1, 15, 16)
    )
    sweeps.schedule_due_reviews(datetime.date(2026, 4, 15))
    return LearningReview.objects.get()


def test_outcome_still_relevant_changes_nothing_else(due_review, governance_member):
    services.record_review(review=due_review, by=governance_member, outcome="still_relevant")
    due_review.refresh_from_db()
    assert due_review.outcome == "still_relevant" and due_review.reviewed_by == governance_member
    with pytest.raises(services.LearningRefused, match="already has an outcome"):
        services.record_review(review=due_review, by=governance_member, outcome="retired", note="x")


def test_outcome_updated_saves_new_text_and_keeps_the_old(due_review, quality_lead):
    old = due_review.summary.key_messages
    new_text = {
        "what_happened": "Same.",
        "what_changed": "Same, plus an escalation flowchart.",
        "key_messages": "Use the flowchart.",
    }
    services.record_review(review=due_review, by=quality_lead, outcome="updated", new_text=new_text)
    summary = LearningSummary.objects.get()
    assert summary.key_messages == "Use the flowchart."
    assert old in summary.history.values_list("key_messages", flat=True)
    assert summary.history.first().history_change_reason == "Updated at the 3-month review"


def test_outcome_retired_needs_a_reason_and_stops_further_reviews(due_review, quality_lead):
    with pytest.raises(services.LearningRefused, match="reason for retiring"):
        services.record_review(review=due_review, by=quality_lead, outcome="retired")
    services.record_review(
        review=due_review, by=quality_lead, outcome="retired", note="Service model changed."
    )
    summary = LearningSummary.objects.get()
    assert summary.is_retired and summary.retired_reason == "Service model changed."
    assert sweeps.schedule_due_reviews(datetime.date(2027, 6, 1)) == 0


def test_outcome_reembed_creates_a_to_do_that_can_be_completed(due_review, quality_lead):
    services.record_review(
        review=due_review,
        by=quality_lead,
        outcome="reembed",
        note="New starters have not had it.",
        reembed_kind="induction",
        reembed_due_on=datetime.date(2026, 5, 31),
    )
    todo = Embedding.objects.get()
    assert todo.status == Embedding.Status.TO_DO and todo.raised_by_review == due_review
    assert todo.due_on == datetime.date(2026, 5, 31)
    services.record_embedding(
        summary=todo.summary,
        by=quality_lead,
        kind="induction",
        embedded_on=timezone.localdate(),
        who="Tom Okafor",
        embedding=todo,
    )
    todo.refresh_from_db()
    assert todo.is_done and todo.history.first().history_change_reason == (
        "Follow-up embedding completed"
    )
