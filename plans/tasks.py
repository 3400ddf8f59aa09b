from celery import shared_task

from plans import notifications


@shared_task
def send_transition_email(plan_id: int, transition: str, by_id: int, reason: str) -> int:
    return notifications.send_transition_email(
        plan_id=plan_id, transition=transition, by_id=by_id, reason=reason
    )
