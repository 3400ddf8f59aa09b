"""Governance emails go through the outbox: written with the submission or decision
that caused them, sent once however often delivery runs, and kept for a retry when the
mail server fails. SMTP is the only thing mocked."""

import contextlib
import datetime
import smtplib

import time_machine
from django.utils import timezone

from core import outbox
from core.models import Alert
from governance.models import Decision
from qip_portal import closure
from tests import factories
from tests.factories import PASSWORD


def _run_twice(callbacks) -> None:
    """Every after-commit callback run twice: a redelivered task, a doubled worker."""
    for _ in range(2):
        for callback in callbacks:
            with contextlib.suppress(Exception):
                callback()


def _submitted(mailoutbox):
    return [m for m in mailoutbox if "for decision" in m.subject]


def test_a_submission_email_is_sent_once_however_often_delivery_runs(
    ready_plan, quality_lead, group, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = closure.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)
    _run_twice(callbacks)
    outbox.deliver_due()
    assert len(_submitted(mailoutbox)) == 1
    alert = Alert.objects.get(kind="governance-report-submitted")
    assert alert.key == f"governance-report-submitted:{report.pk}"


def test_a_submission_email_refused_for_now_is_sent_later(
    ready_plan, quality_lead, group, flaky, mailoutbox, django_capture_on_commit_callbacks
):
    flaky.failures.append(smtplib.SMTPResponseException(451, b"Try again later"))
    with time_machine.travel(timezone.now(), tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            closure.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)
        for callback in callbacks:
            with contextlib.suppress(Exception):
                callback()
        assert _submitted(mailoutbox) == []
        clock.shift(datetime.timedelta(minutes=2))
        outbox.deliver_due()
    assert len(_submitted(mailoutbox)) == 1


def test_a_decision_email_is_sent_once_however_often_delivery_runs(
    report_with_pdf, chair, meeting, mailoutbox, django_capture_on_commit_callbacks
):
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decision = closure.sign_decision(
            report=report_with_pdf,
            meeting=meeting,
            by=chair,
            password=PASSWORD,
            otp_token=factories.signing_code(chair),
            outcome=Decision.Outcome.CLOSE,
        )
    _run_twice(callbacks)
    outbox.deliver_due()
    decided = [m for m in mailoutbox if "close (Safeguarding Governance Group)" in m.subject]
    assert len(decided) == 1
    alert = Alert.objects.get(kind="governance-decision")
    assert alert.key == f"governance-decision:{decision.pk}"
    assert "chair@example.test" not in alert.recipients


def test_two_submissions_before_the_worker_runs_send_two_transition_emails(
    ready_plan,
    quality_lead,
    group,
    chair,
    meeting,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    """Submitted, returned, submitted again, all before any delivery task ran: the plan
    went to closure review twice, and each time is its own email (to the other quality
    lead: the one who acted is not told of their own step)."""
    factories.UserFactory(username="lead2", role="quality_lead")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = closure.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)
        closure.sign_decision(
            report=first,
            meeting=meeting,
            by=chair,
            password=PASSWORD,
            otp_token=factories.signing_code(chair),
            outcome=Decision.Outcome.RETURN,
            reasons="The huddle records are missing for March.",
        )
        closure.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)
    for callback in callbacks:
        with contextlib.suppress(Exception):
            callback()
    outbox.deliver_due()
    to_review = [m for m in mailoutbox if "closure review" in m.subject.lower()]
    assert len(to_review) == 2, [m.subject for m in mailoutbox]
