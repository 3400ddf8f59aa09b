"""Everything that changes audits data: one function per change, each in a
transaction, each saving with history (who and why). Tasks are queued only after
commit and receive ids."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.formats import date_format
from simple_history.utils import bulk_create_with_history

from audits import imports
from audits.forms import MeasurementContext, MeasurementForm
from audits.models import (
    AuditTheme,
    Deterioration,
    EvidenceItem,
    ImportBatch,
    IndicatorSchedule,
    Measurement,
    MonitoredIndicator,
    MonitoringPeriod,
)
from audits.verdicts import plans_meeting_criteria
from core import outbox
from core.files import FileType, get_private_storage
from core.freshness import data_changed
from core.history import save_with_history
from core.queueing import after_commit
from core.thresholds import DEFAULT_MONITORING_MONTHS
from plans.models import Indicator, Plan, User
from plans.services import touch_plan

# How many rows between progress updates while an import is checked or committed.
PROGRESS_EVERY = 250
# How many valid rows the preview page shows.
PREVIEW_ROWS = 50


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
    writing only what changed: one statement per distinct date. Returns the number of
    plans changed."""
    changed: dict[datetime.date | None, list[int]] = {}
    for plan in plans:
        since = met[plan.pk].since if plan.pk in met else None
        if plan.criteria_met_since != since:
            changed.setdefault(since, []).append(plan.pk)
            plan.criteria_met_since = since
    for since, ids in changed.items():
        Plan.objects.filter(pk__in=ids).update(
            criteria_met_since=since  # history-safe: derived, excluded from history
        )
    return sum(len(ids) for ids in changed.values())


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


# --- Imports ------------------------------------------------------------------------


def _queue_step(batch: ImportBatch, *, status: str) -> None:
    """Set ``batch`` up for a new run of a step (not saved): nothing started yet."""
    batch.status = status
    batch.processed_rows = 0
    batch.started_at = None
    batch.attempts = 0
    batch.progress_at = timezone.now()
    batch.failure = ""


@transaction.atomic
def start_import(*, plan: Plan, by: User, upload: UploadedFile, kind: str) -> ImportBatch:
    """Keep the uploaded spreadsheet privately and queue its check (a task, after
    commit; if the broker cannot take it, the sweep queues it later). The batch page
    shows progress, then the preview."""
    _check_plan_open(plan)
    batch = ImportBatch(
        plan=plan, created_by=by, kind=kind, original_name=(upload.name or "upload")[-200:]
    )
    _queue_step(batch, status=ImportBatch.Status.VALIDATING)
    batch.file.save("import", upload, save=False)
    _save(batch, by=by, reason="Spreadsheet uploaded")
    from audits.tasks import validate_import_task

    after_commit(validate_import_task, batch.pk)
    return batch


def _claim(batch_id: int, status: str) -> int | None:
    """Take the batch for this run of its task (core/stuck.py): only a batch in
    ``status`` that no run has started. Returns the run's number, or None when there is
    nothing to do (another run has it, or it has moved on)."""
    with transaction.atomic():
        attempts = (
            ImportBatch.objects.select_for_update()
            .filter(pk=batch_id, status=status, started_at__isnull=True)
            .values_list("attempts", flat=True)
            .first()
        )
        if attempts is None:
            return None
        now = timezone.now()
        # Operational fields, excluded from history: a plain UPDATE is right here.
        ImportBatch.objects.filter(pk=batch_id).update(
            started_at=now, progress_at=now, attempts=attempts + 1
        )
    return attempts + 1


def _finish_run(batch_id: int, attempt: int, *, expected: str, **finish) -> ImportBatch:
    """``_finish`` the batch if this run still owns it: still ``expected``, and no newer
    run started since (the sweep may have given up on a slow run and queued another)."""
    with transaction.atomic():
        batch = ImportBatch.objects.select_for_update().get(pk=batch_id)
        if batch.status == expected and batch.attempts == attempt:
            _finish(batch, **finish)
    return batch


@contextlib.contextmanager
def _open_rows(batch: ImportBatch) -> Iterator[Iterator[imports.Row]]:
    with get_private_storage().open(batch.file.name, "rb") as handle:
        yield imports.read_rows(handle.file, batch.kind)


def _set_progress(batch_id: int, attempt: int, **counters) -> None:
    # The counters and progress_at are excluded from history, so a plain UPDATE is
    # correct; it runs outside the commit transaction only for validation (see
    # commit_import). Only the run that owns the batch reports.
    ImportBatch.objects.filter(pk=batch_id, attempts=attempt).update(
        progress_at=timezone.now(), **counters
    )


def _check_rows(
    *, batch: ImportBatch, rows: Iterator[imports.Row], progress_of: int | None
) -> tuple[list[dict], list[dict], list[tuple[imports.Row, MeasurementForm]]]:
    """Validate every row with ``MeasurementForm``. Returns (errors, preview, valid).
    ``progress_of``: the run (``_claim``) whose progress is written as rows are checked."""
    context = MeasurementContext.for_plan(batch.plan)
    errors: list[dict] = []
    preview: list[dict] = []
    valid: list[tuple[imports.Row, MeasurementForm]] = []
    seen: dict[tuple[int, object], int] = {}
    count = 0
    for row in rows:
        count += 1
        if row.formula_columns:
            for column in row.formula_columns:
                errors.append(
                    {
                        "row": row.number,
                        "column": column,
                        "message": "This cell holds a formula: type the value itself instead.",
                    }
                )
            continue
        form = MeasurementForm(imports.form_data(row), context=context, allow_import_source=True)
        if not form.is_valid():
            for name, messages in form.errors.items():
                column = next((c for c, f in imports.FIELD_FOR_COLUMN.items() if f == name), name)
                for message in messages:
                    errors.append(
                        {
                            "row": row.number,
                            "column": "" if name == "__all__" else column,
                            "message": message,
                        }
                    )
        else:
            indicator = form.cleaned_data["indicator"]
            key = (indicator.pk, form.cleaned_data["measured_on"])
            if key in seen:
                errors.append(
                    {
                        "row": row.number,
                        "column": "date",
                        "message": f"repeats row {seen[key]}: “{indicator.name}” on "
                        f"{date_format(key[1])} appears twice in the file.",
                    }
                )
            else:
                seen[key] = row.number
                valid.append((row, form))
                if len(preview) < PREVIEW_ROWS:
                    preview.append(_preview_row(row.number, form))
        if progress_of is not None and count % PROGRESS_EVERY == 0:
            _set_progress(batch.pk, progress_of, processed_rows=count)
    if count == 0 and not errors:
        errors.append({"row": 1, "column": "", "message": "The file has no rows under the header."})
    return errors, preview, valid


def _preview_row(number: int, form: MeasurementForm) -> dict:
    data = form.cleaned_data
    value = Measurement.compute_value(
        indicator=data["indicator"],
        numerator=data.get("numerator"),
        denominator=data.get("denominator"),
        value=data.get("value"),
    )
    location = data.get("location")
    return {
        "row": number,
        "indicator": data["indicator"].name,
        "date": date_format(data["measured_on"]),
        "numerator": data.get("numerator"),
        "denominator": data.get("denominator"),
        "value": f"{value.normalize():f}",
        "location": location.name if location else "",
        "notes": data.get("notes", ""),
    }


def _finish(batch: ImportBatch, *, by: User | None, status: str, reason: str, **fields) -> None:
    batch.status = status
    for name, value in fields.items():
        setattr(batch, name, value)
    _save(batch, by=by, reason=reason)


def validate_import(*, batch_id: int) -> ImportBatch:
    """Check every row of an uploaded spreadsheet and store the preview or the errors.
    Changes no measurements. Safe to run any number of times: only a run that claims
    the batch checks it."""
    attempt = _claim(batch_id, ImportBatch.Status.VALIDATING)
    batch = ImportBatch.objects.select_related("plan").get(pk=batch_id)
    if attempt is None:
        return batch
    total = 0
    try:
        with _open_rows(batch) as rows:
            total = sum(1 for _ in rows)
        _set_progress(batch.pk, attempt, total_rows=total, processed_rows=0)
        with _open_rows(batch) as rows:
            errors, preview, valid = _check_rows(batch=batch, rows=rows, progress_of=attempt)
    except imports.ImportFileError as exc:
        errors, preview, valid = [{"row": 1, "column": "", "message": str(exc)}], [], []
    return _finish_run(
        batch_id,
        attempt,
        expected=ImportBatch.Status.VALIDATING,
        by=batch.created_by,
        status=ImportBatch.Status.INVALID if errors else ImportBatch.Status.VALID,
        reason=f"Checked: {len(errors)} problem(s)" if errors else f"Checked: {len(valid)} rows",
        errors=errors,
        preview=preview,
        total_rows=total,
        processed_rows=total,
    )


@transaction.atomic
def queue_import_commit(*, batch: ImportBatch, by: User) -> ImportBatch:
    """Mark a checked batch for import and queue the commit task after this commits.
    Only a batch that was checked and found valid can be committed, and only once."""
    # skip_locked: a batch locked now is being confirmed or imported by someone else.
    locked = ImportBatch.objects.select_for_update(skip_locked=True).filter(pk=batch.pk).first()
    if locked is None or locked.status != ImportBatch.Status.VALID:
        raise MeasurementRefused(["This import has already been used or has problems."])
    _check_plan_open(locked.plan)
    _queue_step(locked, status=ImportBatch.Status.COMMITTING)
    locked.confirmed_by = by
    _finish(locked, by=by, status=ImportBatch.Status.COMMITTING, reason="Import confirmed")
    from audits.tasks import commit_import_task

    after_commit(commit_import_task, locked.pk, by.pk)
    return locked


@transaction.atomic
def retry_import(*, batch: ImportBatch, by: User) -> ImportBatch:
    """Run a failed or stuck import again from its stored file, as ``by``: checked again
    (then the preview, as after the upload); or, if its import had been confirmed,
    imported in full (the commit checks every row again first, so a result logged by
    hand meanwhile cannot become a duplicate). Refused while a task is working on it."""
    # skip_locked: a live commit holds its batch's row until it ends.
    locked = ImportBatch.objects.select_for_update(skip_locked=True).filter(pk=batch.pk).first()
    if locked is None or not locked.can_retry:
        raise MeasurementRefused(["This import is still running or has finished."])
    _check_plan_open(locked.plan)
    from audits.tasks import commit_import_task, validate_import_task

    if locked.confirmed_by_id is not None:
        _queue_step(locked, status=ImportBatch.Status.COMMITTING)
        locked.confirmed_by = by
        _save(locked, by=by, reason="Import tried again")
        after_commit(commit_import_task, locked.pk, by.pk)
    else:
        _queue_step(locked, status=ImportBatch.Status.VALIDATING)
        locked.total_rows = 0
        locked.errors = []
        locked.preview = []
        _save(locked, by=by, reason="Check tried again")
        after_commit(validate_import_task, locked.pk)
    return locked


def commit_import(*, batch_id: int, by_id: int) -> ImportBatch:
    """Create every row's measurement in one transaction, or none.

    The rows are checked again inside the transaction, with the plan row locked, so a
    result logged by hand since the preview cannot become a duplicate. Safe to run any
    number of times: only a run that claims a "committing" batch imports it, and the
    batch's row stays locked until the transaction ends, so the sweep never fails a
    commit that is still running (``audits.sweeps.recover_stuck_imports``)."""
    attempt = _claim(batch_id, ImportBatch.Status.COMMITTING)
    if attempt is None:
        return ImportBatch.objects.get(pk=batch_id)
    by = User.objects.get(pk=by_id)
    batch = ImportBatch.objects.select_related("plan").get(pk=batch_id)
    committing = ImportBatch.Status.COMMITTING
    try:
        with transaction.atomic():
            # The batch first: held from here to the end, even while waiting for the plan.
            locked = ImportBatch.objects.select_for_update().get(pk=batch_id)
            if locked.status != committing or locked.attempts != attempt:
                return locked
            plan = Plan.objects.select_for_update().get(pk=batch.plan_id)
            with _open_rows(batch) as rows:
                errors, _preview, valid = _check_rows(batch=batch, rows=rows, progress_of=None)
            if errors:
                raise _RowsChanged(errors)
            measurements = []
            for _row, form in valid:
                fields = form.measurement_fields()
                fields["source"] = Measurement.Source.IMPORT
                m = Measurement(recorded_by=by, import_batch=batch, **fields)
                m.value = Measurement.compute_value(
                    indicator=fields["indicator"],
                    numerator=fields["numerator"],
                    denominator=fields["denominator"],
                    value=fields["value"],
                )
                measurements.append(m)
            # Every imported row gets its own history record, attributed and explained.
            bulk_create_with_history(
                measurements,
                Measurement,
                batch_size=500,
                default_user=by,
                default_change_reason=f"Imported from {batch.original_name}",
            )
            data_changed()  # bulk writes send no model signals (core.freshness)
            refresh_last_measured({m.indicator_id for m in measurements})
            refresh_criteria_met(plan)
            _finish(
                locked,
                by=by,
                status=ImportBatch.Status.COMMITTED,
                reason=f"Imported {len(measurements)} rows",
                committed_at=timezone.now(),
                processed_rows=len(measurements),
                total_rows=len(measurements),
                progress_at=timezone.now(),
            )
            touch_plan(batch.plan_id)
            queue_monitoring_check(batch.plan)
            batch = locked
    except _RowsChanged as changed:
        batch = _finish_run(
            batch_id,
            attempt,
            expected=committing,
            by=by,
            status=ImportBatch.Status.INVALID,
            reason="Rows no longer valid at import",
            errors=changed.errors,
        )
    except (imports.ImportFileError, IntegrityError) as exc:
        batch = _finish_run(
            batch_id,
            attempt,
            expected=committing,
            by=by,
            status=ImportBatch.Status.FAILED,
            reason="Import failed",
            errors=[{"row": 1, "column": "", "message": f"Nothing was imported: {exc}"}],
            failure="Nothing was imported: the rows could not be saved. You can try again.",
        )
    return batch


class _RowsChanged(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__("rows changed")
        self.errors = errors


# --- Monitoring after step-down ---------------------------------------------------------


class MonitoringRefused(MeasurementRefused):
    """A monitoring period could not be started or changed; ``reasons`` say why."""


# Months a stepped-down plan is monitored unless whoever starts it says otherwise.


def _parse_floor(raw) -> Decimal:
    if raw is None or not str(raw).strip():
        raise MonitoringRefused(["Set a floor for every indicator that will be monitored."])
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise MonitoringRefused([f"“{raw}” is not a number, so it cannot be a floor."]) from None
    if not value.is_finite():
        raise MonitoringRefused([f"“{raw}” is not a number, so it cannot be a floor."])
    return value


def monitoring_problems(
    *,
    plan: Plan,
    floors: dict,
    audit_theme: object = None,
    end_date: datetime.date | None = None,
    starts_on: datetime.date | None = None,
) -> tuple[dict[int, Decimal], datetime.date, list[str]]:
    """Check what a step-down will monitor, once, for the governance decision that
    describes it and for ``start_monitoring`` that opens it: ``floors`` maps this plan's
    indicator ids (int or text) to a floor; with no floors an audit theme must be named;
    the period must end in the future. Returns (floors parsed, the end date, every
    problem in words). Reads the plan's indicators (one query)."""
    today = timezone.localdate()
    reasons: list[str] = []
    indicator_ids = set(plan.indicators.values_list("pk", flat=True))
    parsed: dict[int, Decimal] = {}
    for key, raw in (floors or {}).items():
        try:
            pk = int(key)
        except (TypeError, ValueError):
            pk = None
        if pk not in indicator_ids:
            reasons.append(f"Indicator {key} is not one of this plan's indicators.")
            continue
        try:
            parsed[pk] = _parse_floor(raw)
        except MonitoringRefused as refused:
            reasons.extend(r for r in refused.reasons if r not in reasons)
    named_theme = audit_theme.strip() if isinstance(audit_theme, str) else audit_theme
    if not parsed and not named_theme and not reasons:
        reasons.append("Say what will be monitored: a floor for each indicator, or an audit theme.")
    ends_on = end_date or (starts_on or today) + relativedelta(months=DEFAULT_MONITORING_MONTHS)
    if ends_on <= today:
        reasons.append("The monitoring period must end in the future.")
    return parsed, ends_on, reasons


@transaction.atomic
def start_monitoring(
    *,
    plan: Plan,
    by: User,
    floors: dict[int, Decimal],
    end_date: datetime.date | None = None,
    escalate_to: list[str],
    audit_theme: AuditTheme | str | None = None,
    starts_on: datetime.date | None = None,
) -> MonitoringPeriod:
    """Open the monitoring period of a plan that a governance group has stepped down.

    Contract (called by the governance step-down decision, inside its transaction):

    - ``floors``: indicator id (int, or its text) -> floor (Decimal, or its text), one per
      indicator to watch; every id must be one of ``plan``'s indicators. A result beyond
      the floor (below it when higher is better, above it when lower is better; on it is
      fine) is deterioration. May be empty only when ``audit_theme`` is given: then the
      plan's indicators measured by that theme are watched by SPC rules alone.
    - ``end_date``: the last day of monitoring; default six months from today; must be in
      the future.
    - ``escalate_to``: addresses (e.g. the group that stepped the plan down) told at once
      of deterioration, with the plan's owner and the quality leads.
    - ``audit_theme``: an ``AuditTheme`` or its name (created if new).
    - ``starts_on``: default today; an earlier date only to carry over a period begun
      before the portal was adopted (the demo data). Results before it form the
      reference; results from it on are monitored.
    - The plan must be in closure review or monitoring and have no open period.

    Freezes, per indicator, the reference values and limits of the sustained phase (the
    latest unbroken run on target, first 12 results), which are never recalculated.
    Saves with history attributed to ``by``. Sends no email (the decision does). Raises
    ``MonitoringRefused`` with every reason, having changed nothing."""
    from audits.monitoring import freeze_reference

    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    today = timezone.localdate()
    reasons: list[str] = []
    if locked.status not in (Plan.Status.CLOSURE_REVIEW, Plan.Status.MONITORING):
        reasons.append(
            f"Monitoring starts at step-down; the plan is {locked.get_status_display().lower()}."
        )
    if MonitoringPeriod.objects.filter(plan=locked, status=MonitoringPeriod.Status.OPEN).exists():
        reasons.append("This plan already has an open monitoring period.")
    indicators = {i.pk: i for i in locked.indicators.all()}
    parsed, ends_on, problems = monitoring_problems(
        plan=locked, floors=floors, audit_theme=audit_theme, end_date=end_date, starts_on=starts_on
    )
    reasons.extend(problems)
    theme = audit_theme
    if isinstance(theme, str):
        theme = theme.strip()
        theme = AuditTheme.objects.get_or_create(name=theme[:120])[0] if theme else None
    starts_on = starts_on or today
    addresses = sorted({a.strip() for a in escalate_to or [] if a and a.strip()})
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            reasons.append(f"“{address}” is not an email address.")
    if reasons:
        raise MonitoringRefused(reasons)

    watched = dict(parsed)
    if theme is not None:
        for schedule in IndicatorSchedule.objects.filter(
            indicator__plan=locked, audit_theme=theme
        ).select_related("indicator"):
            watched.setdefault(schedule.indicator_id, None)
    period = MonitoringPeriod(
        plan=locked,
        audit_theme=theme,
        starts_on=starts_on,
        ends_on=ends_on,
        escalate_to=addresses,
        started_by=by,
    )
    _save(period, by=by, reason="Monitoring started at step-down")
    criteria = locked.criteria
    series: dict[int, list[Measurement]] = {pk: [] for pk in watched}
    before = Measurement.objects.filter(indicator_id__in=watched, measured_on__lt=starts_on)
    for m in before.order_by("measured_on", "pk"):
        series[m.indicator_id].append(m)
    for pk, floor in watched.items():
        ref = freeze_reference(
            indicators[pk],
            series[pk],
            sustain_months=criteria.sustain_months,
            min_reaudits=criteria.min_reaudits,
        )
        _save(
            MonitoredIndicator(
                period=period,
                indicator=indicators[pk],
                floor=floor,
                reference_values=ref.values,
                reference_from=datetime.date.fromisoformat(ref.values[0]["on"])
                if ref.values
                else None,
                reference_to=datetime.date.fromisoformat(ref.values[-1]["on"])
                if ref.values
                else None,
                reference_mean=ref.mean,
                reference_lower=ref.lower,
                reference_upper=ref.upper,
            ),
            by=by,
            reason="Floor set and reference frozen at step-down",
        )
    touch_plan(locked.pk)
    return period


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


def _escalation_recipients(period: MonitoringPeriod) -> set[str]:
    recipients = {period.plan.owner.email, *period.escalate_to}
    recipients |= set(
        User.objects.filter(role=User.Role.QUALITY_LEAD, is_active=True).values_list(
            "email", flat=True
        )
    )
    return recipients


def _reconcile(period: MonitoringPeriod) -> None:
    """The plan left monitoring some other way (e.g. the plan page's Re-open button, or
    final closure): bring the period into line, with history saying why."""
    plan = period.plan
    if plan.status == Plan.Status.LIVE:
        opened = list(period.deteriorations.filter(status=Deterioration.Status.OPEN))
        _mark_reopened(period, opened, by=None, note="Plan re-opened")
    else:
        period.status = MonitoringPeriod.Status.ENDED
        period.status_changed_at = timezone.now()
        _save(
            period,
            by=None,
            reason=f"Monitoring ended: the plan is {plan.get_status_display().lower()}",
        )


def _triggering(deteriorations: list[Deterioration]) -> tuple[str, str]:
    """The results behind ``deteriorations``: short ("results #12, #15", for history
    reasons, which hold 100 characters) and in full (for ``outcome_note``)."""
    seen: dict[int, Deterioration] = {}
    for d in deteriorations:
        seen.setdefault(d.measurement_id, d)
    if not seen:
        return "", ""
    short = "result" + ("s" if len(seen) > 1 else "") + " " + ", ".join(f"#{pk}" for pk in seen)
    full = "; ".join(
        f"result #{d.measurement_id} ({d.indicator.name}, "
        f"{date_format(d.measurement.measured_on)}: {d.measurement.value_display()})"
        for d in seen.values()
    )
    return short, full


def _fit(reason: str, suffix: str = "", limit: int = 90) -> str:
    """A history reason within the column's 100 characters (room left for a label
    such as "Re-open: "), keeping ``suffix`` whole."""
    room = limit - len(suffix)
    if len(reason) > room:
        reason = reason[: max(room - 1, 0)].rstrip() + "…"
    return reason + suffix


def _mark_reopened(
    period: MonitoringPeriod, deteriorations: list[Deterioration], *, by: User | None, note: str
) -> None:
    short, full = _triggering(deteriorations)
    period.status = MonitoringPeriod.Status.REOPENED
    period.status_changed_at = timezone.now()
    period.outcome_note = f"{note}. Triggered by {full}." if full else f"{note}."
    _save(period, by=by, reason=_fit("Plan re-opened", f"; triggered by {short}" if short else ""))
    for d in deteriorations:
        d.status = Deterioration.Status.ACTED_ON
        _save(d, by=by, reason="Plan re-opened")


@transaction.atomic
def check_monitoring(*, period_id: int) -> int:
    """Record every new deterioration in an open monitoring period and escalate it at
    once (owner, quality leads, ``escalate_to``) with the rule that fired. One email per
    period per result, whatever rules it broke and however often this runs: rows are
    unique per rule per result, and the outbox key names the period and the result.
    Returns how many new deteriorations were recorded. Safe to run any number of times."""
    from audits.monitoring import find_deteriorations

    period = (
        MonitoringPeriod.objects.select_for_update(of=("self",))
        .select_related("plan__owner")
        .filter(pk=period_id)
        .first()
    )
    if period is None or not period.is_open:
        return 0
    if period.plan.status != Plan.Status.MONITORING:
        _reconcile(period)
        return 0
    monitored = list(period.monitored.select_related("indicator"))
    ids = [w.indicator_id for w in monitored]
    series: dict[int, list[Measurement]] = {pk: [] for pk in ids}
    window = Measurement.objects.filter(
        indicator_id__in=ids, measured_on__gte=period.starts_on, measured_on__lte=period.ends_on
    ).select_related("indicator")
    for m in window.order_by("measured_on", "pk"):
        series[m.indicator_id].append(m)
    known = set(period.deteriorations.values_list("measurement_id", "rule"))
    new: dict[int, list[Deterioration]] = {}
    for watched in monitored:
        for finding in find_deteriorations(watched, series[watched.indicator_id]):
            if (finding.measurement.pk, finding.rule) in known:
                continue
            row = Deterioration(
                period=period,
                indicator=watched.indicator,
                measurement=finding.measurement,
                kind=finding.kind,
                rule=finding.rule,
                severity=finding.severity,
                explanation=finding.explanation,
            )
            _save(row, by=None, reason="Deterioration detected")
            new.setdefault(finding.measurement.pk, []).append(row)
    if new:
        recipients = _escalation_recipients(period)
        for measurement_id, rows in new.items():
            outbox.queue(
                "audits-deterioration",
                key=f"audits-deterioration:{period.pk}:{measurement_id}",
                recipients=recipients,
                context={
                    "plan": period.plan,
                    "period": period,
                    "measurement": rows[0].measurement,
                    "deteriorations": rows,
                },
            )
    return sum(len(rows) for rows in new.values())


def check_plan_monitoring(*, plan_id: int) -> int:
    """Check every open monitoring period of one plan (after a result is logged)."""
    ids = MonitoringPeriod.objects.filter(
        plan_id=plan_id, status=MonitoringPeriod.Status.OPEN
    ).values_list("pk", flat=True)
    return sum(check_monitoring(period_id=pk) for pk in list(ids))


@transaction.atomic
def record_reopening(*, plan: Plan, by: User, reason: str) -> str:
    """Monitoring's part of re-opening a plan after deterioration (the closure workflow,
    ``qip_portal/closure.py``, checks it may happen and moves the plan): the open period
    is marked re-opened, its open deteriorations acted on, and both histories name the
    triggering results. Returns the reason for the plan's own history, which names them
    too."""
    period = (
        MonitoringPeriod.objects.select_for_update()
        .filter(plan=plan, status=MonitoringPeriod.Status.OPEN)
        .first()
    )
    opened = []
    if period is not None:
        opened = list(
            period.deteriorations.filter(status=Deterioration.Status.OPEN).select_related(
                "indicator", "measurement__indicator"
            )
        )
    reason = (reason or "").strip()
    short, _full = _triggering(opened)
    if period is not None and reason:
        _mark_reopened(period, opened, by=by, note=f"Plan re-opened: {reason}")
    return _fit(reason, f" ({short})" if reason and short else "")
