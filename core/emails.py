"""One tiny helper renders every email: three templates per kind,
``templates/emails/<kind>-subject.txt``, ``-body.txt`` and ``-body.html``. Sending is
the outbox's alone (``core/outbox.py``)."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string


def render(kind: str, context: dict) -> tuple[str, str, str]:
    ctx = {"site_url": settings.SITE_URL, **context}
    subject = render_to_string(f"emails/{kind}-subject.txt", ctx).strip()
    # A header must be one line, whatever the template produced.
    subject = " ".join(subject.split())
    text = render_to_string(f"emails/{kind}-body.txt", ctx)
    html = render_to_string(f"emails/{kind}-body.html", ctx)
    return subject, text, html
