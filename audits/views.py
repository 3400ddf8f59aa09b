from __future__ import annotations

import contextlib
import datetime

from django.contrib import messages
from django.db.models import prefetch_related_objects
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from audits import deterioration, services, spc, spreadsheets
from audits.access import (
    can_annotate,
    can_log,
    can_recalculate_limits,
    due_indicators,
    get_batch_for_user,
    get_evidence_for_user,
    get_indicator_for_user,
    get_measurement_for_user,
    get_plan_for_logging,
)
from audits.charts import chart_for, drawn_chart, render_svg
from audits.forms import (
    AnnotationForm,
    AuditEvidenceForm,
    AuditForm,
    AuditResultForm,
    CorrectionReasonForm,
    EvidenceForm,
    ImportUploadForm,
    MeasurementContext,
    MeasurementForm,
    RecalculationForm,
)
from audits.models import ImportBatch, Measurement, MonitoringPeriod, next_due_on
from audits.verdicts import PlanVerdicts, plan_verdicts
from core import freshness, security
from core.dates import day
from core.exports import csv_response, xlsx_response
from core.files import TEXT
from core.forms import FormError, error_summary
from core.storage import download_response
from core.thresholds import DUE_SOON_DAYS
from plans import lifecycle
from plans.access import get_plan_for_user
from plans.models import Plan, User
from plans.services import TransitionRefused

# How many results the plan page lists; the export has them all.
PANEL_MEASUREMENTS = 25


def _monitoring_context(plan: Plan, verdicts: PlanVerdicts) -> dict | None:
    """The plan's latest monitoring period with, per watched indicator, its floor, frozen
    reference and the engine's verdict on the results since. Three queries (one when
    the plan was never monitored)."""
    period = (
        MonitoringPeriod.objects.filter(plan=plan)
        .select_related("audit_theme")  # cached with the figures: no people in them
        .order_by("-starts_on", "-pk")
        .first()
    )
    if period is None:
        return None
    by_indicator = {v.indicator.pk: v for v in verdicts.indicators}
    deteriorations = list(period.deteriorations.select_related("measurement"))
    watched = []
    for monitored in period.monitored.all():
        verdict = by_indicator.get(monitored.indicator_id)
        if verdict is None:
            continue
        monitored.indicator = verdict.indicator
        since = [
            m for m in verdict.measurements if period.starts_on <= m.measured_on <= period.ends_on
        ]
        for d in deteriorations:
            if d.indicator_id == monitored.indicator_id:
                d.measurement.indicator = verdict.indicator
        assessment = deterioration.assessment_for(monitored, since)
        limits = deterioration.limits_apply(monitored)
        watched.append(
            {
                "monitored": monitored,
                "indicator": verdict.indicator,
                "results": len(since),
                "limits": limits and monitored.reference_mean is not None,
                "explanation": assessment.explain()
                if assessment
                else deterioration.without_limits_explanation(monitored, since),
                "deteriorations": [
                    d for d in deteriorations if d.indicator_id == monitored.indicator_id
                ],
            }
        )
    open_rows = [d for d in deteriorations if d.is_open]
    return {
        "period": period,
        "watched": watched,
        "deteriorations": deteriorations,
        "open_deteriorations": open_rows,
        "has_ended": period.has_ended(),
    }


def _plan_figures(plan: Plan) -> dict:
    """The verdicts, monitoring and charts of the plan page: the same for everyone who
    can see the plan, and most of the page's cost, so cached until data changes. The
    plan page reads the plan with its criteria and indicators (``plans.views.detail``)."""
    verdicts = plan_verdicts(plan, preloaded=True)
    monitoring_data = _monitoring_context(plan, verdicts)
    charts = []
    watched = {}
    if monitoring_data:
        watched = {w["indicator"].pk: w for w in monitoring_data["watched"]}
    for position, verdict in enumerate(verdicts.indicators):
        w = watched.get(verdict.indicator.pk)
        # Memoised by its exact inputs (audits.charts.drawn_chart): a change elsewhere
        # in the plan does not draw the charts again.
        drawn = drawn_chart(
            verdict,
            chart_id=f"chart-{plan.pk}-{position}",
            monitored=w["monitored"] if w else None,
            period_start=monitoring_data["period"].starts_on if w else None,
            deteriorations=w["deteriorations"] if w else [],
            icon_sizes=((40, True), (24, False)),
            table=True,
        )
        charts.append(
            {
                "verdict": verdict,
                "spec": drawn["spec"],
                "svg": drawn["svg"],
                "icons": drawn["icons"][0],
                "icons_small": drawn["icons"][1],
                "table_rows": drawn["table"],
            }
        )
    return {"verdicts": verdicts, "monitoring": monitoring_data, "charts": charts}


def plan_figures(plan: Plan) -> dict:
    """The plan page's verdicts, monitoring and charts (computed: the plan page caches
    its HTML, and the register's detail of a plan its own, under the plan's version)."""
    return _plan_figures(plan)


def plan_panel_context(plan: Plan, user: User) -> dict:
    """The plan page's "Sustained improvement", "Monitoring" and "Re-audits and
    evidence" sections. A fixed number of queries (about a dozen), whatever the number
    of indicators, results or evidence items; none for the verdicts and charts while
    nothing has changed: the plan page caches this section's HTML under the plan's version
    (``qip_portal/pages/plans.py``, ``core.freshness``)."""
    today = timezone.localdate()
    figures = plan_figures(plan)
    verdicts, monitoring_data = figures["verdicts"], figures["monitoring"]
    indicators = list(plan.indicators.all())
    for indicator in indicators:
        indicator.next_due_on = next_due_on(
            frequency=indicator.frequency,
            last_measured_on=indicator.last_measured_on,
            start=plan.opened_on,
        )
        indicator.is_due = indicator.next_due_on <= today
    measurements = list(
        Measurement.objects.filter(indicator__plan=plan)
        .select_related("indicator", "location", "recorded_by", "audit_result")
        .order_by("-measured_on", "-pk")[: PANEL_MEASUREMENTS + 1]
    )
    evidence = list(plan.evidence_items.select_related("uploaded_by"))
    from audits.tools.panel import plan_tools_context

    return {
        "tools": plan_tools_context(plan, user, indicators),
        "plan": plan,
        "indicators": indicators,
        "measurements": measurements[:PANEL_MEASUREMENTS],
        "more_measurements": len(measurements) > PANEL_MEASUREMENTS,
        "evidence": evidence,
        "can_log": can_log(user, plan),
        "can_annotate": can_annotate(user, plan),
        # Feeding an indicator from an audit tool: the quality leads' (audits.tools).
        "can_feed": user.is_organisation_lead and not plan.is_final,
        "can_rebase": can_recalculate_limits(user, plan),
        "scheduled": plan.status in (Plan.Status.LIVE, Plan.Status.MONITORING),
        "today": today,
        "verdicts": verdicts,
        "charts": figures["charts"],
        "monitoring": monitoring_data,
        "can_reopen": (
            plan.status == Plan.Status.MONITORING
            and lifecycle.may_perform(lifecycle.TRANSITIONS["reopen"], user)
            and bool(monitoring_data and monitoring_data["open_deteriorations"])
        ),
    }


def due(request: HttpRequest) -> HttpResponse:
    """Re-audits due: every indicator on live and monitoring plans the user can see,
    soonest first, each linked to the prefilled log form (or, for an indicator fed by
    an audit tool, to conducting the audit, pre-filled). Fixed number of queries."""
    today = timezone.localdate()
    rows = []
    for indicator in due_indicators(request.user).select_related("feed__tool"):
        # Fed by an audit tool: the re-audit is conducting the audit, not typing a result.
        indicator.tool_feed = getattr(indicator, "feed", None)
        indicator.next_due_on = next_due_on(
            frequency=indicator.frequency,
            last_measured_on=indicator.last_measured_on,
            start=indicator.plan.opened_on,
        )
        indicator.days_overdue = (today - indicator.next_due_on).days
        rows.append(indicator)
    rows.sort(key=lambda i: (i.next_due_on, i.plan.reference, i.position))
    show = request.GET.get("show", "due")
    soon = today + datetime.timedelta(days=DUE_SOON_DAYS)
    listed = rows if show == "all" else [r for r in rows if r.next_due_on <= soon]
    return render(
        request,
        "audits/due.html",
        {
            "rows": listed,
            "total": len(rows),
            "overdue": sum(1 for r in rows if r.next_due_on < today),
            "show": show,
            "today": today,
            "soon": soon,
            "can_log": request.user.may_write_plans,
        },
    )


def _refused_on_final(request: HttpRequest, plan: Plan) -> HttpResponse | None:
    if plan.is_final:
        messages.error(request, "This plan is closed or withdrawn: it takes no new results.")
        return redirect(plan)
    return None


def log_measurement(request: HttpRequest, reference: str) -> HttpResponse:
    """Log a re-audit: one short form, indicator and date prefilled from the link."""
    plan = get_plan_for_logging(request.user, reference)
    context = MeasurementContext.for_plan(plan)
    initial = {"measured_on": timezone.localdate()}
    only = list(plan.indicators.values_list("pk", flat=True)[:2])
    if len(only) == 1:
        initial["indicator"] = only[0]  # nothing to choose
    # A manager of one of the plan's locations logs for that one: chosen for them.
    own = set(request.user.locations.values_list("pk", flat=True))
    mine = [loc for loc in context.locations if loc.pk in own]
    if len(context.locations) > 1 and len(mine) == 1:
        initial["location"] = mine[0].pk
    if request.method == "GET":
        if request.GET.get("indicator"):
            initial["indicator"] = request.GET["indicator"]
        if request.GET.get("date"):
            # As a date, so the field shows it day/month/year (the link carries ISO).
            try:
                initial["measured_on"] = datetime.date.fromisoformat(request.GET["date"])
            except ValueError:
                initial["measured_on"] = request.GET["date"]
    form = MeasurementForm(request.POST or None, context=context, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            measurement = services.record_measurement(
                plan=plan, by=request.user, fields=form.measurement_fields()
            )
        except services.MeasurementRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            messages.success(
                request,
                f"Result logged for “{measurement.indicator.name}”: {measurement.value_display()}.",
            )
            return redirect(f"{plan.get_absolute_url()}#audits")
    return render(
        request,
        "audits/measurement_form.html",
        {
            "plan": plan,
            "form": form,
            "errors": error_summary(form),
            "indicators": context.indicators,
            "title": "Log a re-audit",
            "submit": "Save result",
        },
    )


def edit_measurement(request: HttpRequest, reference: str, pk: int) -> HttpResponse:
    """Correct a result; the old value stays in history with the reason."""
    measurement = get_measurement_for_user(request.user, reference, pk)
    plan = measurement.indicator.plan
    if refused := _refused_on_final(request, plan):
        return refused
    context = MeasurementContext.for_plan(plan, exclude=measurement)
    initial = {
        "indicator": measurement.indicator_id,
        "measured_on": measurement.measured_on,
        "numerator": measurement.numerator,
        "denominator": measurement.denominator,
        "value": None if measurement.denominator is not None else measurement.value,
        "location": measurement.location_id,
        "source": measurement.source,
        "notes": measurement.notes,
    }
    form = MeasurementForm(
        request.POST or None, context=context, initial=initial, allow_import_source=True
    )
    # Validated as any field is (no NUL bytes, a bounded length); shown back as typed.
    reason_form = CorrectionReasonForm(request.POST or None)
    reason_valid = request.method == "POST" and reason_form.is_valid()
    reason = request.POST.get("reason", "").strip()
    if request.method == "POST" and form.is_valid() and reason_valid:
        try:
            services.correct_measurement(
                measurement=measurement,
                by=request.user,
                fields=form.measurement_fields(),
                reason=reason_form.cleaned_data["reason"],
            )
        except services.MeasurementRefused as refused:
            for message in refused.reasons:
                messages.error(request, message)
        else:
            messages.success(request, "Result corrected. The previous value is kept in history.")
            return redirect(f"{plan.get_absolute_url()}#audits")
    errors = error_summary(form)
    if request.method == "POST" and not reason_valid:
        errors.append(
            FormError(
                "Why is this being corrected", "Say why the result is being corrected.", "id_reason"
            )
        )
    return render(
        request,
        "audits/measurement_form.html",
        {
            "plan": plan,
            "form": form,
            "errors": errors,
            "indicators": context.indicators,
            "title": "Correct a result",
            "submit": "Save correction",
            "correction": True,
            "reason": reason,
            "reason_missing": request.method == "POST" and not reason_valid,
            "reason_error": " ".join(reason_form.errors.get("reason", [])),
        },
    )


def export_measurements(request: HttpRequest, reference: str, kind: str) -> HttpResponse:
    plan = get_plan_for_user(request.user, reference)
    if kind not in ("csv", "xlsx"):
        raise Http404("No such format.")
    security.record("export", request=request, detail=f"results of {plan.reference} as {kind}")
    header = [
        "Indicator",
        "Date",
        "Numerator",
        "Denominator",
        "Value",
        "Unit",
        "Meets target",
        "Location",
        "Source",
        "Notes",
        "Recorded by",
        "Recorded at",
    ]

    def rows():
        measurements = (
            Measurement.objects.filter(indicator__plan=plan)
            .select_related("indicator", "location", "recorded_by")
            .order_by("indicator__position", "indicator_id", "measured_on")
        )
        for m in measurements.iterator(chunk_size=2000):
            yield [
                m.indicator.name,
                m.measured_on,
                m.numerator,
                m.denominator,
                m.value,
                m.indicator.unit,
                "Yes" if m.meets_target else "No",
                m.location.name if m.location else "",
                m.get_source_display(),
                m.notes,
                str(m.recorded_by),
                timezone.localtime(m.recorded_at).replace(tzinfo=None),
            ]

    filename = f"{plan.reference}-measurements-{timezone.localdate().isoformat()}.{kind}"
    if kind == "csv":
        return csv_response(filename, header, rows())
    return xlsx_response(filename, header, rows(), sheet="Measurements")


def add_evidence(request: HttpRequest, reference: str) -> HttpResponse:
    plan = get_plan_for_logging(request.user, reference)
    form = EvidenceForm(
        request.POST or None,
        request.FILES or None,
        plan=plan,
        initial={"occurred_on": timezone.localdate()},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.add_evidence(
                plan=plan,
                by=request.user,
                fields={k: v for k, v in form.cleaned_data.items() if k != "upload"},
                upload=form.cleaned_data.get("upload") or None,
                file_type=form.file_type,
            )
        except services.MeasurementRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            messages.success(request, "Evidence added.")
            return redirect(f"{plan.get_absolute_url()}#evidence")
    elif request.method == "POST":
        messages.error(
            request,
            "Nothing was saved. Please correct the errors marked below"
            " (choose the file again: browsers do not keep it).",
        )
    return render(request, "audits/evidence_form.html", {"plan": plan, "form": form})


def download_evidence(request: HttpRequest, pk: int) -> FileResponse:
    """Stream an evidence file to someone who may read its plan, as a download that
    the browser must not sniff, render or script."""
    item = get_evidence_for_user(request.user, pk)
    if not item.file:
        raise Http404("This evidence has no file.")
    response = download_response(
        item.file,
        filename=item.download_name(),
        content_type=item.content_type or TEXT.content_type,
    )
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    security.record(
        "file_download", request=request, detail=f"evidence {item.pk} of {item.plan.reference}"
    )
    return response


def import_upload(request: HttpRequest, reference: str) -> HttpResponse:
    plan = get_plan_for_logging(request.user, reference)
    if refused := _refused_on_final(request, plan):
        return refused
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        batch = services.start_import(
            plan=plan, by=request.user, upload=form.cleaned_data["upload"], kind=form.kind
        )
        return redirect("audits:import_detail", pk=batch.pk)
    recent = list(plan.import_batches.select_related("created_by")[:5])
    return render(
        request,
        "audits/import_upload.html",
        {
            "plan": plan,
            "form": form,
            "indicators": list(plan.indicators.all()),
            "locations": list(plan.locations.all()),
            "columns": spreadsheets.COLUMNS,
            "recent": recent,
        },
    )


def import_template(request: HttpRequest, reference: str, kind: str) -> HttpResponse:
    plan = get_plan_for_logging(request.user, reference)
    filename = f"{plan.reference}-results-template.{kind}"
    if kind == "csv":
        response = HttpResponse(spreadsheets.template_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    if kind == "xlsx":
        return xlsx_response(filename, spreadsheets.COLUMNS, [], sheet="Results")
    raise Http404("No such format.")


def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Progress, then the preview (or the row errors), then the result. With
    ``?partial=1`` only the status block, for htmx polling while a task works."""
    batch = get_batch_for_user(request.user, pk)
    context = {"batch": batch, "plan": batch.plan}
    if request.GET.get("partial") and request.headers.get("HX-Request"):
        response = render(request, "audits/_import_status.html", context)
        if not batch.is_running:
            # Swap in the whole page once, so the preview, the buttons or the failure
            # appear (and the polling stops).
            response["HX-Refresh"] = "true"
        return response
    return render(request, "audits/import_detail.html", context)


@require_POST
def import_commit(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_batch_for_user(request.user, pk)
    try:
        services.queue_import_commit(batch=batch, by=request.user)
    except services.MeasurementRefused as refused:
        for reason in refused.reasons:
            messages.error(request, reason)
    batch.refresh_from_db()
    if batch.status == ImportBatch.Status.COMMITTED:
        messages.success(
            request, f"{batch.total_rows} result{'s' if batch.total_rows != 1 else ''} imported."
        )
        return redirect(f"{batch.plan.get_absolute_url()}#audits")
    return redirect(reverse("audits:import_detail", args=[batch.pk]))


@require_POST
def import_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Run a failed or stuck import again ("Try again")."""
    batch = get_batch_for_user(request.user, pk)
    try:
        services.retry_import(batch=batch, by=request.user)
    except services.MeasurementRefused as refused:
        for reason in refused.reasons:
            messages.error(request, reason)
    return redirect(reverse("audits:import_detail", args=[batch.pk]))


# --- One form per audit -------------------------------------------------------------------


def log_audit(request: HttpRequest, reference: str) -> HttpResponse:
    """Log one audit: its date, location and source once, a result for each of the
    plan's indicators that was audited, and its evidence once. Saved all or nothing."""
    plan = get_plan_for_logging(request.user, reference)
    context = MeasurementContext.for_plan(plan)
    initial: dict = {"measured_on": timezone.localdate()}
    if request.method == "GET" and request.GET.get("date"):
        with contextlib.suppress(ValueError):
            initial["measured_on"] = datetime.date.fromisoformat(request.GET["date"])
    # A manager of one of the plan's locations logs for that one: chosen for them.
    own = set(request.user.locations.values_list("pk", flat=True))
    mine = [loc for loc in context.locations if loc.pk in own]
    if len(context.locations) > 1 and len(mine) == 1:
        initial["location"] = mine[0].pk
    data = request.POST if request.method == "POST" else None
    form = AuditForm(data, context=context, initial=initial)
    rows = [
        AuditResultForm(data, indicator=indicator, context=context)
        for indicator in context.indicators
    ]
    evidence = AuditEvidenceForm(data, request.FILES or None)
    blank = False
    if request.method == "POST":
        audit_ok = form.is_valid()
        for row in rows:
            row.audit_date = form.cleaned_data.get("measured_on") if audit_ok else None
        valid = [row.is_valid() for row in rows]  # every row, so every error is listed
        rows_ok = all(valid)
        evidence_ok = evidence.is_valid()
        blank = all(row.is_blank for row in rows)
        if audit_ok and rows_ok and evidence_ok and not blank:
            audit = form.cleaned_data
            try:
                saved = services.record_audit(
                    plan=plan,
                    by=request.user,
                    results=[row.measurement_fields(audit) for row in rows if not row.is_blank],
                    evidence=evidence.evidence_fields(audit) if evidence.has_evidence else None,
                    upload=evidence.cleaned_data.get("upload") or None,
                    file_type=evidence.file_type,
                )
            except services.MeasurementRefused as refused:
                for reason in refused.reasons:
                    messages.error(request, reason)
            else:
                logged = "; ".join(f"“{m.indicator.name}” {m.value_display()}" for m in saved)
                extra = " with its evidence" if evidence.has_evidence else ""
                messages.success(
                    request, f"Audit of {day(audit['measured_on'])} logged{extra}: {logged}."
                )
                return redirect(f"{plan.get_absolute_url()}#audits")
    errors = error_summary(
        form, *[(row, f"“{row.indicator.name}”") for row in rows], (evidence, "Evidence")
    )
    if blank and rows:
        first = rows[0]
        errors.append(
            FormError(
                "Results",
                "Enter at least one result.",
                first[next(iter(first.fields))].auto_id,
            )
        )
    return render(
        request,
        "audits/audit_form.html",
        {
            "plan": plan,
            "form": form,
            "rows": rows,
            "evidence": evidence,
            "errors": errors,
            "blank": blank,
        },
    )


# --- Chart notes and recalculated limits ------------------------------------------------------


def _refused_mutation(request: HttpRequest, plan: Plan) -> HttpResponse | None:
    """A closed or withdrawn plan takes no notes or recalculations: said, not hidden."""
    if plan.is_final:
        messages.error(
            request,
            f"{plan.reference} is {plan.get_status_display().lower()}: its charts cannot change.",
        )
        return redirect(plan)
    return None


def add_note(request: HttpRequest, reference: str) -> HttpResponse:
    """Add a dated note to one of the plan's charts."""
    plan = get_plan_for_user(request.user, reference, write=True)
    if refused := _refused_mutation(request, plan):
        return refused
    if not can_annotate(request.user, plan):
        raise Http404("No such plan.")
    indicators = list(plan.indicators.all())
    initial: dict = {"noted_on": timezone.localdate()}
    if len(indicators) == 1:
        initial["indicator"] = indicators[0].pk
    elif request.GET.get("indicator"):
        initial["indicator"] = request.GET["indicator"]
    form = AnnotationForm(request.POST or None, indicators=indicators, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.add_annotation(
                indicator=data["indicator"],
                by=request.user,
                noted_on=data["noted_on"],
                kind=data["kind"],
                text=data["text"],
            )
        except (services.AnnotationRefused, TransitionRefused) as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            messages.success(request, f"Note added to the chart of “{data['indicator'].name}”.")
            return redirect(f"{plan.get_absolute_url()}#verdicts")
    return render(
        request,
        "audits/note_form.html",
        {"plan": plan, "form": form, "errors": error_summary(form)},
    )


def recalculate_limits(request: HttpRequest, reference: str, pk: int) -> HttpResponse:
    """Recalculate one indicator's limits from a chosen result, with the documented
    reason: the quality lead's, where Making Data Count's rules allow it."""
    plan, indicator = get_indicator_for_user(request.user, reference, pk, write=True)
    if refused := _refused_mutation(request, plan):
        return refused
    if not request.user.is_organisation_lead:
        raise Http404("No such plan.")
    verdict = next(v for v in plan_verdicts(plan).indicators if v.indicator.pk == indicator.pk)
    # Offer the start of the latest improvement shift, where a new phase would begin.
    suggested = None
    result = verdict.assurance.assessment.result
    if isinstance(result, spc.ChartResult):
        shifts = [
            s
            for s in result.signals
            if s.rule is spc.Rule.SHIFT and s.effect is spc.Effect.IMPROVEMENT
        ]
        if shifts:
            suggested = verdict.measurements[shifts[-1].points[0]].measured_on
            if any(r.noted_on >= suggested for r in verdict.rebases):
                suggested = None
    form = RecalculationForm(
        request.POST or None,
        results=verdict.measurements,
        initial={"starts_on": suggested.isoformat() if suggested else ""},
    )
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            services.recalculate_limits(
                indicator=indicator,
                by=request.user,
                starts_on=form.cleaned_data["starts_on"],
                reason=form.cleaned_data["reason"],
            )
        except (services.AnnotationRefused, TransitionRefused) as refused:
            problems = refused.reasons
        else:
            messages.success(
                request,
                f"Limits of “{indicator.name}” recalculated from "
                f"{day(form.cleaned_data['starts_on'])}.",
            )
            return redirect(f"{plan.get_absolute_url()}#verdicts")
    errors = error_summary(form) + [
        FormError("First result of the new phase", p, "id_starts_on") for p in problems
    ]
    spec = chart_for(verdict, chart_id=f"rebase-{indicator.pk}")
    return render(
        request,
        "audits/recalculate_form.html",
        {
            "plan": plan,
            "indicator": indicator,
            "verdict": verdict,
            "form": form,
            "errors": errors,
            "svg": render_svg(spec),
            "allowed_now": can_recalculate_limits(request.user, plan),
            "rebases": verdict.rebases,
            "suggested": suggested,
        },
    )


# --- The register's detail of a plan ----------------------------------------------------------


def plan_icons(request: HttpRequest, reference: str) -> HttpResponse:
    """Each indicator of a plan with its Making Data Count icons: the detail the register
    shows when a plan's row is hovered or opened. The figures are the plan page's own."""
    plan = get_plan_for_user(request.user, reference, related=("criteria",))
    scopes = [f"plan:{plan.pk}"]

    def panel() -> str:
        prefetch_related_objects([plan], "indicators", "actions")
        charts = plan_figures(plan)["charts"]
        return render_to_string("audits/_icons_panel.html", {"plan": plan, "charts": charts})

    today = timezone.localdate().isoformat()
    # Held from before the panel's rows are read (core.freshness.pinned).
    with freshness.pinned(*scopes):
        html = freshness.cached(f"plan-icons:{plan.pk}:{today}", panel, scopes=scopes)
    return HttpResponse(html)
