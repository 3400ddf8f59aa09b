"""Inspection evidence packs: a PDF of one plan's story, or of the register over a
period, rendered in a background task and kept privately with its SHA-256 so the
portal can later confirm which pack an inspector was given.

Compilation lives in ``qip_portal/evidence_pack.py``; views in ``pack_views.py``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.files import get_private_storage
from plans.models import Location, Plan


def _pack_name(instance: EvidencePack, filename: str) -> str:
    return f"evidence-packs/{uuid.uuid4().hex}.pdf"


class EvidencePack(models.Model):
    """One requested pack. Rendering progress (``render_status``, ``progress``,
    ``progress_note``, ``render_error``) is written many times by the task with plain
    UPDATEs: operational, so kept out of history (as ``ImportBatch`` does). The PDF and
    its hash are saved once, with history."""

    class Kind(models.TextChoices):
        PLAN = "plan", "Plan evidence pack"
        REGISTER = "register", "Register pack"

    class RenderStatus(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RENDERING = "rendering", "Rendering"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    WORKING = (RenderStatus.PENDING, RenderStatus.RENDERING)

    kind = models.CharField(max_length=10, choices=Kind.choices)
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.CASCADE, related_name="evidence_packs"
    )
    # Register packs: the period (inclusive) and, optionally, one location.
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    render_status = models.CharField(
        max_length=10, choices=RenderStatus.choices, default=RenderStatus.PENDING
    )
    progress = models.PositiveSmallIntegerField(default=0)
    progress_note = models.CharField(max_length=120, blank=True)
    render_error = models.CharField(max_length=300, blank=True)
    pdf = models.FileField(
        storage=get_private_storage, upload_to=_pack_name, max_length=200, blank=True
    )
    pdf_sha256 = models.CharField("PDF SHA-256", max_length=64, blank=True, editable=False)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    history = HistoricalRecords(
        excluded_fields=["render_status", "progress", "progress_note", "render_error"]
    )

    class Meta:
        ordering = ["-requested_at", "-pk"]
        indexes = [models.Index(fields=["kind", "plan", "requested_at"])]

    def __str__(self) -> str:
        if self.kind == self.Kind.PLAN and self.plan_id:
            return f"Evidence pack for {self.plan.reference}"
        return f"Register pack {self.date_from} to {self.date_to}"

    @property
    def is_working(self) -> bool:
        return self.render_status in self.WORKING

    @property
    def is_ready(self) -> bool:
        return self.render_status == self.RenderStatus.READY

    @property
    def is_failed(self) -> bool:
        return self.render_status == self.RenderStatus.FAILED

    def download_name(self) -> str:
        stamp = timezone.localtime(self.requested_at).strftime("%Y%m%d-%H%M")
        if self.kind == self.Kind.PLAN and self.plan_id:
            return f"evidence-pack-{self.plan.reference}-{stamp}.pdf"
        return f"register-pack-{self.date_from:%Y%m%d}-{self.date_to:%Y%m%d}-{stamp}.pdf"
