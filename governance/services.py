"""Everything that changes governance records: one function per change, each in a
transaction, each saving with history (who and why) and sending email or rendering
PDFs only after commit.

Submitting a plan for closure and signing a decision move the plan too; those steps are
composed by the closure workflow (``qip_portal/closure/workflow.py``), which checks what must
hold across apps and calls ``freeze_report`` and ``record_decision`` here for
governance's own part.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from audits.services import monitoring_problems
from core.dates import day
from core.history import save_with_history as _save
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
from plans.services import TransitionRefused, touch_plan

# django-simple-history keeps a change reason in 100 characters; the lifecycle prefixes
# it with the step's label ("Step down into monitoring: "). The full text is kept on the
# report or decision itself.
HISTORY_REASON_CHARS = 70


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
    if not user.is_governance_member and role in Membership.SIGNING_ROLES:
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
    membership.user = user  # the caller's copy, kept up to date (qip_portal/accounts/sessions.py)
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
    """Schedule a meeting of ``group``. A group meets at most once a day, so a meeting
    is named by its group and date alone (in the decision form, the signed record and
    the evidence pack): a second meeting on the same date is refused, changing nothing.
    The group's row is locked, so two people scheduling at once cannot both succeed
    (the unique constraint is the last wall)."""
    GovernanceGroup.objects.select_for_update().filter(pk=group.pk).first()
    if Meeting.objects.filter(group=group, held_on=held_on).exists():
        raise TransitionRefused(
            [
                f"{group} already has a meeting on {day(held_on)}. Use that meeting: "
                "put the reports on its agenda."
            ]
        )
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


def plans_with_residual_risks(plan_ids: Iterable[int]) -> set[int]:
    """Which of ``plan_ids`` have at least one residual risk recorded (the closure
    report needs them): one query however many plans."""
    return set(
        ResidualRisk.objects.filter(plan_id__in=list(plan_ids))
        .values_list("plan_id", flat=True)
        .distinct()
    )


def group_refusals(group: GovernanceGroup, level: int) -> list[str]:
    """Why ``group`` may not decide a plan needing sign-off at ``level``."""
    refusals = []
    if not group.is_active:
        refusals.append(f"{group} is no longer active.")
    if not group.may_decide(level):
        refusals.append(
            f"{group} may decide up to “{group.get_authority_level_display()}”; this plan "
            f"needs sign-off at “{SignOffLevel(level).label}” or higher."
        )
    return refusals


@transaction.atomic
def freeze_report(
    *,
    plan: Plan,
    by: User,
    group: GovernanceGroup,
    content: dict,
    transition: str,
    override_rationale: str = "",
) -> ClosureReport:
    """Freeze the compiled ``content`` as a closure report (content, HTML and SHA-256)
    put to ``group``; the PDF is rendered from the frozen HTML after commit. Called by
    the closure workflow with the plan's row locked, just before it moves the plan to
    closure review. Refuses, changing nothing, if the group may not decide this plan's
    sign-off level or a report already awaits a decision."""
    criteria = ClosureCriteria.objects.filter(plan=plan).first()
    level = criteria.sign_off_level if criteria else SignOffLevel.BOARD
    refusals = group_refusals(group, level)
    if refusals:
        raise TransitionRefused(refusals)
    now = timezone.now()
    content = {
        **content,
        "submission": {
            "submitted_by": str(by),
            "submitted_at": reports.moment(now),
            "group": group.name,
            "group_authority": group.get_authority_level_display(),
        },
    }
    content_json = reports.canonical_json(content)
    content_html = reports.render_body(content)
    report = ClosureReport(
        plan=plan,
        group=group,
        transition=transition,
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
    _after_commit_submit(report.pk)
    notifications.queue_report_submitted(report)
    return report


def _after_commit_submit(report_id: int) -> None:
    from core.queueing import after_commit
    from governance import tasks

    after_commit(tasks.render_report_pdf, report_id)  # a lost task: governance/renders.py


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


@transaction.atomic
def record_decision(
    *,
    report: ClosureReport,
    meeting: Meeting,
    by: User,
    outcome: str,
    reasons: str = "",
    monitoring_indicators: Iterable[Indicator] = (),
    monitoring_floors: dict | None = None,
    monitoring_audit_theme: str = "",
    monitoring_ends_on: datetime.date | None = None,
    other_refusals: Iterable[str] = (),
) -> Decision:
    """Governance's part of signing a decision on ``report`` (the closure workflow,
    ``qip_portal/closure/workflow.py``, composes the whole step and moves the plan on): the
    signed ``Decision`` row, the agenda item and the report marked decided.

    The signature itself (password and authenticator code) is checked by the closure
    workflow before this is called. Refuses, changing nothing, unless: ``by`` chairs the
    report's group (or is recorded as its delegate chair); the group's authority reaches
    the criteria's sign-off level; the meeting is the group's; a return has reasons; a
    step-down names what is monitored, with a floor for each indicator.
    ``other_refusals`` are the closure workflow's (segregation of duties), reported with
    governance's own. The report row is locked, so two chairs signing at once give
    exactly one decision; the second is told the report has been decided."""
    report = (
        ClosureReport.objects.select_for_update(of=("self",))
        .select_related("plan", "group")
        .get(pk=report.pk)
    )
    plan = report.plan
    reasons = (reasons or "").strip()
    if not report.is_awaiting_decision or Decision.objects.filter(report=report).exists():
        raise TransitionRefused(["This closure report has already been decided."])
    refusals: list[str] = list(other_refusals)
    membership = Membership.objects.filter(group=report.group, user=by).first()
    if membership is None or not membership.can_sign:
        refusals.append(
            f"Only the chair of {report.group} (or a delegate recorded as such) may sign."
        )
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
        # Checked by monitoring's own rules, the same that open the period.
        indicator_ids = sorted(i.pk for i in monitoring_indicators)
        given = monitoring_floors or {}
        chosen = {pk: given.get(pk, given.get(str(pk))) for pk in indicator_ids}
        parsed, ends_on, problems = monitoring_problems(
            plan=plan,
            floors=chosen,
            audit_theme=monitoring_audit_theme,
            end_date=monitoring_ends_on,
        )
        refusals.extend(problems)
        floors = {str(pk): f"{floor.normalize():f}" for pk, floor in parsed.items()}
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
    report.status = ClosureReport.Status.DECIDED
    _save(report, by=by, reason=f"Decided: {decision.get_outcome_display()}")
    notifications.queue_decision(decision)
    _after_commit_decision(decision.pk)
    return decision


def _after_commit_decision(decision_id: int) -> None:
    from governance import renders

    renders.queue_signed_record(decision_id)  # a lost task: renders.recover_stuck_records


def transition_reason(decision: Decision) -> str:
    """The plan's history reason for the step a decision takes (history keeps 100
    characters; the full text is on the decision)."""
    if decision.reasons:
        return _short(decision.reasons)
    return _short(f"signed by {decision.signed_by} ({decision.get_signed_as_display().lower()})")


def monitoring_escalation_addresses(decision: Decision) -> list[str]:
    """Who is told at once of deterioration in the monitoring a step-down starts: the
    members of the group that stepped the plan down."""
    return list(
        decision.report.group.memberships.exclude(user__email="").values_list(
            "user__email", flat=True
        )
    )


# --- The signed record ------------------------------------------------------------------


def _floor_text(indicator: Indicator, floor: str | None) -> str:
    if not floor:
        return "no floor"
    sign = "≥" if indicator.direction == Indicator.Direction.HIGHER else "≤"
    unit = indicator.unit
    return f"{sign} {floor}%" if unit == "%" else f"{sign} {floor} {unit}".rstrip()


def signed_record_context(decision: Decision) -> dict:
    """What the signed record says above the frozen report: the decision, the words
    signed, who signed as what, when, at which meeting, and the hashes (the snapshot's
    recomputed now, so the record says whether it still matches)."""
    report = decision.report
    floors = decision.monitoring_floors or {}
    indicators = Indicator.objects.filter(pk__in=decision.monitoring_indicator_ids).order_by("pk")
    return {
        "decision": decision,
        "report": report,
        "meeting": decision.meeting,
        "intact": report.is_intact(),
        "hash_matches": decision.snapshot_sha256 == report.sha256,
        "monitored": [
            {"name": i.name, "floor": _floor_text(i, floors.get(str(i.pk)))} for i in indicators
        ],
        "signed_at": reports.moment(decision.signed_at),
        "submitted_at": reports.moment(report.submitted_at),
    }


def render_signed_record_pdf(*, decision_id: int) -> bytes:
    """The signed record's PDF: the signature block, then the frozen report's HTML
    exactly as it was submitted (and hashed)."""
    from django.template.loader import render_to_string

    from governance import pdf

    decision = Decision.objects.select_related(
        "report__plan", "report__group", "report__submitted_by", "signed_by", "meeting__group"
    ).get(pk=decision_id)
    block = render_to_string("governance/_signed_record.html", signed_record_context(decision))
    return pdf.render_pdf(
        body_html=block + decision.report.content_html,
        title=f"Signed record {decision.report.plan.reference}",
    )
