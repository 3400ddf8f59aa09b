"""What the plan page shows of audit tools: which indicators a tool feeds (with a
link to conduct the re-audit, pre-filled), the audit behind each result, and the audit
findings linked to the plan. A fixed number of queries."""

from __future__ import annotations

from audits.tools.access import conduct_locations
from audits.tools.models import Finding, IndicatorFeed
from plans.models import Plan, User


def plan_tools_context(plan: Plan, user: User, indicators: list) -> dict:
    """Sets ``tool_feed`` on each of ``indicators`` (None when typed in) and returns the
    plan's audit findings and where ``user`` may conduct the plan's audits."""
    feeds = {
        f.indicator_id: f
        for f in IndicatorFeed.objects.filter(indicator__plan=plan).select_related("tool")
    }
    for indicator in indicators:
        indicator.tool_feed = feeds.get(indicator.pk)
    locations = []
    if feeds:
        mine = set(conduct_locations(user).values_list("pk", flat=True))
        locations = [loc for loc in plan.locations.all() if loc.pk in mine]
    findings = list(
        Finding.objects.filter(plan=plan)
        .select_related(
            "audit__location", "audit__version__tool", "answer__question", "answer__record"
        )
        .order_by("-created_at", "-pk")[:50]
    )
    return {
        "findings": findings,
        "can_conduct": bool(locations),
    }
