"""Evidence pack pages: prepare a plan's pack (or a register pack), watch it render,
download the PDF, and download the plan's evidence files as a ZIP.

Who may: anyone who may read the plan, for its pack and its files (everyone else gets
the same 404 as for a plan that does not exist); quality leads and administrators for
register packs. Every download is recorded as an "export" security event.
"""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from core import security, stuck
from core.forms import DateInput, ModelChoiceField
from core.storage import download_response
from learning.models import Embedding
from plans.access import get_plan_for_user
from plans.models import Location, Plan, User
from qip_portal.packs import evidence_pack, sharing
from qip_portal.packs.models import EvidencePack, PackShare

# The plan page and its pack page list this many earlier packs.
RECENT_PACKS = 10
# The longest period a register pack may cover.
MAX_REGISTER_DAYS = 3 * 366


# --- Access ---------------------------------------------------------------------------


def can_make_register_packs(user: User) -> bool:
    return user.is_authenticated and user.is_active and user.is_organisation_lead


def get_pack_for_user(user: User, pk: int) -> EvidencePack:
    """A pack ``user`` may download: a plan pack of a plan they may read, or a register
    pack for quality leads and administrators. Otherwise 404, whether or not it exists."""
    pack = (
        EvidencePack.objects.select_related("plan", "location", "requested_by")
        .filter(pk=pk)
        .first()
    )
    if pack is None:
        raise Http404("No such pack.")
    if pack.kind == EvidencePack.Kind.PLAN:
        get_plan_for_user(user, pack.plan.reference)
    elif not can_make_register_packs(user):
        raise Http404("No such pack.")
    return pack


def can_retry_packs(user: User, plan: Plan | None) -> bool:
    """Try a failed pack again: people who may change the plan (viewers prepare a new
    pack of their own instead); register packs, whoever may make them."""
    if plan is None:
        return can_make_register_packs(user)
    return user.is_authenticated and user.is_active and user.may_write_plans


def get_pack_for_retry(user: User, pk: int) -> EvidencePack:
    """A pack ``user`` may try again; otherwise 404 (as for a plan they may not change)."""
    pack = get_pack_for_user(user, pk)
    if not can_retry_packs(user, pack.plan):
        raise Http404("No such pack.")
    return pack


# --- The plan page's panel ------------------------------------------------------------


def plan_panel_context(plan: Plan, user: User) -> dict:
    """Three queries whatever the plan holds."""
    return {
        "plan": plan,
        "latest": EvidencePack.objects.filter(
            kind=EvidencePack.Kind.PLAN, plan=plan, share__isnull=True
        )
        .order_by("-requested_at", "-pk")
        .first(),
        "files": plan.evidence_items.exclude(file="").count()
        + Embedding.objects.filter(summary__plan=plan).exclude(file="").count(),
    }


# --- Plan packs -----------------------------------------------------------------------


def _requested(request: HttpRequest, pack: EvidencePack, *, ready: str, requested: str) -> None:
    """Say what was done in words that stay true beside the status below, which updates
    by itself (with tasks run in-process, the PDF is ready already)."""
    pack.refresh_from_db(fields=["render_status"])
    if pack.is_ready:
        messages.success(request, ready)
    else:
        messages.info(request, f"{requested}: its progress is shown below.")


@require_http_methods(["GET", "POST"])
def plan_pack(request: HttpRequest, reference: str) -> HttpResponse:
    """The plan's pack page (GET); prepare a new pack (POST). Reading the plan is
    enough: a pack changes nothing on it."""
    plan = get_plan_for_user(request.user, reference)
    if request.method == "POST":
        try:
            pack = evidence_pack.request_plan_pack(plan=plan, by=request.user)
        except stuck.TooMuchWaiting as refused:
            messages.error(request, refused.message)
            return redirect("packs:plan", reference=plan.reference)
        _requested(
            request, pack, ready="The evidence pack is ready.", requested="Evidence pack requested"
        )
        return redirect(f"{reverse('packs:plan', args=[plan.reference])}#pack-{pack.pk}")
    packs = list(
        # Copies made for share links are listed on the share page, with their recipient.
        EvidencePack.objects.filter(kind=EvidencePack.Kind.PLAN, plan=plan, share__isnull=True)
        .select_related("requested_by")
        .order_by("-requested_at", "-pk")[:RECENT_PACKS]
    )
    files = evidence_pack.plan_files(plan)
    return render(
        request,
        "evidence_pack/plan_page.html",
        {
            "plan": plan,
            "latest": packs[0] if packs else None,
            "earlier": packs[1:],
            "files": files,
            "section": "plans",
            "can_retry": can_retry_packs(request.user, plan),
            "can_share": sharing.can_share(request.user),
            "active_shares": PackShare.objects.filter(plan=plan).active().count(),
        },
    )


def plan_zip(request: HttpRequest, reference: str) -> StreamingHttpResponse:
    """The plan's evidence files and ``manifest.csv`` (SHA-256 per file), streamed."""
    plan = get_plan_for_user(request.user, reference)
    files = evidence_pack.plan_files(plan)
    security.record(
        "export",
        request=request,
        detail=f"Evidence files ZIP {plan.reference}: {len(files)} file(s)",
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        evidence_pack.stream_zip(plan, files), content_type="application/zip"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="evidence-files-{plan.reference}-{stamp}.zip"'
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Any pack: progress and download ----------------------------------------------------


def pack_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment, polled by htmx until the PDF is ready or has failed."""
    pack = get_pack_for_user(request.user, pk)
    return render(
        request,
        "evidence_pack/_status.html",
        {"pack": pack, "can_retry": can_retry_packs(request.user, pack.plan)},
    )


@require_POST
def pack_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Render a failed or stuck pack again ("Try again")."""
    pack = get_pack_for_retry(request.user, pk)
    try:
        retried = evidence_pack.retry_pack(pack=pack, by=request.user)
    except stuck.TooMuchWaiting as refused:
        messages.error(request, refused.message)
    else:
        if retried:
            _requested(request, pack, ready="The PDF is ready.", requested="PDF requested again")
        else:
            messages.info(
                request, "That pack is already ready, or still being rendered: see below."
            )
    if pack.kind == EvidencePack.Kind.PLAN:
        return redirect(f"{reverse('packs:plan', args=[pack.plan.reference])}#pack-{pack.pk}")
    return redirect(f"{reverse('packs:register')}#pack-{pack.pk}")


def pack_pdf(request: HttpRequest, pk: int) -> FileResponse:
    pack = get_pack_for_user(request.user, pk)
    if not pack.is_ready:
        raise Http404("The PDF is not ready.")
    what = (
        f"plan {pack.plan.reference}"
        if pack.plan_id
        else f"register {pack.date_from}–{pack.date_to}"
    )
    security.record(
        "export",
        request=request,
        detail=f"Evidence pack PDF, {what}, SHA-256 {pack.pdf_sha256[:16]}",
    )
    return download_response(
        pack.pdf, filename=pack.download_name(), content_type="application/pdf"
    )


# --- Register packs ---------------------------------------------------------------------


class RegisterPackForm(forms.Form):
    date_from = forms.DateField(label="From", widget=DateInput())
    date_to = forms.DateField(label="To (inclusive)", widget=DateInput())
    location = ModelChoiceField(
        queryset=Location.objects.all(), required=False, empty_label="All locations"
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if end < start:
                self.add_error("date_to", "The end date must be on or after the start date.")
            elif (end - start).days > MAX_REGISTER_DAYS:
                self.add_error("date_to", "A register pack covers at most three years.")
        return data


@require_http_methods(["GET", "POST"])
def register_pack(request: HttpRequest) -> HttpResponse:
    """Prepare a register pack for a period and location (quality leads and
    administrators); recent register packs are listed below the form."""
    if not can_make_register_packs(request.user):
        raise Http404("No such page.")
    today = timezone.localdate()
    initial = {"date_from": today.replace(day=1) - datetime.timedelta(days=90), "date_to": today}
    form = RegisterPackForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            pack = evidence_pack.request_register_pack(by=request.user, **form.cleaned_data)
        except stuck.TooMuchWaiting as refused:
            messages.error(request, refused.message)
            status = 429
        else:
            _requested(
                request,
                pack,
                ready="The register pack is ready.",
                requested="Register pack requested",
            )
            return redirect(f"{reverse('packs:register')}#pack-{pack.pk}")
    packs = (
        EvidencePack.objects.filter(kind=EvidencePack.Kind.REGISTER)
        .select_related("requested_by", "location")
        .order_by("-requested_at", "-pk")[:RECENT_PACKS]
    )
    return render(
        request,
        "evidence_pack/register_page.html",
        {"form": form, "packs": packs, "section": "plans", "can_retry": True},
        status=status,
    )
