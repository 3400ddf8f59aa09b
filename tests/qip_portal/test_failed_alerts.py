"""Emails that could not be sent, shown to administrators: the home tile, the list with
its retries (POST with CSRF, administrators only, 404 for anyone else) and the daily
email that lists them, itself through the outbox once a day."""

import datetime
import smtplib
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from core import jobs, outbox
from core.models import Alert
from qip_portal.pages import failed_emails as alerts

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(autouse=True)
def _signed_in_with_two_steps(settings):
    # Administrators must use two-step verification (tested in test_security.py); here
    # force_login stands for a completed two-step sign-in.
    settings.MFA_REQUIRED_ROLES = set()


def _failed(n: int = 1, *, subject: str = "QIP-2026-0001: an action is 3 days overdue"):
    return [
        Alert.objects.create(
            kind="overdue-action",
            key=f"overdue-action:test:{i}",
            recipients=[f"gone{i}@example.test"],
            subject=subject,
            body_text="Body.",
            status=Alert.Status.FAILED,
            attempts=1,
            error="SMTPRecipientsRefused: {'gone@example.test': (550, b'5.1.1 No such user')}",
        )
        for i in range(n)
    ]


def test_administrators_see_a_tile_counting_the_emails_not_sent(client, administrator):
    _failed(2)
    Alert.objects.create(
        kind="stale-plan",
        key="sent",
        recipients=["a@x.test"],
        subject="s",
        body_text="t",
        status=Alert.Status.SENT,
    )
    client.force_login(administrator)
    page = client.get(reverse("home")).content.decode()
    assert '2</span><span class="d-block">emails could not be sent' in page
    assert reverse("alerts:failed") in page


@pytest.mark.parametrize("persona", ["quality_lead", "manager", "governance_member", "viewer"])
def test_no_one_else_sees_the_tile_or_the_list(client, request, persona, db):
    _failed(1)
    user = request.getfixturevalue(persona)
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.context["failed_emails"] is None
    assert reverse("alerts:failed") not in response.content.decode()
    assert client.get(reverse("alerts:failed")).status_code == 404
    failed = Alert.objects.get()
    assert client.post(reverse("alerts:retry", args=[failed.pk])).status_code == 404
    assert client.post(reverse("alerts:retry_all")).status_code == 404
    failed.refresh_from_db()
    assert failed.status == Alert.Status.FAILED


def test_no_tile_when_every_email_went(client, administrator):
    client.force_login(administrator)
    response = client.get(reverse("home"))
    assert response.context["failed_emails"] == 0
    assert "could not be sent" not in response.content.decode()


def test_the_list_shows_each_failed_email_with_why(client, administrator):
    _failed(1, subject="Broken one")
    Alert.objects.create(
        kind="stale-plan",
        key="sent",
        recipients=["a@x.test"],
        subject="Sent one",
        body_text="t",
        status=Alert.Status.SENT,
    )
    client.force_login(administrator)
    page = client.get(reverse("alerts:failed")).content.decode()
    assert "Broken one" in page and "Sent one" not in page
    assert "No such user" in page and "gone0@example.test" in page
    assert "Overdue action" in page  # the kind, in words


def test_send_again_is_a_post_with_its_csrf_token(
    administrator, mailoutbox, django_capture_on_commit_callbacks
):
    [failed] = _failed(1)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(administrator)
    url = reverse("alerts:retry", args=[failed.pk])
    assert browser.get(url).status_code == 405
    assert browser.post(url).status_code == 403  # no token
    page = browser.get(reverse("alerts:failed")).content.decode()
    assert f'action="{url}"' in page
    token = browser.cookies[settings.CSRF_COOKIE_NAME].value
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.url == reverse("alerts:failed")
    failed.refresh_from_db()
    assert failed.status == Alert.Status.SENT and failed.attempts == 1  # a fresh set
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["gone0@example.test"]


def test_send_all_again_then_the_list_is_empty(
    client, administrator, mailoutbox, django_capture_on_commit_callbacks
):
    _failed(3)
    client.force_login(administrator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("alerts:retry_all"), follow=True)
    assert "3 emails will be sent again." in response.content.decode()
    assert len(mailoutbox) == 3
    assert not Alert.objects.filter(status=Alert.Status.FAILED).exists()
    assert "Every email has been sent" in client.get(reverse("alerts:failed")).content.decode()
    # Once sent, a second "send again" of the same email sends nothing.
    response = client.post(reverse("alerts:retry", args=[Alert.objects.first().pk]), follow=True)
    assert "no longer waiting" in response.content.decode()
    assert len(mailoutbox) == 3


def test_an_email_that_fails_again_comes_back_to_the_list(
    client, administrator, flaky, django_capture_on_commit_callbacks
):
    [failed] = _failed(1)
    flaky.failures.append(smtplib.SMTPRecipientsRefused({"gone0@example.test": (550, b"No")}))
    client.force_login(administrator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("alerts:retry", args=[failed.pk]))
    failed.refresh_from_db()
    assert failed.status == Alert.Status.FAILED and "550" in failed.error


@pytest.mark.parametrize("rows", [1, 60])
def test_the_tile_and_the_list_run_a_fixed_number_of_queries(
    client, administrator, rows, django_assert_max_num_queries
):
    _failed(rows)
    client.force_login(administrator)
    with django_assert_max_num_queries(25):
        assert client.get(reverse("home")).status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get(reverse("alerts:failed")).status_code == 200


# --- The daily email ------------------------------------------------------------------


def test_administrators_get_one_email_a_day_listing_what_was_not_sent(
    administrator, quality_lead, mailoutbox, django_capture_on_commit_callbacks
):
    _failed(2, subject="Broken one")
    with time_machine.travel(datetime.datetime(2026, 3, 2, 8, 0, tzinfo=LONDON), tick=False):
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                alerts.send_failed_alerts_report()
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == [administrator.email]  # not the quality lead
    assert email.subject == "2 emails could not be sent"
    assert email.body.count("Broken one") == 2 and "No such user" in email.body
    assert reverse("alerts:failed") in email.body
    report = Alert.objects.get(kind="failed-alerts")
    assert report.key == "failed-alerts:2026-03-02" and report.status == Alert.Status.SENT
    # The next day, while they are still failed, another.
    with (
        time_machine.travel(datetime.datetime(2026, 3, 3, 8, 0, tzinfo=LONDON), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        alerts.send_failed_alerts_report()
    assert len(mailoutbox) == 2


def test_no_daily_email_when_nothing_failed(administrator, mailoutbox):
    assert alerts.send_failed_alerts_report() == "no failed emails"
    outbox.deliver_due()
    assert mailoutbox == []


def test_the_daily_email_is_a_scheduled_job_with_a_beat_entry(administrator, mailoutbox):
    _failed(1)
    assert "failed_alerts_report" in {job.name for job in jobs.JOBS}
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "qip_portal.alerts.send_failed_alerts_report" in tasks
    call_command("run_scheduled_jobs", only=["failed_alerts_report"])
    outbox.deliver_due()  # the next minute's relay
    assert [m.subject for m in mailoutbox] == ["1 email could not be sent"]
