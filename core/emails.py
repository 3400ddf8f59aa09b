"""One tiny helper renders every email: three templates per kind,
``templates/emails/<kind>-subject.txt``, ``-body.txt`` and ``-body.html``. Sending is
the outbox's alone (``core/outbox.py``)."""

from __future__ import annotations

from django.conf import settings
from django.template import Context
from django.template.loader import get_template, render_to_string


def render(kind: str, context: dict) -> tuple[str, str, str]:
    ctx = {"site_url": settings.SITE_URL, **context}
    subject = _plain(f"emails/{kind}-subject.txt", ctx).strip()
    # A header must be one line, whatever the template produced.
    subject = " ".join(subject.split())
    text = _plain(f"emails/{kind}-body.txt", ctx)
    html = render_to_string(f"emails/{kind}-body.html", ctx)
    return subject, text, html


def _plain(name: str, ctx: dict) -> str:
    """A plain-text template, rendered without HTML escaping: a reason that says
    "the home's audits" must not arrive as "the home&#x27;s audits"."""
    template = get_template(name)
    return template.template.render(Context(ctx, autoescape=False))
