"""Thin Celery tasks: they load by id and call a sender or a sweep. Temporary email
failures are retried with backoff; the senders' claims make a retry safe."""

import smtplib

from celery import shared_task
from django.utils import timezone

from learning import notifications, sweeps

_RETRY = {
    "autoretry_for": (smtplib.SMTPException, ConnectionError, TimeoutError),
    "retry_backoff": 30,
    "retry_backoff_max": 30 * 60,
    "max_retries": 8,
}


@shared_task(**_RETRY)
def send_share_email(ack_id: int) -> int:
    return notifications.send_share_email(ack_id=ack_id)


@shared_task(**_RETRY)
def send_acknowledgement_reminder(reminder_id: int) -> int:
    return notifications.send_acknowledgement_reminder(reminder_id=reminder_id)


@shared_task(**_RETRY)
def send_review_due_email(review_id: int) -> int:
    return notifications.send_review_due_email(review_id=review_id)


@shared_task
def remind_outstanding_acknowledgements() -> int:
    return sweeps.remind_outstanding_acknowledgements(timezone.localdate())


@shared_task
def schedule_due_reviews() -> int:
    return sweeps.schedule_due_reviews(timezone.localdate())
