"""Who may see or change learning. Built on ``plans.access``: whoever may read a plan
may read its learning; a manager the learning was shared with may read the learning
(not the plan). Everyone else gets the same 404 as for something that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.http import Http404

from learning.models import Acknowledgement, LearningReview, LearningSummary
from plans.access import get_plan_for_user, visible_plans
from plans.models import Plan, User


def visible_summaries(user: User) -> QuerySet[LearningSummary]:
    """Learning from plans the user may read, plus learning shared with them."""
    if not user.is_authenticated or not user.is_active:
        return LearningSummary.objects.none()
    if user.sees_all_locations:
        return LearningSummary.objects.all()
    shared = Acknowledgement.objects.filter(manager=user).values("summary_id")
    return LearningSummary.objects.filter(
        Q(plan__in=visible_plans(user).values("pk")) | Q(pk__in=shared)
    )


def can_write_learning(user: User) -> bool:
    return user.is_authenticated and user.may_write_plans  # summary, embedding


def can_share_learning(user: User) -> bool:
    # Sharing with other locations' managers is an organisation-wide decision.
    return user.is_authenticated and user.is_organisation_lead


def can_review_learning(user: User) -> bool:
    # The outcome of a relevance review (the leadership / governance meeting).
    return user.is_authenticated and (user.is_organisation_lead or user.is_governance_member)


@dataclass(frozen=True)
class LearningAccess:
    plan: Plan
    summary: LearningSummary | None
    # False when the user reads this only because it was shared with them.
    plan_visible: bool


def get_learning_for_user(user: User, reference: str, *, write: bool = False) -> LearningAccess:
    """A plan's learning, if ``user`` may see it (and change it, when ``write``);
    otherwise 404, whether or not the plan exists."""
    try:
        plan = get_plan_for_user(user, reference)
    except Http404:
        if write:
            raise
        summary = (
            LearningSummary.objects.select_related("plan__theme", "plan__owner")
            .filter(plan__reference=reference, acknowledgements__manager=user)
            .first()
        )
        if summary is None or not user.is_active:
            raise Http404("No such learning.") from None
        return LearningAccess(plan=summary.plan, summary=summary, plan_visible=False)
    if write and not can_write_learning(user):
        raise Http404("No such learning.")
    summary = LearningSummary.objects.filter(plan=plan).first()
    return LearningAccess(plan=plan, summary=summary, plan_visible=True)


def get_review_for_user(user: User, pk: int, *, write: bool = False) -> LearningReview:
    """A review of learning the user may read (and record, when ``write``); else 404."""
    if write and not can_review_learning(user):
        raise Http404("No such review.")
    review = (
        LearningReview.objects.select_related(
            "summary__plan__theme", "reviewed_by", "meeting__group"
        )
        .filter(pk=pk, summary__in=visible_summaries(user).values("pk"))
        .first()
    )
    if review is None or (write and not _plan_visible(user, review.summary.plan)):
        raise Http404("No such review.")
    return review


def get_acknowledgement_for_user(user: User, pk: int) -> Acknowledgement:
    """Only the manager it is addressed to may acknowledge; anyone else gets 404."""
    ack = (
        Acknowledgement.objects.select_related("summary__plan").filter(pk=pk, manager=user).first()
    )
    if ack is None or not user.is_active:
        raise Http404("No such acknowledgement.")
    return ack


def _plan_visible(user: User, plan: Plan) -> bool:
    return visible_plans(user).filter(pk=plan.pk).exists()
