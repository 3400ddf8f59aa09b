"""Everything that changes audits data: one function per change, each in a
transaction, each saving with history (who and why). Tasks are queued only after
commit and receive ids. One module per concern, re-exported here:

- ``measurements``: results, corrections, evidence, and the dates they keep;
- ``imports``: spreadsheet imports, checked and committed all or nothing;
- ``annotations``: notes on charts, and recalculating limits after a change;
- ``monitoring``: monitoring after step-down, deterioration and its escalation.
"""

from audits.services.annotations import (
    AnnotationRefused,
    add_annotation,
    rebase_problems,
    recalculate_limits,
)
from audits.services.imports import (
    PREVIEW_ROWS,
    PROGRESS_EVERY,
    commit_import,
    queue_import_commit,
    retry_import,
    start_import,
    validate_import,
)
from audits.services.measurements import (
    MeasurementRefused,
    add_evidence,
    correct_measurement,
    queue_monitoring_check,
    record_audit,
    record_measurement,
    refresh_criteria_met,
    refresh_last_measured,
    store_criteria_met,
)
from audits.services.monitoring import (
    CHECK_BATCH,
    MonitoringRefused,
    check_monitoring,
    check_periods,
    check_plan_monitoring,
    close_short_monitoring,
    extend_monitoring,
    monitoring_problems,
    periods_needing_a_check,
    record_reopening,
    short_period,
    start_monitoring,
)

__all__ = [
    "AnnotationRefused",
    "add_annotation",
    "rebase_problems",
    "recalculate_limits",
    "record_audit",
    "PREVIEW_ROWS",
    "PROGRESS_EVERY",
    "MeasurementRefused",
    "MonitoringRefused",
    "add_evidence",
    "CHECK_BATCH",
    "check_monitoring",
    "check_periods",
    "check_plan_monitoring",
    "close_short_monitoring",
    "commit_import",
    "correct_measurement",
    "extend_monitoring",
    "monitoring_problems",
    "periods_needing_a_check",
    "queue_import_commit",
    "queue_monitoring_check",
    "record_measurement",
    "record_reopening",
    "refresh_criteria_met",
    "refresh_last_measured",
    "retry_import",
    "short_period",
    "start_import",
    "start_monitoring",
    "store_criteria_met",
    "validate_import",
]
