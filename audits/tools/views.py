"""Pages for audit tools and conducting audits. Short views: an access function, a
form, one service, then redirect or render."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from audits.tools import pdf, services
from audits.tools.access import (
    can_conduct,
    can_manage_tools,
    conduct_locations,
    get_audit_for_user,
    get_tool_for_user,
)
from audits.tools.forms import FeedForm, RaiseActionForm, StartAuditForm
from audits.tools.models import (
    Answer,
    Audit,
    AuditPdf,
    AuditRecord,
    AuditTool,
    Finding,
    ToolVersion,
)
from core import security
from core.forms import error_summary, is_row_id
from core.storage import download_response
from plans.access import assignable_owners, get_plan_for_user, visible_plans
from plans.models import Plan

AUDITS_PER_PAGE = 50


def tool_list(request: HttpRequest) -> HttpResponse:
    """Every tool, with its current version and question count. Fixed queries."""
    tools = list(
        AuditTool.objects.select_related("theme").annotate(
            versions_count=Count("versions", distinct=True)
        )
    )
    latest = {}
    for version in ToolVersion.objects.filter(tool__in=tools).annotate(
        questions_count=Count("questions")
    ):
        if version.tool_id not in latest or version.number > latest[version.tool_id].number:
            latest[version.tool_id] = version
    for tool in tools:
        tool.current = latest.get(tool.pk)
    return render(
        request,
        "audits/tools/tool_list.html",
        {
            "tools": tools,
            "section": "audits",
            "can_conduct": conduct_locations(request.user).exists(),
            "can_manage": can_manage_tools(request.user),
        },
    )


def tool_detail(request: HttpRequest, pk: int) -> HttpResponse:
    tool = get_tool_for_user(request.user, pk)
    versions = list(tool.versions.select_related("created_by"))
    version = versions[0]
    if request.GET.get("version") and is_row_id(request.GET["version"]):
        version = next((v for v in versions if str(v.number) == request.GET["version"]), version)
    sections = list(version.sections.prefetch_related("questions"))
    return render(
        request,
        "audits/tools/tool_detail.html",
        {
            "tool": tool,
            "version": version,
            "versions": versions,
            "sections": sections,
            "section": "audits",
            "can_conduct": conduct_locations(request.user).exists(),
            "can_manage": can_manage_tools(request.user),
        },
    )


def audit_list(request: HttpRequest) -> HttpResponse:
    """Audits the user may read, latest first: in progress, then submitted. Fixed
    queries whatever the number of audits (the scores are on each audit's page)."""
    audits = (
        Audit.objects.visible_to(request.user)
        .select_related("version__tool", "location", "started_by")
        .annotate(records_named=Count("records", filter=~Q(records__identifier="")))
        .order_by("status", "-audited_on", "-pk")
    )
    status = request.GET.get("status", "")
    if status in Audit.Status.values:
        audits = audits.filter(status=status)
    rows = list(audits[: AUDITS_PER_PAGE + 1])
    return render(
        request,
        "audits/tools/audit_list.html",
        {
            "audits": rows[:AUDITS_PER_PAGE],
            "more": len(rows) > AUDITS_PER_PAGE,
            "status": status,
            "section": "audits",
            "can_conduct": conduct_locations(request.user).exists(),
        },
    )


def audit_start(request: HttpRequest) -> HttpResponse:
    """Choose a tool, a location and a sample; pre-filled from a plan's due re-audit
    (``?tool=&location=&plan=``)."""
    locations = conduct_locations(request.user)
    if not locations.exists():
        raise Http404("No such page.")
    plan = None
    if request.GET.get("plan"):
        plan = get_plan_for_user(request.user, request.GET["plan"][:20])
    initial = {"audited_on": timezone.localdate(), "sample_size": 10}
    if is_row_id(request.GET.get("tool", "")):
        initial["tool"] = request.GET["tool"]
    # A location the link names, if this person conducts there (the plan page's link
    # names none: its content is shared by everyone of the viewer's role).
    if is_row_id(asked := request.GET.get("location", "")) and locations.filter(pk=asked).exists():
        initial["location"] = asked
    if "location" not in initial:
        # The plan's location where this person conducts audits, or their only one.
        mine = locations.filter(plans=plan) if plan is not None else locations
        if len(only := list(mine.values_list("pk", flat=True)[:2])) == 1:
            initial["location"] = only[0]
    form = StartAuditForm(request.POST or None, locations=locations, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if plan is not None and not plan.locations.filter(pk=data["location"].pk).exists():
            plan = None  # another location chosen: not this plan's audit
        try:
            audit = services.start_audit(
                tool=data["tool"],
                location=data["location"],
                by=request.user,
                audited_on=data["audited_on"],
                sample_size=data["sample_size"],
                plan=plan,
            )
        except services.AuditRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            return redirect("audits:audit_record", pk=audit.pk, position=1)
    return render(
        request,
        "audits/tools/audit_start.html",
        {"form": form, "errors": error_summary(form), "plan": plan, "section": "audits"},
    )


def _first_incomplete(audit: Audit) -> int:
    """Where to resume: the first record without an identifier or a yes/no answer."""
    scored = audit.version.questions.filter(kind="yes_no").count()
    records = audit.records.annotate(
        answered=Count(
            "answers", filter=Q(answers__question__kind="yes_no") & ~Q(answers__value="")
        )
    )
    for record in records:
        if not record.identifier or record.answered < scored:
            return record.position
    return 0


def audit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The audit's page: its answers, scores and findings. An audit in progress sends
    whoever may conduct it back to where they stopped."""
    audit = get_audit_for_user(request.user, pk)
    may_conduct = can_conduct(request.user, audit.location)
    if not audit.is_submitted and may_conduct:
        position = _first_incomplete(audit)
        if position:
            return redirect("audits:audit_record", pk=audit.pk, position=position)
        return redirect("audits:audit_review", pk=audit.pk)
    return render(request, "audits/tools/audit_detail.html", _report_context(audit, request))


def _report_context(audit: Audit, request: HttpRequest | None) -> dict:
    """What the audit's page and its PDF show. A fixed number of queries."""
    questions = list(audit.version.questions.select_related("section"))
    records = list(audit.records.all())
    answers = list(Answer.objects.filter(record__audit=audit))
    by_cell = {(a.record_id, a.question_id): a for a in answers}
    findings = {
        f.answer_id: f
        for f in Finding.objects.filter(audit=audit).select_related(
            "plan", "action", "withdrawn_by"
        )
    }
    rows = []
    for record in records:
        cells = []
        for q in questions:
            answer = by_cell.get((record.pk, q.pk))
            cells.append(
                {
                    "question": q,
                    "answer": answer,
                    "finding": findings.get(answer.pk) if answer else None,
                }
            )
        rows.append({"record": record, "cells": cells})
    noes = [
        {
            "record": row["record"],
            "question": c["question"],
            "answer": c["answer"],
            "finding": c["finding"],
        }
        for row in rows
        for c in row["cells"]
        if c["answer"] and c["answer"].value == Answer.NO
    ]
    # Findings whose "No" a correction turned into something else: withdrawn, kept.
    corrected = [
        {
            "record": row["record"],
            "question": c["question"],
            "answer": c["answer"],
            "finding": c["finding"],
        }
        for row in rows
        for c in row["cells"]
        if c["finding"] and c["finding"].is_withdrawn
    ]
    scores = services.audit_scores(audit)
    threshold = audit.version.tool.suggest_plan_below
    suggest = []
    if audit.is_submitted and threshold is not None:
        covered = {
            n["question"].key for n in noes if n["finding"] and n["finding"].kind == "repeat"
        }
        for section in scores.sections:
            for q in section.questions:
                if (
                    q.tally.percent is not None
                    and q.tally.percent < threshold
                    and q.key not in covered
                ):
                    suggest.append(q)
    user = request.user if request else None
    results = list(
        audit.results.select_related("measurement__indicator__plan").order_by("measurement_id")
    )
    return {
        "audit": audit,
        "tool": audit.version.tool,
        "questions": questions,
        "rows": rows,
        "scores": scores,
        "noes": noes,
        "corrected": corrected,
        "results": results,
        "suggest": suggest,
        "threshold": threshold,
        "can_conduct": bool(user) and can_conduct(user, audit.location),
        "audit_pdf": AuditPdf.objects.filter(audit=audit).first() if user else None,
        "section": "audits",
    }


def _values_from(request: HttpRequest, audit: Audit) -> dict[int, str]:
    """Answers posted as ``q<question id>``; anything else is ignored."""
    values = {}
    for name, raw in request.POST.items():
        if name.startswith("q") and is_row_id(name[1:]):
            values[int(name[1:])] = raw
    return values


def _record(audit: Audit, position: int) -> AuditRecord:
    try:
        return audit.records.get(position=position)
    except AuditRecord.DoesNotExist:
        raise Http404("No such record.") from None


def _record_context(audit: Audit, record: AuditRecord, values: dict | None = None) -> dict:
    sections = list(audit.version.sections.prefetch_related("questions"))
    saved = {a.question_id: a.value for a in record.answers.all()}
    if values:
        saved.update(values)
    for section in sections:
        for q in section.questions.all():
            q.current = saved.get(q.pk, "")
    scored = sum(1 for s in sections for q in s.questions.all() if q.is_scored)
    done = audit.records.annotate(
        answered=Count(
            "answers", filter=Q(answers__question__kind="yes_no") & ~Q(answers__value="")
        )
    )
    progress = [
        {
            "position": r.position,
            "identifier": r.identifier,
            "complete": bool(r.identifier) and r.answered >= scored,
        }
        for r in done
    ]
    return {
        "audit": audit,
        "tool": audit.version.tool,
        "record": record,
        "sections": sections,
        "progress": progress,
        "complete": sum(1 for p in progress if p["complete"]),
        "previous": record.position - 1 if record.position > 1 else None,
        "next": record.position + 1 if record.position < audit.sample_size else None,
        "section": "audits",
    }


def audit_record(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    """One record's answers. Each answer is saved as it is given (htmx, ``audit_answer``);
    the page's own button saves them all too, so it works without JavaScript."""
    audit = get_audit_for_user(request.user, pk, write=True)
    if audit.is_submitted:
        return redirect("audits:audit_detail", pk=audit.pk)
    record = _record(audit, position)
    problems: list[str] = []
    values = None
    if request.method == "POST":
        values = _values_from(request, audit)
        try:
            services.save_answers(
                audit=audit,
                record=record,
                by=request.user,
                values=values,
                identifier=request.POST.get("identifier", ""),
            )
        except services.AuditRefused as refused:
            problems = refused.reasons
        else:
            if request.POST.get("go") == "review" or position >= audit.sample_size:
                return redirect("audits:audit_review", pk=audit.pk)
            if request.POST.get("go") == "previous" and position > 1:
                return redirect("audits:audit_record", pk=audit.pk, position=position - 1)
            return redirect("audits:audit_record", pk=audit.pk, position=position + 1)
    context = _record_context(audit, record, values)
    context["problems"] = problems
    context["identifier"] = (
        request.POST.get("identifier", "") if request.method == "POST" else record.identifier
    )
    return render(request, "audits/tools/audit_record.html", context)


@require_POST
def audit_answer(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    """Save what was just given (one answer, or the record's identifier), for htmx.
    Answers with a short status that the page shows beside the question."""
    audit = get_audit_for_user(request.user, pk, write=True)
    record = _record(audit, position)
    identifier = request.POST.get("identifier") if "identifier" in request.POST else None
    try:
        services.save_answers(
            audit=audit,
            record=record,
            by=request.user,
            values=_values_from(request, audit),
            identifier=identifier,
        )
    except services.AuditRefused as refused:
        return render(
            request, "audits/tools/_saved.html", {"problems": refused.reasons}, status=200
        )
    return render(request, "audits/tools/_saved.html", {"saved_at": timezone.localtime()})


def audit_review(request: HttpRequest, pk: int) -> HttpResponse:
    """The scores per question, section and total, before the final confirm."""
    audit = get_audit_for_user(request.user, pk, write=True)
    if audit.is_submitted:
        return redirect("audits:audit_detail", pk=audit.pk)
    return render(
        request,
        "audits/tools/audit_review.html",
        {
            "audit": audit,
            "tool": audit.version.tool,
            "scores": services.audit_scores(audit),
            "problems": services.submission_problems(audit),
            "feeds": services.feeds_for(audit),
            "section": "audits",
        },
    )


@require_POST
def audit_submit(request: HttpRequest, pk: int) -> HttpResponse:
    audit = get_audit_for_user(request.user, pk, write=True)
    try:
        services.submit_audit(audit=audit, by=request.user)
    except services.AuditRefused as refused:
        for reason in refused.reasons:
            messages.error(request, reason)
        if audit.is_submitted or "already been submitted" in " ".join(refused.reasons):
            return redirect("audits:audit_detail", pk=audit.pk)
        return redirect("audits:audit_review", pk=audit.pk)
    messages.success(request, "Audit submitted. Its scores and any results it wrote are below.")
    return redirect("audits:audit_detail", pk=audit.pk)


def audit_correct(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    """Correct a submitted audit's record, with a reason kept in history (and passed to
    the results the audit wrote)."""
    audit = get_audit_for_user(request.user, pk, write=True)
    if not audit.is_submitted:
        return redirect("audits:audit_record", pk=audit.pk, position=position)
    record = _record(audit, position)
    problems: list[str] = []
    values = None
    reason = ""
    if request.method == "POST":
        values = _values_from(request, audit)
        reason = request.POST.get("reason", "")
        try:
            changes = services.correct_audit(
                audit=audit,
                record=record,
                by=request.user,
                values=values,
                identifier=request.POST.get("identifier", ""),
                reason=reason,
            )
        except services.AuditRefused as refused:
            problems = refused.reasons
        else:
            if changes:
                messages.success(request, f"Corrected: {'; '.join(changes)}.")
            else:
                messages.info(request, "Nothing was changed.")
            return redirect("audits:audit_detail", pk=audit.pk)
    context = _record_context(audit, record, values)
    context.update(
        {
            "problems": problems,
            "correction": True,
            "reason": reason,
            "identifier": request.POST.get("identifier", "")
            if request.method == "POST"
            else record.identifier,
        }
    )
    return render(request, "audits/tools/audit_record.html", context)


def raise_action(request: HttpRequest, pk: int, answer_id: int) -> HttpResponse:
    """Raise an action on a plan at the audit's location for one "No" answer."""
    audit = get_audit_for_user(request.user, pk, write=True)
    try:
        answer = Answer.objects.select_related("question", "record").get(
            pk=answer_id, record__audit=audit, value=Answer.NO
        )
    except Answer.DoesNotExist:
        raise Http404("No such answer.") from None
    plans = (
        visible_plans(request.user)
        .filter(locations=audit.location, status__in=Plan.OPEN_STATUSES)
        .order_by("reference")
    )
    initial = {"owner": request.user.pk}
    if is_row_id(request.GET.get("plan", "")):
        initial["plan"] = request.GET["plan"]
    form = RaiseActionForm(
        request.POST or None, plans=plans, owners=assignable_owners(request.user), initial=initial
    )
    if request.method == "POST" and form.is_valid():
        try:
            finding = services.raise_action(answer=answer, by=request.user, **form.cleaned_data)
        except services.AuditRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            messages.success(request, f"Action raised on {finding.plan.reference}.")
            return redirect(reverse("audits:audit_detail", args=[audit.pk]) + "#findings")
    return render(
        request,
        "audits/tools/raise_action.html",
        {
            "audit": audit,
            "answer": answer,
            "form": form,
            "errors": error_summary(form),
            "has_plans": plans.exists(),
            "section": "audits",
        },
    )


def feed_indicator(request: HttpRequest, reference: str) -> HttpResponse:
    """Feed one of a plan's indicators from an audit tool (the quality lead's)."""
    plan = get_plan_for_user(request.user, reference, write=True)
    if not can_manage_tools(request.user) or plan.is_final:
        raise Http404("No such plan.")
    form = FeedForm(request.POST or None, plan=plan, initial=request.GET.dict() or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.feed_indicator(
                indicator=data["indicator"],
                tool=data["tool"],
                scope=data["scope"],
                key=data["key"].strip().upper(),
                by=request.user,
            )
        except services.AuditRefused as refused:
            for reason in refused.reasons:
                form.add_error("key", reason)
        else:
            messages.success(
                request, f"“{data['indicator'].name}” is now fed by {data['tool'].name}."
            )
            return redirect(f"{plan.get_absolute_url()}#audits")
    return render(
        request,
        "audits/tools/feed_form.html",
        {"plan": plan, "form": form, "errors": error_summary(form), "section": "plans"},
    )


@require_POST
def audit_pdf_request(request: HttpRequest, pk: int) -> HttpResponse:
    audit = get_audit_for_user(request.user, pk)
    try:
        pdf.request_audit_pdf(audit=audit, by=request.user)
    except pdf.PdfRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, "PDF requested. It appears below when it is ready.")
    return redirect(reverse("audits:audit_detail", args=[audit.pk]) + "#pdf")


def audit_pdf_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The PDF's state, polled by htmx while it renders."""
    audit = get_audit_for_user(request.user, pk)
    return render(
        request,
        "audits/tools/_pdf_status.html",
        {"audit": audit, "audit_pdf": AuditPdf.objects.filter(audit=audit).first()},
    )


def audit_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    audit = get_audit_for_user(request.user, pk)
    found = AuditPdf.objects.filter(audit=audit, status=AuditPdf.Status.READY).first()
    if found is None or not found.file:
        raise Http404("The PDF is not ready.")
    security.record("file_download", request=request, detail=f"Audit PDF {audit.pk}")
    return download_response(
        found.file, filename=f"audit-{audit.pk}.pdf", content_type="application/pdf"
    )
