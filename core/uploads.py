"""Upload size, enforced while the request arrives rather than after it has been stored.

Two walls, both from ``EVIDENCE_MAX_UPLOAD_MB`` (the largest file any form takes):

- ``RequestSizeLimitMiddleware`` refuses a request whose declared body is larger than
  one file at the limit plus the form's other fields (``DATA_UPLOAD_MAX_MEMORY_SIZE``),
  before a byte of the body is read, with a page that says why (413).
- ``SizeLimitedUploadHandler``, first of ``FILE_UPLOAD_HANDLERS``, counts each file's
  bytes as they arrive; past the limit the rest is not stored, and the form receives a
  ``RefusedUpload`` in its place, which holds nothing but the file's name and size. The
  form's own size check (``core.files.check_size``) then refuses it with the usual
  message, keeping everything else that was typed.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def file_limit() -> int:
    return settings.EVIDENCE_MAX_UPLOAD_BYTES


def request_limit() -> int:
    """The largest request body accepted: one file at the limit and the form's fields."""
    return file_limit() + settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


class RefusedUpload(UploadedFile):
    """Stands in for a file that went over the limit while it arrived. It holds none of
    the file's bytes: only its name, its size and that it was refused."""

    refused = True

    def __init__(self, *, name: str, size: int, content_type: str, charset: str | None):
        super().__init__(
            file=io.BytesIO(), name=name, content_type=content_type, size=size, charset=charset
        )


class SizeLimitedUploadHandler(FileUploadHandler):
    """Passes each file's chunks on to the storing handlers until the file is larger than
    the limit; then the rest is counted, not stored, and what the later handlers held of
    it is thrown away."""

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0
        self.too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received = start + len(raw_data)
        if self.received > file_limit():
            if not self.too_large:
                self.too_large = True
                self._drop_what_later_handlers_hold()
            return None  # no later handler sees this chunk
        return raw_data

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if not self.too_large:
            return None  # the storing handler's file is the upload
        return RefusedUpload(
            name=self.file_name or "upload",
            size=self.received,
            content_type=self.content_type or "application/octet-stream",
            charset=self.charset,
        )

    def _drop_what_later_handlers_hold(self) -> None:
        # Django's storing handlers keep the file being received as ``file`` (an in-memory
        # buffer or a temporary file, deleted when closed), as its parser assumes too.
        handlers = list(getattr(self.request, "upload_handlers", []))
        for handler in handlers[handlers.index(self) + 1 :] if self in handlers else []:
            held = getattr(handler, "file", None)
            if held is not None:
                held.close()


class RequestSizeLimitMiddleware:
    """Refuses a request body larger than ``request_limit()`` from its declared length,
    before anything reads it (the CSRF check would read it first otherwise)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # Django reads no body it cannot measure
        if declared > request_limit():
            return render(
                request,
                "413.html",
                {
                    "size": _megabytes(declared),
                    "limit": f"{file_limit() / 1024 / 1024:.0f} MB",
                    "back": request.get_full_path(),
                },
                status=413,
            )
        return self.get_response(request)
