"""The closure workflow: what must hold before a plan may go to closure review, and the
steps that take it there and beyond (ARCHITECTURE.md, "Plan lifecycle").

This is the one place that answers "may this plan close?". ``closure_blockers(plan)``
returns every reason, in words, with where to fix it; the plan page, the home counts,
the register's "ready for closure review" filter, the readiness email and the closure
report all read it, so "ready" means the same everywhere.

Each reason belongs to one of two stages. The *plan* stage is what the evidence and the
delivery must show: every indicator's criteria met with no concern signal in the
sustain window, every action completed, the required evidence (or, after step-down,
monitoring ended with no open deterioration). A plan with nothing left at that stage is
**ready for closure review**: the quality lead is told, and compiles the report. The
*report* stage is what the quality lead writes into the closure report itself (the
learning summary, the residual risks); submission needs both stages clear. The steps themselves,
``submit_for_closure`` (also final closure after monitoring), ``sign_decision`` (close,
step down, return) and ``reopen_plan``, check what holds across apps and then call each
app's own service for its part; ``plans.services.perform_transition`` moves the plan.

It sits at the top layer because it reads every app: results and verdicts (audits),
the closure report and decisions (governance), the learning summary (learning).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django_otp import match_token, user_has_device

from audits import deterioration as deterioration_rules
from audits import services as audit_services
from audits.models import EvidenceItem, Measurement, MonitoringPeriod
from audits.verdicts import PlanVerdicts, plans_meeting_criteria, verdicts_for_plans
from core import freshness, jobs, outbox, security
from core.dates import day
from core.models import Alert, SecurityEvent
from core.thresholds import SIGNING_FAILURE_LIMIT, SIGNING_LOCK_MINUTES
from governance import reports
from governance import services as governance
from governance.models import ClosureReport, Decision, GovernanceGroup, Meeting
from learning import panels as learning_panels
from learning import services as learning
from plans import lifecycle
from plans.models import Action, Indicator, Plan, User
from plans.services import TransitionRefused, perform_transition

# Plans judged at once by the readiness sweep: bounds memory, not queries per plan.
BATCH = 500


@dataclass(frozen=True)
class Blocker:
    """One reason a plan may not yet go to closure review, and where to put it right."""

    text: str
    fix_url: str = ""
    fix_label: str = ""
    # The criteria verdict and a concern signal may be set aside by a written rationale
    # on submission, shown prominently on the report; nothing else may.
    overridable: bool = False
    # "plan": the evidence and delivery (decides "ready for closure review");
    # "report": what the quality lead writes into the closure report before submitting.
    stage: str = "plan"

    @property
    def is_report_stage(self) -> bool:
        return self.stage == REPORT_STAGE


REPORT_STAGE = "report"


def is_ready(blockers: list[Blocker]) -> bool:
    """Ready for closure review: nothing left that the evidence or delivery must show
    (the closure report's own parts come next)."""
    return not any(b.stage != REPORT_STAGE for b in blockers)


# A plan reference no plan has (``plans.converters``: at most 20 characters), reversed in
# its place once per view name and replaced by each plan's own.
_PLACEHOLDER = "QIP-9999-99999999999"


class _PlanUrls:
    """``reverse(name, args=[plan.reference])`` for many plans: each view name is reversed
    once per call of ``blockers_for_plans`` (not kept longer: the script prefix belongs to
    the request), and each plan's reference put in the placeholder's place. A plan
    reference is plain ASCII (``QIP-2025-0001``), so it needs no quoting and the result is
    exactly what ``reverse`` gives (tested). Thousands of blockers reversed each view
    once each cost about as much as the rest of the readiness check."""

    def __init__(self) -> None:
        self._made: dict[str, str] = {}

    def __call__(self, name: str, plan: Plan, anchor: str = "") -> str:
        pattern = self._made.get(name)
        if pattern is None:
            pattern = self._made[name] = reverse(name, args=[_PLACEHOLDER])
        url = pattern.replace(_PLACEHOLDER, plan.reference)
        return f"{url}#{anchor}" if anchor else url


def _plan_url(plan: Plan, anchor: str, urls: _PlanUrls | None = None) -> str:
    return (urls or _PlanUrls())("plans:detail", plan, anchor)


def _verdict_blockers(
    plan: Plan, verdicts: PlanVerdicts, urls: _PlanUrls | None = None
) -> list[Blocker]:
    urls = urls or _PlanUrls()
    if verdicts.criteria is None:
        return [
            Blocker(
                "The plan has no closure criteria.",
                urls("plans:edit_criteria", plan),
                "Write the criteria",
            )
        ]
    log_url = urls("audits:log", plan)
    found: list[Blocker] = []
    if not verdicts.indicators:
        found.append(
            Blocker(
                "The plan has no indicators to judge.",
                urls("plans:add_indicator", plan),
                "Add an indicator",
            )
        )
    for v in verdicts.indicators:
        if not v.criteria.met:
            found.append(
                Blocker(
                    f"“{v.indicator.name}”: {v.criteria.explain()}",
                    log_url,
                    "Log a re-audit",
                    overridable=True,
                )
            )
        if v.assurance.concerns_in_window:
            first = v.assurance.concerns_in_window[0]
            found.append(
                Blocker(
                    f"“{v.indicator.name}”: a concern signal inside the sustain window. "
                    f"{first.explain()}",
                    _plan_url(plan, "verdicts", urls),
                    "See the chart",
                    overridable=True,
                )
            )
    if verdicts.open_actions:
        n = len(verdicts.open_actions)
        listed = "; ".join(text[:80] for text in verdicts.open_actions[:3])
        more = f" and {n - 3} more" if n > 3 else ""
        found.append(
            Blocker(
                f"{n} action{'s are' if n != 1 else ' is'} not completed: {listed}{more}.",
                _plan_url(plan, "actions", urls),
                "Complete the actions",
            )
        )
    for label in verdicts.missing_evidence:
        found.append(
            Blocker(
                f"No evidence of the required kind “{label}” has been added.",
                urls("audits:add_evidence", plan),
                "Add evidence",
            )
        )
    return found


def blockers_for_plans(
    plans: Iterable[Plan], *, verdicts: dict[int, PlanVerdicts] | None = None
) -> dict[int, list[Blocker]]:
    """{plan id: every reason it may not go to closure review now} for ``plans``; an
    empty list means it may. A fixed number of queries however many plans (about ten;
    fewer when ``verdicts``, already built for these plans, are passed in).

    A live plan needs every indicator's criteria met with no concern signal inside its
    sustain window (or a written override on submission), every action completed, the
    required evidence, a complete learning summary and its residual risks recorded. A
    plan in monitoring needs its monitoring period ended with no open deterioration, and
    its residual risks. Any other status cannot go to closure review."""
    plans = list(plans)
    live = [p for p in plans if p.status == Plan.Status.LIVE]
    watched = [p.pk for p in plans if p.status == Plan.Status.MONITORING]
    open_ids = [p.pk for p in live] + watched
    given = verdicts or {}
    missing = [p for p in live if p.pk not in given]
    built = {**given, **(verdicts_for_plans(missing) if missing else {})}
    with_summary = learning.plans_with_complete_summary([p.pk for p in live]) if live else set()
    with_risks = governance.plans_with_residual_risks(open_ids) if open_ids else set()
    final_gaps = deterioration_rules.final_closure_gaps(watched) if watched else {}
    urls = _PlanUrls()
    result: dict[int, list[Blocker]] = {}
    for plan in plans:
        if plan.status not in lifecycle.SUBMIT_TRANSITIONS:
            result[plan.pk] = [
                Blocker(
                    f"The plan is {plan.get_status_display().lower()}: only a live plan, or "
                    "one whose monitoring has ended, can go to closure review."
                )
            ]
            continue
        found: list[Blocker] = []
        if plan.status == Plan.Status.LIVE:
            found.extend(_verdict_blockers(plan, built[plan.pk], urls))
            if plan.pk not in with_summary:
                found.append(
                    Blocker(
                        "Write the learning summary (what happened, what changed and the key "
                        "messages for staff).",
                        urls("learning:summary", plan),
                        "Write the learning summary",
                        stage=REPORT_STAGE,
                    )
                )
        else:
            for text in final_gaps.get(plan.pk, []):
                if "without enough monitoring data" in text:
                    # The decision is the group chair's (the banner offers it to them).
                    banner = _plan_url(plan, "monitoring-decision-banner", urls)
                    found.append(Blocker(text, banner, "See more"))
                elif "open deterioration" in text:
                    found.append(
                        Blocker(text, urls("audits:reopen", plan), "Re-open")
                    )
                else:
                    found.append(
                        Blocker(text, _plan_url(plan, "monitoring", urls), "See monitoring")
                    )
        if plan.pk not in with_risks:
            found.append(
                Blocker(
                    "Record the residual risks and how each is monitored.",
                    urls("governance:plan_report", plan, "risks"),
                    "Record residual risks",
                    stage=REPORT_STAGE,
                )
            )
        result[plan.pk] = found
    return result


def closure_blockers(plan: Plan, *, verdicts: PlanVerdicts | None = None) -> list[Blocker]:
    """Every reason ``plan`` may not go to closure review now, in words; empty when it
    may. The one answer to "what must hold to close this plan?"."""
    given = {plan.pk: verdicts} if verdicts is not None else None
    return blockers_for_plans([plan], verdicts=given)[plan.pk]


def _open_actions() -> QuerySet[Action]:
    """Actions not completed: any one holds its plan back from closure review
    (``_verdict_blockers``), so readiness checks leave such plans out before building
    their verdicts."""
    return Action.objects.exclude(status=Action.Status.COMPLETED)


def ready_plan_ids(plans: QuerySet[Plan]) -> set[int]:
    """The ids of ``plans`` ready for closure review (``is_ready``). A fixed
    number of queries. Live plans whose criteria are not all met are left out before
    their verdicts are built: ``Plan.criteria_met_since`` is kept by every result,
    correction, import and criteria change, and repaired by the nightly sweep, so this
    only saves work and never changes the answer. So are live plans with an action not
    completed: an open action always holds a plan back (``_verdict_blockers``), and
    most live plans have one, so their verdicts (the costly part) are never built."""
    open_action = _open_actions().filter(plan=OuterRef("pk"))
    candidates = Plan.objects.filter(
        Q(status=Plan.Status.LIVE, criteria_met_since__isnull=False) & ~Exists(open_action)
        | Q(status=Plan.Status.MONITORING),
        pk__in=plans.order_by().values("pk"),
    ).only("pk", "reference", "status", "opened_on")
    # Each candidate's answer is kept under its own plan's version (and the day): after
    # a change to one plan, only that plan is judged again (``freshness.cached_each``).
    by_pk = {plan.pk: plan for plan in candidates}
    today = timezone.localdate().isoformat()
    answers = freshness.cached_each(
        {pk: (f"ready:{pk}:{today}", [f"plan:{pk}"]) for pk in by_pk},
        lambda pks: {
            pk: is_ready(found)
            for pk, found in blockers_for_plans([by_pk[pk] for pk in pks]).items()
        },
    )
    return {pk for pk, ready in answers.items() if ready}


def ready_plans(plans: QuerySet[Plan]) -> QuerySet[Plan]:
    """The register's "ready for closure review" filter: ``ready_plan_ids`` as a
    queryset, to filter, sort and page further."""
    return plans.filter(pk__in=sorted(ready_plan_ids(plans)))


@dataclass(frozen=True)
class RegisterFlag:
    name: str
    label: str  # completes "Showing plans …"
    apply: object  # QuerySet[Plan] -> QuerySet[Plan]


# The register's named filters, linked from the home page's counts.
REGISTER_FLAGS = {
    "ready": RegisterFlag("ready", "ready for closure review", ready_plans),
    "deteriorating": RegisterFlag(
        "deteriorating", "deteriorating in monitoring", deterioration_rules.deteriorating_plans
    ),
}


# --- The plan page ----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A button on the plan page that leads somewhere the step can be completed."""

    label: str
    url: str
    style: str = "primary"  # primary | danger | outline-secondary | outline-danger


def plan_page_context(plan: Plan, user: User, *, verdicts: PlanVerdicts | None) -> dict:
    """What the plan page shows about closure, for ``user``: the next steps they can
    take (offered only when they can succeed), the blockers with where to fix them, and
    an open deterioration signal to lead with. Two or three queries."""
    from governance.access import can_prepare_reports

    steps: list[Step] = []
    blockers: list[Blocker] = []
    deterioration = None
    for step in lifecycle.plan_page_transitions(plan, user):
        if step.name == "activate":
            continue  # offered below, only when the criteria are complete
        steps.append(
            Step(
                step.label,
                reverse("plans:transition", args=[plan.reference, step.name]),
                "outline-danger",
            )
        )
    if plan.status in lifecycle.SUBMIT_TRANSITIONS:
        blockers = closure_blockers(plan, verdicts=verdicts)
        submit = lifecycle.TRANSITIONS[lifecycle.SUBMIT_TRANSITIONS[plan.status]]
        report_url = reverse("governance:plan_report", args=[plan.reference])
        if can_prepare_reports(user) and lifecycle.may_perform(submit, user):
            plan_stage = [b for b in blockers if not b.is_report_stage]
            if not blockers:
                steps.insert(0, Step(submit.label, report_url + "#submit"))
            elif not plan_stage:
                # Ready: what is left is the report's own, done on the report page.
                steps.insert(0, Step("Prepare the closure report", report_url))
            elif all(b.overridable for b in plan_stage):
                steps.insert(
                    0,
                    Step(
                        "Prepare the closure report with a written rationale",
                        report_url,
                        "outline-secondary",
                    ),
                )
    reopen_url = ""
    short = None
    if plan.status == Plan.Status.MONITORING:
        period = audit_services.short_period(plan)
        if period is not None:
            group = monitoring_decision_group(plan)
            short = {
                "period": period,
                "group": group,
                "url": reverse("governance:monitoring_decision", args=[plan.reference])
                if may_decide_monitoring(plan, user)
                else "",
            }
    if plan.status == Plan.Status.MONITORING:
        deterioration = deterioration_rules.open_deterioration_summary(plan)
        if deterioration and lifecycle.may_perform(lifecycle.TRANSITIONS["reopen"], user):
            # Offered in the deterioration banner, the first thing on the page (not
            # final closure while results deteriorate).
            reopen_url = reverse("audits:reopen", args=[plan.reference])
    return {
        "ready": plan.status in lifecycle.SUBMIT_TRANSITIONS and is_ready(blockers),
        "plan_blockers": [b for b in blockers if not b.is_report_stage],
        "report_blockers": [b for b in blockers if b.is_report_stage],
        "reopen_url": reopen_url,
        "steps": steps,
        "blockers": blockers,
        "deterioration": deterioration,
        # Monitoring ended without enough data: the group's decision is awaited.
        "short_monitoring": short,
        "submit_label": lifecycle.TRANSITIONS[lifecycle.SUBMIT_TRANSITIONS[plan.status]].label
        if plan.status in lifecycle.SUBMIT_TRANSITIONS
        else "",
    }


# --- The closure report --------------------------------------------------------------


def compile_report(
    plan: Plan,
    *,
    override_rationale: str = "",
    verdicts: PlanVerdicts | None = None,
    blockers: list[Blocker] | None = None,
    preloaded: bool = False,
) -> dict:
    """The closure report as it would be frozen now: governance compiles it, with the
    blockers in words and the learning section (``learning``) composed in here. A
    caller that has the plan's ``verdicts`` and ``blockers`` already passes them (the
    live report page): they are not computed again; ``preloaded``: as
    ``governance.reports.compile_report`` takes it."""
    if blockers is None:
        blockers = closure_blockers(plan, verdicts=verdicts)
    return reports.compile_report(
        plan,
        blockers=[b.text for b in blockers],
        sections=[learning_panels.report_section(plan)],
        override_rationale=override_rationale,
        verdicts=verdicts,
        preloaded=preloaded,
    )


# --- The steps ------------------------------------------------------------------------


@transaction.atomic
def submit_for_closure(
    *, plan: Plan, by: User, group: GovernanceGroup, override_rationale: str = ""
) -> ClosureReport:
    """Compile the closure report, freeze it and put it to ``group``, and move the plan
    to closure review (from live, or from monitoring for final closure). Refuses,
    changing nothing, while any blocker stands, except those a written
    ``override_rationale`` may set aside (the criteria verdict and concern signals:
    the rationale is frozen into the report and shown prominently on it)."""
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    name = lifecycle.SUBMIT_TRANSITIONS.get(locked.status)
    rationale = (override_rationale or "").strip()
    if name is None:
        raise TransitionRefused(
            ["Only a live plan, or one in monitoring, can be submitted for closure."]
        )
    blockers = closure_blockers(locked)
    standing = [b for b in blockers if not (rationale and b.overridable)]
    if standing:
        raise TransitionRefused([b.text for b in standing])
    content = compile_report(locked, override_rationale=rationale)
    report = governance.freeze_report(
        plan=locked,
        by=by,
        group=group,
        content=content,
        transition=name,
        override_rationale=rationale,
    )
    reason = f"override: {governance._short(rationale)}" if rationale else ""
    perform_transition(
        plan=locked,
        name=name,
        by=by,
        reason=reason,
        checked_by_closure_workflow=True,
        email_reason=f"override: {rationale}" if rationale else "",
    )
    return report


def signing_refusals(report: ClosureReport, by: User, meeting: Meeting | None = None) -> list[str]:
    """Segregation of duties, and where a decision is taken. The signer may not be the
    report's submitter, the plan's owner, the owner of any of its actions, or anyone who
    uploaded its evidence or logged its results: a delegate chair signs instead. The
    meeting must have been held (on or before today, on or after the report's
    submission) and the signer recorded among its attendees. Empty when ``by`` may sign
    at ``meeting`` (or, with no meeting, when ``by`` may sign at all). Four queries."""
    plan = report.plan
    refusals = []
    if by.pk == report.submitted_by_id:
        refusals.append("You submitted this report, so you cannot sign its decision." + _INSTEAD)
    refusals += _duty_refusals(plan, by)
    if meeting is not None:
        refusals += _meeting_refusals(meeting, by, since=timezone.localdate(report.submitted_at))
    return refusals


_INSTEAD = " A delegate chair of the group can sign instead."


def _duty_refusals(plan: Plan, by: User) -> list[str]:
    """Segregation of duties on ``plan``: not its owner, an action owner, or anyone
    who logged its results or evidence. Three queries."""
    refusals = []
    instead = _INSTEAD
    if by.pk == plan.owner_id:
        refusals.append("You own this plan, so you cannot sign its decision." + instead)
    if plan.actions.filter(owner=by).exists():
        refusals.append("You own actions on this plan, so you cannot sign its decision." + instead)
    if (
        Measurement.objects.filter(indicator__plan=plan, recorded_by=by).exists()
        or EvidenceItem.objects.filter(plan=plan, uploaded_by=by).exists()
    ):
        refusals.append(
            "You logged results or evidence for this plan, so you cannot sign its decision."
            + instead
        )
    return refusals


def _meeting_refusals(
    meeting: Meeting, by: User, *, since: datetime.date, what: str = "the report was submitted"
) -> list[str]:
    """A decision is signed at a meeting already held, on or after ``since``, that the
    signer is recorded as attending."""
    refusals = []
    if meeting.held_on > timezone.localdate():
        refusals.append(
            f"The meeting of {day(meeting.held_on)} has not happened yet: a decision is "
            "signed at a meeting that has been held."
        )
    elif meeting.held_on < since:
        refusals.append(f"The meeting of {day(meeting.held_on)} was before {what} ({day(since)}).")
    if not meeting.attendees.filter(pk=by.pk).exists():
        refusals.append(
            f"You are not recorded as attending the meeting of {day(meeting.held_on)}: "
            "record the attendance on the meeting's page first."
        )
    return refusals


def decision_meetings(report: ClosureReport) -> QuerySet[Meeting]:
    """The meetings a decision on ``report`` may be recorded at: its group's, with the
    report on the agenda, held on or after its submission and on or before today,
    newest first."""
    return Meeting.objects.filter(
        group=report.group,
        agenda_items__report=report,
        held_on__gte=timezone.localdate(report.submitted_at),
        held_on__lte=timezone.localdate(),
    ).order_by("-held_on", "-pk")


def signing_locked_until(user: User) -> datetime.datetime | None:
    """When a signer who got the password or code wrong ``SIGNING_FAILURE_LIMIT`` times
    in a row, within ``SIGNING_LOCK_MINUTES``, may try again; None when they may now.
    Counted per person (not per address), from the security events. One query."""
    lock = datetime.timedelta(minutes=SIGNING_LOCK_MINUTES)
    since = timezone.now() - lock
    recent = list(
        SecurityEvent.objects.filter(
            user=user,
            kind__in=[SecurityEvent.Kind.SIGN_FAILED, SecurityEvent.Kind.SIGN_OFF],
            created_at__gte=since,
        )
        .order_by("-created_at", "-pk")
        .values_list("kind", "created_at")[:SIGNING_FAILURE_LIMIT]
    )
    failures = [at for kind, at in recent if kind == SecurityEvent.Kind.SIGN_FAILED]
    if len(recent) == SIGNING_FAILURE_LIMIT and len(failures) == SIGNING_FAILURE_LIMIT:
        return failures[0] + lock
    return None


def check_signature(*, by: User, password: str, otp_token: str, request=None) -> None:
    """The e-signature: the signer's password and a fresh code from their authenticator
    (every signer is a chair or delegate chair, who must use two-step verification),
    checked on every signing request, never taken from the session. A wrong password or
    code is a security event; the fifth in a row locks signing for
    ``SIGNING_LOCK_MINUTES`` (another security event). Raises ``TransitionRefused``,
    saying nothing about which of the two was wrong. Writes its events outside any
    transaction of the decision's, so a refusal cannot roll them back."""
    until = signing_locked_until(by)
    if until is not None:
        raise TransitionRefused(
            [
                "Signing is locked after too many wrong passwords or codes. Try again after "
                f"{timezone.localtime(until):%H:%M}. Nothing was signed."
            ]
        )
    if not user_has_device(by, confirmed=True):
        raise TransitionRefused(
            ["Set up two-step verification (Security settings) before signing. Nothing was signed."]
        )
    password_ok = bool(password) and by.check_password(password)
    # match_token checks every confirmed device and refuses a code already used.
    code_ok = password_ok and bool(otp_token) and match_token(by, otp_token.strip()) is not None
    if password_ok and code_ok:
        return
    security.record("sign_failed", request=request, user=by, detail="wrong password or code")
    if signing_locked_until(by) is not None:
        security.record(
            "sign_locked",
            request=request,
            user=by,
            detail=f"signing locked for {SIGNING_LOCK_MINUTES} minutes",
        )
    raise TransitionRefused(["The password or the code was not right. Nothing was signed."])


def sign_decision(
    *,
    report: ClosureReport,
    meeting: Meeting,
    by: User,
    password: str,
    otp_token: str,
    outcome: str,
    reasons: str = "",
    monitoring_indicators: Iterable[Indicator] = (),
    monitoring_floors: dict | None = None,
    monitoring_audit_theme: str = "",
    monitoring_ends_on: datetime.date | None = None,
    request=None,
) -> Decision:
    """Record the group's signed decision on ``report`` and move the plan on: close it,
    step it down into monitoring (opening the monitoring period), or return it to live.
    The signature is checked first (``check_signature``); then governance checks its
    own rules (``governance.services.record_decision``: chair, authority, meeting, what
    a step-down monitors) and the segregation of duties is checked here. Refuses,
    changing nothing, when any rule does not hold."""
    check_signature(by=by, password=password, otp_token=otp_token, request=request)
    with transaction.atomic():
        return _record_and_move(
            report=report,
            meeting=meeting,
            by=by,
            outcome=outcome,
            reasons=reasons,
            monitoring_indicators=monitoring_indicators,
            monitoring_floors=monitoring_floors,
            monitoring_audit_theme=monitoring_audit_theme,
            monitoring_ends_on=monitoring_ends_on,
        )


def _record_and_move(
    *,
    report,
    meeting,
    by,
    outcome,
    reasons,
    monitoring_indicators,
    monitoring_floors,
    monitoring_audit_theme,
    monitoring_ends_on,
) -> Decision:
    decision = governance.record_decision(
        report=report,
        meeting=meeting,
        by=by,
        outcome=outcome,
        reasons=reasons,
        monitoring_indicators=monitoring_indicators,
        monitoring_floors=monitoring_floors,
        monitoring_audit_theme=monitoring_audit_theme,
        monitoring_ends_on=monitoring_ends_on,
        other_refusals=signing_refusals(
            ClosureReport.objects.select_related("plan").get(pk=report.pk), by, meeting
        ),
    )
    # The decision's own email tells the submitter, the owner and the group, with the
    # reasons in full: the transition's email goes only to whom that one does not reach.
    told = Alert.objects.filter(key=f"governance-decision:{decision.pk}").values_list(
        "recipients", flat=True
    )
    plan = perform_transition(
        plan=decision.report.plan,
        name=Decision.TRANSITIONS[decision.outcome],
        by=by,
        reason=governance.transition_reason(decision),
        checked_by_closure_workflow=True,
        email_reason=decision.reasons,
        already_told=[address for recipients in told for address in recipients],
    )
    if decision.outcome == Decision.Outcome.STEP_DOWN:
        try:
            audit_services.start_monitoring(
                plan=plan,
                by=by,
                floors={int(pk): Decimal(f) for pk, f in decision.monitoring_floors.items()},
                end_date=decision.monitoring_ends_on,
                escalate_to=governance.monitoring_escalation_addresses(decision),
                audit_theme=decision.monitoring_audit_theme or None,
            )
        except audit_services.MonitoringRefused as refused:
            # Inside the decision's transaction: the whole decision is undone.
            raise TransitionRefused(refused.reasons) from None
    return decision


@transaction.atomic
def reopen_plan(*, plan: Plan, by: User, reason: str) -> Plan:
    """Monitoring to live after deterioration, by a quality lead: the open monitoring
    period must have an open deterioration. The histories of the plan and the period
    name the results that triggered it. Refuses, changing nothing, otherwise."""
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    in_monitoring = locked.status == Plan.Status.MONITORING
    refusals = deterioration_rules.reopen_gaps(locked) if in_monitoring else []
    if refusals:
        raise TransitionRefused(refusals)
    if not (reason or "").strip():
        raise TransitionRefused(["Give a reason."])
    period = MonitoringPeriod.objects.filter(
        plan=locked, status=MonitoringPeriod.Status.OPEN
    ).first()
    group = period.escalate_to if period is not None else []
    history_reason = audit_services.record_reopening(plan=locked, by=by, reason=reason)
    return perform_transition(
        plan=locked,
        name="reopen",
        by=by,
        reason=history_reason,
        checked_by_closure_workflow=True,
        email_reason=reason,
        # The group that stepped the plan down (the period's escalation list).
        also_tell=group,
    )


# --- Monitoring that ended without enough data: the group decides ----------------------

MONITORING_OUTCOMES = {
    "extend": "Extend the monitoring",
    "close": "Close the plan with a recorded rationale",
}


def monitoring_decision_group(plan: Plan) -> GovernanceGroup | None:
    """The group that stepped ``plan`` down (its latest step-down decision): the one
    that decides when its monitoring ended without enough data. One query."""
    decision = (
        Decision.objects.filter(report__plan=plan, outcome=Decision.Outcome.STEP_DOWN)
        .select_related("report__group")
        .order_by("-signed_at", "-pk")
        .first()
    )
    return decision.report.group if decision is not None else None


def monitoring_decision_meetings(group: GovernanceGroup, period: MonitoringPeriod):
    """Meetings of ``group`` at which the decision may be recorded: held since the
    period ended, on or before today, newest first."""
    return Meeting.objects.filter(
        group=group, held_on__gt=period.ends_on, held_on__lte=timezone.localdate()
    ).order_by("-held_on", "-pk")


def may_decide_monitoring(plan: Plan, user: User) -> bool:
    """Offer the decision page: the plan's monitoring ended without enough data and
    ``user`` chairs (or is a recorded delegate chair of) the group that stepped it down.
    The service re-checks every rule when it signs."""
    from governance.access import signing_group_ids

    if plan.status != Plan.Status.MONITORING or audit_services.short_period(plan) is None:
        return False
    group = monitoring_decision_group(plan)
    return group is not None and group.pk in signing_group_ids(user)


def monitoring_decision_refusals(
    plan: Plan, by: User, *, group: GovernanceGroup | None, meeting: Meeting | None = None
) -> list[str]:
    """Why ``by`` may not record the group's decision on ``plan``'s monitoring (empty
    when they may): the chair or a delegate chair of the group that stepped the plan
    down, whose authority still reaches the criteria's sign-off level; not the plan's
    owner, an action owner, nor anyone who logged its results or evidence; at a
    meeting of the group held since the period ended, which they attended."""
    from governance.models import Membership
    from plans.models import ClosureCriteria

    if group is None:
        return ["No governance group stepped this plan down, so none can decide."]
    refusals = []
    membership = Membership.objects.filter(group=group, user=by).first()
    if membership is None or not membership.can_sign:
        refusals.append(f"Only the chair of {group} (or a delegate recorded as such) may sign.")
    criteria = ClosureCriteria.objects.filter(plan=plan).first()
    if criteria is not None and not group.may_decide(criteria.sign_off_level):
        refusals.append(f"{group} may no longer decide on this plan's sign-off level.")
    refusals += _duty_refusals(plan, by)
    period = audit_services.short_period(plan)
    if meeting is not None and period is not None:
        if meeting.group_id != group.pk:
            refusals.append(f"Choose a meeting of {group}.")
        refusals += _meeting_refusals(
            meeting,
            by,
            since=period.ends_on + datetime.timedelta(days=1),
            what="the monitoring period was over",
        )
    return refusals


def decide_monitoring(
    *,
    plan: Plan,
    by: User,
    password: str,
    otp_token: str,
    meeting: Meeting,
    outcome: str,
    rationale: str,
    ends_on: datetime.date | None = None,
    request=None,
) -> Plan:
    """The governance group's signed decision on a plan whose monitoring period ended
    without enough monitoring data: ``extend`` opens the same period again until
    ``ends_on``; ``close`` closes the plan (monitoring to closed) with the rationale
    recorded on the period, in both histories and in the transition email. The
    signature (password and a fresh authenticator code) is checked first, then who may
    decide (``monitoring_decision_refusals``). Refuses, changing nothing, otherwise."""
    check_signature(by=by, password=password, otp_token=otp_token, request=request)
    rationale = (rationale or "").strip()
    with transaction.atomic():
        locked = Plan.objects.select_for_update().get(pk=plan.pk)
        period = audit_services.short_period(locked)
        if locked.status != Plan.Status.MONITORING or period is None:
            raise TransitionRefused(
                ["This plan's monitoring is not awaiting a decision. Nothing was signed."]
            )
        group = monitoring_decision_group(locked)
        refusals = monitoring_decision_refusals(locked, by, group=group, meeting=meeting)
        if outcome not in MONITORING_OUTCOMES:
            refusals.append("Choose to extend the monitoring or to close the plan.")
        if not rationale:
            refusals.append("Record the rationale for the decision.")
        if outcome == "extend" and (ends_on is None or ends_on <= timezone.localdate()):
            refusals.append("Give the date the extended monitoring ends (in the future).")
        if refusals:
            raise TransitionRefused(refusals)
        at = f"{group} meeting of {day(meeting.held_on)}"
        if outcome == "extend":
            audit_services.extend_monitoring(
                period=period, by=by, ends_on=ends_on, rationale=f"{rationale} ({at})"
            )
            return locked
        audit_services.close_short_monitoring(period=period, by=by, rationale=f"{rationale} ({at})")
        return perform_transition(
            plan=locked,
            name="close_after_monitoring",
            by=by,
            reason=governance._short(rationale),
            checked_by_closure_workflow=True,
            email_reason=f"{rationale} (decided at the {at})",
            also_tell=period.escalate_to,
        )


# --- The readiness sweep --------------------------------------------------------------


def _quality_leads() -> set[str]:
    return set(
        User.objects.filter(role=User.Role.QUALITY_LEAD, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )


def readiness_key(plan_id: int, window_start: datetime.date) -> str:
    """One "ready for closure review" email per plan per sustain window: a plan that
    slips and recovers is announced again."""
    return f"audits-ready-for-review:{plan_id}:{window_start.isoformat()}"


def _readiness_email(plan: Plan, verdicts: PlanVerdicts, leads: set[str]) -> outbox.Email:
    return outbox.Email(
        "audits-ready-for-review",
        key=readiness_key(plan.pk, verdicts.window_start),  # type: ignore[arg-type]
        recipients={plan.owner.email, *leads},
        context={"plan": plan, "verdicts": verdicts, "met_since": verdicts.met_since},
    )


def _queue_readiness(plan: Plan, verdicts: PlanVerdicts, leads: set[str]) -> Alert | None:
    email = _readiness_email(plan, verdicts, leads)
    return outbox.queue(
        email.kind, key=email.key, recipients=email.recipients, context=email.context
    )


def announce_if_ready(plan: Plan) -> Alert | None:
    """Tell the owner and the quality leads at once that ``plan`` has become ready for
    closure review (the result that made it so was just saved): call in that result's
    transaction, so the email commits with it. The key is the sweep's
    (``readiness_key``), so the nightly sweep, the safety net, never sends it again.
    Returns the new alert, or None when the plan is not ready or was already announced
    for this sustain window. A few queries when the criteria are met; one otherwise."""
    plan = Plan.objects.select_related("owner").get(pk=plan.pk)
    if plan.status != Plan.Status.LIVE or plan.criteria_met_since is None:
        return None
    verdicts = verdicts_for_plans([plan])[plan.pk]
    if not verdicts.all_met or not is_ready(closure_blockers(plan, verdicts=verdicts)):
        return None
    return _queue_readiness(plan, verdicts, _quality_leads())


@jobs.register(
    "audits_ready_for_review",
    "Tell owners and quality leads when a plan is ready for closure review.",
)
def announce_ready_plans() -> str:
    """Repair every live plan's kept "criteria met since" date, then email the owner
    and the quality leads of every plan with no closure blocker (``closure_blockers``),
    once per plan per sustain window. Safe to run any number of times. Queries: a few
    per 500 plans, however many are ready (emails through ``outbox.queue_many``)."""
    leads = _quality_leads()
    plans = Plan.objects.filter(status=Plan.Status.LIVE).select_related("owner").order_by("pk")
    ids = list(plans.values_list("pk", flat=True))
    ready = queued = 0
    for start in range(0, len(ids), BATCH):
        chunk = list(plans.filter(pk__in=ids[start : start + BATCH]))
        met = plans_meeting_criteria(chunk)
        audit_services.store_criteria_met(chunk, met)  # the kept date the register reads
        keys = {pk: readiness_key(pk, m.window_start) for pk, m in met.items()}
        done = outbox.existing_keys(keys.values())
        # Plans already announced for this window are skipped before their verdicts
        # are built: the sweep's cost follows what is new, not the register's size.
        candidates = [p for p in chunk if p.pk in met and keys[p.pk] not in done]
        # And those with an action not completed: it always holds a plan back.
        held = set(
            _open_actions()
            .filter(plan_id__in=[p.pk for p in candidates])
            .values_list("plan_id", flat=True)
        )
        candidates = [p for p in candidates if p.pk not in held]
        built = verdicts_for_plans(candidates)
        found = blockers_for_plans(candidates, verdicts=built)
        emails = []
        for plan in candidates:
            verdicts = built[plan.pk]
            if not is_ready(found[plan.pk]) or not verdicts.all_met:
                continue
            ready += 1
            emails.append(_readiness_email(plan, verdicts, leads))
        if emails:
            with transaction.atomic():
                queued += len(outbox.queue_many(emails))
    ended, prompted = _announce_final_closure(leads)
    return (
        f"{ready} plan(s) newly ready for closure review, {ended} for final closure, "
        f"{queued + prompted} email(s) queued"
    )


def _announce_final_closure(leads: set[str]) -> tuple[int, int]:
    """Monitoring that has ended well (``audits.sweeps.monitoring_ended`` marks it):
    ask the owner and the quality leads to put the plan forward for final closure, once
    per period, when nothing else stands in the way. A fixed number of queries, however
    many periods (emails through ``outbox.queue_many``)."""
    periods = list(
        MonitoringPeriod.objects.filter(
            status=MonitoringPeriod.Status.ENDED, plan__status=Plan.Status.MONITORING
        ).select_related("plan__owner")
    )
    keys = {p.pk: f"audits-monitoring-ended:{p.pk}" for p in periods}
    done = outbox.existing_keys(keys.values())
    periods = [p for p in periods if keys[p.pk] not in done]
    found = blockers_for_plans([p.plan for p in periods])
    emails = [
        outbox.Email(
            "audits-monitoring-ended",
            key=keys[period.pk],
            recipients={period.plan.owner.email, *leads},
            context={"plan": period.plan, "period": period},
        )
        for period in periods
        if is_ready(found[period.plan_id])
    ]
    if not emails:
        return 0, 0
    with transaction.atomic():
        queued = len(outbox.queue_many(emails))
    return len(emails), queued
