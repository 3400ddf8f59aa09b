"""Private file storage and content checks for uploads.

A file's type is decided by its bytes, never by its name or the browser's claim: an
HTML page renamed ``.pdf`` is refused. Office files are zips, so before anything opens
one we check it cannot expand into a "zip bomb" and holds no XML DTD (the door to
entity-expansion and external-entity attacks).
"""

from __future__ import annotations

import functools
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage, Storage, default_storage


class PrivateStorage(FileSystemStorage):
    """``MEDIA_ROOT``, with no URL: files leave only through views that check access.
    The default storage unless ``STORAGE_URL`` names a bucket (``core/storage.py``)."""

    def url(self, name):
        raise NotImplementedError("Private files have no URL; stream them through a view.")

    def open_stream(self, name: str) -> tuple[IO[bytes], int]:
        """The file opened for reading, and its size (``core.storage.open_stream``)."""
        handle = self.open(name, "rb")
        return handle, handle.size


def get_private_storage() -> Storage:
    """Where evidence, imports, packs and report PDFs live: Django's default storage,
    which ``STORAGES`` makes a ``PrivateStorage`` or a ``core.s3.PrivateS3Storage``.
    Model fields hold this lazy object, so a change of ``STORAGES`` (a test's) reaches
    them."""
    return default_storage


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


# --- PDFs that act when opened ------------------------------------------------------
# A PDF may carry JavaScript (``/JS``, ``/JavaScript``, run by ``/OpenAction`` or any
# other action), a launch action (``/Launch``: start another program) or files inside it
# (``/EmbeddedFile``, ``/EmbeddedFiles``). Evidence never needs any of them, and every
# reader of the portal's files would be exposed, so such a PDF is refused. The names are
# looked for in the file's dictionaries: in the bytes as stored, with ``#xx`` escapes
# decoded (``/J#61vaScript`` is ``/JavaScript``), and inside compressed object streams,
# where PDF 1.5 writers keep most dictionaries. An object stream is known by its
# dictionary (``/Type /ObjStm``) or, whatever its dictionary says, by how it starts once
# inflated (pairs of numbers: each object's number and offset). This reads names, it is
# not a PDF parser; what it cannot read (an object stream in another encoding, or an
# encrypted file with object streams) is refused rather than waved through.
_PDF_ACTIVE_NAMES = {
    b"JS": "javascript",
    b"JavaScript": "javascript",
    b"Launch": "launch",
    b"EmbeddedFile": "embedded",
    b"EmbeddedFiles": "embedded",
}
_PDF_REFUSALS = {
    "javascript": "This PDF contains JavaScript, which can run when the file is opened.",
    "launch": "This PDF contains a launch action, which can start another program when "
    "the file is opened.",
    "embedded": "This PDF has other files embedded in it, which cannot be checked.",
}
_PDF_INSTEAD = {
    "javascript": "print it to a new PDF (or save it as PDF/A) and upload that",
    "launch": "print it to a new PDF (or save it as PDF/A) and upload that",
    "embedded": "upload each file on its own instead",
}
# A name: "/" then regular characters (PDF whitespace and delimiters end it).
_PDF_REGULAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]"
_PDF_NAME = re.compile(rb"/(%s*)" % _PDF_REGULAR)
_PDF_ESCAPED_NAME = re.compile(rb"/(%s*#[0-9A-Fa-f]{2}%s*)" % (_PDF_REGULAR, _PDF_REGULAR))
_PDF_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_STREAM = re.compile(rb"(?<!end)stream\r?\n")
_PDF_SPACE = rb"[\x00\t\n\x0c\r ]"
_PDF_OBJECT = re.compile(rb"[0-9]+%s+[0-9]+%s+obj" % (_PDF_SPACE, _PDF_SPACE))
# How an object stream starts: its first object's number and offset.
_PDF_OBJSTM_START = re.compile(rb"%s*[0-9]+%s+[0-9]+%s" % (_PDF_SPACE, _PDF_SPACE, _PDF_SPACE))
_PDF_FLATE = {b"FlateDecode", b"Fl"}
_PDF_FILTERS = _PDF_FLATE | {
    b"LZWDecode", b"LZW", b"ASCIIHexDecode", b"AHx", b"ASCII85Decode", b"A85",
    b"RunLengthDecode", b"RL", b"Crypt",
}  # fmt: skip
# A stream's dictionary sits just before its "stream" keyword.
_PDF_DICT_WINDOW = 4096
# Object streams hold dictionaries only: a few hundred kilobytes in real documents. A
# file whose object streams inflate past this is refused rather than half checked.
PDF_OBJECT_STREAMS_MAX_BYTES = 100 * 1024 * 1024


def _unescape(raw: bytes) -> bytes:
    return _PDF_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def _pdf_names(data: bytes) -> set[bytes]:
    """Every name in ``data`` (for a stream's dictionary: a few hundred bytes)."""
    return {_unescape(raw) for raw in _PDF_NAME.findall(data)}


@functools.cache
def _names_pattern(wanted: frozenset[bytes]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(name) for name in sorted(wanted, key=len, reverse=True))
    return re.compile(rb"/(%s)(?!%s)" % (alternatives, _PDF_REGULAR))


def _names_among(data: bytes, wanted: frozenset[bytes]) -> set[bytes]:
    """Which of the ``wanted`` names ``data`` holds, written plainly or with escapes:
    one pass of a search, however large ``data`` is (a whole file, an object stream)."""
    found = set(_names_pattern(wanted).findall(data))
    found |= {name for raw in _PDF_ESCAPED_NAME.findall(data) if (name := _unescape(raw)) in wanted}
    return found


def _pdf_unreadable() -> ValidationError:
    return ValidationError(
        "This PDF could not be checked for active content (it is encrypted, damaged or "
        "unusually built). Print it to a new PDF (or save it as PDF/A) and upload that."
    )


def _stream_dictionary(data: bytes, keyword_at: int) -> bytes:
    """The bytes from the object's header (``12 0 obj``) to its ``stream`` keyword."""
    head = data[max(0, keyword_at - _PDF_DICT_WINDOW) : keyword_at]
    headers = list(_PDF_OBJECT.finditer(head))
    return head[headers[-1].end() :] if headers else head


def _object_streams(data: bytes):
    """The contents of each object stream, inflated. Raises ``ValidationError`` for one
    that cannot be read."""
    budget = PDF_OBJECT_STREAMS_MAX_BYTES
    for match in _PDF_STREAM.finditer(data):
        names = _pdf_names(_stream_dictionary(data, match.start()))
        declared = b"ObjStm" in names
        filters = names & _PDF_FILTERS
        if declared and filters - _PDF_FLATE:
            raise _pdf_unreadable()
        end = data.find(b"endstream", match.end())
        body = data[match.end() : end if end != -1 else len(data)]
        if declared and not filters:
            yield body
            continue
        # Flate-compressed, or not compressed at all (an image, a font, page content):
        # only what inflates to an object stream's start is read in full.
        inflater = zlib.decompressobj()
        try:
            start = inflater.decompress(body, 64)
            if not declared and not _PDF_OBJSTM_START.match(start):
                continue
            rest = inflater.decompress(inflater.unconsumed_tail, budget + 1)
        except zlib.error as exc:
            if declared:
                raise _pdf_unreadable() from exc
            continue
        budget -= len(start) + len(rest)
        if budget < 0:
            raise _pdf_unreadable()
        yield start + rest


def check_pdf_is_inert(upload) -> None:
    """Refuse (``ValidationError``) a PDF with JavaScript, a launch action or embedded
    files, saying which and why; see the note above."""
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    if len(_names_among(data, frozenset({b"Encrypt", b"ObjStm"}))) == 2:
        raise _pdf_unreadable()  # its object streams are encrypted: unreadable here
    active = frozenset(_PDF_ACTIVE_NAMES)
    names = _names_among(data, active)
    for inflated in _object_streams(data):
        names |= _names_among(inflated, active)
    found = sorted({_PDF_ACTIVE_NAMES[name] for name in names})
    if found:
        kind = found[0]
        raise ValidationError(
            f"{_PDF_REFUSALS[kind]} Evidence never needs that, so the file was refused for "
            f"safety: {_PDF_INSTEAD[kind]}."
        )


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
        check_pdf_is_inert(upload)
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
