"""The alert outbox: queued once per key, claimed before sending, retried with backoff
on temporary SMTP failures, failed with its error on permanent ones, recovered when a
sender dies mid-send, and never sent twice, even by two workers at once."""

import datetime
import smtplib
import threading
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command

from core import jobs, outbox
from core.models import Alert
from tests.core.flaky import WorkerKilled
from tests.core.smtp_server import SMTPServer

LONDON = ZoneInfo("Europe/London")
MONDAY_9AM = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=LONDON)


@pytest.fixture
def frozen():
    with time_machine.travel(MONDAY_9AM, tick=False) as traveller:
        yield traveller


def _queue(plan, key="stale-plan:test", **kwargs):
    return outbox.queue(
        "stale-plan",
        key=key,
        recipients=["lead@example.test"],
        context={"plan": plan, "quiet_days": 61},
        **kwargs,
    )


def test_an_alert_is_queued_once_per_key_with_its_email_rendered(plan):
    built = []

    def context():
        built.append(1)
        return {"plan": plan, "quiet_days": 61}

    first = outbox.queue(
        "stale-plan", key="k1", recipients=["a@x.test", "a@x.test"], context=context
    )
    second = outbox.queue("stale-plan", key="k1", recipients=["a@x.test"], context=context)
    assert first is not None and second is None
    assert built == [1]  # the second call did not even build the email
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.PENDING and alert.recipients == ["a@x.test"]
    assert plan.reference in alert.subject
    assert plan.get_absolute_url() in alert.body_text and "<a href" in alert.body_html


def test_nothing_is_queued_without_recipients(plan):
    assert outbox.queue("stale-plan", key="k", recipients=["", None], context={}) is None
    assert not Alert.objects.exists()


def test_delivery_waits_for_commit_and_sends_once(
    plan, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alert = _queue(plan)
        assert mailoutbox == []  # not inside the transaction
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["lead@example.test"]
    assert mailoutbox[0].alternatives[0].mimetype == "text/html"
    assert outbox.deliver(alert.pk) is False  # already sent: a redelivered task is a no-op
    outbox.deliver_due()
    assert len(mailoutbox) == 1
    alert.refresh_from_db()
    assert alert.status == Alert.Status.SENT and alert.sent_at and alert.attempts == 1


def test_a_temporary_smtp_failure_is_retried_with_backoff_then_sent_once(
    plan, flaky, frozen, mailoutbox
):
    flaky.failures += [
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        smtplib.SMTPResponseException(451, b"Try again later"),
    ]
    alert = _queue(plan)
    assert outbox.deliver(alert.pk) is False
    alert.refresh_from_db()
    assert alert.status == Alert.Status.PENDING
    assert alert.next_attempt_at == MONDAY_9AM + datetime.timedelta(minutes=1)
    assert "SMTPServerDisconnected" in alert.error

    assert outbox.deliver_due() == "0 of 0 due alert(s) sent"  # not due yet
    frozen.shift(datetime.timedelta(minutes=1))
    outbox.deliver_due()
    alert.refresh_from_db()
    assert alert.status == Alert.Status.PENDING and "451" in alert.error
    assert alert.next_attempt_at == MONDAY_9AM + datetime.timedelta(minutes=3)  # then 2 min

    frozen.shift(datetime.timedelta(minutes=2))
    assert outbox.deliver_due() == "1 of 1 due alert(s) sent"
    outbox.deliver_due()
    assert len(mailoutbox) == 1
    alert.refresh_from_db()
    assert alert.status == Alert.Status.SENT and alert.attempts == 3 and alert.error == ""


def test_a_permanent_smtp_failure_is_marked_failed_with_its_error(plan, flaky, frozen, mailoutbox):
    flaky.failures.append(smtplib.SMTPDataError(554, b"Message rejected"))
    alert = _queue(plan)
    outbox.deliver(alert.pk)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.FAILED
    assert "554" in alert.error and "Message rejected" in alert.error
    frozen.shift(datetime.timedelta(hours=2))
    outbox.deliver_due()
    outbox.recover_stuck_claims()
    assert mailoutbox == []


def test_temporary_failures_give_up_after_the_last_attempt(plan, flaky, frozen, mailoutbox):
    flaky.failures += [ConnectionRefusedError("refused")] * outbox.max_attempts()
    alert = _queue(plan)
    for _ in range(outbox.max_attempts()):
        frozen.shift(outbox.backoff_max())
        outbox.deliver_due()
    alert.refresh_from_db()
    assert alert.status == Alert.Status.FAILED and alert.attempts == outbox.max_attempts()
    assert mailoutbox == []


@pytest.mark.parametrize(
    ("exc", "temporary"),
    [
        (smtplib.SMTPServerDisconnected("gone"), True),
        (smtplib.SMTPConnectError(421, b"busy"), True),
        (smtplib.SMTPResponseException(452, b"mailbox full"), True),
        (smtplib.SMTPResponseException(550, b"no such user"), False),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"later")}), True),
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"unknown")}), False),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False),
        (smtplib.SMTPNotSupportedError("no STARTTLS"), False),
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError("timed out"), True),
        (ValueError("bad header"), False),
    ],
)
def test_which_failures_are_temporary(exc, temporary):
    assert outbox.is_temporary(exc) is temporary


def test_a_stuck_claim_is_recovered_and_sent_once(plan, flaky, frozen, mailoutbox):
    flaky.failures.append(WorkerKilled())
    alert = _queue(plan)
    with pytest.raises(WorkerKilled):
        outbox.deliver(alert.pk)  # the worker dies holding the claim
    alert.refresh_from_db()
    assert alert.status == Alert.Status.SENDING

    frozen.shift(datetime.timedelta(minutes=5))
    assert outbox.recover_stuck_claims().startswith("0 ")  # might still be sending
    outbox.deliver_due()
    assert mailoutbox == []

    frozen.shift(outbox.claim_timeout())
    assert outbox.recover_stuck_claims().startswith("1 ")
    outbox.deliver_due()
    outbox.recover_stuck_claims()
    outbox.deliver_due()
    assert len(mailoutbox) == 1
    alert.refresh_from_db()
    assert alert.status == Alert.Status.SENT and alert.attempts == 2


def test_smtp_down_for_a_while_then_back_delivers_once(plan, settings, frozen):
    """The real SMTP backend against a local server that refuses, then recovers."""
    with SMTPServer() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        server.refusing = True
        alert = _queue(plan)
        for _ in range(3):
            outbox.deliver_due()
            frozen.shift(outbox.backoff_max())
        alert.refresh_from_db()
        assert alert.status == Alert.Status.PENDING and "421" in alert.error
        server.refusing = False
        outbox.deliver_due()
        outbox.deliver_due()
        assert len(server.messages) == 1
        assert server.messages[0]["To"] == "lead@example.test"
    alert.refresh_from_db()
    assert alert.status == Alert.Status.SENT and alert.attempts == 4


def test_the_outbox_jobs_are_registered_and_run_from_the_command(plan, mailoutbox, capsys):
    names = {job.name for job in jobs.JOBS}
    assert {"deliver_due", "recover_stuck_claims"} <= names
    Alert.objects.create(
        kind="stale-plan", key="lost-task", recipients=["a@x.test"], subject="s", body_text="t"
    )
    call_command("run_scheduled_jobs", only=["recover_stuck_claims", "deliver_due"])
    assert "deliver_due: 1 of 1 due alert(s) sent" in capsys.readouterr().out
    assert len(mailoutbox) == 1  # an alert whose task the broker lost still goes out


def test_administrators_see_recent_alerts_and_failures_read_only(client, plan):
    from tests.factories import UserFactory

    admin = UserFactory(username="root", role="quality_lead", is_staff=True, is_superuser=True)
    Alert.objects.create(
        kind="stale-plan",
        key="a1",
        recipients=["a@x.test"],
        subject="Sent one",
        body_text="t",
        status=Alert.Status.SENT,
    )
    Alert.objects.create(
        kind="overdue-action",
        key="a2",
        recipients=["b@x.test"],
        subject="Broken one",
        body_text="t",
        status=Alert.Status.FAILED,
        error="SMTPDataError: (554, b'Message rejected')",
    )
    client.force_login(admin)
    page = client.get("/admin/core/alert/", {"status__exact": "failed"}).content.decode()
    assert "Broken one" in page and "Message rejected" in page and "Sent one" not in page
    assert client.get("/admin/core/alert/add/").status_code == 403
    failed = Alert.objects.get(key="a2")
    client.post("/admin/core/alert/", {"action": "send_again", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == Alert.Status.PENDING and failed.attempts == 0


# --- Concurrency (PostgreSQL: real row locks) -----------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["deliver", "deliver_due"])
def test_two_senders_at_once_send_one_email(how, flaky, mailoutbox):
    from django.db import connection

    flaky.delay = 0.3  # the winner is still sending while the loser tries to claim
    alert = Alert.objects.create(
        kind="stale-plan", key="race", recipients=["a@x.test"], subject="s", body_text="t"
    )
    barrier = threading.Barrier(2)
    results = []

    def sender():
        try:
            barrier.wait()
            results.append(outbox.deliver(alert.pk) if how == "deliver" else outbox.deliver_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(mail.outbox) == 1
    if how == "deliver":
        assert sorted(results) == [False, True]
    alert.refresh_from_db()
    assert alert.status == Alert.Status.SENT and alert.attempts == 1


# --- Time limits, kills and the one duplicate SMTP allows ------------------------------


def test_a_soft_time_limit_gives_the_claim_back_and_never_fails_the_alert(
    plan, flaky, frozen, mailoutbox
):
    """Celery's soft time limit is an ``Exception`` too: it must not be taken for a
    refusal by the mail server."""
    from celery.exceptions import SoftTimeLimitExceeded

    flaky.failures.append(SoftTimeLimitExceeded())
    alert = _queue(plan)
    with pytest.raises(SoftTimeLimitExceeded):  # the task still stops, as Celery asked
        outbox.deliver(alert.pk)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.PENDING and alert.claimed_at is None
    assert "time limit" in alert.error
    outbox.deliver_due()
    assert len(mailoutbox) == 1
    alert.refresh_from_db()
    assert alert.status == Alert.Status.SENT


def test_a_sender_killed_on_its_last_attempt_is_put_back_not_failed(plan, frozen, mailoutbox):
    alert = _queue(plan)
    Alert.objects.filter(pk=alert.pk).update(  # history-safe: the worker died holding it
        status=Alert.Status.SENDING, claimed_at=MONDAY_9AM, attempts=10
    )
    frozen.shift(datetime.timedelta(minutes=11))
    assert outbox.recover_stuck_claims() == "1 stuck alert(s) put back"
    alert.refresh_from_db()
    assert alert.status == Alert.Status.PENDING
    outbox.deliver_due()
    assert len(mailoutbox) == 1


def test_each_email_carries_a_message_id_that_a_resend_repeats(plan, settings, mailoutbox):
    settings.DEFAULT_FROM_EMAIL = "QIP Portal <alerts@care.example.org>"
    alert = _queue(plan)
    outbox.deliver(alert.pk)
    # As if the worker died after the server took the message but before it said so:
    # the claim is recovered and the alert sent again.
    Alert.objects.filter(pk=alert.pk).update(  # history-safe
        status=Alert.Status.PENDING, sent_at=None
    )
    outbox.deliver(alert.pk)
    first, second = (m.message()["Message-ID"] for m in mailoutbox)
    assert first == second
    assert first.startswith(f"<alert-{alert.pk}-") and first.endswith("@care.example.org>")
    other = _queue(plan, key="stale-plan:other")
    outbox.deliver(other.pk)
    assert mailoutbox[2].message()["Message-ID"] != first


def test_the_message_id_falls_back_to_the_site_address(plan, settings, mailoutbox):
    settings.DEFAULT_FROM_EMAIL = "webmaster"
    settings.SITE_URL = "https://qip.care.example.org"
    outbox.deliver(_queue(plan).pk)
    assert mailoutbox[0].message()["Message-ID"].endswith("@qip.care.example.org>")


@pytest.mark.django_db(transaction=True)
def test_an_alert_is_recorded_sent_before_the_server_answers_quit(settings):
    """Once the server has said "250" to the message, a worker killed while waiting for
    the answer to QUIT must not leave the alert to be sent again."""
    from django.db import connection

    seen = []

    def at_quit():
        try:
            seen.append(Alert.objects.values_list("status", flat=True).get())
        finally:
            connection.close()  # the server thread's own connection

    with SMTPServer() as server:
        _use_smtp_server(settings, server)
        server.on_quit = at_quit
        alert = Alert.objects.create(
            kind="stale-plan", key="quit", recipients=["a@x.test"], subject="s", body_text="t"
        )
        assert outbox.deliver(alert.pk) is True
    assert seen == [Alert.Status.SENT]
    assert len(server.messages) == 1


def _use_smtp_server(settings, server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@x.test": (550, b"5.1.1 User unknown")}),
            "a@x.test: 550 5.1.1 User unknown (SMTPRecipientsRefused)",
        ),
        (
            smtplib.SMTPSenderRefused(451, b"4.3.2 Try later", "qip@x.test"),
            "451 4.3.2 Try later (SMTPSenderRefused)",
        ),
        (ConnectionRefusedError(111, "Connection refused"), "[Errno 111] Connection refused"),
    ],
)
def test_a_failure_is_recorded_in_the_servers_own_words(exc, said):
    assert outbox.describe(exc).startswith(said)


@pytest.mark.parametrize("n", [1, 30])
def test_the_relay_reads_due_alerts_in_one_query_and_claims_each_before_sending(
    n, plan, frozen, mailoutbox
):
    """deliver_due reads its batch in one query; what stays per alert is the outbox's
    guarantee: the claim just before its SMTP conversation, and 'sent' recorded before
    QUIT (two queries per alert; three before issue #19)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(n):
        _queue(plan, key=f"stale-plan:test:{i}")
    mailoutbox.clear()
    with CaptureQueriesContext(connection) as ctx:
        assert outbox.deliver_due() == f"{n} of {n} due alert(s) sent"
    assert len(ctx.captured_queries) == 1 + 2 * n
    assert len(mailoutbox) == n
    assert Alert.objects.filter(status=Alert.Status.SENT, attempts=1).count() == n


def test_the_relay_counts_attempts_from_the_row_it_claimed(plan, flaky, frozen, mailoutbox):
    """The relay sends what it read in bulk, but a failure's backoff follows the attempts
    counted by the claim (another relay may have tried in between)."""
    flaky.failures += [smtplib.SMTPResponseException(451, b"Try again later")]
    alert = _queue(plan)
    read = Alert.objects.get(pk=alert.pk)  # as the relay read it: no attempt yet
    Alert.objects.filter(pk=alert.pk).update(attempts=2)  # two tries made since
    assert outbox.deliver(alert.pk, read=read) is False
    alert.refresh_from_db()
    assert alert.status == Alert.Status.PENDING and alert.attempts == 3
    assert alert.next_attempt_at == MONDAY_9AM + datetime.timedelta(minutes=4)
