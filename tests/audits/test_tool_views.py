"""Audit tool pages through the client: conducting, saving answers as given, resuming,
submitting once, access, constant queries and tool spreadsheets."""

import io

import pytest
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from audits.tools import services
from audits.tools.models import Answer, Audit, AuditTool, ToolImport
from tests.audits.factories import PDF_BYTES, office_zip, upload
from tests.audits.tool_helpers import conduct, safeguarding_tool

pytestmark = pytest.mark.django_db


@pytest.fixture
def tool(quality_lead):
    return safeguarding_tool(quality_lead)


def test_a_manager_starts_an_audit_at_their_location(client, manager, oakfield, riverside, tool):
    client.force_login(manager)
    page = client.get(reverse("audits:audit_start"), {"tool": tool.pk})
    assert "Never record a resident's name" in page.content.decode()
    url = reverse("audits:audit_start")
    data = {"tool": tool.pk, "audited_on": "01/01/2026", "sample_size": 10}
    refused = client.post(url, {**data, "location": riverside.pk})
    assert refused.status_code == 200 and not Audit.objects.exists()  # not theirs
    for size in (0, 201, "x"):
        response = client.post(url, {**data, "location": oakfield.pk, "sample_size": size})
        assert response.status_code == 200 and not Audit.objects.exists()
    assert (
        "between 1 and 200"
        in client.post(url, {**data, "location": oakfield.pk, "sample_size": 0}).content.decode()
    )
    response = client.post(url, {**data, "location": oakfield.pk})
    audit = Audit.objects.get()
    assert response["Location"] == reverse("audits:audit_record", args=[audit.pk, 1])
    assert audit.records.count() == 10 and audit.version == services.current_version(tool)


def test_each_answer_is_saved_as_given_and_the_audit_resumes_where_it_stopped(
    client, manager, oakfield, tool
):
    audit = conduct(tool, location=oakfield, by=manager, answers=[{}, {}, {}], submit=False)
    Answer.objects.filter(record__position__gte=2).delete()
    audit.records.filter(position__gte=2).update(identifier="")
    client.force_login(manager)
    assert client.get(reverse("audits:audit_detail", args=[audit.pk]))["Location"] == reverse(
        "audits:audit_record", args=[audit.pk, 2]
    )
    answer_url = reverse("audits:audit_answer", args=[audit.pk, 2])
    q = audit.version.questions.get(key="S1.Q1")
    assert "Saved" in client.post(answer_url, {"identifier": "Room 12"}).content.decode()
    assert "Saved" in client.post(answer_url, {f"q{q.pk}": "no"}).content.decode()
    assert Answer.objects.get(record__position=2, question=q).value == "no"
    bad = client.post(answer_url, {f"q{q.pk}": "maybe"}).content.decode()
    assert "Not saved" in bad and Answer.objects.get(record__position=2, question=q).value == "no"
    dup = client.post(answer_url, {"identifier": "R1"}).content.decode()
    assert "already called “R1”" in dup
    # The record is still incomplete: resuming comes back to it.
    assert client.get(reverse("audits:audit_detail", args=[audit.pk]))["Location"].endswith(
        "/records/2/"
    )


def test_review_shows_the_scores_and_submitting_twice_counts_once(client, manager, oakfield, tool):
    audit = conduct(
        tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}, {}], submit=False
    )
    client.force_login(manager)
    review = client.get(reverse("audits:audit_review", args=[audit.pk])).content.decode()
    assert "Confirm and submit" in review and "50.0%" in review and "Overall" in review
    first = client.post(reverse("audits:audit_submit", args=[audit.pk]))
    second = client.post(reverse("audits:audit_submit", args=[audit.pk]), follow=True)
    assert first.status_code == 302
    assert "already been submitted" in second.content.decode()
    assert audit.history.filter(history_change_reason="Audit submitted").count() == 1
    # Read-only now: the record page sends to the report, answers are refused.
    assert client.get(reverse("audits:audit_record", args=[audit.pk, 1]))["Location"].endswith(
        f"/conduct/{audit.pk}/"
    )
    q = audit.version.questions.get(key="S1.Q1")
    response = client.post(reverse("audits:audit_answer", args=[audit.pk, 1]), {f"q{q.pk}": "yes"})
    assert "only by a correction" in response.content.decode()


def test_outsiders_get_404_on_every_audit_url_including_posts(
    client, outsider, manager, oakfield, tool
):
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}])
    open_audit = conduct(tool, location=oakfield, by=manager, answers=[{}], submit=False)
    no = Answer.objects.get(record__audit=audit, value="no")
    client.force_login(outsider)
    for url in [
        reverse("audits:audit_detail", args=[audit.pk]),
        reverse("audits:audit_correct", args=[audit.pk, 1]),
        reverse("audits:raise_action", args=[audit.pk, no.pk]),
        reverse("audits:audit_record", args=[open_audit.pk, 1]),
        reverse("audits:audit_review", args=[open_audit.pk]),
    ]:
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"reason": "x"}).status_code == 404, url
    for url in [
        reverse("audits:audit_answer", args=[open_audit.pk, 1]),
        reverse("audits:audit_submit", args=[open_audit.pk]),
    ]:
        assert client.post(url).status_code == 404, url
    open_audit.refresh_from_db()
    assert not open_audit.is_submitted


def test_a_viewer_reads_an_audit_but_cannot_conduct(client, viewer, manager, oakfield, tool):
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}])
    client.force_login(viewer)
    page = client.get(reverse("audits:audit_detail", args=[audit.pk])).content.decode()
    assert "Raise an action" not in page and "Correct record" not in page
    assert "S1.Q1" in page and "Overall" in page
    assert client.post(reverse("audits:audit_correct", args=[audit.pk, 1])).status_code == 404


@pytest.mark.parametrize("name", ["audits:audit_list", "audits:tool_list", "audits:compliance"])
def test_list_pages_take_the_same_queries_at_1_and_50_audits(
    client,
    quality_lead,
    manager,
    oakfield,
    riverside,
    outsider,
    tool,
    name,
    django_assert_max_num_queries,
):
    url = reverse(name, args=[tool.pk] if name == "audits:compliance" else [])
    client.force_login(quality_lead)
    conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}])
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for i in range(49):
        where, who = (oakfield, manager) if i % 2 else (riverside, outsider)
        conduct(
            tool,
            location=where,
            by=who,
            answers=[{"S1.Q1": "no" if i % 3 else "yes"}],
            submit=bool(i % 4),
        )
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert client.get(url).status_code == 200


def test_compliance_is_worst_question_first_and_exports(
    client, quality_lead, manager, outsider, oakfield, riverside, tool
):
    conduct(
        tool,
        location=oakfield,
        by=manager,
        answers=[{"S2.Q1": "no"}, {"S2.Q1": "no", "S1.Q1": "no"}],
    )
    conduct(tool, location=riverside, by=outsider, answers=[{"S2.Q1": "yes"}, {"S1.Q2": "na"}])
    client.force_login(quality_lead)
    page = client.get(reverse("audits:compliance", args=[tool.pk])).content.decode()
    assert page.index("S2.Q1") < page.index("S1.Q1") < page.index("S1.Q2")
    csv = client.get(reverse("audits:compliance_export", args=[tool.pk, "csv"])).content.decode()
    lines = csv.splitlines()
    assert lines[1].startswith("S2.Q1,") and "All locations,2,2,0,50.0" in lines[1]
    assert "Oakfield House,0,2,0,0.0" in lines[2]
    xlsx = client.get(reverse("audits:compliance_export", args=[tool.pk, "xlsx"]))
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet["A2"].value == "S2.Q1"
    client.force_login(manager)
    assert client.get(reverse("audits:compliance", args=[tool.pk])).status_code == 404


def _xlsx(rows, header=None) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(
        header
        or [
            "tool",
            "section",
            "question",
            "type",
            "guidance",
            "evidence expected",
            "choices",
            "min",
            "max",
        ]
    )
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _upload(client, content: bytes, name="tool.xlsx"):
    return client.post(reverse("audits:tool_import"), {"upload": upload(name, content)})


def test_a_tool_round_trips_through_xlsx_with_a_preview_before_anything_is_imported(
    client, quality_lead, manager, oakfield, tool
):
    client.force_login(quality_lead)
    exported = client.get(reverse("audits:tool_export", args=[tool.pk])).content
    conduct(tool, location=oakfield, by=manager, answers=[{}])  # version 1 is now used
    response = _upload(client, exported)
    batch = ToolImport.objects.get()
    assert response["Location"] == reverse("audits:tool_import_detail", args=[batch.pk])
    preview = client.get(response["Location"]).content.decode()
    assert "a new version (2)" in preview and tool.versions.count() == 1
    client.post(response["Location"])
    assert tool.versions.count() == 2
    v1, v2 = tool.versions.order_by("number")
    assert list(v1.questions.values_list("key", "text", "kind")) == list(
        v2.questions.values_list("key", "text", "kind")
    )
    # Confirming again imports nothing more.
    client.post(response["Location"])
    assert tool.versions.count() == 2


@pytest.mark.parametrize(
    "content,message",
    [
        (PDF_BYTES, "its contents are not an Excel workbook"),
        (b"tool,section\nA,B\n", "Upload an Excel (.xlsx) file"),
        (
            office_zip(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
            ),
            "could not be read",
        ),
        (None, "unknown columns"),
        (None, "is a formula"),
        (None, "type must be one of"),
        (None, "one tool per file"),
    ],
)
def test_bad_tool_files_are_refused_and_import_nothing(client, quality_lead, content, message):
    client.force_login(quality_lead)
    if content is None:
        good = ["New tool", "Section", "Question?", "yes/no", "", "", "", None, None]
        content = {
            "unknown columns": _xlsx(
                [good], header=["tool", "section", "question", "type", "colour"]
            ),
            "is a formula": _xlsx([good, ["New tool", "S", "=1+1", "yes/no"]]),
            "type must be one of": _xlsx([good, ["New tool", "S", "Q", "maybe"]]),
            "one tool per file": _xlsx([good, ["Other tool", "S", "Q", "yes/no"]]),
        }[message]
    response = _upload(client, content, "tool.csv" if content.startswith(b"tool,") else "tool.xlsx")
    if response.status_code == 302:
        batch = ToolImport.objects.get()
        page = client.get(response["Location"]).content.decode()
        assert batch.status == "invalid" and message in page and "Import the tool" not in page
        assert client.post(response["Location"]).status_code == 302
    else:
        assert message in response.content.decode()
    assert not AuditTool.objects.exists()


def test_a_submitted_audit_has_a_pdf_rendered_by_its_task(
    client, manager, viewer, outsider, oakfield, tool, django_capture_on_commit_callbacks
):
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}, {}])
    client.force_login(viewer)  # readers may ask for it too
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("audits:audit_pdf_request", args=[audit.pk]))
    status = client.get(reverse("audits:audit_pdf_status", args=[audit.pk])).content.decode()
    assert "Download the PDF" in status
    response = client.get(reverse("audits:audit_pdf", args=[audit.pk]))
    body = b"".join(response.streaming_content)
    assert response["Content-Type"] == "application/pdf" and body.startswith(b"%PDF")
    client.force_login(outsider)
    for name in ("audits:audit_pdf", "audits:audit_pdf_status"):
        assert client.get(reverse(name, args=[audit.pk])).status_code == 404
    assert client.post(reverse("audits:audit_pdf_request", args=[audit.pk])).status_code == 404


def test_an_audit_in_progress_has_no_pdf(client, manager, oakfield, tool):
    audit = conduct(tool, location=oakfield, by=manager, answers=[{}], submit=False)
    client.force_login(manager)
    client.post(reverse("audits:audit_pdf_request", args=[audit.pk]))
    from audits.tools.models import AuditPdf

    assert not AuditPdf.objects.exists()
