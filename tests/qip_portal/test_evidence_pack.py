"""Inspection evidence packs: the plan pack (PDF), its evidence ZIP, and the register
pack. Who may download them, what they hold, that nothing outside is fetched, and that
compiling costs the same number of queries however much evidence a plan has."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import shutil
import socket
import subprocess  # nosec B404 - runs pdftotext on a PDF the test made
import zipfile

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audits import services as audits_services
from core.files import detect_type
from core.models import SecurityEvent
from governance import pdf as governance_pdf
from governance import services as governance
from governance.models import Membership
from learning import services as learning
from plans import services as plan_services
from qip_portal import closure
from qip_portal.packs import evidence_pack
from qip_portal.packs.models import EvidencePack
from tests import factories
from tests.audits.factories import PDF_BYTES, measure, upload
from tests.learning.helpers import write_summary

EVIL = "http://evil.example/pixel.png"


@pytest.fixture(autouse=True)
def _fast(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MFA_REQUIRED_ROLES = set()
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the PDF renderer tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def add_evidence(plan, by, *, title="Supervision notes", name="notes.pdf", content=PDF_BYTES):
    file = upload(name, content, "application/pdf")
    return audits_services.add_evidence(
        plan=plan,
        by=by,
        upload=file,
        file_type=detect_type(file),
        fields={
            "kind": "supervision",
            "title": title,
            "occurred_on": timezone.localdate(),
            "description": "",
        },
    )


def pdf_text(data: bytes, tmp_path) -> str | None:
    """The PDF's text, if poppler's pdftotext is installed."""
    binary = shutil.which("pdftotext")
    if binary is None:
        return None
    path = tmp_path / "pack.pdf"
    path.write_bytes(data)
    return subprocess.run(  # nosec B603 - fixed binary, a file the test wrote
        [binary, "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


@pytest.fixture
def closed_plan(plan, quality_lead, oakfield):
    """The plan through the whole story: results meeting the criteria, evidence, actions
    completed and verified, learning written, closure report submitted, closure signed
    by the chair, learning embedded. Built with the real rules of closure."""
    today = timezone.localdate()
    for days in (120, 90, 60, 1):
        measure(plan, by=quality_lead, on=today - datetime.timedelta(days=days))
    add_evidence(plan, quality_lead, title="Re-audit of safeguarding records")
    factories.add_required_evidence(plan, by=quality_lead)
    factories.complete_actions(plan, by=quality_lead)
    factories.record_residual_risk(plan, by=quality_lead)
    summary = write_summary(plan, by=quality_lead)
    chair = factories.UserFactory(username="chair", role="governance_member")
    group = governance.create_group(
        by=quality_lead, name="Safeguarding Governance Group", authority_level=3
    )
    governance.set_membership(group=group, user=chair, role=Membership.Role.CHAIR, by=quality_lead)
    meeting = governance.schedule_meeting(
        group=group, held_on=today, by=quality_lead, attendees=[chair]
    )
    report = closure.submit_for_closure(plan=plan, by=quality_lead, group=group)
    closure.sign_decision(
        report=report,
        meeting=meeting,
        by=chair,
        otp_token=factories.signing_code(chair),
        password=factories.PASSWORD,
        outcome="close",
        reasons="Sustained for three months; supervision evidence seen.",
    )
    learning.record_embedding(
        summary=summary,
        by=quality_lead,
        kind="induction",
        embedded_on=today,
        who="Training team",
        note="Escalation checklist in day-one induction.",
    )
    plan.refresh_from_db()
    assert plan.status == "closed"
    return plan


# --- Who may -----------------------------------------------------------------------------


def test_an_outsider_gets_404_for_the_pack_the_files_and_the_pdf(
    client, plan, quality_lead, outsider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        pack = evidence_pack.request_plan_pack(plan=plan, by=quality_lead)
    client.force_login(outsider)
    ref = plan.reference
    assert client.get(reverse("packs:plan", args=[ref])).status_code == 404
    assert client.post(reverse("packs:plan", args=[ref])).status_code == 404
    assert client.get(reverse("packs:plan_zip", args=[ref])).status_code == 404
    assert client.get(reverse("packs:status", args=[pack.pk])).status_code == 404
    assert client.get(reverse("packs:pdf", args=[pack.pk])).status_code == 404
    assert EvidencePack.objects.count() == 1
    assert not SecurityEvent.objects.filter(kind="export").exists()


def test_the_register_pack_is_for_quality_leads_and_administrators(
    client, manager, viewer, governance_member, quality_lead, administrator
):
    url = reverse("packs:register")
    for user in (manager, viewer, governance_member):
        client.force_login(user)
        assert client.get(url).status_code == 404, user.role
        assert client.post(url, {}).status_code == 404, user.role
    for user in (quality_lead, administrator):
        client.force_login(user)
        assert client.get(url).status_code == 200, user.role


def test_a_register_pack_pdf_is_404_for_a_manager(
    client, quality_lead, manager, django_capture_on_commit_callbacks
):
    today = timezone.localdate()
    with django_capture_on_commit_callbacks(execute=True):
        pack = evidence_pack.request_register_pack(
            by=quality_lead, date_from=today, date_to=today, location=None
        )
    client.force_login(manager)
    assert client.get(reverse("packs:pdf", args=[pack.pk])).status_code == 404


# --- The plan pack -----------------------------------------------------------------------


def test_a_viewer_can_prepare_and_download_the_pack(
    client, plan, viewer, tmp_path, django_capture_on_commit_callbacks
):
    client.force_login(viewer)
    page = reverse("packs:plan", args=[plan.reference])
    assert client.get(page).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page)
    assert response.status_code == 302
    pack = EvidencePack.objects.get(plan=plan)
    assert pack.is_ready and pack.page_count >= 1

    status = client.get(reverse("packs:status", args=[pack.pk]))
    assert b"Download the PDF" in status.content and b"hx-get" not in status.content
    response = client.get(reverse("packs:pdf", args=[pack.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    data = b"".join(response.streaming_content)
    assert data.startswith(b"%PDF")
    assert hashlib.sha256(data).hexdigest() == pack.pdf_sha256
    text = pdf_text(data, tmp_path)
    if text is not None:
        assert plan.reference in text and plan.title in text
    event = SecurityEvent.objects.get(kind="export")
    assert event.user == viewer and plan.reference in event.detail


def test_the_plan_page_links_to_the_pack(client, plan, viewer):
    client.force_login(viewer)
    response = client.get(plan.get_absolute_url())
    assert reverse("packs:plan", args=[plan.reference]).encode() in response.content


def test_the_pack_tells_the_story_from_trigger_to_embedded_learning(closed_plan, tmp_path):
    html = evidence_pack.render_plan_pack_html(evidence_pack.compile_plan_pack(closed_plan))
    report = closed_plan.closure_reports.get()
    for expected in (
        closed_plan.reference,
        "Missed escalation.",  # the trigger
        "Every concern escalated within 24 hours.",  # success in practice
        "Criteria verdict",
        "<svg",  # the chart, from audits.charts
        "Re-audit of safeguarding records",  # evidence
        "Refresher training",  # an action, completed and verified
        "Verified effective",
        report.sha256,  # the frozen snapshot's hash, recomputed and matching
        "it matches",
        "I confirm closure of",  # the signature's meaning
        "Chair",
        "Escalate every concern the same day.",  # learning
        "Induction",
        "Opened the plan",  # the timeline
        "Signed the decision",
    ):
        assert expected in html, expected
    rendered = evidence_pack.render_pdf(html)
    text = pdf_text(rendered.data, tmp_path)
    if text is not None:
        assert closed_plan.reference in text and report.sha256 in text.replace("\n", "")


def test_a_failed_render_is_recorded_and_shown(
    client, plan, viewer, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(html, **kwargs):
        raise RuntimeError("out of paper")

    monkeypatch.setattr(evidence_pack, "render_pdf", broken)
    client.force_login(viewer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("packs:plan", args=[plan.reference]))
    pack = EvidencePack.objects.get(plan=plan)
    assert pack.is_failed and "out of paper" in pack.render_error
    status = client.get(reverse("packs:status", args=[pack.pk]))
    assert b"could not be rendered" in status.content
    assert client.get(reverse("packs:pdf", args=[pack.pk])).status_code == 404


def test_rendering_twice_keeps_the_first_pdf(
    plan, quality_lead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        pack = evidence_pack.request_plan_pack(plan=plan, by=quality_lead)
    pack.refresh_from_db()
    first = pack.pdf_sha256
    again = evidence_pack.render_pack(pack_id=pack.pk)
    assert again.pdf_sha256 == first and again.pdf.name == pack.pdf.name


# --- Nothing outside is fetched ----------------------------------------------------------


def test_user_text_with_urls_is_escaped_and_nothing_outside_is_fetched(
    plan, quality_lead, no_network, monkeypatch
):
    hostile = f'<img src="{EVIL}"><link rel="stylesheet" href="{EVIL}">'
    plan_services.add_trigger(
        plan=plan,
        by=quality_lead,
        fields={
            "kind": "incident",
            "reference": "INC-1",
            "occurred_on": plan.opened_on,
            "description": hostile,
        },
    )
    add_evidence(plan, quality_lead, title=hostile)
    fetched: list[str] = []
    original = governance_pdf.StaticOnlyFetcher.fetch

    def spy(self, url, headers=None):
        fetched.append(url)
        return original(self, url, headers)

    monkeypatch.setattr(governance_pdf.StaticOnlyFetcher, "fetch", spy)
    html = evidence_pack.render_plan_pack_html(evidence_pack.compile_plan_pack(plan))
    assert f'src="{EVIL}"' not in html and "&lt;img src=&quot;http://evil.example" in html
    pack = EvidencePack.objects.create(kind="plan", plan=plan, requested_by=quality_lead)
    pack = evidence_pack.render_pack(pack_id=pack.pk)
    assert pack.is_ready
    # Only governance's print stylesheet was asked for, and it was served from disk.
    assert fetched == [governance_pdf.STATIC_PREFIX + "report-print.css"]


def test_the_renderer_refuses_outside_urls_even_in_raw_html(no_network):
    fetcher = governance_pdf.StaticOnlyFetcher()
    html = f'<html><body><p>Pack</p><img src="{EVIL}"><img src="file:///etc/passwd"></body></html>'
    rendered = evidence_pack.render_pdf(html, fetcher=fetcher)
    assert rendered.data.startswith(b"%PDF")
    assert EVIL in fetcher.refused and "file:///etc/passwd" in fetcher.refused


# --- The evidence ZIP --------------------------------------------------------------------


def test_the_zip_holds_the_evidence_file_and_a_manifest_with_its_hash(
    client, plan, quality_lead, viewer
):
    content = PDF_BYTES + b"% supervision notes\n"
    add_evidence(
        plan, quality_lead, name="../../Supervision notes, March (v2).pdf", content=content
    )
    add_evidence(plan, quality_lead, title="Second file", name="other.pdf")
    client.force_login(viewer)
    response = client.get(reverse("packs:plan_zip", args=[plan.reference]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert names[-1] == "manifest.csv" and len(names) == 3
    first = names[0]
    assert first.startswith("evidence/01-") and first.endswith("supervision-notes-march-v2.pdf")
    assert all(".." not in n and " " not in n and not n.startswith("/") for n in names)
    assert archive.read(first) == content
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [r["file"] for r in rows] == names[:-1]
    assert rows[0]["sha256"] == hashlib.sha256(content).hexdigest()
    assert rows[0]["bytes"] == str(len(content))
    event = SecurityEvent.objects.get(kind="export")
    assert event.user == viewer and "ZIP" in event.detail and plan.reference in event.detail


def test_the_pdf_lists_the_same_hash_as_the_manifest(plan, quality_lead):
    add_evidence(plan, quality_lead, title="Audit sheet")
    html = evidence_pack.render_plan_pack_html(evidence_pack.compile_plan_pack(plan))
    assert hashlib.sha256(PDF_BYTES).hexdigest() in html


def test_a_file_missing_from_storage_is_named_not_hidden(plan, quality_lead, viewer, client):
    item = add_evidence(plan, quality_lead)
    item.file.storage.delete(item.file.name)
    html = evidence_pack.render_plan_pack_html(evidence_pack.compile_plan_pack(plan))
    assert "missing from storage" in html
    client.force_login(viewer)
    response = client.get(reverse("packs:plan_zip", args=[plan.reference]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["manifest.csv"]
    assert "missing from storage" in archive.read("manifest.csv").decode()


# --- Queries -----------------------------------------------------------------------------


def _queries(func) -> int:
    with CaptureQueriesContext(connection) as ctx:
        func()
    return len(ctx.captured_queries)


def test_compiling_a_pack_runs_the_same_queries_for_1_and_20_evidence_items(quality_lead, oakfield):
    small = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Small")
    large = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Large")
    add_evidence(small, quality_lead)
    for n in range(20):
        add_evidence(large, quality_lead, title=f"Item {n}", name=f"item-{n}.pdf")
    for plan in (small, large):
        write_summary(plan, by=quality_lead)

    def compile_and_render(plan):
        return lambda: evidence_pack.render_plan_pack_html(evidence_pack.compile_plan_pack(plan))

    def zip_all(plan):
        return lambda: b"".join(evidence_pack.stream_zip(plan, evidence_pack.plan_files(plan)))

    _queries(compile_and_render(small))  # warm caches (content types, sessions)
    assert _queries(compile_and_render(small)) == _queries(compile_and_render(large))
    assert _queries(zip_all(small)) == _queries(zip_all(large)) == 2


# --- The register pack ---------------------------------------------------------------------


def test_the_register_pack_filters_by_date_and_location(
    client, quality_lead, oakfield, riverside, tmp_path, django_capture_on_commit_callbacks
):
    today = timezone.localdate()
    long_ago = today - datetime.timedelta(days=200)
    with time_machine.travel(timezone.now() - datetime.timedelta(days=200), tick=False):
        old = factories.live_plan(
            owner=quality_lead, locations=[oakfield], title="Opened long ago", opened_on=long_ago
        )
    recent = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        title="Opened recently",
        opened_on=today - datetime.timedelta(days=10),
    )
    elsewhere = factories.live_plan(
        owner=quality_lead,
        locations=[riverside],
        title="Opened elsewhere",
        opened_on=today - datetime.timedelta(days=10),
    )
    with time_machine.travel(timezone.now() - datetime.timedelta(days=150), tick=False):
        plan_services.perform_transition(
            plan=old, name="withdraw", by=quality_lead, reason="Merged into the falls plan"
        )
    plan_services.perform_transition(
        plan=recent, name="withdraw", by=quality_lead, reason="Duplicate of another plan"
    )
    plan_services.perform_transition(
        plan=elsewhere, name="withdraw", by=quality_lead, reason="Riverside: not needed"
    )

    start = today - datetime.timedelta(days=30)
    pack = evidence_pack.compile_register_pack(date_from=start, date_to=today, location=oakfield)
    assert [p.reference for p in pack["opened"]] == [recent.reference]
    assert [r["plan"].reference for r in pack["withdrawn"]] == [recent.reference]
    assert "Duplicate of another plan" in pack["withdrawn"][0]["reason"]

    everywhere = evidence_pack.compile_register_pack(date_from=start, date_to=today)
    assert {p.reference for p in everywhere["opened"]} == {recent.reference, elsewhere.reference}
    assert {r["plan"].reference for r in everywhere["withdrawn"]} == {
        recent.reference,
        elsewhere.reference,
    }
    earlier = evidence_pack.compile_register_pack(
        date_from=long_ago, date_to=today - datetime.timedelta(days=100), location=oakfield
    )
    assert [p.reference for p in earlier["opened"]] == [old.reference]
    assert [r["plan"].reference for r in earlier["withdrawn"]] == [old.reference]

    client.force_login(quality_lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("packs:register"),
            {"date_from": start.isoformat(), "date_to": today.isoformat(), "location": oakfield.pk},
        )
    assert response.status_code == 302
    made = EvidencePack.objects.get(kind="register")
    assert made.is_ready and made.location == oakfield
    data = b"".join(client.get(reverse("packs:pdf", args=[made.pk])).streaming_content)
    assert data.startswith(b"%PDF")
    text = pdf_text(data, tmp_path)
    if text is not None:
        assert recent.reference in text and elsewhere.reference not in text
        assert old.reference not in text


def test_the_register_pack_names_the_signed_decision_behind_a_closure(closed_plan):
    today = timezone.localdate()
    pack = evidence_pack.compile_register_pack(date_from=today, date_to=today)
    [row] = pack["closed"]
    assert row["plan"] == closed_plan
    assert row["decision"].reasons.startswith("Sustained for three months")
    html = evidence_pack.render_register_pack_html(pack)
    assert row["decision"].snapshot_sha256 in html


def test_the_register_form_refuses_an_end_before_the_start(client, quality_lead):
    client.force_login(quality_lead)
    response = client.post(
        reverse("packs:register"), {"date_from": "2026-03-01", "date_to": "2026-02-01"}
    )
    assert response.status_code == 200
    assert b"on or after the start date" in response.content
    assert not EvidencePack.objects.exists()
