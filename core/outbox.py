"""The alert outbox: every scheduled or event email goes through here, so none is sent
twice and none is lost (ARCHITECTURE.md, "Scheduled jobs and alerts").

1. ``queue()`` creates the ``Alert`` row, unique by key (kind, object, period), and
   renders the email onto it. A second ``queue()`` with the same key does nothing.
2. After commit, a task calls ``deliver()``, which *claims* the row with a conditional
   UPDATE (pending -> sending). Only one caller can win that UPDATE, so two workers, a
   redelivered task or a doubled beat tick cannot send it twice (healthchecks.io's
   ``sendalerts`` does the same).
3. The sender records ``sent_at``, or the error: a temporary SMTP failure goes back to
   pending with an exponential backoff, a permanent one is marked failed.
4. ``deliver_due()`` (every minute) sends whatever is pending and due, so an alert whose
   task the broker lost still goes out; ``recover_stuck_claims()`` returns to pending
   any claim whose worker died mid-send.

Exactly once is what the database guarantees; SMTP itself cannot be part of a
transaction, so a worker killed after the mail server accepted a message but before
``sent_at`` was written would, after recovery, send that one message again. The window
is the few milliseconds between the server's "250 OK" and our UPDATE.

Outbox rows have no simple-history, so the ``QuerySet.update()`` calls below are
marked ``# history-safe`` for the history guard test.
"""

from __future__ import annotations

import datetime
import logging
import smtplib
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core import emails, jobs
from core.models import Alert

log = logging.getLogger(__name__)

# Temporary failures are retried after 1, 2, 4 ... minutes, at most an hour apart;
# after MAX_ATTEMPTS tries (about 4 hours in all) the alert is marked failed.
BACKOFF_FIRST = datetime.timedelta(minutes=1)
BACKOFF_MAX = datetime.timedelta(hours=1)
MAX_ATTEMPTS = 10
# How long one SMTP conversation may take before the socket gives up...
SMTP_TIMEOUT_SECONDS = 60
# ...and how long a claim may stay "sending" before we conclude its worker died. Well
# above the SMTP timeout, so a slow but live sender is never raced by a recovery.
CLAIM_TIMEOUT = datetime.timedelta(minutes=10)
# deliver_due() sends at most this many per run; the rest wait for the next minute.
BATCH_SIZE = 500


def queue(
    kind: str,
    *,
    key: str,
    recipients: Iterable[str],
    context: dict | Callable[[], dict],
    now: bool = False,
) -> Alert | None:
    """Queue one email of ``kind`` (templates ``emails/<kind>-*``) to ``recipients``,
    once ever for ``key``. ``context`` may be a callable, so the work of building it is
    skipped when the key exists. Returns the new ``Alert``, or None when the key was
    already queued (it is never sent twice) or there is no one to send to.

    Delivery is queued as a task after the surrounding transaction commits. ``now=True``
    is for callers that are already a task outside any transaction: the alert is sent
    in this process straight away (``deliver_due`` still catches it if that fails)."""
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
    if now:
        deliver(alert.pk)
    else:
        from core.tasks import deliver_alert

        transaction.on_commit(lambda: deliver_alert.delay(alert.pk))
    return alert


def existing_keys(keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` are already in the outbox (one query per 1,000 keys), so a
    sweep can skip them without building their emails."""
    keys = list(keys)
    found: set[str] = set()
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        found.update(Alert.objects.filter(key__in=chunk).values_list("key", flat=True))
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


def backoff(attempts: int) -> datetime.timedelta:
    """Wait before try number ``attempts + 1``: 1, 2, 4 ... minutes, at most an hour."""
    return min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


def deliver(alert_id: int) -> bool:
    """Send one alert if it is pending and due. Safe to call any number of times, from
    any number of workers at once: only the caller whose conditional UPDATE claims the
    row sends it. Returns True when this call sent it."""
    claimed_at = timezone.now()
    claimable = Alert.objects.filter(
        pk=alert_id, status=Alert.Status.PENDING, next_attempt_at__lte=claimed_at
    )
    claimed = claimable.update(  # history-safe: the outbox keeps no history
        status=Alert.Status.SENDING, claimed_at=claimed_at, attempts=F("attempts") + 1
    )
    if claimed != 1:
        return False
    alert = Alert.objects.get(pk=alert_id)
    # Our claim, and only ours: if it was recovered and re-claimed meanwhile, leave it.
    mine = Alert.objects.filter(pk=alert_id, status=Alert.Status.SENDING, claimed_at=claimed_at)
    try:
        _send(alert)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if is_temporary(exc) and alert.attempts < MAX_ATTEMPTS:
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
    mine.update(status=Alert.Status.SENT, sent_at=timezone.now(), error="")  # history-safe
    return True


def _send(alert: Alert) -> None:
    connection = get_connection(timeout=SMTP_TIMEOUT_SECONDS)
    message = EmailMultiAlternatives(
        alert.subject,
        alert.body_text,
        settings.DEFAULT_FROM_EMAIL,
        alert.recipients,
        connection=connection,
    )
    if alert.body_html:
        message.attach_alternative(alert.body_html, "text/html")
    message.send()


@jobs.register("deliver_due", "Send every alert that is waiting and due (retries included).")
def deliver_due() -> str:
    """Send every pending alert whose time has come: retries after a temporary failure,
    recovered claims, and alerts whose task the broker lost. Safe to run any number of
    times, also at once: each alert is claimed before it is sent."""
    due = Alert.objects.filter(
        status=Alert.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at", "pk")
    ids = list(due.values_list("pk", flat=True)[:BATCH_SIZE])
    sent = sum(deliver(alert_id) for alert_id in ids)
    return f"{sent} of {len(ids)} due alert(s) sent"


@jobs.register("recover_stuck_claims", "Put back alerts whose sender died mid-send.")
def recover_stuck_claims() -> str:
    """An alert still "sending" ``CLAIM_TIMEOUT`` after it was claimed lost its worker
    (killed, out of memory, redeployed): put it back to pending so ``deliver_due`` sends
    it, or mark it failed once it has used all its attempts. Safe to run any number of
    times."""
    now = timezone.now()
    stuck = Alert.objects.filter(status=Alert.Status.SENDING, claimed_at__lt=now - CLAIM_TIMEOUT)
    note = "The sender stopped before finishing; "
    failed = stuck.filter(attempts__gte=MAX_ATTEMPTS).update(  # history-safe
        status=Alert.Status.FAILED, error=note + "no attempts left."
    )
    recovered = stuck.update(  # history-safe
        status=Alert.Status.PENDING, claimed_at=None, next_attempt_at=now, error=note + "retrying."
    )
    return f"{recovered} stuck alert(s) put back, {failed} given up"
