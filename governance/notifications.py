"""Emails about closure reports and decisions. Recipients see only what they could
already see in the portal: group members see their group's reports."""

from __future__ import annotations

from core import emails
from governance.models import ClosureReport, Decision
from plans.models import User


def _group_addresses(group_id: int) -> set[str]:
    return set(
        User.objects.filter(governance_memberships__group_id=group_id, is_active=True).values_list(
            "email", flat=True
        )
    )


def send_report_submitted(*, report_id: int) -> int:
    """Tell the group's members that a closure report awaits their decision."""
    report = ClosureReport.objects.select_related("plan", "group", "submitted_by").get(pk=report_id)
    recipients = _group_addresses(report.group_id) - {report.submitted_by.email}
    return emails.send("governance-report-submitted", recipients, {"report": report})


def send_decision(*, decision_id: int) -> int:
    """Tell the submitter, the plan's owner and the group what was decided."""
    decision = Decision.objects.select_related(
        "report__plan__owner", "report__group", "report__submitted_by", "signed_by", "meeting"
    ).get(pk=decision_id)
    report = decision.report
    recipients = {report.submitted_by.email, report.plan.owner.email}
    recipients |= _group_addresses(report.group_id)
    recipients.discard(decision.signed_by.email)
    return emails.send("governance-decision", recipients, {"decision": decision, "report": report})
