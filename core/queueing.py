"""Queueing background work so that a broker outage never turns a saved change into an
error page.

Work that must not be lost is first written to the database (an outbox row, an import
batch, a render request) in the transaction of its cause; the task queued here only
*hurries it along*. If the broker cannot be reached the task is not queued, the failure
is logged, and the periodic sweep that owns that kind of row (``deliver_due`` for
alerts, ``recover_stuck_work`` for imports and renders) picks the row up later.
"""

from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def send_task(task, *args) -> bool:
    """Queue ``task`` with ``args`` now. Returns False, having logged why, when the
    broker refused or could not be reached; never raises for that. Nobody waits for
    the result of work queued this way, so none is asked for: with a Redis result
    backend that is down, asking for one first retried for 20 seconds (measured) before
    the broker was even tried, holding the request."""
    try:
        task.apply_async(args, ignore_result=True)
    except Exception as exc:  # kombu/redis raise many types for "broker unreachable"
        # Eager mode (no broker) runs the task here: its own errors must surface.
        from django.conf import settings

        if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
            raise
        log.warning("Could not queue %s%r (a sweep will pick it up): %s", task.name, args, exc)
        return False
    return True


def after_commit(task, *args) -> None:
    """Queue ``task`` once the surrounding transaction commits (at once outside one),
    through ``send_task``: a broker outage is logged, never raised into the request."""
    transaction.on_commit(lambda: send_task(task, *args))
