"""Thin Celery tasks: they pass ids and call a sender or a sweep."""

from celery import shared_task

from plans import notifications, sweeps


@shared_task
def send_transition_email(plan_id: int, transition: str, by_id: int, reason: str) -> int:
    return notifications.send_transition_email(
        plan_id=plan_id, transition=transition, by_id=by_id, reason=reason
    )


@shared_task
def overdue_actions() -> str:
    return sweeps.overdue_actions()


@shared_task
def stale_plans() -> str:
    return sweeps.stale_plans()
