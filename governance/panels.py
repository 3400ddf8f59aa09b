"""The governance section of the plan page: where the plan stands with governance."""

from __future__ import annotations

from governance import access
from governance.models import ClosureReport, ResidualRisk
from plans.models import Plan, User


def plan_panel_context(plan: Plan, user: User) -> dict:
    """Three queries whatever the plan holds. ``all_reports``: every report of the
    plan (the plan page's timeline tells them all; a plan has a handful)."""
    all_reports = list(
        ClosureReport.objects.filter(plan=plan)
        .select_related("group", "submitted_by", "decision__signed_by")
        .defer("content_json", "content_html")  # the frozen snapshot is not shown here
        .order_by("-submitted_at", "-pk")
    )
    reports = all_reports[:5]
    visible_ids = (
        set(
            access.visible_reports(user)
            .filter(pk__in=[r.pk for r in reports])
            .values_list("pk", flat=True)
        )
        if reports
        else set()
    )
    can_prepare = access.can_prepare_reports(user)
    return {
        "plan": plan,
        "reports": [(r, r.pk in visible_ids) for r in reports],
        "all_reports": all_reports,
        "risk_count": ResidualRisk.objects.filter(plan=plan).count(),
        "can_prepare": can_prepare,
        "can_read_live_report": can_prepare or user.is_governance_member,
        "offer_report": plan.status in (Plan.Status.LIVE, Plan.Status.MONITORING),
    }
