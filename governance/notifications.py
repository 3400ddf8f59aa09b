"""Emails about closure reports and decisions, through the alert outbox
(``core/outbox.py``): queued inside the submission's or decision's own transaction,
keyed by the report or decision, so each is sent once and never lost. Recipients see
only what they could already see in the portal: group members see their group's
reports."""

from __future__ import annotations

from core import outbox
from core.models import Alert
from governance.models import ClosureReport, Decision
from plans.models import User


def _group_addresses(group_id: int) -> set[str]:
    return set(
        User.objects.filter(governance_memberships__group_id=group_id, is_active=True).values_list(
            "email", flat=True
        )
    )


def queue_report_submitted(report: ClosureReport) -> Alert | None:
    """Tell the group's members that a closure report awaits their decision. Call in
    the submission's transaction."""
    recipients = _group_addresses(report.group_id) - {report.submitted_by.email}
    return outbox.queue(
        "governance-report-submitted",
        key=f"governance-report-submitted:{report.pk}",
        recipients=recipients,
        context={"report": report},
    )


def queue_decision(decision: Decision) -> Alert | None:
    """Tell the submitter, the plan's owner and the group what was decided. Call in the
    decision's transaction."""
    report = decision.report
    recipients = {report.submitted_by.email, report.plan.owner.email}
    recipients |= _group_addresses(report.group_id)
    recipients.discard(decision.signed_by.email)
    return outbox.queue(
        "governance-decision",
        key=f"governance-decision:{decision.pk}",
        recipients=recipients,
        context={"decision": decision, "report": report},
    )
