"""Private files in an S3-compatible bucket (STORAGE_URL), against a real local S3 server
(moto_server, started by conftest.py's ``s3_server``): every path that writes or reads a
file (evidence, learning files, spreadsheet imports, closure-report PDFs, evidence packs
and their ZIP) works on the bucket and leaves nothing on the disk, and files leave only
through the access-checked views, never as a bucket URL."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from audits import services as audit_services
from audits.models import EvidenceItem, ImportBatch, Measurement
from core.files import PrivateStorage, detect_type, get_private_storage
from core.s3 import PrivateS3Storage
from governance import services as governance
from governance.models import ClosureReport
from learning.models import Embedding
from qip_portal import closure
from qip_portal.env import parse_storage_url
from qip_portal.packs import evidence_pack
from qip_portal.packs.models import EvidencePack
from tests import factories
from tests.audits.factories import PDF_BYTES
from tests.learning.helpers import write_summary

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _disk(settings, tmp_path):
    """MEDIA_ROOT is an empty folder: with a bucket configured, nothing may land in it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MFA_REQUIRED_ROLES = set()
    return settings.MEDIA_ROOT


def _nothing_on_disk(media: Path) -> bool:
    return not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def _add_evidence(plan, by, content=PDF_BYTES, name="notes.pdf"):
    upload = SimpleUploadedFile(name, content)
    return audit_services.add_evidence(
        plan=plan,
        by=by,
        upload=upload,
        file_type=detect_type(upload),
        fields={
            "kind": "supervision",
            "title": "Supervision notes",
            "occurred_on": timezone.localdate(),
            "description": "",
        },
    )


def _pack_html(pack) -> str:
    return evidence_pack.render_plan_pack_html(evidence_pack.compile_plan_pack(pack.plan))


# --- STORAGE_URL ---------------------------------------------------------------------


def test_the_storage_url_names_endpoint_bucket_prefix_credentials_and_region():
    options = parse_storage_url(
        "s3://AKIA%2FKEY:se%2Bcr%2Fet@s3.eu-west-2.amazonaws.com/qip-files/portal/prod"
        "?region=eu-west-2"
    )
    assert options == {
        "endpoint_url": "https://s3.eu-west-2.amazonaws.com",
        "bucket_name": "qip-files",
        "location": "portal/prod",
        "region_name": "eu-west-2",
        "addressing_style": "path",
        "access_key": "AKIA/KEY",
        "secret_key": "se+cr/et",
    }
    local = parse_storage_url("s3+http://qip:pw@minio:9000/qip-portal?addressing=virtual")
    assert local["endpoint_url"] == "http://minio:9000" and local["location"] == ""
    assert local["addressing_style"] == "virtual" and local["region_name"] is None
    # Without credentials boto3 finds its own (environment, instance role).
    assert "access_key" not in parse_storage_url("s3://s3.amazonaws.com/bucket")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://k:s@host/bucket", "scheme"),
        ("s3://k:s@host", "no bucket"),
        ("s3://k:s@host/", "no bucket"),
        ("s3:///bucket", "no host"),
        ("s3://k:s@host/bucket?acl=public-read", "unknown options"),
        ("s3://k:s@host/bucket?addressing=dns", "addressing"),
        ("s3://k@host/bucket", "without its secret"),
        ("s3://k:s@host:notaport/bucket", "not a valid URL"),
    ],
)
def test_a_malformed_storage_url_stops_the_start_and_says_why(url, says):
    with pytest.raises(ImproperlyConfigured, match=says):
        parse_storage_url(url)


def _storage_backend(env: dict) -> str:
    """The class of the default storage a process started with ``env`` uses."""
    script = (
        "import django; django.setup(); from django.core.files.storage import storages; "
        "print(type(storages['default']).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "qip_portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_files_stay_on_disk_without_storage_url_and_go_to_the_bucket_with_it(bucket):
    assert _storage_backend({"STORAGE_URL": ""}) == "PrivateStorage"
    assert _storage_backend({"STORAGE_URL": bucket.url}) == "PrivateS3Storage"


# --- Writing and reading through the bucket -------------------------------------------


def test_the_private_storage_follows_the_setting(settings, bucket_storage):
    storage = get_private_storage()
    assert storage is default_storage
    assert isinstance(storage, PrivateS3Storage)
    assert EvidenceItem._meta.get_field("file").storage is default_storage
    name = storage.save("evidence/probe.txt", ContentFile(b"probe"))
    assert bucket_storage.stored() == [name]
    with pytest.raises(NotImplementedError):
        storage.url(name)
    # A name already taken gets another: nothing is ever overwritten.
    second = storage.save("evidence/probe.txt", ContentFile(b"other"))
    assert second != name and bucket_storage.read(name) == b"probe"


def test_without_a_bucket_the_private_storage_is_the_folder(settings, tmp_path):
    storage = get_private_storage()
    assert isinstance(storage, PrivateStorage)
    name = storage.save("evidence/probe.txt", ContentFile(b"probe"))
    assert (settings.MEDIA_ROOT / name).read_bytes() == b"probe"


def test_evidence_uploaded_goes_to_the_bucket_and_downloads_only_through_the_view(
    client, plan, manager, viewer, outsider, bucket_storage, _disk
):
    content = PDF_BYTES + b"% supervision notes, March\n"
    client.force_login(manager)
    response = client.post(
        reverse("audits:add_evidence", args=[plan.reference]),
        {
            "kind": "supervision",
            "title": "Supervision notes",
            "occurred_on": (timezone.localdate() - datetime.timedelta(days=1)).isoformat(),
            "description": "",
            "upload": SimpleUploadedFile("March notes.pdf", content),
        },
    )
    assert response.status_code == 302
    item = EvidenceItem.objects.get()
    assert bucket_storage.stored() == [item.file.name]
    assert bucket_storage.read(item.file.name) == content
    assert _nothing_on_disk(_disk)

    url = reverse("audits:download_evidence", args=[item.pk])
    client.force_login(viewer)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Length"] == str(len(content))
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert 'attachment; filename="' in response["Content-Disposition"]
    # The bytes themselves, never a way to the bucket (a redirect, its address).
    assert "Location" not in response
    headers = str(response.headers)
    assert bucket_storage.name not in headers and bucket_storage.server.endpoint not in headers
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_a_file_missing_from_the_bucket_is_a_404_not_an_error(
    client, plan, manager, bucket_storage
):
    client.force_login(manager)
    item = _add_evidence(plan, manager)
    item.file.storage.delete(item.file.name)
    assert bucket_storage.stored() == []
    assert client.get(reverse("audits:download_evidence", args=[item.pk])).status_code == 404


def test_a_spreadsheet_import_is_kept_in_and_read_from_the_bucket(
    client, plan, manager, bucket_storage, django_capture_on_commit_callbacks, _disk
):
    day = plan.opened_on
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["indicator", "date", "numerator", "denominator", "value", "location", "notes"])
    for i in range(3):
        writer.writerow(["Escalated within 24h", (day + datetime.timedelta(days=i)).isoformat(),
                         18, 20, "", "", f"Audit {i}"])  # fmt: skip
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("audits:import", args=[plan.reference]),
            {"upload": SimpleUploadedFile("results.csv", buffer.getvalue().encode())},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.VALID, batch.errors
    assert bucket_storage.stored() == [batch.file.name]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("audits:import_commit", args=[batch.pk]))
    assert Measurement.objects.filter(import_batch=batch).count() == 3
    assert _nothing_on_disk(_disk)


def test_a_learning_file_goes_to_the_bucket_and_downloads_through_the_view(
    client, quality_lead, plan, outsider, bucket_storage, _disk
):
    write_summary(plan, by=quality_lead)
    client.force_login(quality_lead)
    content = b"%PDF-1.4\n%induction pack\n"
    response = client.post(
        reverse("learning:add_embedding", args=[plan.reference]),
        {
            "kind": "induction",
            "embedded_on": "2026-01-05",
            "who": "Tom",
            "evidence": SimpleUploadedFile("Induction pack.pdf", content),
        },
    )
    assert response.status_code == 302
    embedding = Embedding.objects.get()
    assert bucket_storage.stored() == [embedding.file.name]
    url = reverse("learning:embedding_file", args=[plan.reference, embedding.pk])
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == content
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert _nothing_on_disk(_disk)


def test_closure_report_and_evidence_pack_pdfs_and_the_zip_use_the_bucket(
    client, plan, quality_lead, bucket_storage, django_capture_on_commit_callbacks, _disk
):
    evidence = PDF_BYTES + b"% re-audit\n"
    _add_evidence(plan, quality_lead, content=evidence)
    factories.make_ready(plan, by=quality_lead)
    group = governance.create_group(
        by=quality_lead, name="Safeguarding Governance Group", authority_level=3
    )
    with django_capture_on_commit_callbacks(execute=True):
        report = closure.submit_for_closure(plan=plan, by=quality_lead, group=group)
    report.refresh_from_db()
    assert report.pdf_status == ClosureReport.PdfStatus.READY
    assert report.pdf.name in bucket_storage.stored()
    client.force_login(quality_lead)
    response = client.get(reverse("governance:report_pdf", args=[report.pk]))
    data = b"".join(response.streaming_content)
    assert data.startswith(b"%PDF") and hashlib.sha256(data).hexdigest() == report.pdf_sha256

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("packs:plan", args=[plan.reference])).status_code == 302
    pack = EvidencePack.objects.get(plan=plan)
    assert pack.is_ready and pack.pdf.name in bucket_storage.stored()
    response = client.get(reverse("packs:pdf", args=[pack.pk]))
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == pack.pdf_sha256
    # The pack lists the evidence file's hash, read from the bucket.
    assert hashlib.sha256(evidence).hexdigest() in _pack_html(pack)

    response = client.get(reverse("packs:plan_zip", args=[plan.reference]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    stored = [n for n in archive.namelist() if n != "manifest.csv"]
    assert evidence in [archive.read(n) for n in stored]
    assert "missing" not in archive.read("manifest.csv").decode()
    assert _nothing_on_disk(_disk)
