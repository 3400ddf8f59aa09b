"""Thin Celery tasks: they call a sweep."""

from celery import shared_task

from plans import sweeps


@shared_task
def overdue_actions() -> str:
    return sweeps.overdue_actions()


@shared_task
def stale_plans() -> str:
    return sweeps.stale_plans()
