"""Helpers for audits tests: results logged through the service, upload files."""

from __future__ import annotations

import datetime
import io
import zipfile
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile

from audits import services
from audits.models import Measurement
from plans.models import Plan, User


def measure(
    plan: Plan,
    *,
    by: User,
    on: datetime.date,
    numerator: int | None = 19,
    denominator: int | None = 20,
    value: Decimal | None = None,
    indicator=None,
    source: str = Measurement.Source.RE_AUDIT,
) -> Measurement:
    indicator = indicator or plan.indicators.first()
    return services.record_measurement(
        plan=plan,
        by=by,
        fields={
            "indicator": indicator,
            "measured_on": on,
            "numerator": numerator,
            "denominator": denominator,
            "value": value,
            "location": plan.locations.first(),
            "source": source,
            "notes": "",
        },
    )


PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
HTML_BYTES = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def upload(name: str, content: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def office_zip(content_type_entry: str, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/'
            f'2006/content-types"><Override PartName="/x" ContentType="{content_type_entry}"/>'
            "</Types>",
        )
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX_BYTES = office_zip(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
)
