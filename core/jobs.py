"""The registry of scheduled jobs. Each app adds its sweeps here (a plain function that
derives what is due from the database and is safe to run any number of times); Celery
beat triggers them through one-line tasks, and ``manage.py run_scheduled_jobs`` runs
them all once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from core.freshness import data_changed


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], object]
    description: str


JOBS: list[Job] = []


def register(name: str, description: str) -> Callable:
    """Register a sweep. Sweeps write in bulk (``QuerySet.update()``, no model signals),
    so each run ends by changing the data version (``core.freshness``)."""

    def decorator(func: Callable[[], object]) -> Callable[[], object]:
        if any(job.name == name for job in JOBS):
            raise ValueError(f"Job {name!r} is registered twice.")

        @functools.wraps(func)
        def run() -> object:
            try:
                return func()
            finally:
                data_changed()

        JOBS.append(Job(name=name, run=run, description=description))
        return run

    return decorator
