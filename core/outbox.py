"""The alert outbox: every email the portal sends goes through here, so none is sent
twice and none is lost (ARCHITECTURE.md, "Scheduled jobs and alerts"). Nothing else
sends email.

1. ``queue()`` creates the ``Alert`` row, unique by key (kind, object, the transition or
   period that caused it), in the caller's transaction, and renders the email onto it.
   A second ``queue()`` with the same key does nothing. If the cause rolls back, so
   does its email.
2. After commit, a ``deliver_alert`` task is queued to hurry the row along
   (``core.queueing``: a broker outage is logged, never raised into the request).
   ``deliver()`` *claims* the row with a conditional UPDATE (pending -> sending). Only
   one caller can win that UPDATE, so two workers, a redelivered task or a doubled beat
   tick cannot send it twice (healthchecks.io's ``sendalerts`` does the same).
3. The sender records ``sent_at`` as soon as the server has accepted the message (its
   "250" to the end of DATA), before the closing QUIT; or it records the error: a
   temporary SMTP failure (4xx, network) goes back to pending with an exponential
   backoff, a permanent one (5xx) is marked failed at once. A Celery soft time limit
   gives the claim back. Failed alerts are shown to administrators
   (``qip_portal/pages/failed_emails.py``).
4. ``deliver_due()`` (every minute) is the relay: it sends whatever is pending and due,
   so an alert whose task the broker lost still goes out; ``recover_stuck_claims()``
   puts back to pending any claim whose worker died mid-send.

Exactly once is what the database guarantees; SMTP itself cannot be part of a
transaction. A worker killed after the mail server received the whole message but
before our UPDATE recorded its "250" leaves the claim to be recovered, and the message
is sent again. That window runs from the final "." of DATA to the UPDATE: normally
milliseconds, but as long as the SMTP timeout (``OUTBOX_SMTP_TIMEOUT_SECONDS``, 60 s)
if the server is slow to answer. Every email therefore carries a Message-ID derived
from its alert, the same on every attempt, so such a copy is recognisably the same
message (mail clients and servers fold copies with one Message-ID).

Outbox rows have no simple-history, so the ``QuerySet.update()`` calls below are
marked ``# history-safe`` for the history guard test.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import smtplib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import urlsplit

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core import emails, jobs, queueing
from core.models import Alert

log = logging.getLogger(__name__)

# deliver_due() sends at most this many per run; the rest wait for the next minute.
BATCH_SIZE = 500


# The timings live in settings (OUTBOX_*), read at each call, so a test can shorten them.
def smtp_timeout() -> int:
    """Seconds one SMTP conversation may wait for any answer before giving up."""
    return settings.OUTBOX_SMTP_TIMEOUT_SECONDS


def claim_timeout() -> datetime.timedelta:
    """How long a claim may stay "sending" before we conclude its worker died."""
    return datetime.timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS)


def max_attempts() -> int:
    return settings.OUTBOX_MAX_ATTEMPTS


def backoff_max() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.OUTBOX_BACKOFF_MAX_SECONDS)


def queue(
    kind: str,
    *,
    key: str,
    recipients: Iterable[str],
    context: dict | Callable[[], dict],
) -> Alert | None:
    """Queue one email of ``kind`` (templates ``emails/<kind>-*``) to ``recipients``,
    once ever for ``key``. Call it inside the transaction that makes the email due, so
    the two commit (or roll back) together. ``context`` may be a callable, so the work
    of building it is skipped when the key exists. Returns the new ``Alert``, or None
    when the key was already queued (it is never sent twice) or there is no one to
    send to. Delivery is hurried along by a task queued after commit; if the broker
    cannot take it, ``deliver_due`` sends the alert within a minute."""
    to = sorted({address for address in recipients if address})
    if not to or Alert.objects.filter(key=key).exists():
        return None
    ctx = context() if callable(context) else context
    subject, text, html = emails.render(kind, ctx)
    try:
        # A savepoint, so a lost race for the key leaves the caller's transaction usable.
        with transaction.atomic():
            alert = Alert.objects.create(
                kind=kind,
                key=key,
                recipients=to,
                subject=subject[:300],
                body_text=text,
                body_html=html,
            )
    except IntegrityError:
        return None
    _hurry_after_commit(alert.pk)
    return alert


@dataclass(frozen=True)
class Email:
    """One email for ``queue_many``: the arguments of ``queue``."""

    kind: str
    key: str
    recipients: Iterable[str]
    context: dict | Callable[[], dict]


def queue_many(emails_: Iterable[Email]) -> list[Alert]:
    """``queue`` for many emails at once, with the same guarantees (once ever per key,
    in the caller's transaction, delivery hurried after commit), in a fixed number of
    queries per ``BATCH_SIZE`` emails: one to find the keys already queued, one
    ``bulk_create``. Call it inside the transaction that makes the emails due. Their
    contexts must be built from rows already read (a template that reads the database
    costs a query per email). If another transaction queued one of the keys meanwhile,
    the bulk insert fails as a whole on the key's unique constraint (in a savepoint, so
    the caller's transaction stays usable) and that batch is inserted one by one, each
    in its own savepoint, the key taken skipped: nothing is sent twice, nothing dropped.
    Returns the new alerts (none for a key already queued or an email with no one to
    send to)."""
    todo: dict[str, tuple[Email, list[str]]] = {}
    for email in emails_:
        to = sorted({address for address in email.recipients if address})
        if to and email.key not in todo:
            todo[email.key] = (email, to)
    done = existing_keys(todo)
    items = [(email, to) for key, (email, to) in todo.items() if key not in done]
    created: list[Alert] = []
    for start in range(0, len(items), BATCH_SIZE):
        chunk = items[start : start + BATCH_SIZE]
        rows = []
        for email, to in chunk:
            ctx = email.context() if callable(email.context) else email.context
            subject, text, html = emails.render(email.kind, ctx)
            rows.append(
                Alert(
                    kind=email.kind,
                    key=email.key,
                    recipients=to,
                    subject=subject[:300],
                    body_text=text,
                    body_html=html,
                )
            )
        try:
            with transaction.atomic():
                batch = Alert.objects.bulk_create(rows)
        except IntegrityError:
            # A concurrent run took a key since existing_keys: one by one, so each key
            # it took is skipped and every other email is still queued.
            batch = []
            for row in rows:
                alert = _create(row)
                if alert is not None:
                    batch.append(alert)
            created.extend(batch)
            continue
        for alert in batch:
            _hurry_after_commit(alert.pk)
        created.extend(batch)
    return created


def _create(row: Alert) -> Alert | None:
    """Insert one rendered alert unless its key is taken (in a savepoint)."""
    row.pk = None  # whatever the failed bulk insert left
    row._state.adding = True
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        return None
    _hurry_after_commit(row.pk)
    return row


# Alerts queued by this thread whose delivery task is not yet sent. One commit may have
# queued many (learning shared with thirty managers): they are sent in one go, and the
# first broker failure stops the rest (each failure costs the request about a second).
_unsent = threading.local()


def _hurry_after_commit(alert_id: int) -> None:
    pending = _unsent.__dict__.setdefault("ids", [])
    pending.append(alert_id)
    transaction.on_commit(_send_delivery_tasks)


def _send_delivery_tasks() -> None:
    """Queue a ``deliver_alert`` task per alert committed so far (on the first call after
    a commit; later calls find nothing left). Ids from a transaction that rolled back
    may be among them: ``deliver`` finds no such pending row and does nothing."""
    from core.tasks import deliver_alert

    ids, _unsent.ids = getattr(_unsent, "ids", []), []
    for position, alert_id in enumerate(ids):
        if not queueing.send_task(deliver_alert, alert_id):
            log.warning("%s more alert(s) left for deliver_due", len(ids) - position - 1)
            return


def existing_keys(keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` are already in the outbox (one query per 1,000 keys), so a
    sweep can skip them without building their emails."""
    keys = list(keys)
    found: set[str] = set()
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        found.update(Alert.objects.filter(key__in=chunk).order_by().values_list("key", flat=True))
    return found


def is_temporary(exc: BaseException) -> bool:
    """Would trying again later plausibly work? 4xx replies and network trouble: yes.
    5xx replies (address rejected, message refused) and anything else: no."""
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPException):
        return False  # e.g. authentication or TLS not supported: a configuration fault
    # Refused connections, resets, timeouts, DNS failures (all OSError subclasses).
    return isinstance(exc, OSError)


def describe(exc: BaseException) -> str:
    """The failure in words an administrator can act on: the server's own reply (code
    and text) where there is one, then the kind of failure."""

    def text(message) -> str:
        return message.decode(errors="replace") if isinstance(message, bytes) else str(message)

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = "; ".join(
            f"{address}: {code} {text(message)}"
            for address, (code, message) in exc.recipients.items()
        )
        said = replies or "every recipient refused"
    elif isinstance(exc, smtplib.SMTPResponseException):
        said = f"{exc.smtp_code} {text(exc.smtp_error)}"
    else:
        said = str(exc) or "no detail"
    return f"{said} ({type(exc).__name__})"[:2000]


def backoff(attempts: int) -> datetime.timedelta:
    """Wait before try number ``attempts + 1``: 1, 2, 4 ... minutes, at most an hour
    (``OUTBOX_BACKOFF_FIRST_SECONDS``, ``OUTBOX_BACKOFF_MAX_SECONDS``)."""
    first = datetime.timedelta(seconds=settings.OUTBOX_BACKOFF_FIRST_SECONDS)
    return min(first * 2 ** max(attempts - 1, 0), backoff_max())


def message_id(alert: Alert) -> str:
    """The Message-ID of ``alert``'s email, the same on every attempt: from the alert's
    id and key, at the domain of ``DEFAULT_FROM_EMAIL`` (or of ``SITE_URL``)."""
    digest = hashlib.sha256(alert.key.encode()).hexdigest()[:16]
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    domain = address.rpartition("@")[2] if "@" in address else ""
    domain = domain or urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<alert-{alert.pk}-{digest}@{domain}>"


def deliver(alert_id: int, *, read: Alert | None = None) -> bool:
    """Send one alert if it is pending and due. Safe to call any number of times, from
    any number of workers at once: only the caller whose conditional UPDATE claims the
    row sends it. Returns True when this call sent it. A Celery soft time limit inside
    the conversation puts the claim back (the alert is sent later) and is re-raised.
    ``read``: the alert as the relay read it in bulk (``deliver_due``), so that only the
    claim and the outcome are queries of their own. What is sent (recipients, subject,
    bodies) never changes once queued; the attempts, which may have, are read again
    after a failure."""
    claimed_at = timezone.now()
    claimable = Alert.objects.filter(
        pk=alert_id, status=Alert.Status.PENDING, next_attempt_at__lte=claimed_at
    )
    claimed = claimable.update(  # history-safe: the outbox keeps no history
        status=Alert.Status.SENDING, claimed_at=claimed_at, attempts=F("attempts") + 1
    )
    if claimed != 1:
        return False
    alert = read if read is not None and read.pk == alert_id else Alert.objects.get(pk=alert_id)
    # Our claim, and only ours: if it was recovered and re-claimed meanwhile, leave it.
    mine = Alert.objects.filter(pk=alert_id, status=Alert.Status.SENDING, claimed_at=claimed_at)

    def accepted() -> None:
        mine.update(status=Alert.Status.SENT, sent_at=timezone.now(), error="")  # history-safe

    try:
        _send(alert, accepted)
    except SoftTimeLimitExceeded:
        # Celery asks the task to stop; nothing is known about the message. Put the
        # claim back for the relay (as recovery would), never fail the alert for it.
        log.warning("Alert %s: stopped by the task's time limit; it will be retried", alert.key)
        mine.update(  # history-safe
            status=Alert.Status.PENDING,
            claimed_at=None,
            next_attempt_at=timezone.now(),
            error="Stopped by the task's time limit before finishing; retrying.",
        )
        raise
    except Exception as exc:
        error = describe(exc)
        if read is not None:
            # Ours since the claim: its attempts as counted by it.
            alert.attempts = Alert.objects.filter(pk=alert_id).values_list("attempts", flat=True)[0]
        if is_temporary(exc) and alert.attempts < max_attempts():
            wait = backoff(alert.attempts)
            log.warning("Alert %s: temporary failure, retry in %s: %s", alert.key, wait, error)
            mine.update(  # history-safe
                status=Alert.Status.PENDING,
                claimed_at=None,
                next_attempt_at=timezone.now() + wait,
                error=error,
            )
        else:
            log.error("Alert %s failed after %s attempt(s): %s", alert.key, alert.attempts, error)
            mine.update(status=Alert.Status.FAILED, error=error)  # history-safe
        return False
    return True


def _send(alert: Alert, accepted: Callable[[], None]) -> None:
    """One SMTP conversation for ``alert``. ``accepted()`` is called once the server has
    taken the message and before the connection is closed: a worker killed while the
    server is slow to answer QUIT must not leave a delivered alert to be sent again."""
    connection = get_connection(timeout=smtp_timeout())
    message = EmailMultiAlternatives(
        alert.subject,
        alert.body_text,
        settings.DEFAULT_FROM_EMAIL,
        alert.recipients,
        connection=connection,
        headers={"Message-ID": message_id(alert)},
    )
    if alert.body_html:
        message.attach_alternative(alert.body_html, "text/html")
    # Opened here, so that send() leaves it open and we can record success before QUIT.
    connection.open()
    try:
        message.send()
        accepted()
    finally:
        try:
            connection.close()
        except Exception as exc:  # noqa: BLE001 - the message was accepted (or not) already
            log.warning("Alert %s: closing the SMTP connection failed: %s", alert.key, exc)


@jobs.register("deliver_due", "Send every alert that is waiting and due (retries included).")
def deliver_due() -> str:
    """Send every pending alert whose time has come: retries after a temporary failure,
    recovered claims, and alerts whose task the broker lost. Safe to run any number of
    times, also at once: each alert is claimed before it is sent.

    Queries: one to read up to ``BATCH_SIZE`` due alerts, then two per alert, which are
    the outbox's guarantees and stay per alert: the claim (a conditional UPDATE just
    before its SMTP conversation; claiming the whole batch at once would leave the last
    alerts claimed for as long as the first ones take to send, past the claim timeout,
    when recovery would put them back and a second relay send them again) and the
    outcome (sent recorded as soon as the server accepted that message, before QUIT)."""
    due = Alert.objects.filter(
        status=Alert.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at", "pk")
    alerts = list(due[:BATCH_SIZE])
    sent = sum(deliver(alert.pk, read=alert) for alert in alerts)
    return f"{sent} of {len(alerts)} due alert(s) sent"


@jobs.register("recover_stuck_claims", "Put back alerts whose sender died mid-send.")
def recover_stuck_claims() -> str:
    """An alert still "sending" ``claim_timeout()`` after it was claimed lost its worker
    (killed, out of memory, redeployed): put it back to pending so ``deliver_due``
    sends it. A dead worker says nothing about the mail server, so this never fails an
    alert, whatever its attempts: those are failed only by an answer from the server.
    Safe to run any number of times."""
    now = timezone.now()
    stuck = Alert.objects.filter(status=Alert.Status.SENDING, claimed_at__lt=now - claim_timeout())
    recovered = stuck.update(  # history-safe
        status=Alert.Status.PENDING,
        claimed_at=None,
        next_attempt_at=now,
        error="The sender stopped before finishing; retrying.",
    )
    return f"{recovered} stuck alert(s) put back"


def retry_failed(alert_ids: Iterable[int] | None = None) -> int:
    """Give failed alerts (these, or all) a fresh set of attempts, e.g. once the mail
    server or an address is fixed; the relay is hurried along after commit. Returns
    how many were put back. The claim in ``deliver`` still sends each at most once."""
    failed = Alert.objects.filter(status=Alert.Status.FAILED)
    if alert_ids is not None:
        failed = failed.filter(pk__in=list(alert_ids))
    count = failed.update(  # history-safe
        status=Alert.Status.PENDING, attempts=0, claimed_at=None, next_attempt_at=timezone.now()
    )
    if count:
        from core.tasks import deliver_due as deliver_due_task

        queueing.after_commit(deliver_due_task)
    return count
