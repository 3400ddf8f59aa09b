"""Downloads of private files, wherever they are stored (``core.files.PrivateStorage``
on the filesystem, ``core.s3.PrivateS3Storage`` in a bucket).

Nothing is ever given a storage URL, signed or not: both storages refuse ``url()``, and
a download is read from storage by the view that checked the person may see the file,
then streamed to them (``download_response``). So a bucket needs no public access and
hands out no links that outlive a permission.
"""

from __future__ import annotations

import logging
from typing import IO

from django.http import FileResponse, Http404

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024


def open_stream(storage, name: str) -> tuple[IO[bytes], int]:
    """``name`` in ``storage`` opened for reading, chunk by chunk, and its size."""
    return storage.open_stream(name)


def download_response(file, *, filename: str, content_type: str) -> FileResponse:
    """A download of a stored file (a ``FieldFile``), for a view that has already
    checked the person may read it: streamed from storage, never redirected to it. A
    file missing from storage is a 404 (and a warning in the log), not an error page."""
    try:
        handle, size = open_stream(file.storage, file.name)
    except FileNotFoundError:
        logger.warning("Download: %s is missing from storage", file.name)
        raise Http404("The file is missing.") from None
    response = FileResponse(
        handle, as_attachment=True, filename=filename, content_type=content_type
    )
    response.block_size = CHUNK
    response["Content-Length"] = str(size)
    response["X-Content-Type-Options"] = "nosniff"
    return response
