"""A submitted audit's PDF: asked for on its page, rendered by a task after commit
(claimed with a conditional UPDATE, so of two deliveries one renders), stored privately
and streamed only through an access check. The HTML fetches nothing: every URL is
refused, and its stylesheet is inline."""

from __future__ import annotations

import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from audits.tools.models import Audit, AuditPdf
from core.history import save_with_history
from core.queueing import after_commit
from plans.models import User

logger = logging.getLogger(__name__)


class PdfRefused(Exception):
    pass


@transaction.atomic
def request_audit_pdf(*, audit: Audit, by: User) -> AuditPdf:
    """Queue a render of ``audit``'s PDF (again, if one exists: the audit may have been
    corrected). Refused while a render is running; a stuck one may be asked again."""
    if not audit.is_submitted:
        raise PdfRefused("Submit the audit first: its PDF shows the submitted answers.")
    pdf = AuditPdf.objects.select_for_update().filter(audit=audit).first()
    if pdf is not None and pdf.is_running:
        raise PdfRefused("The PDF is already being prepared.")
    pdf = pdf or AuditPdf(audit=audit, requested_by=by)
    pdf.status = AuditPdf.Status.PENDING
    pdf.requested_by = by
    pdf.requested_at = pdf.progress_at = timezone.now()
    pdf.error = ""
    save_with_history(pdf, by=by, reason="PDF requested")
    from audits.tools.tasks import render_audit_pdf_task

    after_commit(render_audit_pdf_task, pdf.pk)
    return pdf


def _refuse_all():
    """A WeasyPrint URL fetcher that fetches nothing."""
    from weasyprint.urls import URLFetcher

    class RefuseAll(URLFetcher):
        def fetch(self, url, headers=None):
            logger.warning("Audit PDF: refused to fetch %s", str(url)[:200])
            raise ValueError(f"Refused to fetch {str(url)[:200]}")

    return RefuseAll(allowed_protocols=())


def render_audit_pdf(*, pdf_id: int) -> AuditPdf:
    """The render task. Safe to run any number of times: only a queued render is
    claimed; anything else is left as it is."""
    waiting = AuditPdf.objects.filter(pk=pdf_id, status=AuditPdf.Status.PENDING)
    claimed = waiting.update(  # history-safe: operational fields, excluded from history
        status=AuditPdf.Status.RENDERING,
        attempts=F("attempts") + 1,
        progress_at=timezone.now(),
    )
    pdf = AuditPdf.objects.select_related("audit").get(pk=pdf_id)
    if not claimed:
        return pdf
    try:
        from weasyprint import HTML  # slow to import: only here

        from audits.tools.views import _report_context

        context = _report_context(pdf.audit, None)
        html = render_to_string("audits/tools/audit_pdf.html", context)
        data = HTML(
            string=html, base_url="https://qip-portal.invalid/", url_fetcher=_refuse_all()
        ).write_pdf()
    except Exception as exc:  # noqa: BLE001 - any failure is the person's to see and retry
        logger.exception("Audit PDF %s failed", pdf_id)
        AuditPdf.objects.filter(pk=pdf_id).update(  # history-safe: operational fields
            status=AuditPdf.Status.FAILED, error=str(exc)[:300], progress_at=timezone.now()
        )
        pdf.refresh_from_db()
        return pdf
    old = pdf.file.name if pdf.file else ""
    pdf.file.save("audit.pdf", ContentFile(data), save=False)
    pdf.status = AuditPdf.Status.READY
    pdf.progress_at = timezone.now()
    save_with_history(pdf, by=None, reason="PDF rendered")
    if old:
        pdf.file.storage.delete(old)
    return pdf
