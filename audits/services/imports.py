"""Spreadsheet imports of results: upload, check every row in a background task, a
preview naming every bad row, and a commit that is all or nothing. Every run claims its
batch, so a run given up on can never write over a newer one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from simple_history.utils import bulk_create_with_history

from audits import spreadsheets
from audits.forms import MeasurementContext, MeasurementForm
from audits.models import (
    ImportBatch,
    Measurement,
)
from audits.services.measurements import (
    MeasurementRefused,
    _check_plan_open,
    queue_monitoring_check,
    refresh_criteria_met,
    refresh_last_measured,
)
from core.files import get_private_storage
from core.history import save_with_history as _save
from core.queueing import after_commit
from plans.models import Plan, User
from plans.services import touch_plan

# How many rows between progress updates while an import is checked or committed.
PROGRESS_EVERY = 250
# How many valid rows the preview page shows.
PREVIEW_ROWS = 50


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
def _open_rows(batch: ImportBatch) -> Iterator[Iterator[spreadsheets.Row]]:
    with get_private_storage().open(batch.file.name, "rb") as handle:
        yield spreadsheets.read_rows(handle.file, batch.kind)


def _set_progress(batch_id: int, attempt: int, **counters) -> None:
    # The counters and progress_at are excluded from history, so a plain UPDATE is
    # correct; it runs outside the commit transaction only for validation (see
    # commit_import). Only the run that owns the batch reports.
    ImportBatch.objects.filter(pk=batch_id, attempts=attempt).update(
        progress_at=timezone.now(), **counters
    )


def _check_rows(
    *, batch: ImportBatch, rows: Iterator[spreadsheets.Row], progress_of: int | None
) -> tuple[list[dict], list[dict], list[tuple[spreadsheets.Row, MeasurementForm]]]:
    """Validate every row with ``MeasurementForm``. Returns (errors, preview, valid).
    ``progress_of``: the run (``_claim``) whose progress is written as rows are checked."""
    context = MeasurementContext.for_plan(batch.plan)
    errors: list[dict] = []
    preview: list[dict] = []
    valid: list[tuple[spreadsheets.Row, MeasurementForm]] = []
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
            spreadsheets.form_data(row), context=context, allow_import_source=True
        )
        if not form.is_valid():
            for name, messages in form.errors.items():
                columns = spreadsheets.FIELD_FOR_COLUMN.items()
                column = next((c for c, f in columns if f == name), name)
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
    except spreadsheets.ImportFileError as exc:
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
            # bulk_create moved the plan's versions (core.freshness wraps the bulk paths)
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
    except (spreadsheets.ImportFileError, IntegrityError) as exc:
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
