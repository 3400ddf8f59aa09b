"""The pages of the closure workflow (``qip_portal/closure/workflow.py``): the live closure report
with its residual risks and the submit form, the decision form, and re-opening a plan
in monitoring. Their URLs keep the names of the apps whose records they show
(``governance:plan_report``, ``governance:decide``, ``audits:reopen``...): see
``qip_portal/urls.py``."""

from __future__ import annotations

import json

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from audits import services as audit_services
from audits import views as audit_views
from audits.deterioration import reopen_gaps
from audits.forms import ReopenForm
from audits.tools import views as audit_tool_views
from core import freshness, security
from core.forms import error_summary
from governance import access, reports
from governance import services as governance
from governance.forms import DecisionForm, MonitoringDecisionForm, ResidualRiskForm, SubmitForm
from governance.models import Decision, ResidualRisk
from plans import lifecycle
from plans.access import get_plan_for_user
from plans.services import TransitionRefused
from qip_portal import closure


def _refused(request: HttpRequest, refused: TransitionRefused) -> None:
    for reason in refused.reasons:
        messages.error(request, reason)


# --- The live closure report of a plan ------------------------------------------------


def plan_report(request: HttpRequest, reference: str) -> HttpResponse:
    """The report compiled from the plan as it is now, with residual risks and the
    submit form for the quality lead."""
    plan = access.get_plan_for_report(request.user, reference)
    return _render_plan_report(request, plan)


def _live_report(plan_id: int) -> dict:
    """The live report's blockers and HTML (plain values, cached): the plan read once,
    its verdicts computed once and shared by the blockers and the report (which draws
    its charts through ``audits.charts.drawn_chart``, memoised by their inputs)."""
    from audits.verdicts import plan_verdicts
    from governance import reports

    plan = reports.preloaded_plan(plan_id)
    verdicts = plan_verdicts(plan, preloaded=True)
    blockers = closure.closure_blockers(plan, verdicts=verdicts)
    content = closure.compile_report(plan, verdicts=verdicts, blockers=blockers, preloaded=True)
    return {"blockers": blockers, "report_html": reports.render_body(content)}


def _render_plan_report(
    request: HttpRequest, plan, *, risk_form=None, submit_form=None, status: int = 200
) -> HttpResponse:
    """The live report page; bound forms are passed back so what was typed is kept."""
    submit_name = lifecycle.SUBMIT_TRANSITIONS.get(plan.status, "submit_for_closure")
    today = timezone.localdate().isoformat()
    scopes = [f"plan:{plan.pk}"]
    with freshness.pinned(*scopes):  # held from before the rows are read
        # Blockers (plain frozen dataclasses, no model) and the report rendered (HTML),
        # computed afresh after any change to this plan (core.freshness), from one
        # reading of the plan and one set of verdicts (``_live_report``).
        live = freshness.cached(
            f"plan-live-report:{plan.pk}:{today}",
            # Read afresh inside: the version is held from before (core.freshness).
            lambda: _live_report(plan.pk),
            scopes=scopes,
        )
    blockers = live["blockers"]
    can_prepare = access.can_prepare_reports(request.user) and (
        plan.status in lifecycle.SUBMIT_TRANSITIONS
    )
    latest = (
        access.visible_reports(request.user)
        .filter(plan=plan)
        .defer("content_json", "content_html")
        .order_by("-submitted_at", "-pk")
        .first()
    )
    return render(
        request,
        "governance/plan_report.html",
        {
            "plan": plan,
            # Submitting compiles and freezes its own.
            "report_html": mark_safe(live["report_html"]),  # noqa: S308  # nosec B308 B703 - rendered by our autoescaped template
            "risks": ResidualRisk.objects.filter(plan=plan).select_related("recorded_by"),
            "can_prepare": can_prepare,
            "risk_form": risk_form or ResidualRiskForm(),
            "submit_form": submit_form or SubmitForm(plan=plan),
            "blockers": blockers,
            # Submitting is offered only when it can succeed: with nothing standing, or
            # with only what a written rationale may set aside.
            "may_submit": all(b.overridable for b in blockers),
            "needs_rationale": bool(blockers),
            "submit_step": lifecycle.TRANSITIONS[submit_name],
            "latest": latest,
        },
        status=status,
    )


def _plan_for_preparing(request: HttpRequest, reference: str):
    plan = access.get_plan_for_report(request.user, reference)
    if not access.can_prepare_reports(request.user):
        raise Http404("No such page.")
    return plan


@require_POST
def risk_add(request: HttpRequest, reference: str) -> HttpResponse:
    plan = _plan_for_preparing(request, reference)
    form = ResidualRiskForm(request.POST)
    if form.is_valid():
        try:
            governance.record_residual_risk(plan=plan, by=request.user, **form.cleaned_data)
        except TransitionRefused as refused:
            _refused(request, refused)
        else:
            messages.success(request, "Residual risk recorded.")
            return redirect("governance:plan_report", reference=plan.reference)
    else:
        messages.error(request, "The risk was not saved. Please correct the errors marked below.")
    return _render_plan_report(request, plan, risk_form=form, status=400)


@require_POST
def risk_remove(request: HttpRequest, reference: str, risk_id: int) -> HttpResponse:
    plan = _plan_for_preparing(request, reference)
    risk = get_object_or_404(ResidualRisk, pk=risk_id, plan=plan)
    try:
        governance.remove_residual_risk(risk=risk, by=request.user)
    except TransitionRefused as refused:
        _refused(request, refused)
    else:
        messages.success(request, "Residual risk removed.")
    return redirect("governance:plan_report", reference=plan.reference)


@require_POST
def submit(request: HttpRequest, reference: str) -> HttpResponse:
    plan = _plan_for_preparing(request, reference)
    form = SubmitForm(request.POST, plan=plan)
    if not form.is_valid():
        messages.error(request, "Nothing was submitted. Please correct the errors marked below.")
        return _render_plan_report(request, plan, submit_form=form, status=400)
    try:
        report = closure.submit_for_closure(plan=plan, by=request.user, **form.cleaned_data)
    except TransitionRefused as refused:
        _refused(request, refused)
        return _render_plan_report(request, plan, submit_form=form, status=400)
    messages.success(
        request,
        f"Closure report frozen and put to {report.group}. Its PDF has been requested: "
        "its progress is shown beside the report.",
    )
    return redirect(report)


# --- The decision ---------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    report = access.get_report_for_user(request.user, pk)
    if not access.can_sign_for(request.user, report):
        raise Http404("No such page.")
    meetings = closure.decision_meetings(report)
    form = DecisionForm(request.POST or None, report=report, meetings=meetings)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                decision = closure.sign_decision(
                    report=report,
                    meeting=data["meeting"],
                    by=request.user,
                    password=data["password"],
                    otp_token=data["otp_token"],
                    request=request,
                    outcome=data["outcome"],
                    reasons=data["reasons"],
                    monitoring_indicators=data["monitoring_indicators"] or [],
                    monitoring_floors=form.floors(),
                    monitoring_audit_theme=data["monitoring_audit_theme"],
                    monitoring_ends_on=form.ends_on(),
                )
            except TransitionRefused as refused:
                _refused(request, refused)
                status = 400
            else:
                security.record(
                    "sign_off",
                    request=request,
                    detail=f"{decision.get_outcome_display()} {report.plan.reference} "
                    f"snapshot {decision.snapshot_sha256}",
                )
                messages.success(
                    request,
                    f"Decision signed: {decision.get_outcome_display().lower()} "
                    f"({report.plan.reference}).",
                )
                return redirect(report)
        else:
            messages.error(request, "Nothing was signed. Please correct the errors marked below.")
            status = 400
    return render(
        request,
        "governance/decide.html",
        {
            "report": report,
            "form": form,
            "summary": reports.decision_summary(json.loads(report.content_json)),
            "has_meetings": meetings.exists(),
            # Said before anything is typed: which rule stops this person signing.
            "signing_refusals": closure.signing_refusals(report, request.user),
            "meanings": {
                outcome: governance.signature_meaning(
                    outcome=outcome,
                    reference=report.plan.reference,
                    sha256=report.sha256,
                    ends_on=form.fields["monitoring_ends_on"].initial,
                )
                for outcome in Decision.Outcome.values
            },
        },
        status=status,
    )


# --- Re-opening a plan in monitoring --------------------------------------------------


@require_http_methods(["GET", "POST"])
def reopen(request: HttpRequest, reference: str) -> HttpResponse:
    """Re-open a plan in monitoring after deterioration: confirm (GET), do it (POST).
    The history names the results that triggered it."""
    plan = get_plan_for_user(request.user, reference, write=True)
    step = lifecycle.TRANSITIONS["reopen"]
    if not lifecycle.may_perform(step, request.user):
        raise Http404("No such page.")  # the quality lead's decision; others see nothing
    form = ReopenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            closure.reopen_plan(plan=plan, by=request.user, reason=form.cleaned_data["reason"])
        except TransitionRefused as refused:
            _refused(request, refused)
        else:
            messages.success(request, f"{plan.reference} is live again.")
            return redirect(plan)
    blocking = lifecycle.plan_refusals(step, plan) or reopen_gaps(plan)
    return render(request, "audits/reopen.html", {"plan": plan, "form": form, "blocking": blocking})


# --- Monitoring that ended without enough data: the group's decision -------------------


@require_http_methods(["GET", "POST"])
def monitoring_decision(request: HttpRequest, reference: str) -> HttpResponse:
    """The chair of the group that stepped the plan down records the group's decision
    on monitoring that ended without enough data: extend it, or close the plan with a
    recorded rationale; signed with the password and a fresh authenticator code.
    Anyone else (and any plan not awaiting that decision) gets a 404."""
    plan = get_plan_for_user(request.user, reference)
    if not closure.may_decide_monitoring(plan, request.user):
        raise Http404("No such page.")
    period = audit_services.short_period(plan)
    group = closure.monitoring_decision_group(plan)
    meetings = closure.monitoring_decision_meetings(group, period)
    form = MonitoringDecisionForm(request.POST or None, meetings=meetings)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                closure.decide_monitoring(
                    plan=plan,
                    by=request.user,
                    password=data["password"],
                    otp_token=data["otp_token"],
                    meeting=data["meeting"],
                    outcome=data["outcome"],
                    rationale=data["rationale"],
                    ends_on=data.get("ends_on"),
                    request=request,
                )
            except TransitionRefused as refused:
                _refused(request, refused)
                status = 400
            else:
                label = closure.MONITORING_OUTCOMES[data["outcome"]].lower()
                security.record(
                    "sign_off",
                    request=request,
                    detail=f"Monitoring decision on {plan.reference}: {label}",
                )
                messages.success(request, f"Decision signed: {label} ({plan.reference}).")
                return redirect(plan)
        else:
            status = 400
    return render(
        request,
        "governance/monitoring_decision.html",
        {
            "plan": plan,
            "period": period,
            "group": group,
            "form": form,
            "errors": error_summary(form),
            "has_meetings": meetings.exists(),
            "refusals": closure.monitoring_decision_refusals(plan, request.user, group=group),
        },
        status=status,
    )


# --- Results that make a plan ready ------------------------------------------------------


def _announcing_readiness(plans_saved):
    """Wraps an audits view that saves results (or an evidence item) with the closure
    workflow's part: when what was saved makes a plan ready for closure review, the
    email says so at once, in the same transaction (``closure.announce_if_ready``; the
    nightly sweep stays the safety net and never sends it twice). ``plans_saved(request,
    key)`` names the plans a successful save (answered with a redirect) may have made
    ready."""

    def decorate(view):
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method != "POST":
                return view(request, *args, **kwargs)
            with transaction.atomic():
                response = view(request, *args, **kwargs)
                if response.status_code == 302:
                    for plan in plans_saved(request, *args, **kwargs):
                        closure.announce_if_ready(plan)
            return response

        wrapped.__doc__ = view.__doc__
        wrapped.__name__ = view.__name__
        return wrapped

    return decorate


def _the_plan(request: HttpRequest, reference: str, *args, **kwargs) -> list:
    """The plan of a result typed or evidence added on its page."""
    return [get_plan_for_user(request.user, reference)]


def _plans_of_audit(request: HttpRequest, pk: int, *args, **kwargs) -> list:
    """Every plan whose results a submitted (or corrected) tool audit wrote."""
    from audits.models import Audit
    from plans.models import Plan

    audit = Audit.objects.filter(pk=pk).first()
    if audit is None or not audit.is_submitted:
        return []
    return list(
        Plan.objects.filter(indicators__measurements__audit_result__audit=audit).distinct()
    )


log_measurement = _announcing_readiness(_the_plan)(audit_views.log_measurement)
edit_measurement = _announcing_readiness(_the_plan)(audit_views.edit_measurement)
add_evidence = _announcing_readiness(_the_plan)(audit_views.add_evidence)
log_audit = _announcing_readiness(_the_plan)(audit_views.log_audit)
audit_submit = _announcing_readiness(_plans_of_audit)(audit_tool_views.audit_submit)
audit_correct = _announcing_readiness(_plans_of_audit)(audit_tool_views.audit_correct)
