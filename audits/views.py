from __future__ import annotations

import datetime

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from audits import imports, monitoring, services
from audits.access import (
    can_log,
    due_indicators,
    get_batch_for_user,
    get_evidence_for_user,
    get_measurement_for_user,
    get_plan_for_logging,
)
from audits.charts import chart_for, render_svg
from audits.forms import (
    CorrectionReasonForm,
    EvidenceForm,
    ImportUploadForm,
    MeasurementContext,
    MeasurementForm,
)
from audits.models import ImportBatch, Measurement, MonitoringPeriod, next_due_on
from audits.verdicts import PlanVerdicts, plan_verdicts
from core import security
from core.exports import csv_response, xlsx_response
from core.files import TEXT, get_private_storage
from core.forms import FormError, error_summary
from core.thresholds import DUE_SOON_DAYS
from plans import lifecycle
from plans.access import get_plan_for_user
from plans.models import Plan, User

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
        assessment = monitoring.assessment_for(monitored, since)
        watched.append(
            {
                "monitored": monitored,
                "indicator": verdict.indicator,
                "results": len(since),
                "explanation": assessment.explain() if assessment else "",
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
        spec = chart_for(
            verdict,
            chart_id=f"chart-{plan.pk}-{position}",
            monitored=w["monitored"] if w else None,
            period_start=monitoring_data["period"].starts_on if w else None,
            deteriorations=w["deteriorations"] if w else [],
        )
        charts.append({"verdict": verdict, "spec": spec, "svg": render_svg(spec)})
    return {"verdicts": verdicts, "monitoring": monitoring_data, "charts": charts}


def plan_panel_context(plan: Plan, user: User) -> dict:
    """The plan page's "Sustained improvement", "Monitoring" and "Re-audits and
    evidence" sections. A fixed number of queries (about a dozen), whatever the number
    of indicators, results or evidence items; none for the verdicts and charts while
    nothing has changed: the plan page caches this section's HTML under the plan's version
    (``qip_portal/plan_pages.py``, ``core.freshness``)."""
    today = timezone.localdate()
    figures = _plan_figures(plan)
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
        .select_related("indicator", "location", "recorded_by")
        .order_by("-measured_on", "-pk")[: PANEL_MEASUREMENTS + 1]
    )
    evidence = list(plan.evidence_items.select_related("uploaded_by"))
    return {
        "plan": plan,
        "indicators": indicators,
        "measurements": measurements[:PANEL_MEASUREMENTS],
        "more_measurements": len(measurements) > PANEL_MEASUREMENTS,
        "evidence": evidence,
        "can_log": can_log(user, plan),
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
    soonest first, each linked to the prefilled log form. Fixed number of queries."""
    today = timezone.localdate()
    rows = []
    for indicator in due_indicators(request.user):
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
    handle = get_private_storage().open(item.file.name, "rb")
    content_type = item.content_type or TEXT.content_type
    response = FileResponse(
        handle, as_attachment=True, filename=item.download_name(), content_type=content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
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
            "columns": imports.COLUMNS,
            "recent": recent,
        },
    )


def import_template(request: HttpRequest, reference: str, kind: str) -> HttpResponse:
    plan = get_plan_for_logging(request.user, reference)
    filename = f"{plan.reference}-results-template.{kind}"
    if kind == "csv":
        response = HttpResponse(imports.template_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    if kind == "xlsx":
        return xlsx_response(filename, imports.COLUMNS, [], sheet="Results")
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
