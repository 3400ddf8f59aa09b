"""A closure report's PDF as background work (core/stuck.py): the render task's claim,
"Try again", and the recovery of renders whose task was lost or died.

The PDF is rendered once, from the frozen HTML, by ``services.render_snapshot_pdf``,
which never replaces a PDF that exists: rendering again is always safe, so a stuck
render is simply queued again (up to ``stuck.MAX_STARTS`` starts), then failed.
"""

from __future__ import annotations

import datetime

from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from core import stuck
from core.queueing import after_commit
from governance import services
from governance.models import ClosureReport
from plans.models import User
from plans.services import _save

Status = ClosureReport.PdfStatus


def _claim(report_id: int) -> bool:
    """Take a waiting render for this run of the task (a conditional UPDATE: of two
    deliveries of the task, one renders)."""
    # Operational fields, excluded from history: a plain UPDATE is right here.
    return bool(
        ClosureReport.objects.filter(pk=report_id, pdf_status=Status.PENDING, pdf="").update(
            pdf_status=Status.RENDERING,
            pdf_attempts=F("pdf_attempts") + 1,
            pdf_progress_at=timezone.now(),
        )
    )


def render_report_pdf(*, report_id: int) -> ClosureReport:
    """The render task: claim a waiting render, then render it. Safe to run any number
    of times: a render that is not waiting (ready, failed, or another run's) is left."""
    if not _claim(report_id):
        return ClosureReport.objects.get(pk=report_id)
    return services.render_snapshot_pdf(report_id=report_id)


def pdfs_waiting_for(user: User) -> int:
    """How many closure-report PDFs ``user`` asked for are queued or rendering (not
    stuck). Who asked is who last saved the report: the two steps that queue a render,
    submission and "Try again", both save it with history. Reads only the reports at
    work (a partial index), however many there are in all."""
    latest_by = (
        ClosureReport.history.filter(id=OuterRef("pk"))
        .order_by("-history_date", "-history_id")
        .values("history_user")[:1]
    )
    return (
        ClosureReport.objects.pdf_running(stuck.cutoffs())
        .annotate(asked_by=Subquery(latest_by))
        .filter(asked_by=user.pk)
        .count()
    )


def _queue(report_id: int) -> None:
    from governance import tasks

    after_commit(tasks.render_report_pdf, report_id)


@transaction.atomic
def retry_report_pdf(*, report: ClosureReport, by: User) -> bool:
    """Render a failed or stuck PDF again (from the same frozen HTML). Returns False,
    changing nothing, when the PDF is ready or still rendering; raises
    ``stuck.TooMuchWaiting``, changing nothing, when ``by`` already has as many PDFs
    waiting as one person may (``settings.PDF_RENDERS_PER_USER``). The caller has
    checked that ``by`` may read the report."""
    locked = ClosureReport.objects.select_for_update(skip_locked=True).filter(pk=report.pk).first()
    if locked is None or not locked.pdf_can_retry:
        return False
    # The person's row is locked until commit: two retries at once cannot both take the
    # last place.
    User.objects.select_for_update().filter(pk=by.pk).first()
    stuck.refuse_beyond_limit(pdfs_waiting_for(by), what="closure-report PDF")
    locked.pdf_status = Status.PENDING
    locked.pdf_attempts = 0
    locked.pdf_error = ""
    locked.pdf_progress_at = timezone.now()
    _save(locked, by=by, reason="PDF tried again")
    _queue(locked.pk)
    return True


def recover_stuck_pdfs(now: datetime.datetime | None = None) -> stuck.Recovered:
    """Closure-report PDFs whose render task was lost or died, part of the
    "recover_stuck_work" job (qip_portal/recovery.py): queued again until the render
    has started ``MAX_STARTS`` times, then failed (``ClosureReport.PDF_STOPPED``), and
    the page offers "Try again". Safe to run any number of times; three queries however
    many reports are stuck. A render still running within the threshold is never
    touched, and one given up on can only save the same frozen PDF, once."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            ClosureReport.objects.pdf_stuck(stuck.cutoffs(now))
            .select_for_update(skip_locked=True)
            .values_list("pk", "pdf_status", "pdf_attempts")
        )
        requeue, fail = [], []
        for pk, status, attempts in rows:
            again = status == Status.PENDING or attempts < stuck.MAX_STARTS
            (requeue if again else fail).append(pk)
        # Operational fields, excluded from history.
        if requeue:
            ClosureReport.objects.filter(pk__in=requeue).update(
                pdf_status=Status.PENDING, pdf_progress_at=now
            )
        if fail:
            ClosureReport.objects.filter(pk__in=fail).update(
                pdf_status=Status.FAILED, pdf_error=ClosureReport.PDF_STOPPED, pdf_progress_at=now
            )
    for pk in requeue:
        _queue(pk)
    return stuck.Recovered(requeued=len(requeue), failed=len(fail))
