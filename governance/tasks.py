"""Thin Celery tasks: load by id, call a service."""

from celery import shared_task

from governance import renders


@shared_task
def render_report_pdf(report_id: int) -> str:
    return renders.render_report_pdf(report_id=report_id).pdf_status


@shared_task
def render_signed_record(decision_id: int) -> str:
    return renders.render_signed_record(decision_id=decision_id).record_status
