"""Closure report PDFs with WeasyPrint, offline.

The URL fetcher refuses every URL except governance's own static files, which it reads
from disk: a report never fetches a remote URL, a ``file://`` path or a ``data:`` URL,
whatever ends up in its HTML. (User text is escaped by the templates anyway; this is
the second wall.)
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

logger = logging.getLogger(__name__)

# The base URL the PDF's HTML is resolved against; never contacted.
BASE_URL = "https://qip-portal.invalid/"
STATIC_PREFIX = BASE_URL.rstrip("/") + settings.STATIC_URL + "governance/"


class RefusedURL(ValueError):
    pass


class StaticOnlyFetcher(URLFetcher):
    """Serves ``<BASE_URL>/static/governance/...`` from disk; refuses anything else."""

    def __init__(self):
        super().__init__(allowed_protocols=())
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        if url.startswith(STATIC_PREFIX):
            relative = url.removeprefix(BASE_URL.rstrip("/") + settings.STATIC_URL)
            relative = relative.split("?")[0].split("#")[0]
            path = finders.find(relative) if ".." not in relative else None
            if path:
                mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
                return URLFetcherResponse(url, Path(path).read_bytes(), {"Content-Type": mime})
        self.refused.append(url)
        logger.warning("Closure report PDF: refused to fetch %s", url[:200])
        raise RefusedURL(f"Refused to fetch {url[:200]}")


def render_pdf(*, body_html: str, title: str, fetcher: StaticOnlyFetcher | None = None) -> bytes:
    """A PDF of a report body (an HTML fragment), with the print stylesheet."""
    document = render_to_string(
        "governance/report_pdf.html",
        {"body": body_html, "title": title, "stylesheet": STATIC_PREFIX + "report-print.css"},
    )
    fetcher = fetcher or StaticOnlyFetcher()
    return HTML(string=document, base_url=BASE_URL, url_fetcher=fetcher).write_pdf()
