"""Measurements per indicator, evidence items, audit themes and spreadsheet imports.

Every change goes through ``audits/services``; files live in private storage
(``core/files.py``) and are only ever streamed by a view that checks access.
"""

from __future__ import annotations

import datetime
import uuid
from decimal import ROUND_HALF_UP, Decimal
from pathlib import PurePath

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core import stuck
from core.files import get_private_storage
from plans.models import EvidenceKind, Indicator, Location, Plan


def _frequency_days(frequency: str) -> int:
    return Indicator.FREQUENCY_DAYS.get(frequency, 31)


class AuditTheme(models.Model):
    """A standing audit (e.g. "Safeguarding records audit") that indicators and,
    later, monitoring periods point to."""

    name = models.CharField(max_length=120, unique=True)
    default_frequency = models.CharField(
        max_length=12, choices=Indicator.Frequency.choices, default=Indicator.Frequency.MONTHLY
    )
    description = models.TextField(max_length=2000, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IndicatorSchedule(models.Model):
    """What ``plans.Indicator`` cannot hold without importing upwards: the audit theme
    it is measured by. The next due date is derived (frequency + the indicator's
    ``last_measured_on``), never stored, so it cannot drift."""

    indicator = models.OneToOneField(Indicator, on_delete=models.CASCADE, related_name="schedule")
    audit_theme = models.ForeignKey(
        AuditTheme, null=True, blank=True, on_delete=models.PROTECT, related_name="schedules"
    )
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"Schedule for {self.indicator}"


def next_due_on(
    *, frequency: str, last_measured_on: datetime.date | None, start: datetime.date
) -> datetime.date:
    """One frequency interval after the last measurement, or after ``start`` (the
    plan's opening) when nothing has been measured yet."""
    return (last_measured_on or start) + datetime.timedelta(days=_frequency_days(frequency))


def with_due_from(indicators: models.QuerySet[Indicator]) -> models.QuerySet[Indicator]:
    """``indicators`` annotated with ``due_from``: the date their next re-audit is
    counted from (the latest result, kept on the indicator, or the plan's opening)."""
    return indicators.annotate(due_from=Coalesce("last_measured_on", "plan__opened_on"))


def next_due_q(
    *,
    before: datetime.date | None = None,
    on_or_after: datetime.date | None = None,
    on_or_before: datetime.date | None = None,
) -> models.Q:
    """A filter on a ``with_due_from`` queryset by next due date (``next_due_on``,
    computed in the database): one range on ``due_from`` per frequency, so an index
    or a single pass answers it, whatever the number of results."""
    either = models.Q(pk__in=[])
    # Each known frequency, and any other at the default interval (as _frequency_days).
    groups = [(models.Q(frequency=f), d) for f, d in Indicator.FREQUENCY_DAYS.items()]
    groups.append((~models.Q(frequency__in=list(Indicator.FREQUENCY_DAYS)), _frequency_days("")))
    for this, days in groups:
        interval = datetime.timedelta(days=days)
        if before is not None:
            this &= models.Q(due_from__lt=before - interval)
        if on_or_after is not None:
            this &= models.Q(due_from__gte=on_or_after - interval)
        if on_or_before is not None:
            this &= models.Q(due_from__lte=on_or_before - interval)
        either |= this
    return either


class Measurement(models.Model):
    """One result for one indicator on one date: a re-audit, an incident panel
    outcome, a KPI report or an imported row. Proportions keep their numerator and
    denominator; ``value`` is always stored so charts and verdicts read one column."""

    class Source(models.TextChoices):
        RE_AUDIT = "re_audit", "Re-audit"
        INCIDENT_PANEL = "incident_panel", "Incident panel"
        KPI_REPORT = "kpi_report", "KPI report"
        IMPORT = "import", "Spreadsheet import"

    indicator = models.ForeignKey(Indicator, on_delete=models.CASCADE, related_name="measurements")
    measured_on = models.DateField("audit date")
    numerator = models.PositiveIntegerField(null=True, blank=True)
    denominator = models.PositiveIntegerField(null=True, blank=True)
    value = models.DecimalField(max_digits=15, decimal_places=3)
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="measurements"
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.RE_AUDIT)
    notes = models.TextField(max_length=2000, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    import_batch = models.ForeignKey(
        "ImportBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="measurements"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-measured_on", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["indicator", "measured_on"], name="unique_measurement_per_indicator_date"
            )
        ]

    def __str__(self) -> str:
        return f"{self.indicator} on {self.measured_on}: {self.value}"

    @staticmethod
    def compute_value(
        *, indicator: Indicator, numerator: int | None, denominator: int | None, value
    ) -> Decimal:
        """The stored value: a percentage for "%" proportions, a fraction for other
        proportions, otherwise the value as typed."""
        if indicator.measure_type == Indicator.MeasureType.PROPORTION:
            scale = Decimal(100) if indicator.unit == "%" else Decimal(1)
            raw = Decimal(numerator) * scale / Decimal(denominator)
        else:
            raw = Decimal(value)
        return raw.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)

    def value_display(self) -> str:
        text = f"{self.value.normalize():f}"
        if self.indicator.unit == "%":
            text = f"{self.value.quantize(Decimal('0.1')):f}%"
        elif self.indicator.unit:
            text = f"{text} {self.indicator.unit_for(self.value)}"
        if self.denominator is not None:
            text += f" ({self.numerator} of {self.denominator})"
        return text

    @property
    def meets_target(self) -> bool:
        return self.indicator.meets_target(self.value)


def _evidence_name(instance: EvidenceItem, filename: str) -> str:
    # The stored name is random: the uploader's name never reaches the file system.
    return f"evidence/{uuid.uuid4().hex}{instance.file_extension}"


def _import_name(instance: ImportBatch, filename: str) -> str:
    return f"imports/{uuid.uuid4().hex}.{instance.kind}"


class EvidenceItem(models.Model):
    """Evidence on a plan: supervision records, panel outcomes, observations... with an
    optional file whose type was checked by its content (``core/files.py``)."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="evidence_items")
    kind = models.CharField(max_length=20, choices=EvidenceKind.choices)
    title = models.CharField(max_length=200)
    occurred_on = models.DateField("date")
    description = models.TextField(max_length=3000, blank=True)
    file = models.FileField(
        storage=get_private_storage, upload_to=_evidence_name, max_length=200, blank=True
    )
    original_name = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=120, blank=True)
    file_extension = models.CharField(max_length=8, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-occurred_on", "-pk"]

    def __str__(self) -> str:
        return self.title

    @property
    def has_file(self) -> bool:
        return bool(self.file)

    def download_name(self) -> str:
        stem = PurePath(self.original_name).stem or "evidence"
        return f"{stem}{self.file_extension}"


class ImportBatchQuerySet(models.QuerySet):
    def stuck(self, limits: stuck.Cutoffs) -> ImportBatchQuerySet:
        """Batches being checked or imported whose task was lost or died (core/stuck.py)."""
        return self.filter(status__in=ImportBatch.WORKING).filter(
            models.Q(started_at__isnull=True, progress_at__lt=limits.queued)
            | models.Q(started_at__isnull=False, progress_at__lt=limits.started)
        )


class ImportBatch(models.Model):
    """A spreadsheet between upload and commit: the file (private storage), where
    validation has got to, and what it found. Validation and commit run as tasks; a
    task that was lost or died is found by the "recover_stuck_work" sweep."""

    class Status(models.TextChoices):
        VALIDATING = "validating", "Checking"
        VALID = "valid", "Ready to import"
        INVALID = "invalid", "Problems found"
        COMMITTING = "committing", "Importing"
        COMMITTED = "committed", "Imported"
        FAILED = "failed", "Failed"

    WORKING = (Status.VALIDATING, Status.COMMITTING)
    # What the page says of a batch whose task was lost or died: one transaction commits
    # every row or none, so whatever step it stopped at, nothing was imported.
    STOPPED = "The import stopped before finishing; nothing was imported. You can try again."

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="import_batches")
    file = models.FileField(storage=get_private_storage, upload_to=_import_name, max_length=200)
    kind = models.CharField(max_length=4, choices=[("csv", "CSV"), ("xlsx", "XLSX")])
    original_name = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.VALIDATING)
    total_rows = models.PositiveIntegerField(default=0)
    # Progress (these two counters) is written many times while a task runs; it is not
    # history-worthy, so it is excluded from history and updated with plain UPDATEs.
    processed_rows = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    preview = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Who confirmed the import: the commit (or its retry) imports in their name.
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    committed_at = models.DateTimeField(null=True, blank=True)
    # The task of the current step (core/stuck.py): when its run started (None while
    # queued), how many runs have started, and its last sign of life. Operational, like
    # the counters: excluded from history.
    started_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    progress_at = models.DateTimeField(default=timezone.now)
    # Why it failed, for the person: shown on the page beside "Try again".
    failure = models.CharField(max_length=300, blank=True)
    history = HistoricalRecords(
        excluded_fields=[
            "total_rows",
            "processed_rows",
            "preview",
            "errors",
            "started_at",
            "attempts",
            "progress_at",
            "failure",
        ]
    )

    objects = ImportBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "import batches"
        indexes = [
            # The recovery sweep reads only batches at work: a small index, however
            # many imports are kept.
            models.Index(
                fields=["progress_at"],
                condition=models.Q(status__in=["validating", "committing"]),
                name="importbatch_working",
            )
        ]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.original_name})"

    @property
    def is_working(self) -> bool:
        return self.status in self.WORKING

    @property
    def is_stuck(self) -> bool:
        """Working, but its task was lost or died: nothing is running on it."""
        return self.is_working and stuck.is_stuck(
            started=self.started_at is not None, progress_at=self.progress_at
        )

    @property
    def is_running(self) -> bool:
        """A task is (or will shortly be) working on it: the page keeps polling."""
        return self.is_working and not self.is_stuck

    @property
    def can_retry(self) -> bool:
        return self.status == self.Status.FAILED or self.is_stuck

    @property
    def status_label(self) -> str:
        return "Stopped" if self.is_stuck else self.get_status_display()

    @property
    def failure_message(self) -> str:
        return self.failure or (self.STOPPED if self.is_stuck else "")

    @property
    def percent_done(self) -> int:
        if not self.total_rows:
            return 0
        return min(100, round(100 * self.processed_rows / self.total_rows))


class MonitoringPeriod(models.Model):
    """Routine monitoring after a governance group stepped a plan down: which
    indicators (or audit theme) are watched, the floor of each, until when, and who is
    told at once when a result deteriorates. Opened by ``services.start_monitoring``."""

    class Status(models.TextChoices):
        OPEN = "open", "Monitoring"
        ENDED = "ended", "Ended without deterioration"
        # Ended with fewer results than its indicators' frequencies call for: the
        # governance group decides (extend it, or close the plan with a rationale).
        SHORT = "short", "Ended without enough monitoring data"
        CLOSED_SHORT = "closed_short", "Plan closed by the group without enough monitoring data"
        REOPENED = "reopened", "Plan re-opened after deterioration"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="monitoring_periods")
    audit_theme = models.ForeignKey(
        AuditTheme,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="monitoring_periods",
    )
    starts_on = models.DateField()
    ends_on = models.DateField()
    escalate_to = models.JSONField(
        default=list, blank=True, help_text="Extra addresses told at once of deterioration."
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # Why it ended or was re-opened, in full, with the triggering results (a history
    # reason holds only 100 characters).
    outcome_note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-starts_on", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan"],
                condition=models.Q(status="open"),
                name="one_open_monitoring_period_per_plan",
            )
        ]

    def __str__(self) -> str:
        return f"Monitoring {self.plan.reference} until {self.ends_on}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    def has_ended(self, today: datetime.date | None = None) -> bool:
        return (today or timezone.localdate()) > self.ends_on


class MonitoredIndicator(models.Model):
    """One indicator watched in a monitoring period: its floor, and the reference
    values of its sustained phase, frozen when monitoring started. Limits are never
    recalculated from monitoring data (SPC.md §6.2)."""

    period = models.ForeignKey(MonitoringPeriod, on_delete=models.CASCADE, related_name="monitored")
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="+")
    floor = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    reference_values = models.JSONField(default=list, blank=True)
    reference_from = models.DateField(null=True, blank=True)
    reference_to = models.DateField(null=True, blank=True)
    reference_mean = models.DecimalField(max_digits=15, decimal_places=4, null=True, blank=True)
    reference_lower = models.DecimalField(max_digits=15, decimal_places=4, null=True, blank=True)
    reference_upper = models.DecimalField(max_digits=15, decimal_places=4, null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["indicator__position", "indicator_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["period", "indicator"], name="unique_monitored_indicator"
            )
        ]

    def __str__(self) -> str:
        return f"{self.indicator} in {self.period}"

    def breaches_floor(self, value: Decimal) -> bool:
        """Beyond the floor, on the wrong side: below it when higher is better, above it
        when lower is better. A result on the floor holds."""
        if self.floor is None:
            return False
        if self.indicator.direction == Indicator.Direction.HIGHER:
            return value < self.floor
        return value > self.floor

    def floor_display(self) -> str:
        if self.floor is None:
            return "No floor"
        sign = "≥" if self.indicator.direction == Indicator.Direction.HIGHER else "≤"
        text = f"{self.floor.normalize():f}"
        unit = self.indicator.unit
        return f"{sign} {text}%" if unit == "%" else f"{sign} {text} {unit}".rstrip()


class Deterioration(models.Model):
    """A result in a monitoring period that breached its floor or completed an SPC
    concern rule against the frozen limits. Found by ``monitoring.find_deteriorations``,
    recorded and escalated by ``services.check_monitoring``; one row per rule per
    result, so rechecking never records (or emails) the same thing twice."""

    class Kind(models.TextChoices):
        FLOOR = "floor", "Below the monitoring floor"
        SPC = "spc", "SPC concern signal"
        # Below the Making Data Count minimum for limits: the run-chart rules (Anhøj).
        RUN = "run", "Run-chart concern signal"
        REPEAT = "repeat", "Repeat audit finding"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACTED_ON = "acted_on", "Plan re-opened"

    period = models.ForeignKey(
        MonitoringPeriod, on_delete=models.CASCADE, related_name="deteriorations"
    )
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="+")
    measurement = models.ForeignKey(
        Measurement, on_delete=models.PROTECT, related_name="deteriorations"
    )
    kind = models.CharField(max_length=6, choices=Kind.choices)
    rule = models.CharField(max_length=20)  # "floor", or the engine's code: "astro_lo"...
    severity = models.CharField(max_length=30, blank=True)
    explanation = models.TextField()
    detected_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    history = HistoricalRecords()

    class Meta:
        ordering = ["detected_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["period", "measurement", "rule"], name="unique_deterioration_rule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.measurement}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class Annotation(models.Model):
    """A dated note on an indicator's chart: a PDSA cycle, a process change, anything
    that helps a reader see why the data moved. A recalculation of the process limits
    (a "rebase") is an annotation too, of its own kind, whose date is the first result
    of the new phase and whose text is the documented reason; only
    ``services.recalculate_limits`` writes one, after checking that Making Data Count's
    rules allow it. Shown on every chart of the indicator as a numbered flag and listed
    under it."""

    class Kind(models.TextChoices):
        NOTE = "note", "Note"
        PDSA = "pdsa", "PDSA cycle"
        CHANGE = "change", "Process change"
        REBASE = "rebase", "Limits recalculated"

    # The kinds anyone who may edit the plan can add; REBASE has its own service.
    NOTE_KINDS = (Kind.NOTE, Kind.PDSA, Kind.CHANGE)

    indicator = models.ForeignKey(Indicator, on_delete=models.CASCADE, related_name="annotations")
    noted_on = models.DateField("date")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.NOTE)
    text = models.TextField(max_length=1000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["noted_on", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["indicator", "noted_on"],
                condition=models.Q(kind="rebase"),
                name="one_rebase_per_indicator_date",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.indicator}, {self.noted_on}"

    @property
    def is_rebase(self) -> bool:
        return self.kind == self.Kind.REBASE


# Audit tools and the audits conducted with them (audits/tools/models.py).
from audits.tools.models import *  # noqa: E402, F403
