"""Scheduled work for plans. Each sweep derives what is due from the database and queues
its emails through the outbox (``core/outbox.py``) under a key naming the object and the
ISO week, so it is safe to run any number of times: a missed, doubled or concurrent run
sends nothing twice. Registered with ``core.jobs`` (Celery beat runs them through
``plans/tasks.py``; ``manage.py run_scheduled_jobs`` runs them all once)."""

from __future__ import annotations

import datetime

from django.db import transaction
from django.utils import timezone

from core import jobs, outbox
from plans.models import Action, Plan

# Plans whose actions and activity we chase: not drafts (not started) nor final ones.
ACTIVE_STATUSES = (Plan.Status.LIVE, Plan.Status.CLOSURE_REVIEW, Plan.Status.MONITORING)


def iso_week(day: datetime.date) -> str:
    """The period of a weekly reminder, e.g. ``2026-W09``."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@jobs.register("plans_overdue_actions", "Remind action owners, weekly, of overdue actions.")
def overdue_actions(today: datetime.date | None = None) -> str:
    """Email the owner of every action past its due date and not completed, on a live,
    closure-review or monitoring plan: once per action per ISO week. Safe to run any
    number of times. Queries: a fixed number per 500 emails (``outbox.queue_many``)."""
    today = today or timezone.localdate()
    week = iso_week(today)
    actions = (
        Action.objects.filter(
            due_date__lt=today,
            status__in=[Action.Status.OPEN, Action.Status.IN_PROGRESS],
            plan__status__in=ACTIVE_STATUSES,
            owner__is_active=True,
        )
        .exclude(owner__email="")
        .select_related("plan", "owner")
        .order_by("pk")
    )
    due = {f"overdue-action:{action.pk}:{week}": action for action in actions}
    with transaction.atomic():
        queued = outbox.queue_many(
            outbox.Email(
                "overdue-action",
                key=key,
                recipients=[action.owner.email],
                context={
                    "action": action,
                    "plan": action.plan,
                    "days_overdue": (today - action.due_date).days,
                },
            )
            for key, action in due.items()
        )
    return f"{len(due)} overdue action(s), {len(queued)} reminder(s) queued"


@jobs.register("plans_stale", "Tell plan owners, weekly, that their plan has gone quiet.")
def stale_plans(now: datetime.datetime | None = None) -> str:
    """Email the owner of every open plan with no activity for ``STALE_PLAN_DAYS``: once
    per plan per ISO week. Safe to run any number of times."""
    now = now or timezone.now()
    week = iso_week(timezone.localdate(now))
    plans = (
        Plan.objects.stale(now)
        .filter(owner__is_active=True)
        .exclude(owner__email="")
        .select_related("owner")
        .order_by("pk")
    )
    due = {f"stale-plan:{plan.pk}:{week}": plan for plan in plans}
    with transaction.atomic():
        queued = outbox.queue_many(
            outbox.Email(
                "stale-plan",
                key=key,
                recipients=[plan.owner.email],
                context={"plan": plan, "quiet_days": (now - plan.last_activity_at).days},
            )
            for key, plan in due.items()
        )
    return f"{len(due)} stale plan(s), {len(queued)} reminder(s) queued"
