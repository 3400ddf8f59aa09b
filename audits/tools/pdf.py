"""A submitted audit's PDF: asked for on its page, rendered by a task after commit
(claimed under a row lock with a numbered claim, so of two deliveries one renders and a
run given up on writes nothing), stored privately and streamed only through an access
check. A render whose task was lost or died is recovered by the "recover_stuck_work"
job (``recover_stuck_audit_pdfs``). The HTML fetches nothing: every URL is
refused, and its stylesheet is inline."""

from __future__ import annotations

import datetime
import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from audits.tools.models import Audit, AuditPdf
from core import stuck
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


def _claim(pdf_id: int) -> int | None:
    """Take a queued render for this run of the task; the run's number (the row's
    ``attempts``), or None when there is nothing to do (ready, failed, or another run's).
    Of two deliveries of the task, one renders."""
    with transaction.atomic():
        attempts = (
            AuditPdf.objects.select_for_update()
            .filter(pk=pdf_id, status=AuditPdf.Status.PENDING)
            .values_list("attempts", flat=True)
            .first()
        )
        if attempts is None:
            return None
        AuditPdf.objects.filter(pk=pdf_id).update(  # history-safe: operational fields
            status=AuditPdf.Status.RENDERING, attempts=attempts + 1, progress_at=timezone.now()
        )
    return attempts + 1


def render_audit_pdf(*, pdf_id: int) -> AuditPdf:
    """The render task. Safe to run any number of times: only a queued render is
    claimed; anything else is left as it is. A run the recovery sweep has given up on
    (queued again, or failed) writes nothing: its claim is no longer the row's."""
    attempt = _claim(pdf_id)
    if attempt is None:
        return AuditPdf.objects.get(pk=pdf_id)
    return _render(pdf_id, attempt)


def _render(pdf_id: int, attempt: int) -> AuditPdf:
    """Render for the run numbered ``attempt``, writing only while that is still the
    row's claim."""
    pdf = AuditPdf.objects.select_related("audit").get(pk=pdf_id)
    mine = AuditPdf.objects.filter(pk=pdf_id, status=AuditPdf.Status.RENDERING, attempts=attempt)
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
        mine.update(  # history-safe: operational fields
            status=AuditPdf.Status.FAILED, error=str(exc)[:300], progress_at=timezone.now()
        )
        pdf.refresh_from_db()
        return pdf
    with transaction.atomic():
        pdf = AuditPdf.objects.select_for_update().filter(pk=pdf_id).first()
        if pdf is None or pdf.status != AuditPdf.Status.RENDERING or pdf.attempts != attempt:
            # Given up on while rendering: a newer run (or the person) has it now.
            return pdf or AuditPdf(pk=pdf_id, status=AuditPdf.Status.FAILED)
        old = pdf.file.name if pdf.file else ""
        pdf.file.save("audit.pdf", ContentFile(data), save=False)
        pdf.status = AuditPdf.Status.READY
        pdf.progress_at = timezone.now()
        save_with_history(pdf, by=None, reason="PDF rendered")
    if old:
        pdf.file.storage.delete(old)
    return pdf


def recover_stuck_audit_pdfs(now: datetime.datetime | None = None) -> stuck.Recovered:
    """Audit PDFs whose render task was lost or died, part of the "recover_stuck_work"
    job (qip_portal/recovery.py): queued again until the render has started
    ``MAX_STARTS`` times (rendering is always safe to redo), then failed
    (``AuditPdf.STOPPED``), and the audit's page offers "Try again". A render still
    running within the threshold is never touched, and one given up on writes nothing
    (``render_audit_pdf``). Safe to run any number of times; three queries however many
    PDFs are stuck."""
    from audits.tools.tasks import render_audit_pdf_task

    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            AuditPdf.objects.stuck(stuck.cutoffs(now))
            .select_for_update(skip_locked=True)
            .values_list("pk", "status", "attempts")
        )
        requeue, fail = [], []
        for pk, status, attempts in rows:
            again = status == AuditPdf.Status.PENDING or attempts < stuck.MAX_STARTS
            (requeue if again else fail).append(pk)
        if requeue:
            AuditPdf.objects.filter(pk__in=requeue).update(  # history-safe: operational
                status=AuditPdf.Status.PENDING, progress_at=now
            )
        if fail:
            AuditPdf.objects.filter(pk__in=fail).update(  # history-safe: operational
                status=AuditPdf.Status.FAILED, error=AuditPdf.STOPPED, progress_at=now
            )
    for pk in requeue:
        after_commit(render_audit_pdf_task, pk)
    return stuck.Recovered(requeued=len(requeue), failed=len(fail))
