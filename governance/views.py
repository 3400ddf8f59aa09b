from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from core import freshness, security, stuck
from core.storage import download_response
from governance import access, renders, services
from governance.forms import (
    AgendaForm,
    GroupForm,
    MeetingForm,
    MeetingRecordForm,
    MembershipForm,
)
from governance.models import (
    AgendaItem,
    ClosureReport,
    Decision,
    Membership,
)
from plans.services import TransitionRefused


def _refused(request: HttpRequest, refused: TransitionRefused) -> None:
    for reason in refused.reasons:
        messages.error(request, reason)


def _report_rows(queryset):
    # Lists never show the frozen snapshot itself: leave its (large) columns unloaded.
    return (
        queryset.select_related("plan", "group", "submitted_by", "decision__signed_by")
        .defer("content_json", "content_html")
        .order_by("-submitted_at", "-pk")
    )


# --- Overview -------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    """What needs my attention: reports awaiting my groups, meetings ahead, decisions."""
    user = request.user
    if not (access.sees_all_governance(user) or access.groups_for_user(user).exists()):
        raise Http404("No such page.")
    today = timezone.localdate()

    def render_body() -> str:
        visible = access.visible_reports(user)
        context = {
            "awaiting": Paginator(
                # Longest waiting first, as on the home page.
                _report_rows(visible.awaiting_decision()).order_by("submitted_at", "pk"),
                settings.REGISTER_PAGE_SIZE,
            ).get_page(request.GET.get("page")),
            "decided": list(_report_rows(visible.filter(status=ClosureReport.Status.DECIDED))[:20]),
            "meetings": list(
                access.visible_meetings(user)
                .filter(held_on__gte=today)
                .select_related("group")
                .annotate(items=Count("agenda_items"))
                .order_by("held_on", "pk")[:10]
            ),
            "signing_groups": access.signing_group_ids(user),
            "can_prepare": access.can_prepare_reports(user),
        }
        return str(render_to_string("governance/_home_body.html", context, request=request))

    # Cached as HTML for this person (their groups, what they sign) until governance,
    # any plan (titles are listed) or the person changes (core.freshness).
    scopes = [freshness.GOV, freshness.ALL, f"user:{user.pk}"]
    page = request.GET.get("page", "")[:12]
    with freshness.pinned(*scopes):
        body = freshness.cached(
            f"governance-home:{user.pk}:{today.isoformat()}:{page}", render_body, scopes=scopes
        )
    return render(request, "governance/home.html", {"body": mark_safe(body)})  # noqa: S308  # nosec B308 B703 - our own template


# --- Groups ---------------------------------------------------------------------------


def group_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (access.sees_all_governance(user) or access.groups_for_user(user).exists()):
        raise Http404("No such page.")
    groups = (
        access.groups_for_user(user)
        .annotate(
            member_count=Count("memberships", distinct=True),
            awaiting=Count(
                "closure_reports",
                filter=Q(closure_reports__status=ClosureReport.Status.AWAITING_DECISION),
                distinct=True,
            ),
        )
        .prefetch_related(
            Prefetch(
                "memberships",
                queryset=Membership.objects.filter(role=Membership.Role.CHAIR).select_related(
                    "user"
                ),
                to_attr="chairs",
            )
        )
    )
    return render(
        request,
        "governance/group_list.html",
        {"groups": groups, "can_manage": access.can_manage_group(user)},
    )


def group_create(request: HttpRequest) -> HttpResponse:
    if not access.can_manage_group(request.user):
        raise Http404("No such page.")
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        group = services.create_group(by=request.user, **form.cleaned_data)
        messages.success(request, f"{group} created. Add its chair and members.")
        return redirect(group)
    return render(
        request,
        "governance/form.html",
        {"form": form, "title": "New governance group", "submit": "Create group"},
    )


def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    group = access.get_group_for_user(request.user, pk)
    can_run = access.can_run_meetings(request.user, group)
    return render(
        request,
        "governance/group_detail.html",
        {
            "group": group,
            "memberships": group.memberships.select_related("user").order_by(
                "role", "user__first_name"
            ),
            "meetings": group.meetings.annotate(items=Count("agenda_items")).order_by("-held_on")[
                :20
            ],
            "awaiting": _report_rows(group.closure_reports.awaiting_decision()),
            "can_manage": access.can_manage_group(request.user),
            "can_run": can_run,
            "member_form": MembershipForm(),
            "meeting_form": MeetingForm(),
        },
    )


@require_POST
def member_add(request: HttpRequest, pk: int) -> HttpResponse:
    group = access.get_group_for_user(request.user, pk)
    if not access.can_manage_group(request.user):
        raise Http404("No such page.")
    form = MembershipForm(request.POST)
    if form.is_valid():
        try:
            services.set_membership(group=group, by=request.user, **form.cleaned_data)
        except TransitionRefused as refused:
            _refused(request, refused)
        else:
            role = Membership.Role(form.cleaned_data["role"]).label.lower()
            messages.success(request, f"{form.cleaned_data['user']} is now {role} of {group}.")
    else:
        messages.error(request, "Choose a person and a role.")
    return redirect(group)


@require_POST
def member_remove(request: HttpRequest, pk: int, membership_id: int) -> HttpResponse:
    group = access.get_group_for_user(request.user, pk)
    if not access.can_manage_group(request.user):
        raise Http404("No such page.")
    membership = get_object_or_404(Membership, pk=membership_id, group=group)
    services.remove_membership(membership=membership, by=request.user)
    messages.success(request, f"{membership.user} removed from {group}.")
    return redirect(group)


# --- Meetings -------------------------------------------------------------------------


@require_POST
def meeting_create(request: HttpRequest, pk: int) -> HttpResponse:
    group = access.get_group_for_user(request.user, pk)
    if not access.can_run_meetings(request.user, group):
        raise Http404("No such page.")
    form = MeetingForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the meeting a valid date.")
        return redirect(group)
    try:
        meeting = services.schedule_meeting(
            group=group, held_on=form.cleaned_data["held_on"], by=request.user
        )
    except TransitionRefused as refused:
        _refused(request, refused)
        return redirect(group)
    messages.success(request, f"Meeting on {meeting.held_on:%d %b %Y} scheduled.")
    return redirect(meeting)


def meeting_detail(request: HttpRequest, pk: int) -> HttpResponse:
    meeting = access.get_meeting_for_user(request.user, pk)
    can_run = access.can_run_meetings(request.user, meeting.group)
    record_form = MeetingRecordForm(
        request.POST or None,
        group=meeting.group,
        initial={"minutes": meeting.minutes, "attendees": list(meeting.attendees.all())},
    )
    if request.method == "POST":
        if not can_run:
            raise Http404("No such page.")
        if record_form.is_valid():
            services.record_meeting(meeting=meeting, by=request.user, **record_form.cleaned_data)
            messages.success(request, "Minutes and attendance saved.")
            return redirect(meeting)
        messages.error(request, "Nothing was saved. Please correct the errors marked below.")
    items = list(
        meeting.agenda_items.select_related(
            "report__plan", "report__submitted_by", "report__decision__signed_by"
        )
    )
    pending = (
        ClosureReport.objects.awaiting_decision()
        .filter(group=meeting.group)
        .exclude(agenda_items__meeting=meeting)
        .select_related("plan")
    )
    attendees = list(meeting.attendees.all())
    # Who chaired: each attendee's role in this group, where it is more than "member".
    roles = {
        m.user_id: m.get_role_display()
        for m in Membership.objects.filter(group=meeting.group, user__in=attendees)
        if m.role != Membership.Role.MEMBER
    }
    return render(
        request,
        "governance/meeting_detail.html",
        {
            "meeting": meeting,
            "items": items,
            "attendees": [{"user": a, "role": roles.get(a.pk, "")} for a in attendees],
            "can_run": can_run,
            "can_sign": meeting.group.pk in access.signing_group_ids(request.user),
            "record_form": record_form,
            "agenda_form": AgendaForm(reports=pending),
            "has_pending": pending.exists(),
        },
    )


@require_POST
def agenda_add(request: HttpRequest, pk: int) -> HttpResponse:
    meeting = access.get_meeting_for_user(request.user, pk)
    if not access.can_run_meetings(request.user, meeting.group):
        raise Http404("No such page.")
    form = AgendaForm(
        request.POST,
        reports=ClosureReport.objects.awaiting_decision().filter(group=meeting.group),
    )
    if form.is_valid():
        try:
            services.put_on_agenda(
                meeting=meeting, report=form.cleaned_data["report"], by=request.user
            )
        except TransitionRefused as refused:
            _refused(request, refused)
        else:
            messages.success(request, "Added to the agenda.")
    else:
        messages.error(request, "Choose a closure report awaiting this group's decision.")
    return redirect(meeting)


# --- Submitted reports and decisions --------------------------------------------------


def report_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (access.sees_all_governance(user) or access.groups_for_user(user).exists()):
        raise Http404("No such page.")
    status = request.GET.get("status", "")
    rows = access.visible_reports(user)
    if status in ClosureReport.Status.values:
        rows = rows.filter(status=status)
    return render(
        request,
        "governance/report_list.html",
        {
            "reports": _report_rows(rows)[:200],
            "status": status,
            "statuses": ClosureReport.Status.choices,
        },
    )


def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = access.get_report_for_user(request.user, pk)
    decision = _decision_of(report)
    return render(
        request,
        "governance/report_detail.html",
        {
            "report": report,
            "decision": decision,
            "can_sign": access.can_sign_for(request.user, report),
            "meetings": AgendaItem.objects.filter(report=report).select_related("meeting"),
        },
    )


def _decision_of(report: ClosureReport) -> Decision | None:
    return Decision.objects.filter(report=report).select_related("signed_by", "meeting").first()


def report_pdf_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The PDF progress fragment, polled by htmx until the PDFs are ready or failed."""
    report = access.get_report_for_user(request.user, pk)
    return render(
        request, "governance/_pdf_status.html", {"report": report, "decision": _decision_of(report)}
    )


@require_POST
def report_pdf_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Render a failed or stuck PDF again ("Try again"): the signed record of a decided
    report, or the snapshot's PDF. Anyone who may read the report (both are drawn from
    stored records; nothing in them changes)."""
    report = access.get_report_for_user(request.user, pk)
    decision = _decision_of(report)
    try:
        if decision is not None and decision.record_can_retry:
            retried = renders.retry_signed_record(decision=decision, by=request.user)
            ready = retried and Decision.objects.get(pk=decision.pk).record_ready
        else:
            retried = renders.retry_report_pdf(report=report, by=request.user)
            report.refresh_from_db(fields=["pdf_status"])
            ready = retried and report.pdf_status == ClosureReport.PdfStatus.READY
    except stuck.TooMuchWaiting as refused:
        messages.error(request, refused.message)
    else:
        if ready:
            messages.success(request, "The PDF is ready.")
        elif retried:
            messages.info(request, "PDF requested again: its progress is shown below.")
        else:
            messages.info(request, "The PDF is already ready, or still being rendered: see below.")
    return redirect(report)


def _pdf_response(file, filename: str) -> HttpResponse:
    return download_response(file, filename=filename, content_type="application/pdf")


def report_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The report's PDF: for a decided report, the signed record (the decision, its
    meaning, signer, time, meeting and hashes, then the frozen report); before a
    decision, the frozen snapshot."""
    report = access.get_report_for_user(request.user, pk)
    decision = _decision_of(report)
    if decision is not None:
        if not decision.record_ready:
            raise Http404("The signed record is not ready.")
        security.record(
            "file_download",
            request=request,
            detail=f"Signed record PDF {report.plan.reference}",
        )
        return _pdf_response(
            decision.record_pdf,
            f"signed-record-{report.plan.reference}-{decision.record_sha256[:8]}.pdf",
        )
    return report_snapshot_pdf(request, pk)


def report_snapshot_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The frozen snapshot's PDF, as submitted (no signature)."""
    report = access.get_report_for_user(request.user, pk)
    if not report.pdf_ready:
        raise Http404("The PDF is not ready.")
    security.record(
        "file_download", request=request, detail=f"Closure report PDF {report.plan.reference}"
    )
    return _pdf_response(
        report.pdf, f"closure-report-{report.plan.reference}-{report.sha256[:8]}.pdf"
    )
