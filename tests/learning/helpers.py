"""Builders for learning tests. A closed plan is made the way the demo seed makes one
(status set with history), because the governance sign-off is another app's work."""

from __future__ import annotations

import datetime

from django.utils import timezone

from learning import services as learning_services
from learning.models import LearningSummary
from plans import services as plan_services
from plans.models import Plan, User
from tests import factories


def close_plan(plan: Plan, *, by: User, when: datetime.datetime | None = None) -> Plan:
    plan.status = Plan.Status.CLOSED
    plan.status_changed_at = when or timezone.now()
    plan_services._save(plan, by=by, reason="Test: closed by the governance group")
    return plan


def write_summary(plan: Plan, *, by: User, **overrides) -> LearningSummary:
    text = {
        "what_happened": "Concerns were not escalated within 24 hours.",
        "what_changed": "A daily safeguarding huddle and a new recording template.",
        "key_messages": "Escalate every concern the same day. Record facts, not opinions.",
    }
    text.update(overrides)
    return learning_services.save_summary(plan=plan, by=by, **text)


def closed_plan_with_learning(
    *, owner: User, locations, closed_at: datetime.datetime | None = None, title: str = ""
) -> LearningSummary:
    kwargs = {"title": title} if title else {}
    plan = factories.live_plan(owner=owner, locations=locations, **kwargs)
    summary = write_summary(plan, by=owner)
    close_plan(plan, by=owner, when=closed_at)
    return summary
