"""The "recover_stuck_work" job (qip_portal/recovery.py): registered, on beat's schedule,
run by ``manage.py run_scheduled_jobs``; every kind of stuck work in every state; safe
to run twice; the same number of queries for 1 stuck row of each kind as for 50."""

from __future__ import annotations

import datetime
import io

import pytest
import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from audits import services as audits
from audits.models import ImportBatch
from audits.services import imports as audit_imports
from audits.tools import pdf as audit_pdfs
from audits.tools.models import AuditPdf
from core import jobs, stuck
from governance import renders
from governance import services as governance
from governance.models import ClosureReport, Decision
from qip_portal import recovery
from qip_portal.celery import app
from qip_portal.packs import evidence_pack
from qip_portal.packs.models import EvidencePack
from tests.qip_portal.test_foundation import PROD_ENV, _django
from tests.stuck import Broker, fake_broker, later

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(monkeypatch, settings) -> Broker:
    return fake_broker(monkeypatch, settings)


QUEUED, STARTED = 60, 120
NOTHING = (
    "import(s): 0 queued again, 0 failed; evidence pack(s): 0 queued again, 0 failed; "
    "closure report PDF(s): 0 queued again, 0 failed; "
    "signed record(s): 0 queued again, 0 failed; audit PDF(s): 0 queued again, 0 failed"
)


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STUCK_QUEUED_SECONDS = QUEUED
    settings.STUCK_STARTED_SECONDS = STARTED
    # 50 stuck renders of one person: more than the per-person limit lets anyone queue.
    settings.PDF_RENDERS_PER_USER = 1000


def test_the_job_is_registered_scheduled_and_run_by_the_command(broker):
    [job] = [job for job in jobs.JOBS if job.name == "recover_stuck_work"]
    entry = settings.CELERY_BEAT_SCHEDULE["recover-stuck-work"]
    assert entry["task"] == recovery.recover_stuck_work_task.name
    assert entry["task"] in app.tasks
    out = io.StringIO()
    call_command("run_scheduled_jobs", only=["recover_stuck_work"], stdout=out)
    assert out.getvalue().startswith(f"recover_stuck_work: {NOTHING} (")
    assert job.run() == NOTHING


def test_a_dead_task_can_never_be_taken_for_a_live_one_by_configuration():
    result = _django({**PROD_ENV, "STUCK_STARTED_SECONDS": "600"}, "check")
    assert result.returncode != 0
    assert "STUCK_STARTED_SECONDS must exceed the task time limit" in result.stderr


# --- Stuck work of every kind, in every state -------------------------------------------

# What a task leaves behind when it was lost or died, and what the sweep does with it.
IMPORT_STATES = [
    ("validating", "never started", "requeued"),
    ("validating", "started", "requeued"),
    ("validating", "started 3 times", "failed"),
    ("committing", "never started", "requeued"),
    ("committing", "started", "failed"),
]
RENDER_STATES = [
    ("never started", "requeued"),
    ("started", "requeued"),
    ("started 3 times", "failed"),
]


def _csv(plan) -> SimpleUploadedFile:
    row = f"Escalated within 24h,{plan.opened_on},1,2"
    return SimpleUploadedFile("r.csv", f"indicator,date,numerator,denominator\n{row}\n".encode())


def _stuck_imports(plan, by, n: int) -> list[tuple[ImportBatch, str]]:
    made = []
    for i in range(n):
        status, how, outcome = IMPORT_STATES[i % len(IMPORT_STATES)]
        batch = audits.start_import(plan=plan, by=by, upload=_csv(plan), kind="csv")
        if status == "committing":
            audits.validate_import(batch_id=batch.pk)
            batch.refresh_from_db()
            audits.queue_import_commit(batch=batch, by=by)
        if how != "never started":
            audit_imports._claim(batch.pk, status)
        if how == "started 3 times":
            # As if two earlier runs had died too (an operational counter, no history).
            ImportBatch.objects.filter(pk=batch.pk).update(attempts=stuck.MAX_STARTS)
        made.append((batch, outcome))
    return made


def _stuck_packs(plan, by, n: int) -> list[tuple[EvidencePack, str]]:
    made = []
    for i in range(n):
        how, outcome = RENDER_STATES[i % len(RENDER_STATES)]
        pack = evidence_pack.request_plan_pack(plan=plan, by=by)
        if how != "never started":
            evidence_pack._claim(pack.pk)
        if how == "started 3 times":
            EvidencePack.objects.filter(pk=pack.pk).update(attempts=stuck.MAX_STARTS)
        made.append((pack, outcome))
    return made


def _stuck_reports(plan, by, n: int) -> list[tuple[ClosureReport, str]]:
    """Submitted reports whose PDF is still to render. Only their PDF matters here, so
    they are written as a submission freezes them (one per plan may await a decision:
    the rest are marked decided)."""
    group = governance.create_group(by=by, name="Quality Board", authority_level=3)
    reports = ClosureReport.objects.bulk_create(
        ClosureReport(
            plan=plan,
            group=group,
            submitted_by=by,
            sign_off_level=3,
            status="awaiting_decision" if i == 0 else "decided",
            content_json="{}",
            content_html="<p>Frozen</p>",
            sha256="0" * 64,
        )
        for i in range(n)
    )
    made = []
    for i, report in enumerate(reports):
        how, outcome = RENDER_STATES[i % len(RENDER_STATES)]
        if how != "never started":
            renders._claim(report.pk)
        if how == "started 3 times":
            ClosureReport.objects.filter(pk=report.pk).update(pdf_attempts=stuck.MAX_STARTS)
        made.append((report, outcome))
    return made


def _submitted_audits(plan, by, n: int) -> list:
    """Submitted audits at the plan's location. Made before any stuck row, as they take
    a while: the stuck rows' clocks then start together."""
    from tests.audits.tool_helpers import conduct, safeguarding_tool

    tool = safeguarding_tool(by)
    return [conduct(tool, location=plan.locations.first(), by=by, answers=[{}]) for _ in range(n)]


def _stuck_audit_pdfs(audits, by) -> list[tuple[AuditPdf, str]]:
    """The audits' PDFs, asked for, whose task was lost or died."""
    made = []
    for i, audit in enumerate(audits):
        how, outcome = RENDER_STATES[i % len(RENDER_STATES)]
        pdf = audit_pdfs.request_audit_pdf(audit=audit, by=by)
        if how != "never started":
            audit_pdfs._claim(pdf.pk)
        if how == "started 3 times":
            AuditPdf.objects.filter(pk=pdf.pk).update(attempts=stuck.MAX_STARTS)
        made.append((pdf, outcome))
    return made


def _outcome(row) -> str:
    """What the sweep did with ``row``: queued it again (its clock restarted, nothing
    started) or failed it."""
    row.refresh_from_db()
    if isinstance(row, ImportBatch):
        status, started, progress_at = row.status, row.started_at is not None, row.progress_at
    elif isinstance(row, EvidencePack):
        status, progress_at = row.render_status, row.progress_at
        started = status == "rendering"
    elif isinstance(row, AuditPdf):
        status, progress_at = row.status, row.progress_at
        started = status == "rendering"
    else:
        status, progress_at = row.pdf_status, row.pdf_progress_at
        started = status == "rendering"
    if status == "failed":
        return "failed"
    if not started and progress_at == timezone.now():
        return "requeued"
    return "untouched"


def _summary(rows) -> str:
    parts = []
    for label, model in (
        ("import(s)", ImportBatch),
        ("evidence pack(s)", EvidencePack),
        ("closure report PDF(s)", ClosureReport),
        ("signed record(s)", Decision),  # recovered in tests/governance/test_signed_record.py
        ("audit PDF(s)", AuditPdf),
    ):
        done = [outcome for row, outcome in rows if isinstance(row, model)]
        parts.append(
            f"{label}: {done.count('requeued')} queued again, {done.count('failed')} failed"
        )
    return "; ".join(parts)


# The whole job, whatever the rows: per kind a savepoint and its release, a SELECT ...
# FOR UPDATE SKIP LOCKED and an UPDATE per outcome, plus the failed batches' history
# rows (one INSERT); for the packs' and reports' UPDATEs, which plans they touch and
# those plans' locations (two queries each, whatever the rows: core.freshness moves
# those plans' cached pages on); and three for the signed records, of which there are
# none here. Measured: 16 with 1 row of each kind, 24 with 50, before the signed records;
# the audit PDFs add five (a savepoint and its release, the locked read, an UPDATE per
# outcome; they are on no cached page): 32 with 50.
QUERIES = 32


@pytest.mark.parametrize("n", [1, 50])
def test_every_state_is_recovered_in_the_same_queries_for_1_or_50_rows(
    n,
    plan,
    quality_lead,
    broker,
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):
    audits = _submitted_audits(plan, quality_lead, n)
    rows = (
        _stuck_imports(plan, quality_lead, n)
        + _stuck_packs(plan, quality_lead, n)
        + _stuck_reports(plan, quality_lead, n)
        + _stuck_audit_pdfs(audits, quality_lead)
    )
    assert len(rows) == 4 * n
    broker.lose()
    with later(STARTED + 1):
        with (
            django_capture_on_commit_callbacks(execute=True),
            django_assert_max_num_queries(QUERIES),
        ):
            summary = recovery.recover_stuck_work()
        assert summary == _summary(rows)
        assert [_outcome(row) for row, _ in rows] == [outcome for _, outcome in rows]
        assert len(broker.sent) == sum(1 for _, outcome in rows if outcome == "requeued")
        for row, outcome in rows:
            if outcome == "failed" and isinstance(row, ImportBatch):
                assert row.failure == ImportBatch.STOPPED
                assert row.history.latest().history_change_reason == "Stopped before finishing"
        # Twice: nothing more to do.
        assert recovery.recover_stuck_work() == NOTHING


def test_started_work_is_given_longer_than_work_that_never_started(plan, quality_lead, broker):
    audits = _submitted_audits(plan, quality_lead, len(RENDER_STATES))
    # Every row is made at one instant (held), so their clocks start together however
    # long making them takes on a loaded machine.
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        rows = (
            _stuck_imports(plan, quality_lead, len(IMPORT_STATES))
            + _stuck_packs(plan, quality_lead, len(RENDER_STATES))
            + _stuck_reports(plan, quality_lead, len(RENDER_STATES))
            + _stuck_audit_pdfs(audits, quality_lead)
        )

    def after(seconds: float):
        return time_machine.travel(start + datetime.timedelta(seconds=seconds), tick=False)

    with after(QUEUED - 1):
        assert recovery.recover_stuck_work() == NOTHING
    with after(QUEUED + 1):
        # Only the lost tasks: what started may still be running.
        summary = recovery.recover_stuck_work()
        hows = [how for _, how, _ in IMPORT_STATES] + [how for how, _ in RENDER_STATES] * 3
        assert [_outcome(row) for row, _ in rows] == [
            "requeued" if how == "never started" else "untouched" for how in hows
        ]
    assert summary == (
        "import(s): 2 queued again, 0 failed; evidence pack(s): 1 queued again, 0 failed; "
        "closure report PDF(s): 1 queued again, 0 failed; "
        "signed record(s): 0 queued again, 0 failed; audit PDF(s): 1 queued again, 0 failed"
    )
    with after(STARTED - 1):
        assert recovery.recover_stuck_work() == NOTHING
