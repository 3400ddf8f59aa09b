"""Learning's emails go through the outbox: the "please read" email, the weekly
reminders and the "review due" email are alerts written with their cause, so a worker
killed mid-send or a mail server that fails is recovered from by the outbox's own
jobs, and administrators see them with every other alert. SMTP is the only thing
mocked."""

import datetime

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from core.models import Alert
from learning import services, sweeps
from tests.core.flaky import WorkerKilled
from tests.learning.helpers import closed_plan_with_learning, write_summary

LONDON = timezone.get_default_timezone()


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=LONDON)


def _jobs() -> None:
    """What beat triggers, all of it, as ``manage.py run_scheduled_jobs`` runs it."""
    call_command("run_scheduled_jobs")


def test_a_share_email_whose_worker_was_killed_mid_send_is_sent_later(
    plan, quality_lead, manager, oakfield, flaky, django_capture_on_commit_callbacks
):
    flaky.failures.append(WorkerKilled())
    with time_machine.travel(at(2026, 3, 2, 9), tick=False) as clock:
        summary = write_summary(plan, by=quality_lead)
        with (
            pytest.raises(WorkerKilled),
            django_capture_on_commit_callbacks(execute=True),
        ):
            services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
        assert mail.outbox == []
        clock.shift(datetime.timedelta(minutes=15))
        _jobs()
        _jobs()
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Please read"]
    assert mail.outbox[0].to == [manager.email]
    alert = Alert.objects.get(kind="learning-shared")
    assert alert.status == Alert.Status.SENT


def test_a_reminder_whose_worker_was_killed_mid_send_is_sent_later(
    plan, quality_lead, manager, oakfield, flaky, django_capture_on_commit_callbacks
):
    with time_machine.travel(at(2026, 3, 2, 9), tick=False):
        summary = write_summary(plan, by=quality_lead)
        with django_capture_on_commit_callbacks(execute=True):
            services.share_summary(summary=summary, by=quality_lead, locations=[oakfield])
    mail.outbox.clear()
    flaky.failures.append(WorkerKilled())
    with time_machine.travel(at(2026, 3, 10, 9), tick=False) as clock:
        with (
            pytest.raises(WorkerKilled),
            django_capture_on_commit_callbacks(execute=True),
        ):
            sweeps.remind_outstanding_acknowledgements(timezone.localdate())
        clock.shift(datetime.timedelta(minutes=15))
        _jobs()
        _jobs()
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Reminder"]
    assert Alert.objects.get(kind="learning-reminder").status == Alert.Status.SENT


def test_a_review_due_email_whose_worker_was_killed_mid_send_is_sent_later(
    quality_lead, oakfield, flaky, django_capture_on_commit_callbacks
):
    closed_plan_with_learning(
        owner=quality_lead, locations=[oakfield], closed_at=at(2026, 1, 15, 16)
    )
    flaky.failures.append(WorkerKilled())
    with time_machine.travel(at(2026, 4, 15, 6, 30), tick=False) as clock:
        with (
            pytest.raises(WorkerKilled),
            django_capture_on_commit_callbacks(execute=True),
        ):
            sweeps.schedule_due_reviews(timezone.localdate())
        clock.shift(datetime.timedelta(minutes=15))
        _jobs()
        _jobs()
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Learning review due"]
    assert Alert.objects.get(kind="learning-review-due").status == Alert.Status.SENT
