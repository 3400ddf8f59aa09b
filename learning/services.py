"""Everything that changes learning: one function per change, each in a transaction,
each saving with history (who and why); emails are outbox rows written in the same
transaction, sent only after commit."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from core.history import save_with_history
from governance.models import Meeting
from learning import notifications
from learning.models import (
    Acknowledgement,
    Embedding,
    LearningReview,
    LearningSummary,
)
from plans.models import Location, Plan, User
from plans.services import touch_plan


class LearningRefused(Exception):
    """The change may not happen; ``reasons`` say why, in words a user understands."""

    def __init__(self, reasons: list[str]):
        super().__init__(" ".join(reasons))
        self.reasons = reasons


_save = save_with_history


SUMMARY_GUARD_MESSAGE = (
    "Write the learning summary (what happened, what changed and the key messages for "
    "staff) before submitting this plan for closure."
)


def plans_with_complete_summary(plan_ids: Iterable[int]) -> set[int]:
    """Which of ``plan_ids`` have a complete learning summary (what happened, what
    changed, the key messages): one query however many plans. The closure workflow
    (``qip_portal/closure/workflow.py``) asks this before a plan may go to closure review."""
    rows = LearningSummary.objects.filter(plan_id__in=list(plan_ids)).values_list(
        "plan_id", "what_happened", "what_changed", "key_messages"
    )
    return {plan_id for plan_id, *texts in rows if all(text.strip() for text in texts)}


@transaction.atomic
def save_summary(
    *,
    plan: Plan,
    by: User,
    what_happened: str,
    what_changed: str,
    key_messages: str,
    reason: str = "",
) -> LearningSummary:
    """Write the plan's learning summary, or edit it. The previous text stays in
    history, so nothing written is ever lost."""
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    summary = LearningSummary.objects.filter(plan=locked).first()
    is_new = summary is None
    if is_new:
        summary = LearningSummary(plan=locked, created_by=by)
    elif summary.is_retired:
        raise LearningRefused(["This learning was retired; it can no longer be edited."])
    summary.what_happened = what_happened.strip()
    summary.what_changed = what_changed.strip()
    summary.key_messages = key_messages.strip()
    summary.updated_at = timezone.now()
    default = "Learning summary written" if is_new else "Learning summary edited"
    _save(summary, by=by, reason=reason.strip() or default)
    touch_plan(locked.pk)
    return summary


def managers_of(locations: Iterable[Location]) -> list[tuple[User, Location]]:
    """Every active manager of these locations, once each, with the first of the chosen
    locations they manage (the one the learning reached them through)."""
    chosen = {loc.pk: loc for loc in locations}
    seen: dict[int, tuple[User, Location]] = {}
    through = User.locations.through.objects.filter(
        location_id__in=chosen, user__role=User.Role.MANAGER, user__is_active=True
    ).select_related("user")
    for row in through.order_by("location__name", "user_id"):
        seen.setdefault(row.user_id, (row.user, chosen[row.location_id]))
    return list(seen.values())


@transaction.atomic
def share_summary(
    *, summary: LearningSummary, by: User, locations: Iterable[Location]
) -> list[Acknowledgement]:
    """Share the learning with every active manager of ``locations``: each gets an
    acknowledgement row and, in the same transaction, an email in the outbox (sent
    after commit). A manager who already has one is not asked twice. Returns the new
    rows."""
    summary = LearningSummary.objects.select_for_update().get(pk=summary.pk)
    if summary.is_retired:
        raise LearningRefused(["Retired learning cannot be shared."])
    already = set(summary.acknowledgements.values_list("manager_id", flat=True))
    created: list[Acknowledgement] = []
    now = timezone.now()  # one sharing, one moment (the evidence pack's timeline groups it)
    for manager, location in managers_of(locations):
        if manager.pk in already:
            continue
        ack = Acknowledgement(
            summary=summary, manager=manager, location=location, shared_by=by, shared_at=now
        )
        _save(ack, by=by, reason=f"Shared with {location.name}")
        created.append(ack)
        notifications.queue_share(ack)
    touch_plan(summary.plan_id)
    return created


@transaction.atomic
def acknowledge(*, ack: Acknowledgement, by: User) -> Acknowledgement:
    """The manager confirms they have read the learning. Doing it twice is harmless."""
    ack = Acknowledgement.objects.select_for_update().get(pk=ack.pk)
    if ack.manager_id != by.pk:
        raise LearningRefused(["Only the manager it was shared with can acknowledge it."])
    if ack.acknowledged_at is None:
        ack.acknowledged_at = timezone.now()
        _save(ack, by=by, reason="Acknowledged as read")
    return ack


@dataclass
class EmbeddingFile:
    """An upload already checked by ``core.files`` (type decided by its bytes)."""

    upload: object
    content_type: str
    extension: str


@transaction.atomic
def record_embedding(
    *,
    summary: LearningSummary,
    by: User,
    kind: str,
    embedded_on: datetime.date,
    who: str,
    note: str = "",
    file: EmbeddingFile | None = None,
    embedding: Embedding | None = None,
) -> Embedding:
    """Record where the learning is embedded, or complete a to-do raised by a review."""
    summary = LearningSummary.objects.select_for_update().get(pk=summary.pk)
    if embedding is None:
        embedding = Embedding(summary=summary, recorded_by=by)
        reason = "Embedding recorded"
    else:
        embedding = Embedding.objects.select_for_update().get(pk=embedding.pk, summary=summary)
        reason = "Follow-up embedding completed" if not embedding.is_done else "Embedding edited"
    if embedded_on > timezone.localdate():
        raise LearningRefused(["The date cannot be in the future."])
    embedding.kind = kind
    embedding.status = Embedding.Status.DONE
    embedding.embedded_on = embedded_on
    embedding.who = who.strip()
    embedding.note = note.strip()
    if file is not None:
        embedding.original_name = getattr(file.upload, "name", "")[:200]
        embedding.content_type = file.content_type
        embedding.file_extension = file.extension
        embedding.file = file.upload
    _save(embedding, by=by, reason=reason)
    touch_plan(summary.plan_id)
    return embedding


@transaction.atomic
def put_review_on_agenda(
    *, review: LearningReview, by: User, meeting: Meeting | None
) -> LearningReview:
    """Put a due review on the agenda of a leadership or governance meeting (or take
    it off, with ``None``)."""
    review = LearningReview.objects.select_for_update().get(pk=review.pk)
    if not review.is_open:
        raise LearningRefused(["This review already has an outcome."])
    review.meeting = meeting
    reason = f"On the agenda of {meeting}" if meeting else "Taken off the meeting agenda"
    _save(review, by=by, reason=reason)
    return review


@transaction.atomic
def record_review(
    *,
    review: LearningReview,
    by: User,
    outcome: str,
    note: str = "",
    new_text: dict[str, str] | None = None,
    reembed_kind: str = "",
    reembed_due_on: datetime.date | None = None,
    meeting: Meeting | None = None,
) -> LearningReview:
    """Record a relevance review's outcome (at ``meeting``, if given).

    - still relevant: nothing else changes;
    - updated: the summary takes ``new_text`` (the old text stays in history);
    - retired: the summary is retired with the reason in ``note``; no more reviews;
    - re-embed needed: a to-do embedding (``reembed_kind``, due ``reembed_due_on``) is
      created on the learning, and stays visible until someone records it as done.
    """
    review = LearningReview.objects.select_for_update().get(pk=review.pk)
    summary = LearningSummary.objects.select_for_update().get(pk=review.summary_id)
    reasons: list[str] = []
    if not review.is_open:
        reasons.append("This review already has an outcome.")
    if summary.is_retired:
        reasons.append("This learning was retired; it is no longer reviewed.")
    note = (note or "").strip()
    Outcome = LearningReview.Outcome
    if outcome not in Outcome.values:
        reasons.append("Choose an outcome.")
    if outcome == Outcome.RETIRED and not note:
        reasons.append("Give the reason for retiring this learning.")
    if outcome == Outcome.UPDATED and not (new_text and all(v.strip() for v in new_text.values())):
        reasons.append("Write the updated learning summary.")
    if outcome == Outcome.REEMBED and not reembed_kind:
        reasons.append("Say where the learning needs embedding again.")
    if reasons:
        raise LearningRefused(reasons)
    label = Outcome(outcome).label
    review.outcome = outcome
    review.note = note
    review.reviewed_by = by
    review.reviewed_on = timezone.localdate()
    if meeting is not None:
        review.meeting = meeting
    _save(review, by=by, reason=f"Review outcome: {label}")
    if outcome == Outcome.UPDATED:
        for name, value in (new_text or {}).items():
            setattr(summary, name, value.strip())
        summary.updated_at = timezone.now()
        _save(summary, by=by, reason=f"Updated at the {review.months_after_closure}-month review")
    elif outcome == Outcome.RETIRED:
        summary.status = LearningSummary.Status.RETIRED
        summary.retired_reason = note
        summary.retired_on = timezone.localdate()
        _save(summary, by=by, reason=f"Retired at the {review.months_after_closure}-month review")
    elif outcome == Outcome.REEMBED:
        follow_up = Embedding(
            summary=summary,
            kind=reembed_kind,
            status=Embedding.Status.TO_DO,
            due_on=reembed_due_on,
            note=note,
            raised_by_review=review,
            recorded_by=by,
        )
        _save(
            follow_up, by=by, reason=f"Re-embed needed ({review.months_after_closure}-month review)"
        )
    touch_plan(summary.plan_id)
    return review
