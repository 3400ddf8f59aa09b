"""Inspection evidence packs: a PDF of one plan's story, or of the register over a
period, rendered in a background task and kept privately with its SHA-256 so the
portal can later confirm which pack an inspector was given.

Compilation lives in ``qip_portal/packs/evidence_pack.py``; views in ``pack_views.py``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core import stuck
from core.files import get_private_storage
from plans.models import Location, Plan


def _pack_name(instance: EvidencePack, filename: str) -> str:
    return f"evidence-packs/{uuid.uuid4().hex}.pdf"


class EvidencePackQuerySet(models.QuerySet):
    def stuck(self, limits: stuck.Cutoffs) -> EvidencePackQuerySet:
        """Packs waiting or rendering whose task was lost or died (core/stuck.py)."""
        status = EvidencePack.RenderStatus
        return self.filter(
            models.Q(render_status=status.PENDING, progress_at__lt=limits.queued)
            | models.Q(render_status=status.RENDERING, progress_at__lt=limits.started)
        )

    def running(self, limits: stuck.Cutoffs) -> EvidencePackQuerySet:
        """Packs waiting or rendering that are not stuck: work a task will still do."""
        status = EvidencePack.RenderStatus
        return self.filter(
            models.Q(render_status=status.PENDING, progress_at__gte=limits.queued)
            | models.Q(render_status=status.RENDERING, progress_at__gte=limits.started)
        )


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
    STOPPED = "The PDF stopped before it was finished. Nothing was lost; you can try again."

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
    # The render task (core/stuck.py): how many runs have started, and the last sign of
    # life (requested, started, each step).
    attempts = models.PositiveSmallIntegerField(default=0)
    progress_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords(
        excluded_fields=[
            "render_status",
            "progress",
            "progress_note",
            "render_error",
            "attempts",
            "progress_at",
        ]
    )

    objects = EvidencePackQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-pk"]
        indexes = [
            models.Index(fields=["kind", "plan", "requested_at"]),
            # The recovery sweep reads only packs at work.
            models.Index(
                fields=["progress_at"],
                condition=models.Q(render_status__in=["pending", "rendering"]),
                name="evidencepack_working",
            ),
        ]

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

    @property
    def is_stuck(self) -> bool:
        """Waiting or rendering, but its task was lost or died: nothing is running."""
        return self.is_working and stuck.is_stuck(
            started=self.render_status == self.RenderStatus.RENDERING,
            progress_at=self.progress_at,
        )

    @property
    def is_running(self) -> bool:
        """A task is (or will shortly be) rendering it: the page keeps polling."""
        return self.is_working and not self.is_stuck

    @property
    def can_retry(self) -> bool:
        return self.is_failed or self.is_stuck

    @property
    def status_label(self) -> str:
        return "Stopped" if self.is_stuck else self.get_render_status_display()

    @property
    def failure_message(self) -> str:
        if self.is_stuck or self.render_error == self.STOPPED:
            return self.STOPPED
        if self.is_failed:
            return (
                "The PDF could not be rendered. Nothing was lost; try again, and if it "
                "fails again tell an administrator (the error is logged)."
            )
        return ""

    def download_name(self) -> str:
        stamp = timezone.localtime(self.requested_at).strftime("%Y%m%d-%H%M")
        if self.kind == self.Kind.PLAN and self.plan_id:
            return f"evidence-pack-{self.plan.reference}-{stamp}.pdf"
        return f"register-pack-{self.date_from:%Y%m%d}-{self.date_to:%Y%m%d}-{stamp}.pdf"


class PackShareQuerySet(models.QuerySet):
    def active(self, now=None) -> PackShareQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())


class PackShare(models.Model):
    """A read-only, time-limited link to one plan's evidence pack, for a named recipient
    with no login (an inspector or commissioner). It serves the pack's PDF (rendered for
    this recipient, with their name and the expiry in its footer) and the plan's
    evidence ZIP, nothing else.

    The link's token is ``selector`` + a secret verifier. Only the selector (to find the
    row) and the verifier's SHA-256 are stored; the verifier is compared in constant
    time (``qip_portal/packs/sharing.py``). Whoever holds the database cannot rebuild a link."""

    SELECTOR_CHARS = 12

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="pack_shares")
    pack = models.OneToOneField(EvidencePack, on_delete=models.PROTECT, related_name="share")
    recipient = models.CharField("recipient's name", max_length=120)
    organisation = models.CharField("recipient's organisation", max_length=120, blank=True)
    selector = models.CharField(max_length=SELECTOR_CHARS, unique=True, editable=False)
    verifier_sha256 = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    objects = PackShareQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.plan.reference} shared with {self.recipient_label}"

    @property
    def recipient_label(self) -> str:
        return f"{self.recipient} ({self.organisation})" if self.organisation else self.recipient

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at

    def is_active(self, now=None) -> bool:
        return not self.is_revoked and not self.is_expired(now)

    @property
    def state_label(self) -> str:
        if self.is_revoked:
            return "Withdrawn"
        return "Expired" if self.is_expired() else "Active"


class PackShareAccess(models.Model):
    """One request made with a share link: when, from which address, for what, and
    what it was given. Written once and never changed (an access log, like
    ``core.SecurityEvent``), so it keeps no history of its own."""

    class What(models.TextChoices):
        PAGE = "page", "Link page"
        PDF = "pdf", "PDF"
        ZIP = "zip", "Evidence files (ZIP)"

    class Outcome(models.TextChoices):
        SERVED = "served", "Served"
        NOT_READY = "not_ready", "PDF not ready yet"
        EXPIRED = "expired", "Refused: expired"
        REVOKED = "revoked", "Refused: withdrawn"

    share = models.ForeignKey(PackShare, on_delete=models.CASCADE, related_name="accesses")
    at = models.DateTimeField(default=timezone.now)
    address = models.GenericIPAddressField(null=True, blank=True)
    what = models.CharField(max_length=8, choices=What.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["share", "-at"])]

    def __str__(self) -> str:
        return f"{self.get_what_display()} {self.get_outcome_display().lower()} at {self.at}"
