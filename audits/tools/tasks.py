"""Thin Celery task for audit tools (imported by ``audits/tasks.py``)."""

from celery import shared_task


@shared_task
def render_audit_pdf_task(pdf_id: int) -> str:
    from audits.tools.pdf import render_audit_pdf

    return render_audit_pdf(pdf_id=pdf_id).status
