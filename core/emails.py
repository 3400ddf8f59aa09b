"""One tiny helper renders every email: three templates per kind,
``templates/emails/<kind>-subject.txt``, ``-body.txt`` and ``-body.html``."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def render(kind: str, context: dict) -> tuple[str, str, str]:
    ctx = {"site_url": settings.SITE_URL, **context}
    subject = render_to_string(f"emails/{kind}-subject.txt", ctx).strip()
    # A header must be one line, whatever the template produced.
    subject = " ".join(subject.split())
    text = render_to_string(f"emails/{kind}-body.txt", ctx)
    html = render_to_string(f"emails/{kind}-body.html", ctx)
    return subject, text, html


def send(kind: str, recipients: Iterable[str], context: dict) -> int:
    """Send one email of ``kind`` to ``recipients`` (addresses). Returns how many
    messages were sent (0 when there is no one to send to)."""
    to = sorted({address for address in recipients if address})
    if not to:
        return 0
    subject, text, html = render(kind, context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, to)
    message.attach_alternative(html, "text/html")
    return message.send()
