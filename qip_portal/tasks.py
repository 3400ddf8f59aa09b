"""Thin Celery tasks for the closure workflow: they call a sweep."""

from celery import shared_task

from qip_portal import closure


@shared_task
def announce_ready_plans() -> str:
    return closure.announce_ready_plans()
