"""When background work counts as stuck: for the "recover_stuck_work" sweep
(``qip_portal/recovery.py``) and for the pages that offer "Try again".

Each row of background work (an import batch, an evidence pack, a closure report's
PDF) records when it last showed a sign of life (queued, started, each step of
progress) and whether a task has started on it:

- queued, not started, for ``settings.STUCK_QUEUED_SECONDS``: the broker lost its task
  (an outage, a purged queue). Queue it again: nothing was done yet.
- started, with no progress for ``settings.STUCK_STARTED_SECONDS``: its worker died
  (killed, out of memory, its database connection cut). That threshold exceeds
  Celery's hard time limit (the settings refuse less), so a task still running is never
  taken for dead. Work that is safe to redo is queued again, up to ``MAX_STARTS``
  starts in all; anything else is marked failed, and the person can try again.

Every start also takes a numbered claim (the row's ``attempts``), and a run writes its
progress and its result only while its number is still the row's: a run that was given
up on can never write over a newer one.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

# A task that kills its worker every time (a file too large for memory, say) is tried
# this many times, then failed, rather than queued again for ever.
MAX_STARTS = 3


@dataclass(frozen=True)
class Cutoffs:
    queued: datetime.datetime  # queued before this and never started: the task was lost
    started: datetime.datetime  # started, and no progress since this: the task died


def cutoffs(now: datetime.datetime | None = None) -> Cutoffs:
    now = now or timezone.now()
    return Cutoffs(
        queued=now - datetime.timedelta(seconds=settings.STUCK_QUEUED_SECONDS),
        started=now - datetime.timedelta(seconds=settings.STUCK_STARTED_SECONDS),
    )


def is_stuck(*, started: bool, progress_at: datetime.datetime | None) -> bool:
    """Whether work in a working state has shown no sign of life for too long."""
    if progress_at is None:
        return True
    limits = cutoffs()
    return progress_at < (limits.started if started else limits.queued)


class TooMuchWaiting(Exception):
    """A person already has as many renders of one kind queued or running as one may."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def refuse_beyond_limit(waiting: int, *, what: str) -> None:
    """Raise ``TooMuchWaiting`` when ``waiting`` (how many of one person's ``what``, a
    singular noun, are queued or running) has reached ``settings.PDF_RENDERS_PER_USER``:
    each render is seconds of a worker's time and a place in the queue everyone shares."""
    limit = settings.PDF_RENDERS_PER_USER
    if waiting >= limit:
        raise TooMuchWaiting(
            f"You already have {waiting} {what}{'' if waiting == 1 else 's'} being "
            "prepared, the most one person may have at once. Wait for one to finish (its "
            "page updates by itself), then ask again."
        )


@dataclass(frozen=True)
class Recovered:
    """What one pass of a recovery did with the stuck rows of one kind."""

    requeued: int = 0
    failed: int = 0
