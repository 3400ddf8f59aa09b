"""Learning from plans: the summary, where it is embedded, who has read it, and the
scheduled reviews that ask whether it still holds.

Every change goes through ``learning/services.py``; scheduled work is in
``learning/sweeps.py``.
"""

from __future__ import annotations

import calendar
import datetime
import uuid
from pathlib import PurePath

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.files import get_private_storage
from plans.models import Location, Plan


def add_months(day: datetime.date, months: int) -> datetime.date:
    """``day`` plus whole calendar months; the 31st becomes the month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def review_months() -> tuple[int, ...]:
    """How many months after closure the learning comes back for review."""
    return tuple(getattr(settings, "LEARNING_REVIEW_MONTHS", (3, 12)))


class LearningSummaryQuerySet(models.QuerySet):
    def active(self) -> LearningSummaryQuerySet:
        return self.filter(status=LearningSummary.Status.ACTIVE)


class LearningSummary(models.Model):
    """What a plan taught the organisation, in three short parts. Editing keeps the
    old text in history (``history``), which the learning page shows."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Current"
        RETIRED = "retired", "Retired"

    plan = models.OneToOneField(Plan, on_delete=models.CASCADE, related_name="learning")
    what_happened = models.TextField("what happened", max_length=4000)
    what_changed = models.TextField("what changed", max_length=4000)
    key_messages = models.TextField("key messages for staff", max_length=4000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    retired_reason = models.TextField(max_length=2000, blank=True)
    retired_on = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    objects = LearningSummaryQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-pk"]
        verbose_name_plural = "learning summaries"

    def __str__(self) -> str:
        return f"Learning from {self.plan.reference}"

    @property
    def is_complete(self) -> bool:
        return all(
            text.strip() for text in (self.what_happened, self.what_changed, self.key_messages)
        )

    @property
    def draft_note(self) -> str:
        """While the plan is open its learning may still change: "Draft: plan still
        live". Empty once it is closed or withdrawn. Reads ``plan``: load it with the
        summary."""
        phrase = {
            Plan.Status.DRAFT: "a draft",
            Plan.Status.LIVE: "live",
            Plan.Status.CLOSURE_REVIEW: "in closure review",
            Plan.Status.MONITORING: "in monitoring",
        }.get(self.plan.status)
        return f"Draft: plan still {phrase}" if phrase else ""

    @property
    def is_retired(self) -> bool:
        return self.status == self.Status.RETIRED


def _embedding_file_name(instance: Embedding, filename: str) -> str:
    # The stored name is random: the uploader's name never reaches the file system.
    return f"learning/{uuid.uuid4().hex}{instance.file_extension}"


class Embedding(models.Model):
    """Where the learning now lives in everyday practice (induction, supervision...).

    A row is either done (embedded on a date, by someone) or a to-do raised by a
    relevance review that found the learning needs embedding again."""

    class Kind(models.TextChoices):
        INDUCTION = "induction", "Induction"
        SUPERVISION = "supervision", "Supervision framework"
        TRAINING = "training", "Training module"
        POLICY = "policy", "Policy or procedure"
        TEAM_MEETING = "team_meeting", "Team meeting"

    class Status(models.TextChoices):
        TO_DO = "to_do", "To do"
        DONE = "done", "Embedded"

    summary = models.ForeignKey(
        LearningSummary, on_delete=models.CASCADE, related_name="embeddings"
    )
    kind = models.CharField("where", max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DONE)
    embedded_on = models.DateField("date", null=True, blank=True)
    who = models.CharField(
        "who", max_length=160, blank=True, help_text="Who did it, e.g. “Tom Okafor, manager”."
    )
    note = models.TextField(max_length=3000, blank=True)
    due_on = models.DateField(null=True, blank=True)
    raised_by_review = models.ForeignKey(
        "LearningReview",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups",
    )
    file = models.FileField(
        storage=get_private_storage, upload_to=_embedding_file_name, max_length=200, blank=True
    )
    original_name = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=120, blank=True)
    file_extension = models.CharField(max_length=8, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["status", "embedded_on", "pk"]

    def __str__(self) -> str:
        return self.get_kind_display()

    @property
    def is_done(self) -> bool:
        return self.status == self.Status.DONE

    @property
    def has_file(self) -> bool:
        return bool(self.file)

    def download_name(self) -> str:
        stem = PurePath(self.original_name).stem or "evidence"
        return f"{stem}{self.file_extension}"


class Acknowledgement(models.Model):
    """One manager's confirmation that they have read the learning. Created when the
    learning is shared with their location; ``acknowledged_at`` is empty until then."""

    summary = models.ForeignKey(
        LearningSummary, on_delete=models.CASCADE, related_name="acknowledgements"
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="learning_acks"
    )
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    shared_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # Its "please read" email and weekly reminders are outbox alerts
    # (learning/notifications.py), not fields here.
    history = HistoricalRecords()

    class Meta:
        ordering = ["acknowledged_at", "shared_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["summary", "manager"], name="one_ack_per_manager")
        ]

    def __str__(self) -> str:
        return f"{self.manager} · {self.summary.plan.reference}"

    @property
    def is_outstanding(self) -> bool:
        return self.acknowledged_at is None


class LearningReviewQuerySet(models.QuerySet):
    def open(self) -> LearningReviewQuerySet:
        return self.filter(outcome="")

    def due_for_review(self, day: datetime.date) -> LearningReviewQuerySet:
        return self.open().filter(due_on__lte=day)


class LearningReview(models.Model):
    """A scheduled check, some months after closure, that the learning still holds."""

    class Outcome(models.TextChoices):
        STILL_RELEVANT = "still_relevant", "Still relevant"
        UPDATED = "updated", "Updated"
        RETIRED = "retired", "Retired"
        REEMBED = "reembed", "Re-embed needed"

    summary = models.ForeignKey(LearningSummary, on_delete=models.CASCADE, related_name="reviews")
    months_after_closure = models.PositiveSmallIntegerField()
    due_on = models.DateField()
    # The leadership or governance meeting whose agenda the review is on.
    meeting = models.ForeignKey(
        "governance.Meeting",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="learning_reviews",
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    note = models.TextField(max_length=3000, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Its "review due" email is an outbox alert (learning/notifications.py).
    history = HistoricalRecords()

    objects = LearningReviewQuerySet.as_manager()

    class Meta:
        ordering = ["due_on", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["summary", "months_after_closure"], name="one_review_per_interval"
            )
        ]

    def __str__(self) -> str:
        return f"{self.months_after_closure}-month review of {self.summary.plan.reference}"

    @property
    def is_open(self) -> bool:
        return not self.outcome

    def is_overdue(self, today: datetime.date | None = None) -> bool:
        return self.is_open and self.due_on < (today or timezone.localdate())
