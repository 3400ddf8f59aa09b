"""Thin Celery tasks: load by id, call a service."""

from celery import shared_task

from audits import services


@shared_task
def validate_import_task(batch_id: int) -> None:
    services.validate_import(batch_id=batch_id)


@shared_task
def commit_import_task(batch_id: int, by_id: int) -> None:
    services.commit_import(batch_id=batch_id, by_id=by_id)
