"""The signed record: a decided report's PDF carries the decision, the words signed, the
signer, the time, the meeting and the hashes above the frozen report; and the decision
form shows the report's summary so the chair signs what they can see."""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest
from django.urls import reverse
from django.utils.html import escape

from governance import renders, services
from governance.models import ClosureReport
from governance.reports import moment
from qip_portal import closure
from tests import factories
from tests.factories import PASSWORD
from tests.qip_portal.test_evidence_pack import pdf_text

Status = ClosureReport.PdfStatus


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def sign(report, meeting, chair, **kwargs):
    kwargs.setdefault("outcome", "close")
    return closure.sign_decision(
        report=report,
        meeting=meeting,
        by=chair,
        password=PASSWORD,
        otp_token=factories.signing_code(chair),
        **kwargs,
    )


@pytest.fixture
def decided(report_with_pdf, meeting, chair, quality_lead, django_capture_on_commit_callbacks):
    services.put_on_agenda(meeting=meeting, report=report_with_pdf, by=quality_lead)
    with django_capture_on_commit_callbacks(execute=True):
        decision = sign(report_with_pdf, meeting, chair, reasons="Sustained; evidence seen.")
    decision.refresh_from_db()
    return decision


def test_signing_renders_the_signed_record_once(decided):
    assert decided.record_ready
    data = decided.record_pdf.open("rb").read()
    assert data.startswith(b"%PDF")
    assert hashlib.sha256(data).hexdigest() == decided.record_sha256
    # Kept with history, and never rendered again.
    assert decided.history.filter(history_change_reason="Signed record rendered").count() == 1
    renders.render_signed_record(decision_id=decided.pk)
    decided.refresh_from_db()
    assert decided.record_pdf.open("rb").read() == data


def test_the_signed_record_says_what_was_decided_by_whom_when_where_and_the_hashes(
    decided, tmp_path
):
    report = decided.report
    text = pdf_text(decided.record_pdf.open("rb").read(), tmp_path)
    if text is None:
        pytest.skip("needs pdftotext")
    flat = " ".join(text.split())
    for expected in (
        "Decision: Close",
        decided.signature_meaning,
        # Two columns of facts: each checked on its own.
        str(decided.signed_by),
        "chair of Safeguarding",
        f"{moment(decided.signed_at)} (UK time)",
        f"Safeguarding Governance Group, {decided.meeting.held_on:%-d %b %Y}",
        "Sustained; evidence seen.",
        report.plan.title,  # the frozen report follows
    ):
        assert expected in flat, expected
    joined = text.replace("\n", "").replace(" ", "")
    assert decided.snapshot_sha256 in joined
    assert report.pdf_sha256 in joined
    assert "itmatches" in joined


def test_download_pdf_of_a_decided_report_is_the_signed_record(client, decided, chair):
    report = decided.report
    client.force_login(chair)
    signed = client.get(reverse("governance:report_pdf", args=[report.pk]))
    assert signed.status_code == 200
    data = b"".join(signed.streaming_content)
    assert hashlib.sha256(data).hexdigest() == decided.record_sha256 != report.pdf_sha256
    assert "signed-record-" in signed["Content-Disposition"]
    snapshot = client.get(reverse("governance:report_snapshot_pdf", args=[report.pk]))
    assert hashlib.sha256(b"".join(snapshot.streaming_content)).hexdigest() == report.pdf_sha256
    page = client.get(report.get_absolute_url())
    assert b"Download the signed record (PDF)" in page.content
    assert decided.record_sha256.encode() in page.content


def test_before_a_decision_download_pdf_is_the_snapshot(client, report_with_pdf, chair):
    client.force_login(chair)
    response = client.get(reverse("governance:report_pdf", args=[report_with_pdf.pk]))
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == report_with_pdf.pdf_sha256


def test_a_signed_record_that_failed_is_shown_and_can_be_tried_again(
    client,
    report_with_pdf,
    meeting,
    chair,
    quality_lead,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    services.put_on_agenda(meeting=meeting, report=report_with_pdf, by=quality_lead)

    def broken(**kwargs):
        raise RuntimeError("fonts missing")

    # WeasyPrint is the outside world here: the render fails as a missing library would.
    monkeypatch.setattr("governance.pdf.render_pdf", broken)
    with django_capture_on_commit_callbacks(execute=True):
        decision = sign(report_with_pdf, meeting, chair)
    decision.refresh_from_db()
    assert decision.record_status == Status.FAILED and "fonts missing" in decision.record_error
    # The decision stands: the plan is closed whatever happens to the PDF.
    assert decision.report.plan.status == "closed"
    client.force_login(chair)
    page = client.get(report_with_pdf.get_absolute_url())
    assert b"could not be rendered" in page.content
    assert (
        client.get(reverse("governance:report_pdf", args=[report_with_pdf.pk])).status_code == 404
    )
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("governance:report_pdf_retry", args=[report_with_pdf.pk]))
    decision.refresh_from_db()
    assert decision.record_ready


def test_a_lost_signed_record_render_is_queued_again(
    decided_lost, settings, django_capture_on_commit_callbacks
):
    decision = decided_lost
    later = decision.record_progress_at + datetime.timedelta(
        seconds=settings.STUCK_QUEUED_SECONDS + 1
    )
    with django_capture_on_commit_callbacks(execute=True):
        recovered = renders.recover_stuck_records(later)
    assert recovered.requeued == 1
    decision.refresh_from_db()
    assert decision.record_ready  # tasks run in-process in tests


@pytest.fixture
def decided_lost(report_with_pdf, meeting, chair, quality_lead):
    """Signed, but the render task was never run (lost with the broker)."""
    services.put_on_agenda(meeting=meeting, report=report_with_pdf, by=quality_lead)
    decision = sign(report_with_pdf, meeting, chair)  # on-commit work not run
    decision.refresh_from_db()
    assert decision.record_status == Status.PENDING and not decision.record_pdf
    return decision


def test_the_decision_form_shows_the_reports_summary(client, report, meeting, chair, quality_lead):
    services.put_on_agenda(meeting=meeting, report=report, by=quality_lead)
    client.force_login(chair)
    page = client.get(reverse("governance:decide", args=[report.pk])).content.decode()
    content = report.content_json
    indicator = report.plan.indicators.get()
    risk = report.plan.residual_risks.get()
    summary = page[page.index("What you are signing on") : page.index('name="outcome"')]
    frozen = json.loads(content)
    for expected in (
        indicator.name,
        frozen["indicators"][0]["criteria_headline"],
        frozen["indicators"][0]["assurance_headline"],
        risk.description,
        risk.monitoring,
        "Where learning is embedded",
        frozen["sections"]["learning"]["items"][0],
    ):
        assert escape(expected) in summary, expected
