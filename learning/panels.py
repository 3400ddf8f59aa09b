"""The "Learning" section of the plan page. Runs a fixed number of queries."""

from __future__ import annotations

from django.utils import timezone

from learning.access import can_share_learning, can_write_learning
from learning.models import LearningSummary
from plans.models import Plan, User


def panel_context(plan: Plan, user: User) -> dict:
    summary = LearningSummary.objects.filter(plan=plan).first()
    embeddings, acks, reviews = [], [], []
    if summary is not None:
        embeddings = list(summary.embeddings.all())
        acks = list(summary.acknowledgements.select_related("manager", "location"))
        reviews = list(summary.reviews.all())
    outstanding = [a for a in acks if a.is_outstanding]
    return {
        "plan": plan,
        "summary": summary,
        "embeddings": embeddings,
        "acks": acks,
        "outstanding": outstanding,
        "reviews": reviews,
        "today": timezone.localdate(),
        "can_write": can_write_learning(user) and (summary is None or not summary.is_retired),
        "can_share": can_share_learning(user) and summary is not None and not summary.is_retired,
    }
