"""Governance groups, their meetings, closure reports (frozen snapshots) and signed
decisions.

Every change goes through ``governance/services.py`` (the PDF's rendering as
background work, through ``governance/renders.py``). A submitted closure report and a
signed decision are records an inspector may rely on: no service changes them after
they are written, and the admin shows them read-only.
"""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from simple_history.models import HistoricalRecords

from core import stuck
from plans.models import Plan, SignOffLevel


def get_private_storage():
    """Snapshots live beside evidence in private storage (``core.files``): never served
    directly, only through the access-checked download view."""
    from core.files import get_private_storage as private_storage

    return private_storage()


class GovernanceGroup(models.Model):
    """A body that takes closure decisions, e.g. the Safeguarding Governance Group."""

    name = models.CharField(max_length=120, unique=True)
    authority_level = models.PositiveSmallIntegerField(
        choices=SignOffLevel.choices,
        default=SignOffLevel.GOVERNANCE_GROUP,
        help_text="The highest sign-off level this group may decide.",
    )
    remit = models.TextField(max_length=2000, blank=True)
    is_active = models.BooleanField(default=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="governance_groups"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("governance:group", args=[self.pk])

    def may_decide(self, sign_off_level: int) -> bool:
        return self.authority_level >= sign_off_level


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        CHAIR = "chair", "Chair"
        DELEGATE_CHAIR = "delegate_chair", "Delegate chair"

    SIGNING_ROLES = (Role.CHAIR, Role.DELEGATE_CHAIR)

    group = models.ForeignKey(GovernanceGroup, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="governance_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    history = HistoricalRecords()

    class Meta:
        ordering = ["group", "role", "user__first_name"]
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], name="unique_group_membership"),
            models.UniqueConstraint(
                fields=["group"], condition=Q(role="chair"), name="one_chair_per_group"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.group})"

    @property
    def can_sign(self) -> bool:
        return self.role in self.SIGNING_ROLES


class Meeting(models.Model):
    group = models.ForeignKey(GovernanceGroup, on_delete=models.PROTECT, related_name="meetings")
    held_on = models.DateField("date")
    attendees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="governance_meetings"
    )
    minutes = models.TextField(max_length=20000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords(m2m_fields=[attendees])

    class Meta:
        ordering = ["-held_on", "-pk"]
        constraints = [
            # A meeting is named by its group and date (services.schedule_meeting).
            models.UniqueConstraint(fields=["group", "held_on"], name="one_meeting_per_group_a_day")
        ]

    def __str__(self) -> str:
        return f"{self.group} on {date_format(self.held_on, 'j M Y')}"

    def get_absolute_url(self) -> str:
        return reverse("governance:meeting", args=[self.pk])


class ResidualRisk(models.Model):
    """A risk that remains when a plan closes, and how it will be watched. Entered by
    the quality lead before submission; copied into the frozen report."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="residual_risks")
    description = models.TextField(max_length=2000)
    monitoring = models.TextField("how it is monitored", max_length=2000)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["recorded_at", "pk"]

    def __str__(self) -> str:
        return self.description[:60]


def _snapshot_pdf_name(instance: ClosureReport, filename: str) -> str:
    return f"closure-reports/{uuid.uuid4().hex}.pdf"


def snapshot_digest(content_json: str, content_html: str) -> str:
    """SHA-256 of a frozen report: its canonical JSON, a NUL byte, then its HTML. Anyone
    holding the stored snapshot can recompute it."""
    digest = hashlib.sha256()
    digest.update(content_json.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(content_html.encode("utf-8"))
    return digest.hexdigest()


class ClosureReportQuerySet(models.QuerySet):
    def awaiting_decision(self) -> ClosureReportQuerySet:
        return self.filter(status=ClosureReport.Status.AWAITING_DECISION)

    def pdf_stuck(self, limits: stuck.Cutoffs) -> ClosureReportQuerySet:
        """Reports whose PDF render task was lost or died (core/stuck.py)."""
        status = ClosureReport.PdfStatus
        return self.filter(
            Q(pdf_status=status.PENDING, pdf_progress_at__lt=limits.queued)
            | Q(pdf_status=status.RENDERING, pdf_progress_at__lt=limits.started)
        )

    def pdf_running(self, limits: stuck.Cutoffs) -> ClosureReportQuerySet:
        """Reports whose PDF is waiting or rendering and not stuck: a task will still
        render it."""
        status = ClosureReport.PdfStatus
        return self.filter(
            Q(pdf_status=status.PENDING, pdf_progress_at__gte=limits.queued)
            | Q(pdf_status=status.RENDERING, pdf_progress_at__gte=limits.started)
        )


class ClosureReport(models.Model):
    """A closure report as submitted: compiled from the plan, then frozen. The content
    never changes after submission; the PDF is rendered once, from the frozen HTML."""

    class Status(models.TextChoices):
        AWAITING_DECISION = "awaiting_decision", "Awaiting decision"
        DECIDED = "decided", "Decided"

    class PdfStatus(models.TextChoices):
        PENDING = "pending", "Waiting to render"
        RENDERING = "rendering", "Rendering"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    PDF_STOPPED = (
        "The PDF stopped before it was finished. The frozen report below is unaffected; "
        "you can try again."
    )

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="closure_reports")
    group = models.ForeignKey(
        GovernanceGroup, on_delete=models.PROTECT, related_name="closure_reports"
    )
    # The lifecycle step that submission performed: closure, or final closure after
    # monitoring.
    transition = models.CharField(max_length=40, default="submit_for_closure")
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.AWAITING_DECISION
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(default=timezone.now)
    sign_off_level = models.PositiveSmallIntegerField(choices=SignOffLevel.choices)
    override_rationale = models.TextField(max_length=3000, blank=True)
    content_json = models.TextField(editable=False)
    content_html = models.TextField(editable=False)
    sha256 = models.CharField("SHA-256", max_length=64, editable=False)
    pdf = models.FileField(
        storage=get_private_storage, upload_to=_snapshot_pdf_name, max_length=200, blank=True
    )
    pdf_sha256 = models.CharField("PDF SHA-256", max_length=64, blank=True, editable=False)
    # Written while the PDF task runs; operational, not history-worthy.
    pdf_status = models.CharField(
        max_length=10, choices=PdfStatus.choices, default=PdfStatus.PENDING
    )
    pdf_error = models.CharField(max_length=300, blank=True)
    # The render task (core/stuck.py): how many runs have started, and the last sign of
    # life (queued or started).
    pdf_attempts = models.PositiveSmallIntegerField(default=0)
    pdf_progress_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords(
        excluded_fields=["pdf_status", "pdf_error", "pdf_attempts", "pdf_progress_at"]
    )

    objects = ClosureReportQuerySet.as_manager()

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "group"]),
            # Governance home's latest decisions and oldest waiting reports: read in
            # order from the index, not 10,000 reports joined and sorted (BENCHMARKS.md).
            models.Index(fields=["status", "-submitted_at", "-id"], name="report_status_recent"),
            # The recovery sweep reads only PDFs at work.
            models.Index(
                fields=["pdf_progress_at"],
                condition=Q(pdf_status__in=["pending", "rendering"]),
                name="report_pdf_working",
            ),
        ]
        constraints = [
            # One report at a time awaits a decision for a plan.
            models.UniqueConstraint(
                fields=["plan"],
                condition=Q(status="awaiting_decision"),
                name="one_report_awaiting_decision_per_plan",
            )
        ]

    def __str__(self) -> str:
        submitted = date_format(timezone.localtime(self.submitted_at), "j M Y")
        return f"Closure report for {self.plan.reference} ({submitted})"

    def get_absolute_url(self) -> str:
        return reverse("governance:report", args=[self.pk])

    @property
    def is_awaiting_decision(self) -> bool:
        return self.status == self.Status.AWAITING_DECISION

    @property
    def pdf_ready(self) -> bool:
        return self.pdf_status == self.PdfStatus.READY

    @property
    def pdf_is_stuck(self) -> bool:
        """Waiting or rendering, but its task was lost or died: nothing is running."""
        status = self.PdfStatus
        return self.pdf_status in (status.PENDING, status.RENDERING) and stuck.is_stuck(
            started=self.pdf_status == status.RENDERING, progress_at=self.pdf_progress_at
        )

    @property
    def pdf_is_running(self) -> bool:
        """A task is (or will shortly be) rendering it: the page keeps polling."""
        status = self.PdfStatus
        return self.pdf_status in (status.PENDING, status.RENDERING) and not self.pdf_is_stuck

    @property
    def pdf_can_retry(self) -> bool:
        return self.pdf_status == self.PdfStatus.FAILED or self.pdf_is_stuck

    @property
    def pdf_failure_message(self) -> str:
        if self.pdf_is_stuck or self.pdf_error == self.PDF_STOPPED:
            return self.PDF_STOPPED
        if self.pdf_status == self.PdfStatus.FAILED:
            return (
                "The PDF could not be rendered. The frozen report below is unaffected; "
                "try again, and if it fails again tell an administrator (the error is logged)."
            )
        return ""

    def recompute_sha256(self) -> str:
        return snapshot_digest(self.content_json, self.content_html)

    def is_intact(self) -> bool:
        return self.recompute_sha256() == self.sha256


class AgendaItem(models.Model):
    """A closure report on a meeting's agenda (learning reviews may join later)."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="agenda_items")
    report = models.ForeignKey(ClosureReport, on_delete=models.PROTECT, related_name="agenda_items")
    position = models.PositiveSmallIntegerField(default=0)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["meeting", "report"], name="unique_agenda_item")
        ]

    def __str__(self) -> str:
        return f"{self.report.plan.reference} at {self.meeting}"


def _record_pdf_name(instance: Decision, filename: str) -> str:
    return f"signed-records/{uuid.uuid4().hex}.pdf"


class DecisionQuerySet(models.QuerySet):
    def record_stuck(self, limits: stuck.Cutoffs) -> DecisionQuerySet:
        """Decisions whose signed-record render task was lost or died (core/stuck.py)."""
        status = ClosureReport.PdfStatus
        return self.filter(
            Q(record_status=status.PENDING, record_progress_at__lt=limits.queued)
            | Q(record_status=status.RENDERING, record_progress_at__lt=limits.started)
        )


class Decision(models.Model):
    """A governance decision on one closure report, signed by the chair (or a delegate
    recorded as such) with their password re-entered. Written once, never updated:
    the one-to-one link refuses a second decision on the same report."""

    class Outcome(models.TextChoices):
        CLOSE = "close", "Close"
        STEP_DOWN = "step_down", "Step down into monitoring"
        RETURN = "return", "Return to live"

    # Outcome -> the lifecycle transition it performs.
    TRANSITIONS = {
        Outcome.CLOSE: "sign_off_closure",
        Outcome.STEP_DOWN: "step_down",
        Outcome.RETURN: "return_to_live",
    }

    report = models.OneToOneField(ClosureReport, on_delete=models.PROTECT, related_name="decision")
    meeting = models.ForeignKey(Meeting, on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reasons = models.TextField(max_length=5000, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_as = models.CharField(max_length=16, choices=Membership.Role.choices)
    signed_at = models.DateTimeField(default=timezone.now)
    signature_meaning = models.TextField()
    snapshot_sha256 = models.CharField("snapshot SHA-256", max_length=64)
    pdf_sha256 = models.CharField("PDF SHA-256", max_length=64, blank=True)
    # Step down only: what the monitoring period will watch. The period itself is
    # created by ``audits`` from these values (MonitoringPeriod belongs there).
    monitoring_indicator_ids = models.JSONField(default=list, blank=True)
    monitoring_floors = models.JSONField(
        default=dict, blank=True, help_text="Indicator id (as text) to floor value (as text)."
    )
    monitoring_audit_theme = models.CharField(max_length=120, blank=True)
    monitoring_ends_on = models.DateField(null=True, blank=True)
    # The signed record: one PDF of the decision, its meaning, the signer, the time, the
    # meeting and the hashes, followed by the frozen report it was taken on. Rendered
    # once, after the decision commits (governance/renders.py); never replaced.
    record_pdf = models.FileField(
        storage=get_private_storage, upload_to=_record_pdf_name, max_length=200, blank=True
    )
    record_sha256 = models.CharField(
        "signed record SHA-256", max_length=64, blank=True, editable=False
    )
    # Written while the render runs; operational, not history-worthy (as on the report).
    record_status = models.CharField(
        max_length=10,
        choices=ClosureReport.PdfStatus.choices,
        default=ClosureReport.PdfStatus.PENDING,
    )
    record_error = models.CharField(max_length=300, blank=True)
    record_attempts = models.PositiveSmallIntegerField(default=0)
    record_progress_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords(
        excluded_fields=["record_status", "record_error", "record_attempts", "record_progress_at"]
    )

    objects = DecisionQuerySet.as_manager()

    class Meta:
        ordering = ["-signed_at", "-pk"]
        indexes = [
            # The recovery sweep reads only signed records at work.
            models.Index(
                fields=["record_progress_at"],
                condition=Q(record_status__in=["pending", "rendering"]),
                name="decision_record_working",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.report.plan.reference}"

    @property
    def record_ready(self) -> bool:
        return self.record_status == ClosureReport.PdfStatus.READY

    @property
    def record_is_stuck(self) -> bool:
        status = ClosureReport.PdfStatus
        return self.record_status in (status.PENDING, status.RENDERING) and stuck.is_stuck(
            started=self.record_status == status.RENDERING, progress_at=self.record_progress_at
        )

    @property
    def record_is_running(self) -> bool:
        status = ClosureReport.PdfStatus
        return self.record_status in (status.PENDING, status.RENDERING) and not self.record_is_stuck

    @property
    def record_can_retry(self) -> bool:
        return self.record_status == ClosureReport.PdfStatus.FAILED or self.record_is_stuck
