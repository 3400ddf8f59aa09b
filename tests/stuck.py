"""Helpers for tests of background work whose task is lost or dies (core/stuck.py).

``fake_broker`` stands for the Celery broker, the outside world: up, it keeps what is
queued until the test runs it as a worker would; down, it refuses every task, as
redis-py does when nothing listens. ``later(seconds)`` moves the clock on."""

from __future__ import annotations

import datetime

import time_machine
from celery import current_app
from celery.app.task import Task
from django.utils import timezone
from kombu.exceptions import OperationalError


class Broker:
    def __init__(self) -> None:
        self.down = False
        self.sent: list[tuple[str, tuple]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.sent]

    def run(self) -> None:
        """Run what is queued, in order, as a worker takes it (and anything those tasks
        queue). A task's error is raised, as it would end the worker's run."""
        while self.sent:
            name, args = self.sent.pop(0)
            current_app.tasks[name](*args)

    def run_next(self) -> None:
        """Run the task queued first, as one worker takes it."""
        name, args = self.sent.pop(0)
        current_app.tasks[name](*args)

    def lose(self) -> None:
        """The broker loses what it holds (a restart without persistence, a purge)."""
        self.sent.clear()


def fake_broker(monkeypatch, settings) -> Broker:
    """Put the fake broker in place for one test (call it from a ``broker`` fixture)."""
    fake = Broker()

    def delay(task, *args):
        if fake.down:
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        fake.sent.append((task.name, args))

    def apply_async(task, args=None, kwargs=None, **options):
        return delay(task, *(args or ()))

    # A refusal is an outage only when tasks are not run in-process (core/queueing.py).
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(Task, "delay", delay)
    monkeypatch.setattr(Task, "apply_async", apply_async)
    return fake


def later(seconds: float):
    """The clock, ``seconds`` from now (and held there)."""
    return time_machine.travel(timezone.now() + datetime.timedelta(seconds=seconds), tick=False)
