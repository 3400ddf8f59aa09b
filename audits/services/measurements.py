"""Results and evidence: logging a result, correcting one, adding evidence, and the
two kept dates that follow every result (an indicator's latest result, a plan's
"criteria met since")."""

from __future__ import annotations

import datetime

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Case, DateField, Max, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.formats import date_format

from audits.models import (
    EvidenceItem,
    Measurement,
    MonitoringPeriod,
)
from audits.verdicts import plans_meeting_criteria
from core.files import FileType
from core.history import save_with_history
from core.queueing import after_commit
from plans.models import Indicator, Plan, User
from plans.services import touch_plan


class MeasurementRefused(Exception):
    def __init__(self, reasons: list[str]):
        super().__init__(" ".join(reasons))
        self.reasons = reasons


_save = save_with_history


def _check_plan_open(plan: Plan) -> None:
    if plan.is_final:
        raise MeasurementRefused(["A closed or withdrawn plan cannot take new results."])


def refresh_last_measured(indicator_ids) -> None:
    """Set each indicator's ``last_measured_on`` from its results (one statement).
    Called, in the same transaction, by everything here that adds or moves a result."""
    latest = (
        Measurement.objects.filter(indicator=OuterRef("pk"))
        .order_by()
        .values("indicator")
        .annotate(latest=Max("measured_on"))
        .values("latest")
    )
    if not isinstance(indicator_ids, QuerySet):
        indicator_ids = list(indicator_ids)
    Indicator.objects.filter(pk__in=indicator_ids).update(
        last_measured_on=Subquery(latest)  # history-safe: derived, excluded from history
    )


def store_criteria_met(plans: list[Plan], met: dict) -> int:
    """Leave each plan's ``criteria_met_since`` as ``met`` says (None where absent),
    writing only what changed: one statement however many plans and dates (a CASE over
    the changed plans). Returns the number of plans changed."""
    changed: dict[int, datetime.date | None] = {}
    for plan in plans:
        since = met[plan.pk].since if plan.pk in met else None
        if plan.criteria_met_since != since:
            changed[plan.pk] = since
            plan.criteria_met_since = since
    if changed:
        # Derived, excluded from history:
        Plan.objects.filter(pk__in=list(changed)).update(  # history-safe
            # Cast: PostgreSQL would read a CASE of parameters (and NULLs) as text.
            criteria_met_since=Cast(
                Case(
                    *(
                        When(pk=pk, then=Value(since, output_field=DateField()))
                        for pk, since in changed.items()
                    ),
                    output_field=DateField(),
                ),
                output_field=DateField(),
            )
        )
    return len(changed)


def refresh_criteria_met(plan: Plan) -> None:
    """Re-judge one plan's criteria after its results changed (three queries): any plan
    still open, so a plan returned or re-opened to live carries a current date."""
    if not plan.is_final:
        store_criteria_met([plan], plans_meeting_criteria([plan]))


@transaction.atomic
def record_measurement(*, plan: Plan, by: User, fields: dict) -> Measurement:
    """Store one validated result (``MeasurementForm.measurement_fields()``).

    The unique constraint on indicator and date is the last word when two people log
    the same audit at once: the second is refused, nothing half-saved."""
    # One writer per plan at a time: the kept dates (last result, criteria met) are
    # recomputed from the results, and must see every committed result.
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    _check_plan_open(plan)
    indicator = fields["indicator"]
    if indicator.plan_id != plan.pk:
        raise MeasurementRefused(["That indicator belongs to another plan."])
    # The form checks this too; the service is the last word for every caller.
    if fields["measured_on"] > timezone.localdate():
        raise MeasurementRefused(["A result cannot be dated in the future."])
    measurement = Measurement(recorded_by=by, **fields)
    measurement.value = Measurement.compute_value(
        indicator=indicator,
        numerator=fields.get("numerator"),
        denominator=fields.get("denominator"),
        value=fields.get("value"),
    )
    try:
        with transaction.atomic():
            _save(measurement, by=by, reason=f"{measurement.get_source_display()} logged")
    except IntegrityError:
        raise MeasurementRefused(
            [f"“{indicator.name}” already has a result for {date_format(measurement.measured_on)}."]
        ) from None
    refresh_last_measured([indicator.pk])
    refresh_criteria_met(plan)
    touch_plan(plan.pk)
    queue_monitoring_check(plan)
    return measurement


@transaction.atomic
def record_audit(
    *,
    plan: Plan,
    by: User,
    results: list[dict],
    evidence: dict | None = None,
    upload: UploadedFile | None = None,
    file_type: FileType | None = None,
) -> list[Measurement]:
    """One audit's results for several of a plan's indicators (each as
    ``record_measurement`` takes it), with its evidence recorded once: all or nothing.
    If any result is refused, nothing is saved, the evidence and its file included."""
    if not results:
        raise MeasurementRefused(["Enter at least one result."])
    saved = [record_measurement(plan=plan, by=by, fields=fields) for fields in results]
    if evidence is not None:
        # Last, so that a refused result never leaves a stored file behind.
        add_evidence(plan=plan, by=by, fields=evidence, upload=upload, file_type=file_type)
    return saved


@transaction.atomic
def correct_measurement(
    *, measurement: Measurement, by: User, fields: dict, reason: str
) -> Measurement:
    """Change a result. The previous values stay in history with ``reason``."""
    plan = Plan.objects.select_for_update().get(pk=measurement.indicator.plan_id)
    _check_plan_open(plan)
    reason = (reason or "").strip()
    if not reason:
        raise MeasurementRefused(["Say why the result is being corrected."])
    locked = Measurement.objects.select_for_update().get(pk=measurement.pk)
    for name, value in fields.items():
        if name != "source":
            setattr(locked, name, value)
    locked.value = Measurement.compute_value(
        indicator=locked.indicator,
        numerator=locked.numerator,
        denominator=locked.denominator,
        value=fields.get("value"),
    )
    try:
        with transaction.atomic():
            _save(locked, by=by, reason=f"Corrected: {reason}")
    except IntegrityError:
        raise MeasurementRefused(["Another result already exists for that date."]) from None
    refresh_last_measured([locked.indicator_id, measurement.indicator_id])
    refresh_criteria_met(plan)
    touch_plan(plan.pk)
    queue_monitoring_check(plan)
    return locked


@transaction.atomic
def add_evidence(
    *,
    plan: Plan,
    by: User,
    fields: dict,
    upload: UploadedFile | None = None,
    file_type: FileType | None = None,
) -> EvidenceItem:
    """Record an evidence item, with its file (already checked by content) saved under
    a random name in private storage. If the transaction rolls back, the file goes."""
    if plan.is_final:
        raise MeasurementRefused(["A closed or withdrawn plan cannot take new evidence."])
    item = EvidenceItem(plan=plan, uploaded_by=by, **fields)
    if upload is not None:
        if file_type is None:
            raise ValueError("An upload needs the type its content was checked to be.")
        item.original_name = (upload.name or "")[-200:]
        item.content_type = file_type.content_type
        item.file_extension = file_type.extension
        item.size = upload.size
        item.file.save("evidence", upload, save=False)
    try:
        _save(item, by=by, reason="Evidence added")
    except Exception:
        # Do not leave an orphan file behind when the row cannot be written.
        if item.file:
            item.file.delete(save=False)
        raise
    touch_plan(plan.pk)
    return item


def queue_monitoring_check(plan: Plan) -> None:
    """After this transaction commits, check the plan's monitoring for deterioration (a
    task, so the person logging the result is not kept waiting). One query to see
    whether there is a period to check at all. With the broker down the result is still
    saved; the nightly ``audits_deterioration`` sweep checks it."""
    if not MonitoringPeriod.objects.filter(
        plan_id=plan.pk, status=MonitoringPeriod.Status.OPEN
    ).exists():
        return
    from audits.tasks import check_plan_monitoring_task

    after_commit(check_plan_monitoring_task, plan.pk)
