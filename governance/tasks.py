"""Thin Celery tasks: load by id, call a service or a notifier."""

from celery import shared_task

from governance import notifications, renders


@shared_task
def render_report_pdf(report_id: int) -> str:
    return renders.render_report_pdf(report_id=report_id).pdf_status


@shared_task
def send_report_submitted_email(report_id: int) -> int:
    return notifications.send_report_submitted(report_id=report_id)


@shared_task
def send_decision_email(decision_id: int) -> int:
    return notifications.send_decision(decision_id=decision_id)
