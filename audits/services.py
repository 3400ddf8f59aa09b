"""Everything that changes audits data: one function per change, each in a
transaction, each saving with history (who and why). Tasks are queued only after
commit and receive ids."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from simple_history.utils import bulk_create_with_history

from audits import imports
from audits.files import FileType, get_private_storage
from audits.forms import MeasurementContext, MeasurementForm
from audits.models import EvidenceItem, ImportBatch, Measurement
from plans.models import Plan, User
from plans.services import touch_plan

# How many rows between progress updates while an import is checked or committed.
PROGRESS_EVERY = 250
# How many valid rows the preview page shows.
PREVIEW_ROWS = 50


class MeasurementRefused(Exception):
    def __init__(self, reasons: list[str]):
        super().__init__(" ".join(reasons))
        self.reasons = reasons


def _save(obj, *, by: User | None, reason: str | None = None, **kwargs) -> None:
    obj._history_user = by
    obj._change_reason = reason or None
    obj.save(**kwargs)


def _check_plan_open(plan: Plan) -> None:
    if plan.is_final:
        raise MeasurementRefused(["A closed or withdrawn plan cannot take new results."])


@transaction.atomic
def record_measurement(*, plan: Plan, by: User, fields: dict) -> Measurement:
    """Store one validated result (``MeasurementForm.measurement_fields()``).

    The unique constraint on indicator and date is the last word when two people log
    the same audit at once: the second is refused, nothing half-saved."""
    _check_plan_open(plan)
    indicator = fields["indicator"]
    if indicator.plan_id != plan.pk:
        raise MeasurementRefused(["That indicator belongs to another plan."])
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
            [
                f"“{indicator.name}” already has a result for "
                f"{date_format(measurement.measured_on)}."
            ]
        ) from None
    touch_plan(plan.pk)
    return measurement


@transaction.atomic
def correct_measurement(
    *, measurement: Measurement, by: User, fields: dict, reason: str
) -> Measurement:
    """Change a result. The previous values stay in history with ``reason``."""
    plan = measurement.indicator.plan
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
    touch_plan(plan.pk)
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


@transaction.atomic
def start_import(*, plan: Plan, by: User, upload: UploadedFile, kind: str) -> ImportBatch:
    """Keep the uploaded spreadsheet privately and queue its check (a task, after
    commit). The batch page shows progress, then the preview."""
    _check_plan_open(plan)
    batch = ImportBatch(
        plan=plan, created_by=by, kind=kind, original_name=(upload.name or "upload")[-200:]
    )
    batch.file.save("import", upload, save=False)
    _save(batch, by=by, reason="Spreadsheet uploaded")
    from audits.tasks import validate_import_task

    transaction.on_commit(lambda: validate_import_task.delay(batch.pk))
    return batch


@contextlib.contextmanager
def _open_rows(batch: ImportBatch) -> Iterator[Iterator[imports.Row]]:
    with get_private_storage().open(batch.file.name, "rb") as handle:
        yield imports.read_rows(handle.file, batch.kind)


def _set_progress(batch_id: int, processed: int) -> None:
    # processed_rows is excluded from history, so a plain UPDATE is correct; it runs
    # outside the commit transaction only for validation (see commit_import).
    ImportBatch.objects.filter(pk=batch_id).update(processed_rows=processed)


def _check_rows(
    *, batch: ImportBatch, rows: Iterator[imports.Row], report_progress: bool
) -> tuple[list[dict], list[dict], list[tuple[imports.Row, MeasurementForm]]]:
    """Validate every row with ``MeasurementForm``. Returns (errors, preview, valid)."""
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
        form = MeasurementForm(
            imports.form_data(row), context=context, allow_import_source=True
        )
        if not form.is_valid():
            for name, messages in form.errors.items():
                column = next(
                    (c for c, f in imports.FIELD_FOR_COLUMN.items() if f == name), name
                )
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
        if report_progress and count % PROGRESS_EVERY == 0:
            _set_progress(batch.pk, count)
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
    Changes no measurements. Safe to run again."""
    batch = ImportBatch.objects.select_related("plan").get(pk=batch_id)
    if batch.status != ImportBatch.Status.VALIDATING:
        return batch
    try:
        with _open_rows(batch) as rows:
            total = sum(1 for _ in rows)
        ImportBatch.objects.filter(pk=batch.pk).update(total_rows=total, processed_rows=0)
        with _open_rows(batch) as rows:
            errors, preview, valid = _check_rows(batch=batch, rows=rows, report_progress=True)
    except imports.ImportFileError as exc:
        errors, preview, valid = [{"row": 1, "column": "", "message": str(exc)}], [], []
    batch.refresh_from_db()
    _finish(
        batch,
        by=batch.created_by,
        status=ImportBatch.Status.INVALID if errors else ImportBatch.Status.VALID,
        reason=f"Checked: {len(errors)} problem(s)" if errors else f"Checked: {len(valid)} rows",
        errors=errors,
        preview=preview,
        processed_rows=batch.total_rows,
    )
    return batch


@transaction.atomic
def queue_import_commit(*, batch: ImportBatch, by: User) -> ImportBatch:
    """Mark a checked batch for import and queue the commit task after this commits.
    Only a batch that was checked and found valid can be committed, and only once."""
    locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
    if locked.status != ImportBatch.Status.VALID:
        raise MeasurementRefused(["This import has already been used or has problems."])
    _check_plan_open(locked.plan)
    locked.processed_rows = 0
    _finish(locked, by=by, status=ImportBatch.Status.COMMITTING, reason="Import confirmed")
    from audits.tasks import commit_import_task

    transaction.on_commit(lambda: commit_import_task.delay(locked.pk, by.pk))
    return locked


def commit_import(*, batch_id: int, by_id: int) -> ImportBatch:
    """Create every row's measurement in one transaction, or none.

    The rows are checked again inside the transaction, with the plan row locked, so a
    result logged by hand since the preview cannot become a duplicate. Safe to run
    again: a batch that is no longer "committing" is left alone."""
    by = User.objects.get(pk=by_id)
    batch = ImportBatch.objects.select_related("plan").get(pk=batch_id)
    if batch.status != ImportBatch.Status.COMMITTING:
        return batch
    try:
        with transaction.atomic():
            Plan.objects.select_for_update().get(pk=batch.plan_id)
            with _open_rows(batch) as rows:
                errors, _preview, valid = _check_rows(
                    batch=batch, rows=rows, report_progress=False
                )
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
            batch.refresh_from_db()
            _finish(
                batch,
                by=by,
                status=ImportBatch.Status.COMMITTED,
                reason=f"Imported {len(measurements)} rows",
                committed_at=timezone.now(),
                processed_rows=len(measurements),
                total_rows=len(measurements),
            )
            touch_plan(batch.plan_id)
    except _RowsChanged as changed:
        batch.refresh_from_db()
        _finish(
            batch,
            by=by,
            status=ImportBatch.Status.INVALID,
            reason="Rows no longer valid at import",
            errors=changed.errors,
        )
    except (imports.ImportFileError, IntegrityError) as exc:
        batch.refresh_from_db()
        _finish(
            batch,
            by=by,
            status=ImportBatch.Status.FAILED,
            reason="Import failed",
            errors=[{"row": 1, "column": "", "message": f"Nothing was imported: {exc}"}],
        )
    return batch


class _RowsChanged(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__("rows changed")
        self.errors = errors
