"""The mail server as tests of the outbox see it (the outside world, and the only thing
mocked): Django's in-memory backend that fails its next sends as told."""

from __future__ import annotations

import time

from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class FlakyBackend(LocmemBackend):
    """The mail server, failing the next sends with ``failures`` (in order)."""

    failures: list[BaseException] = []
    delay = 0.0

    def send_messages(self, messages):
        if FlakyBackend.failures:
            raise FlakyBackend.failures.pop(0)
        time.sleep(FlakyBackend.delay)
        return super().send_messages(messages)


class WorkerKilled(BaseException):
    """What the sender sees when its process is killed: nothing it can catch."""
