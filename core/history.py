"""Saving with a history record that says who changed what, and why."""

from __future__ import annotations

from django.db import models

# django-simple-history keeps at most this many characters of a reason (PostgreSQL
# enforces it); the full text stays where it was given (a report, a decision, a form).
REASON_MAX = 100


def save_with_history(obj: models.Model, *, by, reason: str | None = None, **kwargs) -> None:
    """``obj.save()`` with its history row attributed to ``by`` and carrying ``reason``."""
    obj._history_user = by
    if reason and len(reason) > REASON_MAX:
        reason = reason[: REASON_MAX - 1] + "…"
    obj._change_reason = reason or None
    obj.save(**kwargs)
