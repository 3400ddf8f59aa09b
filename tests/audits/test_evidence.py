import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from audits.models import EvidenceItem
from core import files
from tests.audits.factories import (
    DOCX_BYTES,
    HTML_BYTES,
    PDF_BYTES,
    PNG_BYTES,
    office_zip,
    upload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "private-media"


def _post(client, plan, file=None, **data):
    payload = {
        "kind": "supervision",
        "title": "Supervision notes, November",
        "occurred_on": (timezone.localdate() - datetime.timedelta(days=1)).isoformat(),
        "description": "Escalation discussed with every senior carer.",
    }
    payload.update(data)
    if file is not None:
        payload["upload"] = file
    return client.post(reverse("audits:add_evidence", args=[plan.reference]), payload)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.pdf", PDF_BYTES, files.PDF),
        ("photo.png", PNG_BYTES, files.PNG),
        ("photo.jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 20, files.JPEG),
        ("minutes.docx", DOCX_BYTES, files.DOCX),
        ("audit.csv", "name,score\nÉlodie,9\n".encode(), files.CSV),
        ("notes.txt", b"Plain words\n", files.TEXT),
        ("no-extension", PDF_BYTES, files.PDF),
    ],
)
def test_allowed_types_are_recognised_by_content(name, content, expected):
    assert files.detect_type(upload(name, content)) == expected


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("report.pdf", HTML_BYTES, "not a PDF"),
        ("page.txt", HTML_BYTES, "Web pages and markup"),
        ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "markup"),
        ("program.exe", b"MZ\x90\x00\x03\x00\x00\x00", "not allowed"),
        ("archive.zip", office_zip("application/x-unknown"), "not allowed"),
        ("photo.png", PDF_BYTES, "not a PNG"),
        ("latin1.csv", "café,1\n".encode("latin-1"), "UTF-8"),
        ("empty.txt", b"", "empty"),
    ],
)
def test_disallowed_content_is_refused_whatever_its_name(name, content, message):
    with pytest.raises(files.ValidationError) as refused:
        files.detect_type(upload(name, content, "application/pdf"))
    assert message in " ".join(refused.value.messages)


def test_manager_adds_evidence_with_a_file_stored_under_a_random_private_name(
    client, plan, manager, settings
):
    client.force_login(manager)
    response = _post(client, plan, upload("Supervision Nov.pdf", PDF_BYTES))
    assert response.status_code == 302
    item = EvidenceItem.objects.get()
    assert item.original_name == "Supervision Nov.pdf"
    assert item.content_type == "application/pdf"
    assert item.file.name.startswith("evidence/") and "Supervision" not in item.file.name
    stored = settings.MEDIA_ROOT / item.file.name
    assert stored.read_bytes() == PDF_BYTES
    assert item.history.get().history_user == manager


def test_html_renamed_pdf_is_refused_and_nothing_saved(client, plan, manager):
    client.force_login(manager)
    response = _post(client, plan, upload("report.pdf", HTML_BYTES, "application/pdf"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "not a PDF" in body and "Nothing was saved" in body
    assert "Supervision notes, November" in body  # what was typed is kept
    assert not EvidenceItem.objects.exists()


def test_a_file_over_the_limit_is_refused(client, plan, manager, settings):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1024
    client.force_login(manager)
    response = _post(client, plan, upload("big.pdf", PDF_BYTES + b"0" * 2048))
    assert "the largest allowed is" in response.content.decode()
    assert not EvidenceItem.objects.exists()


def test_evidence_without_a_file_is_fine(client, plan, manager):
    client.force_login(manager)
    assert _post(client, plan).status_code == 302
    assert not EvidenceItem.objects.get().has_file


def test_future_dates_are_refused(client, plan, manager):
    client.force_login(manager)
    response = _post(client, plan, occurred_on="2999-01-01")
    assert "cannot be in the future" in response.content.decode()


@pytest.fixture
def stored_item(client, plan, manager):
    client.force_login(manager)
    _post(client, plan, upload("Supervision Nov.pdf", PDF_BYTES))
    client.logout()
    return EvidenceItem.objects.get()


def test_download_is_an_attachment_with_safe_headers(client, stored_item, viewer):
    client.force_login(viewer)
    response = client.get(reverse("audits:download_evidence", args=[stored_item.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF_BYTES
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert 'filename="Supervision Nov.pdf"' in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")
    # Every download is a security event an administrator can see (issue 11).
    from core.models import SecurityEvent

    event = SecurityEvent.objects.get(kind="file_download", user=viewer)
    assert f"evidence {stored_item.pk}" in event.detail


def test_outsider_gets_404_even_with_the_url(client, stored_item, outsider):
    client.force_login(outsider)
    url = reverse("audits:download_evidence", args=[stored_item.pk])
    assert client.get(url).status_code == 404
    assert client.get(reverse("audits:download_evidence", args=[999999])).status_code == 404


def test_anonymous_user_is_sent_to_sign_in(client, stored_item):
    response = client.get(reverse("audits:download_evidence", args=[stored_item.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_files_are_never_served_from_media_or_static(client, stored_item, quality_lead, settings):
    client.force_login(quality_lead)
    name = stored_item.file.name
    for url in [
        f"/media/{name}",
        f"/static/{name}",
        f"{settings.MEDIA_URL}{name}",
        f"/private-media/{name}",
    ]:
        assert client.get(url).status_code == 404, url
    with pytest.raises(NotImplementedError):
        stored_item.file.url  # noqa: B018


def test_outsider_and_viewer_cannot_add_evidence(client, plan, outsider, viewer):
    for user in (outsider, viewer):
        client.force_login(user)
        assert _post(client, plan, upload("a.pdf", PDF_BYTES)).status_code == 404
    assert not EvidenceItem.objects.exists()
