"""Locations, people, plans, closure criteria, indicators and actions.

The lifecycle table lives in ``plans/lifecycle.py``; every state change goes through
``plans/services.py``.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from simple_history.models import HistoricalRecords


class Location(models.Model):
    """A registered service: a care home, a home-care branch, a community team."""

    class Kind(models.TextChoices):
        CARE_HOME = "care_home", "Care home"
        NURSING_HOME = "nursing_home", "Nursing home"
        HOME_CARE = "home_care", "Home care"
        SUPPORTED_LIVING = "supported_living", "Supported living"
        COMMUNITY = "community", "NHS community service"
        OTHER = "other", "Other"

    name = models.CharField(max_length=120, unique=True)
    cqc_location_id = models.CharField(
        "CQC location ID",
        max_length=20,
        blank=True,
        validators=[RegexValidator(r"^1-\d{6,12}$", "A CQC location ID looks like 1-123456789.")],
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CARE_HOME)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cqc_location_id"],
                condition=~Q(cqc_location_id=""),
                name="unique_cqc_location_id",
            )
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who signs in. The role decides what they may do; managers and viewers
    see only their own locations (see ``plans/access.py``)."""

    class Role(models.TextChoices):
        QUALITY_LEAD = "quality_lead", "Quality lead"
        MANAGER = "manager", "Registered / service manager"
        GOVERNANCE_MEMBER = "governance_member", "Governance group member"
        VIEWER = "viewer", "Viewer (read only)"
        ADMINISTRATOR = "administrator", "Administrator"

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    job_title = models.CharField(max_length=120, blank=True)
    locations = models.ManyToManyField(Location, blank=True, related_name="staff")
    # Opting out stops only the weekly digest; escalations and alerts always go out.
    weekly_digest = models.BooleanField(
        "weekly digest email",
        default=True,
        help_text="A Monday email of what needs your attention. Escalations are always sent.",
    )
    # Moved on when the role or a group membership changes (qip_portal/accounts/sessions.py):
    # it is part of the hash Django checks on every request, so every session signed in
    # before the change ends.
    session_version = models.PositiveIntegerField(default=0, editable=False)
    history = HistoricalRecords(
        excluded_fields=["password", "last_login", "session_version"], m2m_fields=[locations]
    )

    class Meta:
        ordering = ["first_name", "last_name", "username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def save(self, *args, **kwargs):
        # The session version moves on only by a direct update (qip_portal/accounts/sessions.py),
        # so a copy loaded before it moved must not write the old value back.
        adding = self._state.adding or kwargs.get("force_insert")
        if not adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "session_version"
            ]
        super().save(*args, **kwargs)

    def _get_session_auth_hash(self, secret=None):
        """Django's session hash (of the password), with the session version mixed in
        once it has moved on; at 0 it is Django's own, so no session ends on upgrade."""
        value = self.password
        if self.session_version:
            value = f"{self.password}:{self.session_version}"
        return salted_hmac(
            "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
            value,
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    # What each role may do, in one place; the apps' access functions read these.

    @property
    def sees_all_locations(self) -> bool:
        """Quality leads, administrators and governance members read every location."""
        return self.role in {
            self.Role.QUALITY_LEAD,
            self.Role.ADMINISTRATOR,
            self.Role.GOVERNANCE_MEMBER,
        }

    @property
    def is_organisation_lead(self) -> bool:
        """Quality leads and administrators: open plans, set criteria, prepare closure
        reports, share learning across locations."""
        return self.role in {self.Role.QUALITY_LEAD, self.Role.ADMINISTRATOR}

    @property
    def may_write_plans(self) -> bool:
        """Organisation leads and managers (at their locations) change plans' records:
        actions, results, evidence, learning. Viewers and governance members read."""
        return self.is_organisation_lead or self.role == self.Role.MANAGER

    @property
    def is_governance_member(self) -> bool:
        return self.role == self.Role.GOVERNANCE_MEMBER


class Theme(models.Model):
    """What a plan is about (safeguarding, care planning, medicines...)."""

    name = models.CharField(max_length=80, unique=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class KeyQuestion(models.TextChoices):
    SAFE = "safe", "Safe"
    EFFECTIVE = "effective", "Effective"
    CARING = "caring", "Caring"
    RESPONSIVE = "responsive", "Responsive"
    WELL_LED = "well_led", "Well-led"


class QualityStatement(models.Model):
    """A CQC single assessment framework quality statement, under one key question."""

    key_question = models.CharField(max_length=12, choices=KeyQuestion.choices)
    name = models.CharField(max_length=120)
    history = HistoricalRecords()

    class Meta:
        ordering = ["key_question", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["key_question", "name"], name="unique_quality_statement"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_key_question_display()}: {self.name}"


class Regulation(models.Model):
    """A regulation of the Health and Social Care Act 2008 (Regulated Activities)
    Regulations 2014, e.g. Regulation 13."""

    number = models.PositiveSmallIntegerField(unique=True)
    title = models.CharField(max_length=160)
    history = HistoricalRecords()

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"Regulation {self.number}: {self.title}"


class PlanReferenceCounter(models.Model):
    """Last number handed out per year, so a reference is never reused even if a
    plan is withdrawn. Rows are locked while a number is taken."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class PlanQuerySet(models.QuerySet):
    def live_or_monitoring(self) -> PlanQuerySet:
        return self.filter(status__in=[Plan.Status.LIVE, Plan.Status.MONITORING])

    def stale(self, now: datetime.datetime | None = None) -> PlanQuerySet:
        now = now or timezone.now()
        cutoff = now - datetime.timedelta(days=settings.STALE_PLAN_DAYS)
        return self.filter(status__in=Plan.OPEN_STATUSES, last_activity_at__lt=cutoff)

    def with_overdue_actions(self, today: datetime.date | None = None) -> PlanQuerySet:
        today = today or timezone.localdate()
        return self.filter(
            actions__due_date__lt=today,
            actions__status__in=[Action.Status.OPEN, Action.Status.IN_PROGRESS],
        ).distinct()


class Plan(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        CLOSURE_REVIEW = "closure_review", "Closure review"
        MONITORING = "monitoring", "Monitoring"
        CLOSED = "closed", "Closed"
        WITHDRAWN = "withdrawn", "Withdrawn"

    OPEN_STATUSES = (Status.DRAFT, Status.LIVE, Status.CLOSURE_REVIEW, Status.MONITORING)
    FINAL_STATUSES = (Status.CLOSED, Status.WITHDRAWN)

    reference = models.CharField(max_length=20, unique=True, editable=False)
    title = models.CharField(max_length=200)
    summary = models.TextField(max_length=5000)
    theme = models.ForeignKey(Theme, on_delete=models.PROTECT, related_name="plans")
    locations = models.ManyToManyField(Location, related_name="plans")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_plans"
    )
    likelihood = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="1 (rare) to 5 (almost certain)",
    )
    impact = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="1 (negligible) to 5 (catastrophic)",
    )
    # Denormalised likelihood x impact so the register can sort and filter on it.
    risk_score = models.PositiveSmallIntegerField(editable=False, default=1)
    key_questions = models.JSONField("CQC key questions", default=list, blank=True)
    quality_statements = models.ManyToManyField(QualityStatement, blank=True, related_name="plans")
    regulations = models.ManyToManyField(Regulation, blank=True, related_name="plans")
    opened_on = models.DateField(default=timezone.localdate)
    target_date = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    status_changed_at = models.DateTimeField(default=timezone.now)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_plans"
    )
    recurrence_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="recurrences"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Kept up to date by every service that touches the plan: the stale flag reads it.
    last_activity_at = models.DateTimeField(default=timezone.now)
    # Derived, kept by ``audits.services`` (each result, and the nightly sweep): the date
    # every indicator had met its closure criteria, or None. A live plan with a date is
    # "ready for closure review" on the home page and in the register.
    criteria_met_since = models.DateField(null=True, blank=True, editable=False)
    history = HistoricalRecords(
        m2m_fields=[locations, quality_statements, regulations],
        excluded_fields=["last_activity_at", "criteria_met_since"],
    )

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_on", "-reference"]
        indexes = [
            models.Index(fields=["status", "last_activity_at"]),
            models.Index(fields=["risk_score"]),
            # The register's default order (newest first), so a page is an index scan.
            models.Index(fields=["-opened_on", "-reference"], name="plan_register_order"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("plans:detail", args=[self.reference])

    @property
    def risk_level(self) -> str:
        # NHS 5x5 risk matrix bands.
        if self.risk_score >= 15:
            return "Extreme"
        if self.risk_score >= 8:
            return "High"
        if self.risk_score >= 4:
            return "Moderate"
        return "Low"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    def age_days(self, today: datetime.date | None = None) -> int:
        return ((today or timezone.localdate()) - self.opened_on).days

    def is_stale(self, now: datetime.datetime | None = None) -> bool:
        now = now or timezone.now()
        limit = datetime.timedelta(days=settings.STALE_PLAN_DAYS)
        return self.status in self.OPEN_STATUSES and now - self.last_activity_at > limit

    def is_past_target(self, today: datetime.date | None = None) -> bool:
        return not self.is_final and (today or timezone.localdate()) > self.target_date

    def key_question_labels(self) -> list[str]:
        labels = dict(KeyQuestion.choices)
        return [labels.get(k, k) for k in self.key_questions]


class Trigger(models.Model):
    """What made the plan necessary. A plan has one or more."""

    class Kind(models.TextChoices):
        INCIDENT = "incident", "Incident"
        AUDIT = "audit", "Audit"
        SAFEGUARDING_ALERT = "safeguarding_alert", "Safeguarding alert"
        COMPLAINT = "complaint", "Complaint"
        CQC_INSPECTION = "cqc_inspection", "CQC inspection"
        COMMISSIONER_VISIT = "commissioner_visit", "Commissioner visit"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="triggers")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    reference = models.CharField(max_length=100, blank=True)
    occurred_on = models.DateField("date")
    description = models.TextField(max_length=2000)
    history = HistoricalRecords()

    class Meta:
        ordering = ["occurred_on", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}".strip()


class SignOffLevel(models.IntegerChoices):
    REGISTERED_MANAGER = 1, "Registered manager"
    QUALITY_LEAD = 2, "Quality lead"
    GOVERNANCE_GROUP = 3, "Governance group"
    BOARD = 4, "Board"


class EvidenceKind(models.TextChoices):
    RE_AUDIT = "re_audit", "Re-audit"
    INCIDENT_PANEL = "incident_panel", "Incident panel outcome"
    SUPERVISION = "supervision", "Supervision record"
    TRAINING = "training", "Training record"
    OBSERVATION = "observation", "Observation of practice"
    FEEDBACK = "feedback", "Feedback from people using the service"
    POLICY = "policy", "Policy or procedure"
    OTHER = "other", "Other"


class ClosureCriteria(models.Model):
    """The contract agreed before a plan goes live: what closing it will take.

    Locked at activation; a later revision needs a reason, kept in history and shown
    on the closure report."""

    plan = models.OneToOneField(Plan, on_delete=models.CASCADE, related_name="criteria")
    success_in_practice = models.TextField("what success looks like in practice", max_length=3000)
    sustain_months = models.PositiveSmallIntegerField(
        "sustain period (months)", validators=[MinValueValidator(1), MaxValueValidator(36)]
    )
    min_reaudits = models.PositiveSmallIntegerField(
        "minimum re-audits inside the window",
        validators=[MinValueValidator(1), MaxValueValidator(52)],
    )
    required_evidence = models.JSONField(
        "evidence required before closure", default=list, blank=True
    )
    sign_off_level = models.PositiveSmallIntegerField(
        choices=SignOffLevel.choices, default=SignOffLevel.GOVERNANCE_GROUP
    )
    locked_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "closure criteria"

    def __str__(self) -> str:
        return f"Closure criteria for {self.plan.reference}"

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None

    def required_evidence_labels(self) -> list[str]:
        labels = dict(EvidenceKind.choices)
        return [labels.get(k, k) for k in self.required_evidence]


class Indicator(models.Model):
    class MeasureType(models.TextChoices):
        PROPORTION = "proportion", "Proportion (numerator / denominator)"
        COUNT = "count", "Count"
        RATE = "rate", "Rate"
        SCORE = "score", "Score"

    class Direction(models.TextChoices):
        HIGHER = "higher", "Higher is better"
        LOWER = "lower", "Lower is better"

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", "Weekly"
        FORTNIGHTLY = "fortnightly", "Fortnightly"
        MONTHLY = "monthly", "Monthly"
        QUARTERLY = "quarterly", "Quarterly"

    FREQUENCY_DAYS = {"weekly": 7, "fortnightly": 14, "monthly": 31, "quarterly": 92}

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="indicators")
    name = models.CharField(max_length=160)
    measure_type = models.CharField(max_length=12, choices=MeasureType.choices)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    target = models.DecimalField(max_digits=12, decimal_places=3)
    unit = models.CharField(
        max_length=30, blank=True, help_text='e.g. "%", "alerts", "per 1,000 bed days"'
    )
    frequency = models.CharField(
        max_length=12, choices=Frequency.choices, default=Frequency.MONTHLY
    )
    position = models.PositiveSmallIntegerField(default=0)
    # The date of the latest result: derived, kept by ``audits.services`` each time
    # results are logged, corrected or imported (recomputed from the results, never
    # counted up), so the re-audits due can be counted without reading every result.
    # Not in history: the results themselves are.
    last_measured_on = models.DateField(null=True, blank=True, editable=False)
    history = HistoricalRecords(excluded_fields=["last_measured_on"])

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name

    def meets_target(self, value: Decimal) -> bool:
        """On the target counts as met (the contract says "at least" / "at most")."""
        if self.direction == self.Direction.HIGHER:
            return value >= self.target
        return value <= self.target

    def unit_for(self, value) -> str:
        """The unit as written after ``value``: "1 alert", not "1 alerts" (only a
        one-word unit ending in s is made singular: "falls per 1,000 bed days" stays)."""
        unit = self.unit
        if value is not None and float(value) == 1 and unit.endswith("s") and " " not in unit:
            return unit[:-1]
        return unit

    def target_display(self) -> str:
        sign = "≥" if self.direction == self.Direction.HIGHER else "≤"
        target = f"{self.target.normalize():f}"
        if self.unit == "%":
            return f"{sign} {target}%"
        return f"{sign} {target} {self.unit_for(self.target)}".rstrip()


class Action(models.Model):
    """Something someone will do. "Completed" (done) is kept apart from "verified
    effective" (shown to have worked), because only the second closes a risk."""

    class Status(models.TextChoices):
        OPEN = "open", "Not started"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="actions")
    description = models.TextField(max_length=2000)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="actions"
    )
    due_date = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    completed_on = models.DateField(null=True, blank=True)
    completion_note = models.TextField("what was done", max_length=3000, blank=True)
    verified_effective_on = models.DateField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    effectiveness_note = models.TextField(
        "how effectiveness was verified", max_length=3000, blank=True
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["due_date", "pk"]
        indexes = [
            models.Index(fields=["status", "due_date"]),
            # Overdue actions of a plan (register column, filter and home counts).
            models.Index(
                fields=["plan", "due_date"],
                condition=~models.Q(status="completed"),
                name="action_open_by_plan",
            ),
        ]

    def __str__(self) -> str:
        return self.description[:60]

    @property
    def is_completed(self) -> bool:
        return self.status == self.Status.COMPLETED

    @property
    def is_verified_effective(self) -> bool:
        return self.verified_effective_on is not None

    def is_overdue(self, today: datetime.date | None = None) -> bool:
        return not self.is_completed and self.due_date < (today or timezone.localdate())
