"""Thin Celery tasks: they call a sweep. The sweeps' emails are outbox alerts
(``core/outbox.py``), whose retries are the outbox's."""

from celery import shared_task
from django.utils import timezone

from learning import sweeps


@shared_task
def remind_outstanding_acknowledgements() -> int:
    return sweeps.remind_outstanding_acknowledgements(timezone.localdate())


@shared_task
def schedule_due_reviews() -> int:
    return sweeps.schedule_due_reviews(timezone.localdate())
