"""A closure report's PDF as background work (core/stuck.py): the render task's claim,
"Try again", and the recovery of renders whose task was lost or died.

The PDF is rendered once, from the frozen HTML, by ``services.render_snapshot_pdf``,
which never replaces a PDF that exists: rendering again is always safe, so a stuck
render is simply queued again (up to ``stuck.MAX_STARTS`` starts), then failed.
"""

from __future__ import annotations

import datetime
import hashlib
import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from core import stuck
from core.queueing import after_commit
from governance import services
from governance.models import ClosureReport, Decision
from plans.models import User
from plans.services import _save

Status = ClosureReport.PdfStatus
logger = logging.getLogger(__name__)


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


# --- The signed record of a decision ----------------------------------------------------


def _claim_record(decision_id: int) -> int | None:
    """Take a waiting signed-record render for this run; its claim number, or None."""
    with transaction.atomic():
        attempts = (
            Decision.objects.select_for_update()
            .filter(pk=decision_id, record_status=Status.PENDING, record_pdf="")
            .values_list("record_attempts", flat=True)
            .first()
        )
        if attempts is None:
            return None
        # Operational fields, excluded from history: a plain UPDATE is right here.
        Decision.objects.filter(pk=decision_id).update(
            record_status=Status.RENDERING,
            record_attempts=attempts + 1,
            record_progress_at=timezone.now(),
        )
    return attempts + 1


def render_signed_record(*, decision_id: int) -> Decision:
    """The render task of a decision's signed record: claim it, render it, save it once.
    Safe to run any number of times: a record that is not waiting (ready, failed, or
    another run's) is left, and a run given up on cannot save over a newer one. A
    failure is recorded (the report page offers "Try again") and logged, not raised."""
    attempt = _claim_record(decision_id)
    if attempt is None:
        return Decision.objects.get(pk=decision_id)
    mine = Decision.objects.filter(
        pk=decision_id, record_attempts=attempt, record_status=Status.RENDERING
    )
    try:
        data = services.render_signed_record_pdf(decision_id=decision_id)
    except Exception as exc:
        logger.exception("Signed record of decision %s could not be rendered", decision_id)
        mine.update(record_status=Status.FAILED, record_error=str(exc)[:300])
        return Decision.objects.get(pk=decision_id)
    with transaction.atomic():
        decision = Decision.objects.select_for_update().get(pk=decision_id)
        if (
            decision.record_pdf
            or decision.record_attempts != attempt
            or decision.record_status != Status.RENDERING
        ):
            return decision  # another run finished first, or this one was given up on
        decision.record_pdf.save(f"signed-record-{decision.pk}.pdf", ContentFile(data), save=False)
        decision.record_sha256 = hashlib.sha256(data).hexdigest()
        decision.record_status = Status.READY
        decision.record_error = ""
        decision.record_progress_at = timezone.now()
        _save(decision, by=None, reason="Signed record rendered")
    return decision


def queue_signed_record(decision_id: int) -> None:
    from governance import tasks

    after_commit(tasks.render_signed_record, decision_id)


def records_waiting_for(user: User) -> int:
    """How many signed records ``user`` asked to render again are queued or rendering
    (not stuck). Who asked is who last saved the decision ("Try again" saves it)."""
    limits = stuck.cutoffs()
    latest_by = (
        Decision.history.filter(id=OuterRef("pk"))
        .order_by("-history_date", "-history_id")
        .values("history_user")[:1]
    )
    return (
        Decision.objects.filter(
            Q(record_status=Status.PENDING, record_progress_at__gte=limits.queued)
            | Q(record_status=Status.RENDERING, record_progress_at__gte=limits.started)
        )
        .annotate(asked_by=Subquery(latest_by))
        .filter(asked_by=user.pk)
        .count()
    )


@transaction.atomic
def retry_signed_record(*, decision: Decision, by: User) -> bool:
    """Render a failed or stuck signed record again. Returns False, changing nothing,
    when it is ready or still rendering; raises ``stuck.TooMuchWaiting`` when ``by``
    has as many renders waiting as one person may. The caller has checked that ``by``
    may read the report."""
    locked = Decision.objects.select_for_update(skip_locked=True).filter(pk=decision.pk).first()
    if locked is None or not locked.record_can_retry:
        return False
    User.objects.select_for_update().filter(pk=by.pk).first()
    stuck.refuse_beyond_limit(records_waiting_for(by), what="signed-record PDF")
    locked.record_status = Status.PENDING
    locked.record_attempts = 0
    locked.record_error = ""
    locked.record_progress_at = timezone.now()
    _save(locked, by=by, reason="Signed record tried again")
    queue_signed_record(locked.pk)
    return True


def recover_stuck_records(now: datetime.datetime | None = None) -> stuck.Recovered:
    """Signed records whose render task was lost or died, part of "recover_stuck_work":
    queued again until the render has started ``MAX_STARTS`` times, then failed. Safe
    to run any number of times; three queries however many are stuck."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            Decision.objects.record_stuck(stuck.cutoffs(now))
            .select_for_update(skip_locked=True)
            .values_list("pk", "record_status", "record_attempts")
        )
        requeue, fail = [], []
        for pk, status, attempts in rows:
            again = status == Status.PENDING or attempts < stuck.MAX_STARTS
            (requeue if again else fail).append(pk)
        if requeue:
            Decision.objects.filter(pk__in=requeue).update(
                record_status=Status.PENDING, record_progress_at=now
            )
        if fail:
            Decision.objects.filter(pk__in=fail).update(
                record_status=Status.FAILED,
                record_error=ClosureReport.PDF_STOPPED,
                record_progress_at=now,
            )
    for pk in requeue:
        queue_signed_record(pk)
    return stuck.Recovered(requeued=len(requeue), failed=len(fail))
