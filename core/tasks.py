"""Thin Celery tasks for the outbox: they pass ids and call ``core.outbox``. Retries of
temporary SMTP failures are the outbox's (``next_attempt_at`` and ``deliver_due``), not
Celery's, so the backoff survives a broker that loses a task."""

from celery import shared_task

from core import outbox


@shared_task
def deliver_alert(alert_id: int) -> bool:
    return outbox.deliver(alert_id)


@shared_task
def deliver_due() -> str:
    return outbox.deliver_due()


@shared_task
def recover_stuck_claims() -> str:
    return outbox.recover_stuck_claims()
