"""The registry of scheduled jobs. Each app adds its sweeps here (a plain function that
derives what is due from the database and is safe to run any number of times); Celery
beat triggers them through one-line tasks, and ``manage.py run_scheduled_jobs`` runs
them all once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], object]
    description: str


JOBS: list[Job] = []


def register(name: str, description: str) -> Callable:
    """Register a sweep. Sweeps write in bulk (``QuerySet.update()``, ``bulk_create``):
    those move the versions of the plans and scopes whose rows they touch
    (``core.freshness``), so a run changes no cached page it did not change."""

    def decorator(func: Callable[[], object]) -> Callable[[], object]:
        if any(job.name == name for job in JOBS):
            raise ValueError(f"Job {name!r} is registered twice.")

        JOBS.append(Job(name=name, run=func, description=description))
        return func

    return decorator
