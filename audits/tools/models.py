"""Audit tools and the audits conducted with them.

A tool (``AuditTool``) is a question set owned by the quality leads. Its questions live
in versions: ``ToolVersion`` -> ``ToolSection`` -> ``ToolQuestion``. A version that has
been used by an audit is never changed again; revising the tool then makes a new
version (``audits.tools.services.revise_tool``), so every past audit keeps the
questions it was answered with. A question keeps its ``key`` from version to version,
which is how an indicator fed by "question S1.Q2" follows the tool through revisions.

An ``Audit`` runs one version against a sample of records at one location; each
``AuditRecord`` has an anonymised identifier (never a name) and one ``Answer`` per
question. A submitted audit is read-only except through a correction with a reason,
and writes its indicators' results (``AuditResult`` links each to its audit).
Imported from ``audits.models``, so the app label is ``audits``."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.files import get_private_storage
from plans.models import Action, Indicator, Location, Plan, QualityStatement, Regulation, Theme

# The sample an audit may take: at least one record, at most 200 (a page a person can
# still work through; larger samples are a spreadsheet import's job).
MIN_SAMPLE = 1
MAX_SAMPLE = 200


class AuditTool(models.Model):
    """A question set, e.g. "Safeguarding records". The questions are in its versions;
    ``current`` is the newest."""

    name = models.CharField(max_length=120, unique=True)
    theme = models.ForeignKey(
        Theme, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_tools"
    )
    quality_statement = models.ForeignKey(
        QualityStatement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    regulation = models.ForeignKey(
        Regulation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.TextField(max_length=2000, blank=True)
    # Suggest opening a plan when a question's compliance at a location falls below
    # this percentage and no plan there covers the question. Blank: never suggest.
    suggest_plan_below = models.DecimalField(
        "suggest a new plan below (%)",
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ToolVersion(models.Model):
    """One version of a tool's questions. Frozen once an audit has used it."""

    tool = models.ForeignKey(AuditTool, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    change_note = models.CharField(max_length=300, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["tool", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["tool", "number"], name="unique_tool_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.tool.name} v{self.number}"


class ToolSection(models.Model):
    version = models.ForeignKey(ToolVersion, on_delete=models.CASCADE, related_name="sections")
    key = models.CharField(max_length=20)  # "S1": kept across versions
    title = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="unique_section_key")
        ]

    def __str__(self) -> str:
        return self.title


class ToolQuestion(models.Model):
    class Kind(models.TextChoices):
        YES_NO = "yes_no", "Yes / no / not applicable"
        NUMBER = "number", "Number"
        CHOICE = "choice", "Choice"
        TEXT = "text", "Free text (not scored)"

    version = models.ForeignKey(ToolVersion, on_delete=models.CASCADE, related_name="questions")
    section = models.ForeignKey(ToolSection, on_delete=models.CASCADE, related_name="questions")
    key = models.CharField(max_length=20)  # "S1.Q2": kept across versions
    position = models.PositiveSmallIntegerField(default=0)
    text = models.CharField(max_length=500)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.YES_NO)
    guidance = models.TextField(max_length=2000, blank=True)
    evidence_hint = models.CharField("evidence expected", max_length=300, blank=True)
    choices = models.JSONField(default=list, blank=True)  # for a choice question
    min_value = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    max_value = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["section__position", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="unique_question_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.text}"

    @property
    def is_scored(self) -> bool:
        """Only yes/no questions count towards compliance; "not applicable" is left out."""
        return self.kind == self.Kind.YES_NO


class IndicatorFeed(models.Model):
    """An indicator whose results come from a tool's audits: one question's compliance
    (yes / (yes + no)), a section's score or the tool's overall score."""

    class Scope(models.TextChoices):
        QUESTION = "question", "One question's compliance"
        SECTION = "section", "A section's score"
        OVERALL = "overall", "The overall score"

    indicator = models.OneToOneField(Indicator, on_delete=models.CASCADE, related_name="feed")
    tool = models.ForeignKey(AuditTool, on_delete=models.PROTECT, related_name="feeds")
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.OVERALL)
    key = models.CharField(max_length=20, blank=True)  # the question's or section's key
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"{self.indicator} fed by {self.tool}"

    def covers(self, question: ToolQuestion) -> bool:
        """Does a "No" to ``question`` concern this indicator?"""
        if self.scope == self.Scope.QUESTION:
            return question.key == self.key
        if self.scope == self.Scope.SECTION:
            return question.key.split(".")[0] == self.key
        return True

    def label(self) -> str:
        if self.scope == self.Scope.OVERALL:
            return f"{self.tool.name}: overall score"
        noun = "question" if self.scope == self.Scope.QUESTION else "section"
        return f"{self.tool.name}: {noun} {self.key}"


class AuditQuerySet(models.QuerySet):
    def visible_to(self, user) -> AuditQuerySet:
        """Audits at locations ``user`` may read (every location for organisation-wide
        roles)."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.sees_all_locations:
            return self
        return self.filter(location__in=user.locations.all())


class Audit(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted"

    version = models.ForeignKey(ToolVersion, on_delete=models.PROTECT, related_name="audits")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="audits")
    # Opened from a plan's due re-audit: where to go back to, and whose indicators.
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_audits"
    )
    audited_on = models.DateField("audit date")
    sample_size = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(MIN_SAMPLE), MaxValueValidator(MAX_SAMPLE)]
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    begun_at = models.DateTimeField("started at", default=timezone.now)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-audited_on", "-pk"]
        indexes = [models.Index(fields=["location", "status", "audited_on"])]

    def __str__(self) -> str:
        return f"Audit {self.pk}: {self.version} at {self.location}"

    @property
    def is_submitted(self) -> bool:
        return self.status == self.Status.SUBMITTED

    @property
    def tool(self) -> AuditTool:
        return self.version.tool


class AuditRecord(models.Model):
    """One sampled record, known only by an anonymised identifier."""

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="records")
    position = models.PositiveSmallIntegerField()
    identifier = models.CharField("record identifier", max_length=40, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "position"], name="unique_record_position"),
            models.UniqueConstraint(
                fields=["audit", "identifier"],
                condition=~models.Q(identifier=""),
                name="unique_record_identifier",
            ),
        ]

    def __str__(self) -> str:
        return self.identifier or f"Record {self.position}"


class Answer(models.Model):
    YES, NO, NA = "yes", "no", "na"

    record = models.ForeignKey(AuditRecord, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(ToolQuestion, on_delete=models.PROTECT, related_name="answers")
    value = models.CharField(max_length=2000, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    answered_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["record__position", "question__position"]
        constraints = [models.UniqueConstraint(fields=["record", "question"], name="unique_answer")]

    def __str__(self) -> str:
        return f"{self.record}: {self.question.key} = {self.value}"


class AuditResult(models.Model):
    """A result an audit wrote for an indicator fed by its tool: the audit is the
    result's source and its evidence. Keeps what produced it (the feed's scope and key
    at submission, and the tool version answered), so a correction recomputes the
    result the same way even if the indicator's feed has changed since. A blank scope
    is a result written before these were kept (and whose feed was gone when they were
    filled in): corrected from the current feed, as before."""

    audit = models.ForeignKey(Audit, on_delete=models.PROTECT, related_name="results")
    measurement = models.OneToOneField(
        "audits.Measurement", on_delete=models.CASCADE, related_name="audit_result"
    )
    scope = models.CharField(max_length=10, choices=IndicatorFeed.Scope.choices, blank=True)
    key = models.CharField(max_length=20, blank=True)  # the question's or section's key
    version = models.ForeignKey(
        ToolVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"{self.measurement} from audit {self.audit_id}"


class Finding(models.Model):
    """A "No" answer that raised an action on a plan, or joined a plan that already
    covers the question at that location (a repeat finding). A correction that turns
    the "No" into something else withdraws the finding (who, when and the correction's
    reason kept; an action it raised stays on its plan); one that makes it "No" again
    opens it again."""

    class Kind(models.TextChoices):
        ACTION = "action", "Action raised"
        REPEAT = "repeat", "Repeat finding"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        WITHDRAWN = "withdrawn", "Withdrawn by a correction"

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="findings")
    answer = models.OneToOneField(Answer, on_delete=models.PROTECT, related_name="finding")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="audit_findings")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    action = models.ForeignKey(
        Action, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_findings"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.CharField(max_length=300, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.plan.reference}"

    @property
    def is_withdrawn(self) -> bool:
        return self.status == self.Status.WITHDRAWN


class ToolImport(models.Model):
    """A tool spreadsheet between upload and import: read and checked on upload (a tool
    is at most a few hundred rows), previewed, then imported all or nothing."""

    class Status(models.TextChoices):
        VALID = "valid", "Ready to import"
        INVALID = "invalid", "Problems found"
        COMMITTED = "committed", "Imported"

    original_name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices)
    errors = models.JSONField(default=list, blank=True)
    spec = models.JSONField(default=dict, blank=True)  # what would be imported
    tool = models.ForeignKey(
        AuditTool, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords(excluded_fields=["spec", "errors"])

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Tool import {self.pk} ({self.original_name})"


def _audit_pdf_name(instance: AuditPdf, filename: str) -> str:
    return f"audit-pdfs/{uuid.uuid4().hex}.pdf"


class AuditPdfQuerySet(models.QuerySet):
    def stuck(self, limits) -> AuditPdfQuerySet:
        """PDFs waiting or rendering whose task was lost or died (core/stuck.py)."""
        status = AuditPdf.Status
        return self.filter(
            models.Q(status=status.PENDING, progress_at__lt=limits.queued)
            | models.Q(status=status.RENDERING, progress_at__lt=limits.started)
        )


class AuditPdf(models.Model):
    """A submitted audit's PDF, rendered by a task (``audits/tools/pdf.py``). Rendered
    again whenever asked (an audit can be corrected). A render whose task was lost or
    died is queued again, or failed, by the "recover_stuck_work" job
    (``pdf.recover_stuck_audit_pdfs``), and the page offers "Try again"."""

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RENDERING = "rendering", "Being rendered"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    WORKING = (Status.PENDING, Status.RENDERING)
    STOPPED = "The PDF stopped before it was finished. Nothing was lost; you can try again."

    audit = models.OneToOneField(Audit, on_delete=models.CASCADE, related_name="pdf")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    file = models.FileField(
        storage=get_private_storage,
        upload_to=_audit_pdf_name,
        max_length=200,
        blank=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    # Operational, as for closure-report PDFs: excluded from history.
    attempts = models.PositiveSmallIntegerField(default=0)
    progress_at = models.DateTimeField(default=timezone.now)
    error = models.CharField(max_length=300, blank=True)
    history = HistoricalRecords(excluded_fields=["status", "attempts", "progress_at", "error"])

    objects = AuditPdfQuerySet.as_manager()

    class Meta:
        indexes = [
            # The recovery sweep reads only PDFs at work.
            models.Index(
                fields=["progress_at"],
                condition=models.Q(status__in=["pending", "rendering"]),
                name="auditpdf_working",
            ),
        ]

    def __str__(self) -> str:
        return f"PDF of audit {self.audit_id}"

    @property
    def is_stuck(self) -> bool:
        from core import stuck

        return self.status in self.WORKING and stuck.is_stuck(
            started=self.status == self.Status.RENDERING, progress_at=self.progress_at
        )

    @property
    def is_running(self) -> bool:
        return self.status in self.WORKING and not self.is_stuck
