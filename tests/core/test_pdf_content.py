"""Evidence PDFs that act when opened (JavaScript, launch actions, embedded files) are
refused, however the names are written or wherever the dictionaries are kept; ordinary
PDFs, including the portal's own, pass. The PDFs here are small and crafted by hand."""

from __future__ import annotations

import zlib

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audits.models import EvidenceItem
from core.files import PDF, detect_type
from tests.audits.factories import PDF_BYTES, upload


def _pdf(*objects: bytes) -> bytes:
    """A small PDF of the given object bodies, numbered from 1 (no cross-reference table:
    the check reads dictionaries, not the layout)."""
    parts = [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"]
    for number, body in enumerate(objects, start=1):
        parts.append(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    parts.append(b"trailer\n<< /Root 1 0 R /Size %d >>\n%%%%EOF\n" % (len(objects) + 1))
    return b"".join(parts)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (dictionary, len(data), data)


def _object_stream(*objects: bytes, filters: bytes = b"/Filter /FlateDecode") -> bytes:
    """A PDF 1.5 object stream holding ``objects`` (numbered from 10), compressed."""
    offsets, body = [], b""
    for number, obj in enumerate(objects, start=10):
        offsets.append(b"%d %d" % (number, len(body)))
        body += obj + b"\n"
    header = b" ".join(offsets) + b"\n"
    data = header + body
    if filters.endswith((b"/FlateDecode", b"/Fl")):
        data = zlib.compress(data)
    elif b"ASCIIHex" in filters:
        data = data.hex().encode() + b">"
    return _stream(b"/Type /ObjStm /N %d /First %d %s" % (len(objects), len(header), filters), data)


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"
PLAIN = _pdf(CATALOG, PAGES, PAGE)


def _check(content: bytes, name: str = "evidence.pdf"):
    return detect_type(upload(name, content, "application/pdf"))


@pytest.mark.parametrize(
    "content",
    [
        PDF_BYTES,
        PLAIN,
        # Opening at the first page, fitted: an /OpenAction without script is fine.
        _pdf(b"<< /Type /Catalog /Pages 2 0 R /OpenAction [3 0 R /Fit] >>", PAGES, PAGE),
        # Names that merely start like the refused ones, and a link to a web page.
        _pdf(CATALOG, PAGES, b"<< /Type /Page /JSON 1 /Launcher 2 /EmbeddedFont 3 >>"),
        _pdf(CATALOG, PAGES, b"<< /Type /Annot /A << /S /URI /URI (https://example.org) >> >>"),
        # Compressed page content and an object stream of ordinary dictionaries.
        _pdf(CATALOG, PAGES, _stream(b"/Filter /FlateDecode", zlib.compress(b"BT /F1 12 Tf ET"))),
        _pdf(CATALOG, _object_stream(PAGES, PAGE)),
    ],
    ids=["tiny", "plain", "open-at-page", "lookalike-names", "link", "content", "objstm"],
)
def test_an_ordinary_pdf_is_accepted(content):
    assert _check(content) == PDF


def test_the_portals_own_pdfs_are_accepted():
    from governance.pdf import render_pdf

    rendered = render_pdf(body_html="<h1>Closure report</h1><p>Results.</p>", title="Report")
    assert rendered.startswith(b"%PDF-")
    assert _check(rendered) == PDF


JS_ACTION = b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            _pdf(b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>", PAGES, PAGE, JS_ACTION),
            "contains JavaScript",
        ),
        # JavaScript in the document's name tree, with a stream of script.
        (
            _pdf(
                b"<< /Type /Catalog /Names << /JavaScript << /Names [(a) 2 0 R] >> >> >>",
                b"<< /S /JavaScript /JS 3 0 R >>",
                _stream(b"", b"app.alert(1)"),
            ),
            "contains JavaScript",
        ),
        # The same names written with #xx escapes: /J#61vaScript is /JavaScript.
        (_pdf(CATALOG, PAGES, b"<< /OpenAction << /S /J#61vaScript /J#53 (x) >> >>"), "JavaScript"),
        (_pdf(CATALOG, PAGES, b"<</AA<</O<</S/JavaScript/JS(x)>>>>>>"), "contains JavaScript"),
        (
            _pdf(CATALOG, PAGES, b"<< /OpenAction << /S /Launch /F (cmd.exe) >> >>"),
            "contains a launch action, which can start another program",
        ),
        (
            _pdf(
                b"<< /Type /Catalog /Names << /EmbeddedFiles << /Names [(a.exe) 2 0 R] >> >> >>",
                b"<< /Type /Filespec /F (a.exe) /EF << /F 3 0 R >> >>",
                _stream(b"/Type /EmbeddedFile", b"MZ..."),
            ),
            "has other files embedded in it",
        ),
        (_pdf(CATALOG, _stream(b"/Type /Embedded#46ile", b"MZ")), "files embedded"),
        # Hidden in a compressed object stream, where the bytes as stored do not show it.
        (_pdf(CATALOG, PAGES, _object_stream(PAGE, JS_ACTION)), "contains JavaScript"),
        (
            _pdf(CATALOG, _object_stream(b"<< /S /Launch /F (sh) >>", filters=b"/Filter /Fl")),
            "launch action",
        ),
        # An object stream whose dictionary does not say so (here a string that looks like
        # an object's header hides "/Type /ObjStm"): known by how it starts.
        (
            _pdf(
                CATALOG,
                _object_stream(JS_ACTION).replace(b"/Type /ObjStm", b"/Type /ObjStm /T (9 0 obj)"),
            ),
            "contains JavaScript",
        ),
        (
            _pdf(CATALOG, _object_stream(JS_ACTION).replace(b"/Type /ObjStm", b"/Type /XObject")),
            "contains JavaScript",
        ),
    ],
    ids=[
        "open-action",
        "name-tree",
        "escaped",
        "additional-action",
        "launch",
        "embedded-file",
        "embedded-escaped",
        "in-object-stream",
        "launch-in-object-stream",
        "object-stream-hidden-header",
        "object-stream-mislabelled",
    ],
)
def test_a_pdf_that_acts_when_opened_is_refused(content, message):
    with pytest.raises(ValidationError) as refused:
        _check(content)
    assert message in refused.value.messages[0]
    assert "refused for safety" in refused.value.messages[0]


@pytest.mark.parametrize(
    "content",
    [
        # An object stream in a form the check cannot read is refused, not waved through.
        _pdf(CATALOG, _object_stream(JS_ACTION, filters=b"/Filter /ASCIIHexDecode")),
        _pdf(CATALOG, _stream(b"/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode", b"junk")),
        # Encrypted, with object streams: their contents cannot be read without the key.
        _pdf(CATALOG, _object_stream(PAGES), b"<< /Filter /Standard /V 2 >>")
        + b"trailer\n<< /Encrypt 4 0 R >>\n",
    ],
    ids=["other-filter", "damaged", "encrypted"],
)
def test_a_pdf_whose_object_streams_cannot_be_read_is_refused(content):
    with pytest.raises(ValidationError) as refused:
        _check(content)
    assert "could not be checked for active content" in refused.value.messages[0]


def test_the_evidence_form_says_why_a_pdf_was_refused(client, plan, manager):
    client.force_login(manager)
    bad = _pdf(b"<< /Type /Catalog /OpenAction 2 0 R >>", JS_ACTION)
    response = client.post(
        reverse("audits:add_evidence", args=[plan.reference]),
        {
            "kind": "supervision",
            "title": "Notes",
            "occurred_on": "2026-01-05",
            "upload": upload("notes.pdf", bad, "application/pdf"),
        },
    )
    assert response.status_code == 200
    assert "This PDF contains JavaScript" in response.content.decode()
    assert not EvidenceItem.objects.exists()
