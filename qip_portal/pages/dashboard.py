"""What each kind of user sees first on the home page: what needs their attention, then
the shape of the register. Every function here runs a fixed number of queries,
whatever the size of the data (asserted in tests/qip_portal/test_dashboard.py)."""

from __future__ import annotations

import datetime
import statistics
from collections import Counter

from django.db.models import Count, Q
from django.db.models.functions import TruncDate, TruncMonth

from audits.deterioration import deteriorating_plans
from audits.models import next_due_q, with_due_from
from core.thresholds import DUE_SOON_DAYS
from governance.access import visible_meetings, visible_reports
from governance.models import ClosureReport
from learning.access import can_review_learning, visible_summaries
from learning.models import Acknowledgement, LearningReview
from plans.access import visible_locations, visible_plan_q, visible_plans
from plans.models import Action, Indicator, Plan, User
from qip_portal import closure

REAUDIT_HORIZON_DAYS = DUE_SOON_DAYS


def home_figures(user: User, today: datetime.date) -> dict:
    """Everything the home page counts and lists for ``user``, by role."""
    figures = {"attention": attention(user, today), **my_work(user, today)}
    if user.is_governance_member or user.is_organisation_lead:
        figures.update(governance_work(user, today))
    if user.is_organisation_lead:
        figures["shape"] = register_shape(user, today)
    return figures


def _reaudits(user: User, today: datetime.date) -> tuple[int, int]:
    """(overdue, due within the horizon) among indicators of live and monitoring plans
    the user can see, as ``audits.models.next_due_on`` defines "due": one query on the
    indicators' stored ``last_measured_on``, never reading the results themselves."""
    indicators = with_due_from(
        Indicator.objects.filter(
            visible_plan_q(user), plan__status__in=[Plan.Status.LIVE, Plan.Status.MONITORING]
        )
    )
    horizon = today + datetime.timedelta(days=REAUDIT_HORIZON_DAYS)
    counts = indicators.aggregate(
        overdue=Count("pk", filter=next_due_q(before=today)),
        soon=Count("pk", filter=next_due_q(on_or_after=today, on_or_before=horizon)),
    )
    return counts["overdue"], counts["soon"]


def attention(user: User, today: datetime.date) -> dict:
    """The counts on the "Needs your attention" row, for any role."""
    plans = visible_plans(user)
    overdue_actions = (
        Action.objects.filter(visible_plan_q(user), due_date__lt=today)
        .exclude(status=Action.Status.COMPLETED)
        .exclude(plan__status__in=Plan.FINAL_STATUSES)
        .aggregate(actions=Count("pk"), plans=Count("plan", distinct=True))
    )
    reaudits_overdue, reaudits_soon = _reaudits(user, today)
    return {
        "overdue_actions": overdue_actions["actions"],
        "plans_with_overdue_actions": overdue_actions["plans"],
        "reaudits_overdue": reaudits_overdue,
        "reaudits_soon": reaudits_soon,
        "stale": plans.filter(pk__in=Plan.objects.stale().values("pk")).count(),
        # The closure workflow's one meaning of "ready" (qip_portal/closure/workflow.py).
        "ready_for_review": len(closure.ready_plan_ids(plans)),
        "deteriorating": deteriorating_plans(plans).count(),
        "awaiting_decision": visible_reports(user)
        .filter(status=ClosureReport.Status.AWAITING_DECISION)
        .count(),
        "learning_reviews_due": (
            LearningReview.objects.due_for_review(today)
            .filter(summary__in=visible_summaries(user))
            .count()
            if can_review_learning(user)
            else 0
        ),
        "learning_to_read": Acknowledgement.objects.filter(
            manager=user, acknowledged_at__isnull=True
        ).count(),
    }


def register_shape(user: User, today: datetime.date) -> dict:
    """Open plans by location and theme, opened and closed per month for a year, and
    the median days from opening to closure."""
    plans = visible_plans(user)
    open_plans = plans.filter(status__in=Plan.OPEN_STATUSES)
    by_location = (
        visible_locations(user)
        .annotate(n=Count("plans", filter=Q(plans__in=open_plans)))
        .filter(n__gt=0)
        .order_by("-n", "name")
        .values("pk", "name", "n")
    )
    by_theme = open_plans.values("theme__pk", "theme__name").annotate(n=Count("pk")).order_by("-n")
    first_month = (today.replace(day=1) - datetime.timedelta(days=335)).replace(day=1)
    opened = dict(
        plans.filter(opened_on__gte=first_month)
        .annotate(month=TruncMonth("opened_on"))
        .order_by()
        .values_list("month")
        .annotate(n=Count("pk"))
    )
    # Closure dates in local time, computed by the database (one row per closed plan:
    # the median needs them all, and Python's per-row time-zone work cost 30 ms per
    # 1,000 plans in the benchmark).
    closed_rows = list(
        plans.filter(status=Plan.Status.CLOSED)
        .annotate(closed_on=TruncDate("status_changed_at"))
        .order_by()
        .values_list("opened_on", "closed_on")
    )
    closed = Counter((d.year, d.month) for _, d in closed_rows if d >= first_month)
    months = []
    month = first_month
    while month <= today:
        months.append(
            {
                "key": month.strftime("%Y-%m"),
                "label": month,
                "opened": opened.get(month, 0),
                "closed": closed[(month.year, month.month)],
            }
        )
        month = (month + datetime.timedelta(days=32)).replace(day=1)
    days_to_close = [(closed_on - opened_on).days for opened_on, closed_on in closed_rows]
    return {
        "by_location": list(by_location),
        "by_theme": list(by_theme),
        "months": months,
        "median_days_to_close": round(statistics.median(days_to_close)) if days_to_close else None,
        "closed_count": len(days_to_close),
    }


def my_work(user: User, today: datetime.date) -> dict:
    """A manager's (or anyone's) own open actions and learning to read."""
    plans = visible_plans(user)
    actions = (
        Action.objects.filter(owner=user, plan__in=plans)
        .exclude(status=Action.Status.COMPLETED)
        .exclude(plan__status__in=Plan.FINAL_STATUSES)
        .select_related("plan")
        .order_by("due_date")[:10]
    )
    to_read = (
        Acknowledgement.objects.filter(manager=user, acknowledged_at__isnull=True)
        .select_related("summary__plan")
        .order_by("shared_at")[:5]
    )
    # Plain values (cached: core.freshness caches no model instance).
    return {
        "my_actions": [
            {
                "plan": {
                    "reference": a.plan.reference,
                    "get_absolute_url": a.plan.get_absolute_url(),
                },
                "description": a.description,
                "due_date": a.due_date,
            }
            for a in actions
        ],
        "to_read": [
            {
                "summary": {
                    "plan": {"reference": k.summary.plan.reference, "title": k.summary.plan.title}
                }
            }
            for k in to_read
        ],
    }


def governance_work(user: User, today: datetime.date) -> dict:
    """Reports awaiting the user's groups, and their next meetings."""
    reports = (
        visible_reports(user)
        .filter(status=ClosureReport.Status.AWAITING_DECISION)
        .select_related("plan", "group")
        .defer("content_json", "content_html")  # the frozen snapshot is not shown here
        .order_by("submitted_at")[:10]
    )
    meetings = (
        visible_meetings(user)
        .filter(held_on__gte=today)
        .select_related("group")
        .order_by("held_on")[:5]
    )
    return {
        "awaiting_reports": [
            {
                "pk": r.pk,
                "plan": {"reference": r.plan.reference, "title": r.plan.title},
                "group": str(r.group),
                "submitted_at": r.submitted_at,
            }
            for r in reports
        ],
        "next_meetings": [
            {"pk": m.pk, "group": str(m.group), "held_on": m.held_on} for m in meetings
        ],
    }
