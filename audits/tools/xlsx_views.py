"""Tool spreadsheets (export, import with preview) and the compliance page."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from audits.spreadsheets import ImportFileError
from audits.tools import services, xlsx
from audits.tools.access import can_manage_tools, get_tool_for_user
from audits.tools.compliance import compliance_by_question
from audits.tools.models import AuditTool, ToolImport
from core import files
from core.exports import csv_response, xlsx_response
from core.forms import error_summary
from core.history import save_with_history


class ToolUploadForm(forms.Form):
    upload = forms.FileField(
        label="Tool spreadsheet",
        help_text="An Excel (.xlsx) file laid out like a tool's export.",
    )

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        files.check_size(upload)
        if files.detect_type(upload) != files.XLSX:
            raise forms.ValidationError("Upload an Excel (.xlsx) file.")
        return upload


def tool_export(request: HttpRequest, pk: int) -> HttpResponse:
    tool = get_tool_for_user(request.user, pk)
    version = services.current_version(tool)
    response = HttpResponse(
        xlsx.workbook_bytes(xlsx.tool_rows(tool, version)),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="audit-tool-{tool.pk}-v{version.number}.xlsx"'
    )
    return response


def tool_import(request: HttpRequest) -> HttpResponse:
    """Upload a tool spreadsheet: read and checked at once, then previewed."""
    if not can_manage_tools(request.user):
        raise Http404("No such page.")
    form = ToolUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["upload"]
        try:
            name, sections, errors = xlsx.read_tool(upload)
        except ImportFileError as exc:
            form.add_error("upload", str(exc))
        else:
            batch = ToolImport(
                original_name=(upload.name or "")[-200:],
                status=ToolImport.Status.INVALID if errors else ToolImport.Status.VALID,
                errors=errors[:200],
                spec=xlsx.spec_to_json(name, sections),
                created_by=request.user,
            )
            save_with_history(batch, by=request.user, reason="Tool spreadsheet uploaded")
            return redirect("audits:tool_import_detail", pk=batch.pk)
    return render(
        request,
        "audits/tools/tool_import.html",
        {"form": form, "errors": error_summary(form), "section": "audits"},
    )


@require_http_methods(["GET", "POST"])
def tool_import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The preview; confirming imports every question or none."""
    if not can_manage_tools(request.user):
        raise Http404("No such import.")
    try:
        batch = ToolImport.objects.get(pk=pk)
    except ToolImport.DoesNotExist:
        raise Http404("No such import.") from None
    existing = AuditTool.objects.filter(name__iexact=batch.spec.get("name", "")).first()
    if request.method == "POST":
        with transaction.atomic():
            locked = ToolImport.objects.select_for_update().get(pk=batch.pk)
            if locked.status != ToolImport.Status.VALID:
                messages.error(request, "This spreadsheet cannot be imported (again).")
                return redirect("audits:tool_import_detail", pk=batch.pk)
            sections = xlsx.spec_from_json(locked.spec)
            try:
                if existing is None:
                    tool = services.create_tool(
                        by=request.user, name=locked.spec["name"], sections=sections
                    )
                    version = services.current_version(tool)
                else:
                    tool = existing
                    version = services.revise_tool(
                        tool=existing,
                        by=request.user,
                        sections=sections,
                        change_note=f"Imported from {locked.original_name}"[:300],
                    )
            except services.AuditRefused as refused:
                for reason in refused.reasons:
                    messages.error(request, reason)
                return redirect("audits:tool_import_detail", pk=batch.pk)
            locked.status = ToolImport.Status.COMMITTED
            locked.tool = tool
            save_with_history(locked, by=request.user, reason="Tool imported")
        messages.success(request, f"Imported “{tool.name}”, version {version.number}.")
        return redirect("audits:tool_detail", pk=tool.pk)
    will = ""
    if existing is not None:
        current = services.current_version(existing)
        will = (
            f"a new version ({current.number + 1}) of “{existing.name}”: version "
            f"{current.number} has been used, and its audits keep it"
            if current.audits.exists()
            else f"a rewrite of “{existing.name}” version {current.number}, "
            "which no audit has used yet"
        )
    return render(
        request,
        "audits/tools/tool_import_detail.html",
        {"batch": batch, "existing": existing, "will": will, "section": "audits"},
    )


def _compliance(request: HttpRequest, pk: int):
    tool = get_tool_for_user(request.user, pk, manage=True)
    return tool, compliance_by_question(tool)


def compliance(request: HttpRequest, pk: int) -> HttpResponse:
    tool, rows = _compliance(request, pk)
    return render(
        request,
        "audits/tools/compliance.html",
        {"tool": tool, "rows": rows, "section": "audits"},
    )


HEADER = ["Question", "Wording", "Location", "Yes", "No", "Not applicable", "Compliance %"]


def compliance_export(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    if kind not in ("csv", "xlsx"):
        raise Http404("No such export.")
    tool, rows = _compliance(request, pk)
    table = []
    for row in rows:
        for loc in [None, *row.locations]:
            tally = row.tally if loc is None else loc.tally
            table.append(
                [
                    row.key,
                    row.text,
                    "All locations" if loc is None else loc.location,
                    tally.yes,
                    tally.no,
                    tally.na,
                    None if tally.percent is None else float(tally.percent),
                ]
            )
    name = f"compliance-tool-{tool.pk}.{kind}"
    if kind == "csv":
        return csv_response(name, HEADER, table)
    return xlsx_response(name, HEADER, table, sheet="Compliance")
