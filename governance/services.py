"""Everything that changes governance records: one function per change, each in a
transaction, each saving with history (who and why) and sending email or rendering
PDFs only after commit.

The plan's own status changes only through ``plans.services.perform_transition``.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from audits.services import MonitoringRefused, start_monitoring
from governance import notifications, reports
from governance.models import (
    AgendaItem,
    ClosureReport,
    Decision,
    GovernanceGroup,
    Meeting,
    Membership,
    ResidualRisk,
    snapshot_digest,
)
from plans.models import ClosureCriteria, Indicator, Plan, SignOffLevel, User
from plans.services import TransitionRefused, _save, perform_transition, touch_plan

# Months a stepped-down plan is monitored unless the group says otherwise.
DEFAULT_MONITORING_MONTHS = 6
# django-simple-history keeps a change reason in 100 characters; the lifecycle prefixes
# it with the step's label ("Step down into monitoring: "). The full text is kept on the
# report or decision itself.
HISTORY_REASON_CHARS = 70
SUBMIT_TRANSITIONS = {
    Plan.Status.LIVE: "submit_for_closure",
    Plan.Status.MONITORING: "submit_for_final_closure",
}


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= HISTORY_REASON_CHARS else text[: HISTORY_REASON_CHARS - 1] + "…"


# --- Groups and meetings --------------------------------------------------------------


@transaction.atomic
def create_group(*, by: User, name: str, authority_level: int, remit: str = "") -> GovernanceGroup:
    group = GovernanceGroup(name=name.strip(), authority_level=authority_level, remit=remit)
    _save(group, by=by, reason="Group created")
    return group


@transaction.atomic
def set_membership(*, group: GovernanceGroup, user: User, role: str, by: User) -> Membership:
    """Add ``user`` to ``group`` or change their role. Making someone chair makes the
    previous chair a member (a group has one chair; delegates are recorded as such)."""
    group = GovernanceGroup.objects.select_for_update().get(pk=group.pk)
    if user.role != User.Role.GOVERNANCE_MEMBER and role in Membership.SIGNING_ROLES:
        raise TransitionRefused(["Only a governance group member may chair or sign."])
    if role == Membership.Role.CHAIR:
        for previous in Membership.objects.filter(group=group, role=Membership.Role.CHAIR).exclude(
            user=user
        ):
            previous.role = Membership.Role.MEMBER
            _save(previous, by=by, reason=f"Chair passed to {user}")
    membership = Membership.objects.filter(group=group, user=user).first() or Membership(
        group=group, user=user
    )
    is_new = membership.pk is None
    membership.role = role
    _save(membership, by=by, reason="Member added" if is_new else "Role changed")
    return membership


@transaction.atomic
def remove_membership(*, membership: Membership, by: User) -> None:
    membership._history_user = by
    membership._change_reason = "Member removed"
    membership.delete()


@transaction.atomic
def schedule_meeting(
    *, group: GovernanceGroup, held_on: datetime.date, by: User, attendees: Iterable[User] = ()
) -> Meeting:
    meeting = Meeting(group=group, held_on=held_on, created_by=by)
    _save(meeting, by=by, reason="Meeting scheduled")
    meeting.attendees.set(list(attendees))
    return meeting


@transaction.atomic
def record_meeting(
    *, meeting: Meeting, by: User, minutes: str, attendees: Iterable[User]
) -> Meeting:
    """Minutes and attendance (a meeting's record can be corrected; history keeps each
    version and who made it)."""
    meeting = Meeting.objects.select_for_update().get(pk=meeting.pk)
    meeting.minutes = minutes
    _save(meeting, by=by, reason="Minutes and attendance recorded")
    meeting.attendees.set(list(attendees))
    return meeting


@transaction.atomic
def put_on_agenda(*, meeting: Meeting, report: ClosureReport, by: User) -> AgendaItem:
    """Put a report awaiting decision on a meeting of the group it was put to. Doing it
    twice is harmless."""
    if report.group_id != meeting.group_id:
        raise TransitionRefused(["This report was put to a different group."])
    if not report.is_awaiting_decision:
        raise TransitionRefused(["This report has already been decided."])
    existing = AgendaItem.objects.filter(meeting=meeting, report=report).first()
    if existing:
        return existing
    item = AgendaItem(
        meeting=meeting,
        report=report,
        added_by=by,
        position=AgendaItem.objects.filter(meeting=meeting).count(),
    )
    _save(item, by=by, reason="Put on the agenda")
    return item


# --- Residual risks -------------------------------------------------------------------


@transaction.atomic
def record_residual_risk(
    *, plan: Plan, by: User, description: str, monitoring: str
) -> ResidualRisk:
    if plan.is_final:
        raise TransitionRefused(["A closed or withdrawn plan's residual risks cannot change."])
    if not description.strip() or not monitoring.strip():
        raise TransitionRefused(["Describe the risk and say how it is monitored."])
    risk = ResidualRisk(
        plan=plan, description=description.strip(), monitoring=monitoring.strip(), recorded_by=by
    )
    _save(risk, by=by, reason="Residual risk recorded")
    touch_plan(plan.pk)
    return risk


@transaction.atomic
def remove_residual_risk(*, risk: ResidualRisk, by: User) -> None:
    if risk.plan.status != Plan.Status.LIVE and risk.plan.status != Plan.Status.MONITORING:
        raise TransitionRefused(["Residual risks can be removed only before submission."])
    risk._history_user = by
    risk._change_reason = "Residual risk removed"
    risk.delete()
    touch_plan(risk.plan_id)


# --- Closure reports ------------------------------------------------------------------


def closure_report_gaps(plan: Plan) -> list[str]:
    """What the report itself still needs before it can be submitted."""
    gaps = []
    if not ResidualRisk.objects.filter(plan=plan).exists():
        gaps.append("Record the residual risks and how each is monitored.")
    return gaps


def closure_report_guard(plan: Plan) -> list[str]:
    """The "closure_report" lifecycle guard: submission must have compiled and frozen a
    report for this plan that now awaits a decision (``submit_for_closure`` creates it
    inside the same transaction, just before the transition)."""
    if not ClosureReport.objects.filter(plan=plan).awaiting_decision().exists():
        return ["Compile and freeze the closure report: submit it from the report page."]
    return []


def governance_decision_guard(plan: Plan) -> list[str]:
    """The "governance_decision" guard: a signed decision on the report awaiting one
    (``sign_decision`` writes it in the same transaction, just before the transition)."""
    report = ClosureReport.objects.filter(plan=plan).awaiting_decision().first()
    if report is None or not Decision.objects.filter(report=report).exists():
        return ["A governance group must decide, and its chair sign, at a meeting."]
    return []


@transaction.atomic
def submit_for_closure(
    *, plan: Plan, by: User, group: GovernanceGroup, override_rationale: str = ""
) -> ClosureReport:
    """Compile the closure report, freeze it (content, HTML and SHA-256), put it to
    ``group`` and move the plan to closure review. The PDF is rendered from the frozen
    HTML after commit. Refuses, changing nothing, if the group may not decide this
    plan's sign-off level or the lifecycle guard does not hold."""
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    criteria = ClosureCriteria.objects.filter(plan=locked).first()
    level = criteria.sign_off_level if criteria else SignOffLevel.BOARD
    refusals = closure_report_gaps(locked)
    if not group.is_active:
        refusals.append(f"{group} is no longer active.")
    if not group.may_decide(level):
        refusals.append(
            f"{group} may decide up to “{group.get_authority_level_display()}”; this plan "
            f"needs sign-off at “{SignOffLevel(level).label}” or higher."
        )
    name = SUBMIT_TRANSITIONS.get(locked.status, "submit_for_closure")
    if refusals:
        raise TransitionRefused(refusals)
    content = reports.compile_report(locked, override_rationale=override_rationale)
    now = timezone.now()
    content["submission"] = {
        "submitted_by": str(by),
        "submitted_at": reports._moment(now),
        "group": group.name,
        "group_authority": group.get_authority_level_display(),
    }
    content_json = reports.canonical_json(content)
    content_html = reports.render_body(content)
    report = ClosureReport(
        plan=locked,
        group=group,
        transition=name,
        submitted_by=by,
        submitted_at=now,
        sign_off_level=level,
        override_rationale=override_rationale.strip(),
        content_json=content_json,
        content_html=content_html,
        sha256=snapshot_digest(content_json, content_html),
    )
    try:
        with transaction.atomic():
            _save(report, by=by, reason="Closure report submitted")
    except IntegrityError:
        raise TransitionRefused(
            ["A closure report for this plan already awaits a decision."]
        ) from None
    reason = f"override: {_short(override_rationale)}" if override_rationale.strip() else ""
    # A written rationale sets aside the readiness verdict (and only that); the
    # rationale is frozen into the report and shown prominently on it.
    perform_transition(
        plan=locked,
        name=name,
        by=by,
        reason=reason,
        override_guards=("readiness",) if override_rationale.strip() else (),
    )
    _after_commit_submit(report.pk)
    notifications.queue_report_submitted(report)
    return report


def _after_commit_submit(report_id: int) -> None:
    from governance import tasks

    transaction.on_commit(lambda: tasks.render_report_pdf.delay(report_id))


def render_snapshot_pdf(*, report_id: int) -> ClosureReport:
    """Render a submitted report's PDF from its frozen HTML, once. Safe to run any number
    of times: a report whose PDF exists is left alone (a frozen PDF is never replaced)."""
    from governance import pdf

    with transaction.atomic():
        report = ClosureReport.objects.select_for_update().get(pk=report_id)
        if report.pdf:
            return report
        report.pdf_status = ClosureReport.PdfStatus.RENDERING
        report.save(update_fields=["pdf_status"])
    try:
        data = pdf.render_pdf(
            body_html=report.content_html, title=f"Closure report {report.plan.reference}"
        )
    except Exception as exc:
        ClosureReport.objects.filter(pk=report_id).update(
            pdf_status=ClosureReport.PdfStatus.FAILED, pdf_error=str(exc)[:300]
        )
        raise
    with transaction.atomic():
        report = ClosureReport.objects.select_for_update().get(pk=report_id)
        if report.pdf:
            return report  # another worker finished first
        report.pdf.save(f"{report.plan.reference}.pdf", ContentFile(data), save=False)
        report.pdf_sha256 = hashlib.sha256(data).hexdigest()
        report.pdf_status = ClosureReport.PdfStatus.READY
        report.pdf_error = ""
        _save(report, by=None, reason="PDF rendered from the frozen report")
    return report


# --- Decisions ------------------------------------------------------------------------


def signature_meaning(
    *, outcome: str, reference: str, sha256: str, ends_on: datetime.date | None = None
) -> str:
    """The words the signer confirms, recorded with the signature."""
    short = sha256[:16]
    if outcome == Decision.Outcome.CLOSE:
        return f"I confirm closure of {reference} on the evidence listed in closure report {short}."
    if outcome == Decision.Outcome.STEP_DOWN:
        until = f" until {ends_on:%d %b %Y}" if ends_on else ""
        return (
            f"I confirm that {reference} steps down into monitoring{until} on the evidence "
            f"listed in closure report {short}."
        )
    return f"I confirm that {reference} returns to live for the reasons recorded."


def _parse_floors(floors: dict, indicator_ids: list[int]) -> tuple[dict[str, str], list[str]]:
    parsed: dict[str, str] = {}
    problems: list[str] = []
    for indicator_id in indicator_ids:
        raw = floors.get(indicator_id, floors.get(str(indicator_id)))
        try:
            parsed[str(indicator_id)] = f"{Decimal(str(raw)).normalize():f}"
        except (InvalidOperation, ValueError, TypeError):
            problems.append("Set a floor for every indicator that will be monitored.")
            break
    return parsed, problems


def _start_monitoring(*, decision: Decision, plan: Plan, by: User) -> None:
    """Open the monitoring period the step-down decision describes; the group that
    stepped the plan down is told at once of any deterioration. A refusal undoes the
    whole decision (we are inside its transaction)."""
    group_emails = list(
        decision.report.group.memberships.exclude(user__email="").values_list(
            "user__email", flat=True
        )
    )
    try:
        start_monitoring(
            plan=plan,
            by=by,
            floors={int(pk): Decimal(floor) for pk, floor in decision.monitoring_floors.items()},
            end_date=decision.monitoring_ends_on,
            escalate_to=group_emails,
            audit_theme=decision.monitoring_audit_theme or None,
        )
    except MonitoringRefused as refused:
        raise TransitionRefused(refused.reasons) from None


@transaction.atomic
def sign_decision(
    *,
    report: ClosureReport,
    meeting: Meeting,
    by: User,
    password: str,
    outcome: str,
    reasons: str = "",
    monitoring_indicators: Iterable[Indicator] = (),
    monitoring_floors: dict | None = None,
    monitoring_audit_theme: str = "",
    monitoring_ends_on: datetime.date | None = None,
) -> Decision:
    """Record the group's decision on ``report``, signed by ``by``, and move the plan on
    (close, step down into monitoring, or return to live).

    Refuses, changing nothing, unless: the password is right; ``by`` chairs the report's
    group (or is recorded as its delegate chair); ``by`` did not submit the report; the
    group's authority reaches the criteria's sign-off level; the meeting is the group's;
    a return has reasons; a step-down names what is monitored, with a floor for each
    indicator. The report row is locked, so two chairs signing at once give exactly one
    decision; the second is told the report has been decided."""
    report = (
        ClosureReport.objects.select_for_update(of=("self",))
        .select_related("plan", "group")
        .get(pk=report.pk)
    )
    plan = report.plan
    reasons = (reasons or "").strip()
    refusals: list[str] = []
    if not report.is_awaiting_decision or Decision.objects.filter(report=report).exists():
        raise TransitionRefused(["This closure report has already been decided."])
    if not password or not by.check_password(password):
        # Checked first and alone: say nothing else to someone who may not be the signer.
        raise TransitionRefused(["The password was not right. Nothing was signed."])
    membership = Membership.objects.filter(group=report.group, user=by).first()
    if membership is None or not membership.can_sign:
        refusals.append(
            f"Only the chair of {report.group} (or a delegate recorded as such) may sign."
        )
    if by.pk == report.submitted_by_id:
        refusals.append("You submitted this report, so you cannot sign its decision.")
    criteria = ClosureCriteria.objects.filter(plan=plan).first()
    level = max(report.sign_off_level, criteria.sign_off_level if criteria else 0)
    if not report.group.may_decide(level):
        refusals.append(
            f"{report.group} may decide up to “{report.group.get_authority_level_display()}”; "
            f"this plan needs “{SignOffLevel(level).label}” or higher."
        )
    if meeting.group_id != report.group_id:
        refusals.append("Choose a meeting of the group the report was put to.")
    if outcome not in Decision.Outcome.values:
        refusals.append("Choose close, step down or return.")
    if outcome == Decision.Outcome.RETURN and not reasons:
        refusals.append("Give the reasons for returning the plan.")
    indicator_ids: list[int] = []
    floors: dict[str, str] = {}
    ends_on = None
    if outcome == Decision.Outcome.STEP_DOWN:
        plan_indicator_ids = set(plan.indicators.values_list("pk", flat=True))
        indicator_ids = sorted(i.pk for i in monitoring_indicators)
        if any(i not in plan_indicator_ids for i in indicator_ids):
            refusals.append("Monitor only this plan's indicators.")
        if not indicator_ids and not monitoring_audit_theme.strip():
            refusals.append("Say what will be monitored: indicators or an audit theme.")
        floors, problems = _parse_floors(monitoring_floors or {}, indicator_ids)
        refusals.extend(problems)
        today = timezone.localdate()
        ends_on = monitoring_ends_on or today + relativedelta(months=DEFAULT_MONITORING_MONTHS)
        if ends_on <= today:
            refusals.append("The monitoring period must end in the future.")
    if refusals:
        raise TransitionRefused(refusals)
    decision = Decision(
        report=report,
        meeting=meeting,
        outcome=outcome,
        reasons=reasons,
        signed_by=by,
        signed_as=membership.role,
        signed_at=timezone.now(),
        signature_meaning=signature_meaning(
            outcome=outcome, reference=plan.reference, sha256=report.sha256, ends_on=ends_on
        ),
        snapshot_sha256=report.sha256,
        pdf_sha256=report.pdf_sha256,
        monitoring_indicator_ids=indicator_ids,
        monitoring_floors=floors,
        monitoring_audit_theme=monitoring_audit_theme.strip(),
        monitoring_ends_on=ends_on,
    )
    # A decision is taken on an agenda item; record it there if it was taken ad hoc.
    put_on_agenda(meeting=meeting, report=report, by=by)
    _save(decision, by=by, reason=f"Signed: {decision.get_outcome_display()}")
    # The guard reads the decision written above, inside this same transaction.
    transition_reason = (
        _short(reasons) if reasons else f"signed by {by} ({membership.get_role_display().lower()})"
    )
    perform_transition(
        plan=plan, name=Decision.TRANSITIONS[outcome], by=by, reason=_short(transition_reason)
    )
    if outcome == Decision.Outcome.STEP_DOWN:
        _start_monitoring(decision=decision, plan=plan, by=by)
    report.status = ClosureReport.Status.DECIDED
    _save(report, by=by, reason=f"Decided: {decision.get_outcome_display()}")
    notifications.queue_decision(decision)
    return decision
