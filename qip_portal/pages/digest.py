"""The weekly digest: one Monday email per person of what needs their attention. It lives
in ``qip_portal``, the top layer, because it may gather from every app.

People can turn the digest off (``set_weekly_digest``); they cannot turn off
escalations and alerts, which never look at this setting."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from core import jobs, outbox
from plans.models import Action, Plan, User
from plans.sweeps import ACTIVE_STATUSES, iso_week


@dataclass
class Digest:
    """What one person should look at this week. Only what they may already see: their
    own actions and plans, and (quality leads, who see every location) plans waiting in
    closure review."""

    user: User
    overdue_actions: list[Action] = field(default_factory=list)
    stale_plans: list[Plan] = field(default_factory=list)
    closure_review: list[Plan] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.overdue_actions or self.stale_plans or self.closure_review)


def build_digests(now: datetime.datetime | None = None) -> list[Digest]:
    """Every opted-in active user's digest, empty ones included. Four queries, however
    many users and plans."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    users = list(
        User.objects.filter(is_active=True, weekly_digest=True).exclude(email="").order_by("pk")
    )
    digests = {user.pk: Digest(user=user) for user in users}
    actions = (
        Action.objects.filter(
            owner__in=digests,
            due_date__lt=today,
            status__in=[Action.Status.OPEN, Action.Status.IN_PROGRESS],
            plan__status__in=ACTIVE_STATUSES,
        )
        .select_related("plan")
        .order_by("due_date", "pk")
    )
    for action in actions:
        digests[action.owner_id].overdue_actions.append(action)
    for plan in Plan.objects.stale(now).filter(owner__in=digests).order_by("last_activity_at"):
        digests[plan.owner_id].stale_plans.append(plan)
    leads = [d for d in digests.values() if d.user.role == User.Role.QUALITY_LEAD]
    if leads:
        in_review = list(
            Plan.objects.filter(status=Plan.Status.CLOSURE_REVIEW).order_by("status_changed_at")
        )
        for digest in leads:
            digest.closure_review = in_review
    return list(digests.values())


# When the digest goes out (Europe/London): beat runs the job then, and the scheduler of
# `make run`, which runs every job every ten minutes, finds nothing due at other times.
DIGEST_WEEKDAY = 0  # Monday
DIGEST_FROM = datetime.time(7, 30)


@jobs.register("weekly_digest", "Send each person, on Mondays, what needs their attention.")
def send_weekly_digests(now: datetime.datetime | None = None) -> str:
    """Queue this ISO week's digest for everyone who has something to look at and has
    not opted out. Nothing to look at, no email. Safe to run any number of times: the
    key is the person and the week, so each gets at most one a week. A fixed number
    of queries however many digests (``build_digests``, ``outbox.queue_many``)."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.weekday() != DIGEST_WEEKDAY or local.time() < DIGEST_FROM:
        # Not on every start of `make run`'s scheduler: the digest has its day and hour.
        return "0 digest(s) due: they go out on Mondays from 07:30"
    week = iso_week(timezone.localdate(now))
    digests = {f"weekly-digest:{d.user.pk}:{week}": d for d in build_digests(now) if not d.is_empty}
    with transaction.atomic():
        queued = len(
            outbox.queue_many(
                outbox.Email(
                    "weekly-digest",
                    key=key,
                    recipients=[digest.user.email],
                    context={"digest": digest, "user": digest.user, "week": week},
                )
                for key, digest in digests.items()
            )
        )
    return f"{len(digests)} digest(s) due, {queued} queued"


@shared_task(name="qip_portal.digest.send_weekly_digests")
def send_weekly_digests_task() -> str:
    return send_weekly_digests()


@transaction.atomic
def set_weekly_digest(*, user: User, enabled: bool) -> User:
    """Turn the weekly digest on or off for ``user`` (their own choice, kept in
    history). Escalations and alerts are not affected."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.weekly_digest != enabled:
        locked.weekly_digest = enabled
        locked._history_user = user
        locked._change_reason = "Weekly digest turned " + ("on" if enabled else "off")
        locked.save(update_fields=["weekly_digest"])
    user.weekly_digest = enabled
    return locked
