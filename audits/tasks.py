"""Thin Celery tasks: load by id, call a service or a sweep."""

from celery import shared_task

from audits import services, sweeps


@shared_task
def validate_import_task(batch_id: int) -> None:
    services.validate_import(batch_id=batch_id)


@shared_task
def commit_import_task(batch_id: int, by_id: int) -> None:
    services.commit_import(batch_id=batch_id, by_id=by_id)


@shared_task
def check_plan_monitoring_task(plan_id: int) -> int:
    return services.check_plan_monitoring(plan_id=plan_id)


@shared_task
def deterioration() -> str:
    return sweeps.deterioration()


@shared_task
def monitoring_ended() -> str:
    return sweeps.monitoring_ended()


@shared_task
def reaudits_due() -> str:
    return sweeps.reaudits_due()


# Audit tools' task, so the worker registers it with the app's own tasks.
from audits.tools.tasks import render_audit_pdf_task  # noqa: E402, F401
