"""An audit's PDF whose render task was lost or died: queued again by the
"recover_stuck_work" job, then failed with "Try again" on the page, which stops polling
once nothing runs; a run given up on writes nothing."""

import pytest
from django.urls import reverse

from audits.tools import pdf
from audits.tools.models import AuditPdf
from core import stuck
from qip_portal import recovery
from tests.audits.tool_helpers import conduct, safeguarding_tool
from tests.stuck import Broker, fake_broker, later

pytestmark = pytest.mark.django_db

QUEUED, STARTED = 60, 120


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STUCK_QUEUED_SECONDS = QUEUED
    settings.STUCK_STARTED_SECONDS = STARTED


@pytest.fixture
def broker(monkeypatch, settings) -> Broker:
    return fake_broker(monkeypatch, settings)


@pytest.fixture
def audit(quality_lead, manager, oakfield):
    return conduct(safeguarding_tool(quality_lead), location=oakfield, by=manager, answers=[{}, {}])


def _status(client, audit) -> str:
    return client.get(reverse("audits:audit_pdf_status", args=[audit.pk])).content.decode()


def test_a_lost_render_is_queued_again_and_then_rendered(
    client, manager, audit, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = pdf.request_audit_pdf(audit=audit, by=manager)
    broker.lose()
    client.force_login(manager)
    assert "hx-trigger" in _status(client, audit)  # polls while it may still come
    with later(QUEUED + 1):
        with django_capture_on_commit_callbacks(execute=True):
            assert recovery.recover_stuck_work().endswith("audit PDF(s): 1 queued again, 0 failed")
        assert broker.names() == ["audits.tools.tasks.render_audit_pdf_task"]
        broker.run()
        row.refresh_from_db()
        assert row.status == AuditPdf.Status.READY and row.file
        page = _status(client, audit)
        assert "Download the PDF" in page and "hx-trigger" not in page


def test_a_render_that_keeps_dying_is_failed_with_try_again(
    client, manager, audit, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = pdf.request_audit_pdf(audit=audit, by=manager)
    broker.lose()
    for _ in range(stuck.MAX_STARTS):
        assert pdf._claim(row.pk) is not None  # a worker starts it, and dies
        with later(STARTED + 1), django_capture_on_commit_callbacks(execute=True):
            recovery.recover_stuck_work()
        broker.lose()
    row.refresh_from_db()
    assert row.status == AuditPdf.Status.FAILED and row.error == AuditPdf.STOPPED
    client.force_login(manager)
    page = client.get(reverse("audits:audit_detail", args=[audit.pk])).content.decode()
    assert AuditPdf.STOPPED in page and "Try again" in page
    assert "hx-trigger" not in _status(client, audit)  # nothing runs: no polling
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("audits:audit_pdf_request", args=[audit.pk]))
    broker.run()
    row.refresh_from_db()
    assert row.status == AuditPdf.Status.READY


def test_a_run_given_up_on_writes_nothing(
    manager, audit, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = pdf.request_audit_pdf(audit=audit, by=manager)
    first = pdf._claim(row.pk)
    with later(STARTED + 1):
        with django_capture_on_commit_callbacks(execute=True):
            recovery.recover_stuck_work()  # queued again: the first run is given up on
        second = pdf._claim(row.pk)
        assert (first, second) == (1, 2)
        assert pdf._claim(row.pk) is None  # a second delivery renders nothing twice
        # The first run finishes late: it writes nothing over the second's.
        late = pdf._render(row.pk, first)
        assert late.status == AuditPdf.Status.RENDERING and not late.file
        done = pdf._render(row.pk, second)
        assert done.status == AuditPdf.Status.READY and done.file
    # A failure of a run given up on is not recorded either.
    with django_capture_on_commit_callbacks(execute=True):
        pdf.request_audit_pdf(audit=audit, by=manager)
    third = pdf._claim(row.pk)
    assert third == 3
    AuditPdf.objects.filter(pk=row.pk).update(attempts=4)  # as if a newer run had it
    pdf._render(row.pk, third)
    row.refresh_from_db()
    assert row.status == AuditPdf.Status.RENDERING
