"""The tool editor's pages: a new tool, and editing one. Quality leads (and
administrators) only; anyone else gets the 404 of the other tool-management pages."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from audits.tools import editing, services
from audits.tools.access import can_manage_tools, get_tool_for_user
from audits.tools.editor_forms import (
    EDITOR_MAX_QUESTIONS,
    ToolDetailsForm,
    apply_op,
    blank_drafts,
    check_drafts,
    draft_errors,
    drafts_from_post,
    drafts_from_version,
)
from audits.tools.models import AuditTool, ToolQuestion
from core.forms import FormError, error_summary

DETAILS = ("theme", "quality_statement", "regulation", "description", "suggest_plan_below")


def _details_initial(tool: AuditTool) -> dict:
    return {"name": tool.name, **{name: getattr(tool, name) for name in DETAILS}}


def _page(request, *, tool, form, sections, errors, version=None, audits_count=0):
    based_on = request.POST.get("based_on", "") if request.method == "POST" else ""
    return render(
        request,
        "audits/tools/tool_edit.html",
        {
            "tool": tool,
            "form": form,
            "sections": sections,
            "errors": errors,
            "version": version,
            "audits_count": audits_count,
            "based_on": based_on or (editing.fingerprint(version) if version else ""),
            "kinds": ToolQuestion.Kind.choices,
            "can_add": sum(len(s.questions) for s in sections) < EDITOR_MAX_QUESTIONS,
            "most": EDITOR_MAX_QUESTIONS,
            "section": "audits",
        },
    )


def _read(request, form):
    """The form to show, the drafts as posted with the button's change made; and, for
    ``save``, the checked sections and every problem (empty: they may be saved)."""
    sections = drafts_from_post(request.POST)
    op = request.POST.get("op", "save")
    if op != "save":
        apply_op(sections, op)
        # The details as typed, not judged before "Save": an unbound form showing them.
        shown = ToolDetailsForm(initial=request.POST.dict(), tool=form.tool)
        return shown, sections, None, None
    edits, tool_wide = check_drafts(sections)
    errors = error_summary(form) if not form.is_valid() else []
    errors += [FormError("Questions", message, "sections") for message in tool_wide]
    errors += draft_errors(sections)
    return form, sections, edits, errors


@require_http_methods(["GET", "POST"])
def tool_new(request: HttpRequest) -> HttpResponse:
    if not can_manage_tools(request.user):
        raise Http404("No such page.")
    if request.method != "POST":
        return _page(request, tool=None, form=ToolDetailsForm(), sections=blank_drafts(), errors=[])
    form = ToolDetailsForm(request.POST)
    form, sections, edits, errors = _read(request, form)
    if edits is not None and not errors:
        data = form.cleaned_data
        try:
            tool = editing.create_tool(
                by=request.user,
                name=data["name"],
                sections=edits,
                **{name: data[name] for name in DETAILS},
            )
        except services.AuditRefused as refused:
            errors = [FormError("", reason, "sections") for reason in refused.reasons]
        else:
            messages.success(request, f"Created “{tool.name}”, version 1.")
            return redirect("audits:tool_detail", pk=tool.pk)
    return _page(request, tool=None, form=form, sections=sections, errors=errors or [])


@require_http_methods(["GET", "POST"])
def tool_edit(request: HttpRequest, pk: int) -> HttpResponse:
    tool = get_tool_for_user(request.user, pk, manage=True)
    version = services.current_version(tool)
    audits_count = version.audits.count()
    questions = version.questions.count()
    if questions > EDITOR_MAX_QUESTIONS:
        return render(
            request,
            "audits/tools/tool_too_big.html",
            {"tool": tool, "questions": questions, "most": EDITOR_MAX_QUESTIONS},
        )
    if request.method != "POST":
        return _page(
            request,
            tool=tool,
            form=ToolDetailsForm(tool=tool, initial=_details_initial(tool)),
            sections=drafts_from_version(version),
            errors=[],
            version=version,
            audits_count=audits_count,
        )
    form = ToolDetailsForm(request.POST, tool=tool)
    form, sections, edits, errors = _read(request, form)
    based_on = request.POST.get("based_on", "")
    if edits is not None and not errors:
        data = form.cleaned_data
        try:
            outcome = editing.edit_tool(
                tool=tool,
                by=request.user,
                based_on=based_on[:40],
                name=data["name"],
                sections=edits,
                change_note=data.get("change_note", ""),
                **{name: data[name] for name in DETAILS},
            )
        except services.AuditRefused as refused:
            errors = [FormError("", reason, "sections") for reason in refused.reasons]
        else:
            messages.success(request, _saved_message(outcome))
            return redirect("audits:tool_detail", pk=tool.pk)
    return _page(
        request,
        tool=tool,
        form=form,
        sections=sections,
        errors=errors or [],
        version=version,
        audits_count=audits_count,
    )


def _saved_message(outcome: editing.EditOutcome) -> str:
    if outcome.kind == "details":
        return (
            "Saved the details. The questions are unchanged: still version "
            f"{outcome.version.number}."
        )
    if outcome.kind == "rewritten":
        return (
            f"Saved version {outcome.version.number}. No audit had used it, so it was "
            "changed in place."
        )
    return (
        f"Saved as version {outcome.version.number}. The audits that used version "
        f"{outcome.previous.number} keep its questions."
    )
