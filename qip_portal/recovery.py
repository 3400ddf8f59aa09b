"""Background work that can never get stuck (ARCHITECTURE.md: "no page says 'in progress'
for ever"). One scheduled job, ``recover_stuck_work``, finds the spreadsheet imports,
evidence packs, closure-report PDFs, signed records and audit PDFs whose task was lost
(a broker outage, a purged queue) or died (a killed worker, a cut database connection),
and queues each again or marks it failed with a message the person can act on ("Try
again"). What counts as stuck, and why a task still running is never touched, is in
``core/stuck.py``.

It lives in ``qip_portal``, the top layer, because it gathers from every app; each
app's own rows are recovered by that app (``audits.sweeps``, ``audits.tools.pdf``,
``governance.renders``), and the evidence packs, which are this layer's, here.
"""

from __future__ import annotations

import datetime

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from audits.sweeps import recover_stuck_imports
from audits.tools.pdf import recover_stuck_audit_pdfs
from core import jobs, stuck
from core.queueing import after_commit
from governance.renders import recover_stuck_pdfs, recover_stuck_records
from qip_portal.packs.models import EvidencePack

Status = EvidencePack.RenderStatus


def recover_stuck_packs(now: datetime.datetime | None = None) -> stuck.Recovered:
    """Evidence packs whose render task was lost or died: queued again until the render
    has started ``MAX_STARTS`` times (rendering is always safe to redo: a pack whose
    PDF exists is left alone), then failed (``EvidencePack.STOPPED``). A run given up on
    can no longer write its progress or its PDF (``evidence_pack.render_pack``). Safe to
    run any number of times; three queries however many packs are stuck."""
    from qip_portal.packs import tasks as pack_tasks

    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            EvidencePack.objects.stuck(stuck.cutoffs(now))
            .select_for_update(skip_locked=True)
            .values_list("pk", "render_status", "attempts")
        )
        requeue, fail = [], []
        for pk, status, attempts in rows:
            again = status == Status.PENDING or attempts < stuck.MAX_STARTS
            (requeue if again else fail).append(pk)
        # Operational fields, excluded from history.
        if requeue:
            EvidencePack.objects.filter(pk__in=requeue).update(
                render_status=Status.PENDING, progress=0, progress_note="", progress_at=now
            )
        if fail:
            EvidencePack.objects.filter(pk__in=fail).update(
                render_status=Status.FAILED,
                render_error=EvidencePack.STOPPED,
                progress_note="",
                progress_at=now,
            )
    for pk in requeue:
        after_commit(pack_tasks.render_evidence_pack, pk)
    return stuck.Recovered(requeued=len(requeue), failed=len(fail))


@jobs.register(
    "recover_stuck_work",
    "Queue again, or fail, imports, evidence packs and PDFs whose task was lost or died.",
)
def recover_stuck_work(now: datetime.datetime | None = None) -> str:
    """Every kind of stuck background work, once. Safe to run any number of times, and
    at once: each kind's rows are taken with SKIP LOCKED, so two runs never share one. A
    constant number of queries, however many rows are stuck."""
    now = now or timezone.now()
    done = {
        "import(s)": recover_stuck_imports(now),
        "evidence pack(s)": recover_stuck_packs(now),
        "closure report PDF(s)": recover_stuck_pdfs(now),
        "signed record(s)": recover_stuck_records(now),
        "audit PDF(s)": recover_stuck_audit_pdfs(now),
    }
    return "; ".join(
        f"{what}: {result.requeued} queued again, {result.failed} failed"
        for what, result in done.items()
    )


@shared_task(name="qip_portal.recovery.recover_stuck_work")
def recover_stuck_work_task() -> str:
    return recover_stuck_work()
