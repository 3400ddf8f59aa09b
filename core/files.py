"""Private file storage and content checks for uploads.

A file's type is decided by its bytes, never by its name or the browser's claim: an
HTML page renamed ``.pdf`` is refused. Office files are zips, so before anything opens
one we check it cannot expand into a "zip bomb" and holds no XML DTD (the door to
entity-expansion and external-entity attacks).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage


class PrivateStorage(FileSystemStorage):
    """``MEDIA_ROOT``, with no URL: files leave only through views that check access."""

    def url(self, name):
        raise NotImplementedError("Private files have no URL; stream them through a view.")


_private_storage = PrivateStorage()


def get_private_storage() -> PrivateStorage:
    return _private_storage


@dataclass(frozen=True)
class FileType:
    label: str
    content_type: str
    extension: str


PDF = FileType("a PDF", "application/pdf", ".pdf")
PNG = FileType("a PNG image", "image/png", ".png")
JPEG = FileType("a JPEG image", "image/jpeg", ".jpg")
DOCX = FileType(
    "a Word document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".docx",
)
XLSX = FileType(
    "an Excel workbook",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xlsx",
)
CSV = FileType("a CSV file", "text/csv; charset=utf-8", ".csv")
TEXT = FileType("a text file", "text/plain; charset=utf-8", ".txt")

ALLOWED_TYPES_TEXT = "PDF, PNG, JPEG, Word (.docx), Excel (.xlsx), CSV or plain text"

# What each name ending must turn out to be, so a file named .pdf must *be* a PDF.
_EXTENSION_TYPES = {
    ".pdf": {PDF},
    ".png": {PNG},
    ".jpg": {JPEG},
    ".jpeg": {JPEG},
    ".docx": {DOCX},
    ".xlsx": {XLSX},
    ".csv": {CSV, TEXT},
    ".txt": {CSV, TEXT},
}

# Zip limits. Real workbooks of tens of thousands of rows stay far below these; a zip
# bomb declares gigabytes. Python's zipfile stops reading a member at its declared
# size (and checks the CRC), so checking the declared sizes up front is sufficient.
ZIP_MAX_MEMBERS = 500
ZIP_MAX_TOTAL_BYTES = 100 * 1024 * 1024
ZIP_MAX_RATIO = 200
_ZIP_RATIO_EXEMPT_BYTES = 1024 * 1024
_TEXT_SNIFF_BYTES = 64 * 1024
_MARKUP_STARTS = (b"<!doctype", b"<html", b"<?xml", b"<svg", b"<script", b"<head", b"<body")


def check_size(upload, *, limit: int | None = None) -> None:
    limit = limit or settings.EVIDENCE_MAX_UPLOAD_BYTES
    if upload.size > limit:
        raise ValidationError(
            f"The file is {upload.size / 1024 / 1024:.1f} MB; the largest allowed is "
            f"{limit / 1024 / 1024:.0f} MB."
        )


def check_zip(fileobj: IO[bytes]) -> zipfile.ZipFile:
    """Open a zip only if it is small when expanded and its XML has no DTD."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ValidationError("The file is damaged: it is not a readable Office file.") from exc
    members = archive.infolist()
    if len(members) > ZIP_MAX_MEMBERS:
        raise ValidationError("The file holds too many parts to be a normal Office file.")
    total = 0
    for member in members:
        total += member.file_size
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _ZIP_RATIO_EXEMPT_BYTES and ratio > ZIP_MAX_RATIO:
            raise ValidationError(
                "The file expands to far more than its size (a “zip bomb”) and was refused."
            )
    if total > ZIP_MAX_TOTAL_BYTES:
        raise ValidationError(
            "The file expands to far more than its size (a “zip bomb”) and was refused."
        )
    for member in members:
        if member.filename.endswith((".xml", ".rels")) and _has_dtd(archive, member):
            raise ValidationError(
                "The file contains an XML document type declaration, which Office files "
                "never need; it was refused for safety."
            )
    return archive


def _has_dtd(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bool:
    tail = b""
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(64 * 1024):
                window = (tail + chunk).lower()
                if b"<!doctype" in window or b"<!entity" in window:
                    return True
                tail = chunk[-16:]
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        raise ValidationError("The file is damaged: it is not a readable Office file.") from exc
    return False


def _office_type(fileobj: IO[bytes]) -> FileType:
    archive = check_zip(fileobj)
    try:
        content_types = archive.read("[Content_Types].xml")
    except KeyError as exc:
        raise ValidationError(
            f"This zip file is not an Office document. Allowed: {ALLOWED_TYPES_TEXT}."
        ) from exc
    if b"wordprocessingml.document.main+xml" in content_types:
        return DOCX
    if b"spreadsheetml.sheet.main+xml" in content_types:
        return XLSX
    raise ValidationError(f"This Office file type is not allowed. Allowed: {ALLOWED_TYPES_TEXT}.")


def _text_type(head: bytes, name: str) -> FileType:
    if b"\x00" in head:
        raise ValidationError(f"This type of file is not allowed. Allowed: {ALLOWED_TYPES_TEXT}.")
    try:
        # The sniffed head may end inside a multi-byte character: ignore only that.
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) < _TEXT_SNIFF_BYTES or exc.start < len(head) - 4:
            raise ValidationError(
                "Text files must be saved as UTF-8 (in Excel: “CSV UTF-8”)."
            ) from exc
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(_MARKUP_STARTS) or b"<script" in head.lower():
        raise ValidationError(
            f"Web pages and markup files are not allowed. Allowed: {ALLOWED_TYPES_TEXT}."
        )
    return CSV if name.lower().endswith(".csv") else TEXT


def detect_type(upload) -> FileType:
    """The allowed type that ``upload``'s bytes are, or ``ValidationError``.

    The name only has to agree with the content (a ``.pdf`` must be a PDF)."""
    if getattr(upload, "refused", False):
        check_size(upload)  # a file refused while it arrived holds none of its bytes
    upload.seek(0)
    head = upload.read(_TEXT_SNIFF_BYTES)
    upload.seek(0)
    name = getattr(upload, "name", "") or ""
    expected = _EXTENSION_TYPES.get(PurePath(name).suffix.lower())
    if head.startswith(b"%PDF-"):
        found = PDF
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        found = PNG
    elif head.startswith(b"\xff\xd8\xff"):
        found = JPEG
    elif head.startswith(b"PK\x03\x04"):
        found = _office_type(upload)
        upload.seek(0)
    elif not head:
        raise ValidationError("The file is empty.")
    elif expected is not None and not expected & {CSV, TEXT}:
        found = None  # text content under a binary type's name: refused below
    else:
        found = _text_type(head, name)
    if expected is not None and found not in expected:
        raise ValidationError(
            f"The file is named “{PurePath(name).name}” but its contents are not "
            f"{next(iter(expected)).label}. Allowed: {ALLOWED_TYPES_TEXT}."
        )
    return found
