from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import security
from core.storage import download_response
from governance.access import visible_meetings
from governance.models import Meeting
from learning import services
from learning.access import (
    can_review_learning,
    can_share_learning,
    can_write_learning,
    get_acknowledgement_for_user,
    get_learning_for_user,
    get_review_for_user,
    visible_summaries,
)
from learning.forms import (
    AgendaForm,
    EmbeddingForm,
    LibraryFilterForm,
    ReviewForm,
    ShareForm,
    SummaryForm,
)
from learning.models import Acknowledgement, Embedding, LearningReview, LearningSummary
from plans.access import visible_plans
from plans.models import Location, QualityStatement


def _library_queryset(user, form: LibraryFilterForm) -> QuerySet[LearningSummary]:
    summaries = (
        visible_summaries(user)
        .select_related("plan__theme")
        .prefetch_related(
            Prefetch("plan__locations", queryset=Location.objects.only("id", "name")),
            Prefetch("plan__quality_statements", queryset=QualityStatement.objects.all()),
            Prefetch("embeddings", queryset=Embedding.objects.order_by("status", "embedded_on")),
            "reviews",
        )
        .annotate(
            outstanding_acks=Count(
                "acknowledgements",
                filter=Q(acknowledgements__acknowledged_at__isnull=True),
                distinct=True,
            ),
            total_acks=Count("acknowledgements", distinct=True),
        )
    )
    data = form.cleaned_data if form.is_valid() else {}
    if not data.get("include_retired"):
        summaries = summaries.filter(status=LearningSummary.Status.ACTIVE)
    q = (data.get("q") or "").strip()
    if q:
        summaries = summaries.filter(
            Q(plan__reference__icontains=q)
            | Q(plan__title__icontains=q)
            | Q(what_happened__icontains=q)
            | Q(what_changed__icontains=q)
            | Q(key_messages__icontains=q)
        )
    if data.get("theme"):
        summaries = summaries.filter(plan__theme=data["theme"])
    if data.get("location"):
        summaries = summaries.filter(plan__locations=data["location"])
    if data.get("statement"):
        summaries = summaries.filter(plan__quality_statements=data["statement"])
    if data.get("date_from"):
        summaries = summaries.filter(created_at__date__gte=data["date_from"])
    if data.get("date_to"):
        summaries = summaries.filter(created_at__date__lte=data["date_to"])
    return summaries.order_by("-updated_at", "-pk")


def library(request: HttpRequest) -> HttpResponse:
    """The learning library: every piece of learning the user may read."""
    form = LibraryFilterForm(request.GET or None, user=request.user)
    summaries = _library_queryset(request.user, form)
    size = getattr(settings, "LEARNING_LIBRARY_PAGE_SIZE", 25)
    page = Paginator(summaries, size).get_page(request.GET.get("page"))
    # Learning shared from another location is readable; its plan may not be.
    ids = [s.plan_id for s in page.object_list]
    readable = set(visible_plans(request.user).filter(pk__in=ids).values_list("pk", flat=True))
    for entry in page.object_list:
        entry.plan_visible = entry.plan_id in readable
    filtered = form.is_bound and form.is_valid() and any(form.cleaned_data.values())
    return render(
        request,
        "learning/library.html",
        {"form": form, "page": page, "filtered": filtered, "today": timezone.localdate()},
    )


def detail(request: HttpRequest, reference: str) -> HttpResponse:
    access = get_learning_for_user(request.user, reference)
    summary = access.summary
    embeddings, acks, reviews, versions = [], [], [], []
    if summary is not None:
        embeddings = list(summary.embeddings.select_related("raised_by_review"))
        acks = list(summary.acknowledgements.select_related("manager", "location"))
        reviews = list(summary.reviews.select_related("reviewed_by", "meeting__group"))
        versions = list(summary.history.select_related("history_user").order_by("-history_date"))
    user = request.user
    may_write = access.plan_visible and can_write_learning(user)
    active = summary is None or not summary.is_retired
    own_ack = next((a for a in acks if a.manager_id == user.pk), None)
    return render(
        request,
        "learning/detail.html",
        {
            "plan": access.plan,
            "plan_visible": access.plan_visible,
            "summary": summary,
            "embeddings": embeddings,
            "acks": acks,
            "outstanding": [a for a in acks if a.is_outstanding],
            "reviews": reviews,
            "versions": versions,
            "own_ack": own_ack,
            "today": timezone.localdate(),
            "can_write": may_write and active,
            "can_share": access.plan_visible and can_share_learning(user) and summary and active,
            "can_review": access.plan_visible and can_review_learning(user),
        },
    )


def summary_form(request: HttpRequest, reference: str) -> HttpResponse:
    access = get_learning_for_user(request.user, reference, write=True)
    if access.summary is not None and access.summary.is_retired:
        messages.error(request, "This learning was retired; it can no longer be edited.")
        return redirect("learning:detail", reference)
    form = SummaryForm(request.POST or None, instance=access.summary)
    if request.method == "POST":
        if form.is_valid():
            services.save_summary(plan=access.plan, by=request.user, **form.cleaned_data)
            messages.success(request, "Learning summary saved.")
            return redirect("learning:detail", reference)
        messages.error(
            request, "The summary was not saved. Please correct the errors marked below."
        )
    title = "Edit the learning summary" if access.summary else "Write the learning summary"
    return render(
        request,
        "learning/form.html",
        {
            "plan": access.plan,
            "forms": [form],
            "title": title,
            "submit": "Save summary",
            "intro": "Three short parts, written for staff who were not involved. Earlier "
            "versions are kept and shown on the learning page.",
        },
    )


def share(request: HttpRequest, reference: str) -> HttpResponse:
    access = get_learning_for_user(request.user, reference, write=True)
    if not can_share_learning(request.user):
        raise Http404("No such page.")
    if access.summary is None:
        messages.error(request, "Write the learning summary before sharing it.")
        return redirect("learning:detail", reference)
    form = ShareForm(
        request.POST or None, user=request.user, initial={"locations": access.plan.locations.all()}
    )
    if request.method == "POST" and form.is_valid():
        try:
            created = services.share_summary(
                summary=access.summary, by=request.user, locations=form.cleaned_data["locations"]
            )
        except services.LearningRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            if created:
                messages.success(
                    request,
                    f"Shared with {len(created)} manager{'s' if len(created) != 1 else ''}; "
                    "each has been emailed and asked to acknowledge it.",
                )
            else:
                messages.info(
                    request,
                    "Every active manager of those locations already has this learning "
                    "(or those locations have no active manager).",
                )
            return redirect("learning:detail", reference)
    return render(
        request,
        "learning/form.html",
        {
            "plan": access.plan,
            "forms": [form],
            "title": "Share the learning",
            "submit": "Share and ask for acknowledgement",
        },
    )


def embedding_form(request: HttpRequest, reference: str, pk: int | None = None) -> HttpResponse:
    access = get_learning_for_user(request.user, reference, write=True)
    if access.summary is None:
        messages.error(request, "Write the learning summary first.")
        return redirect("learning:detail", reference)
    embedding = get_object_or_404(Embedding, pk=pk, summary=access.summary) if pk else None
    initial = {"embedded_on": timezone.localdate(), "who": str(request.user)}
    form = EmbeddingForm(
        request.POST or None, request.FILES or None, instance=embedding, initial=initial
    )
    if embedding is not None and not embedding.is_done:
        form.initial.update(initial)
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data.get("evidence")
            file = (
                services.EmbeddingFile(
                    upload=upload,
                    content_type=form.detected.content_type,
                    extension=form.detected.extension,
                )
                if upload
                else None
            )
            fields = {k: form.cleaned_data[k] for k in ("kind", "embedded_on", "who", "note")}
            try:
                services.record_embedding(
                    summary=access.summary,
                    by=request.user,
                    file=file,
                    embedding=embedding,
                    **fields,
                )
            except services.LearningRefused as refused:
                for reason in refused.reasons:
                    messages.error(request, reason)
            else:
                messages.success(request, "Recorded where the learning is embedded.")
                return redirect(reverse("learning:detail", args=[reference]) + "#embedding")
        else:
            messages.error(request, "Nothing was saved. Please correct the errors marked below.")
    title = "Record where the learning is embedded"
    if embedding is not None and not embedding.is_done:
        title = f"Complete the follow-up: {embedding.get_kind_display()}"
    return render(
        request,
        "learning/form.html",
        {"plan": access.plan, "forms": [form], "title": title, "submit": "Save", "files": True},
    )


def embedding_file(request: HttpRequest, reference: str, pk: int) -> FileResponse:
    access = get_learning_for_user(request.user, reference)
    embedding = get_object_or_404(Embedding, pk=pk, summary=access.summary)
    if not embedding.has_file:
        raise Http404("No file.")
    response = download_response(
        embedding.file,
        filename=embedding.download_name(),
        content_type=embedding.content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    security.record(
        "file_download",
        request=request,
        detail=f"embedding file {embedding.pk} of {access.plan.reference}",
    )
    return response


def to_read(request: HttpRequest) -> HttpResponse:
    """The "Learning to read" page: what has been shared with me, outstanding first."""
    acks = list(
        Acknowledgement.objects.filter(manager=request.user)
        .select_related("summary__plan__theme", "location", "shared_by")
        .order_by("-acknowledged_at", "-shared_at")
    )
    acks.sort(key=lambda a: (not a.is_outstanding,))
    return render(
        request,
        "learning/to_read.html",
        {"acks": acks, "outstanding": [a for a in acks if a.is_outstanding]},
    )


@require_POST
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    ack = get_acknowledgement_for_user(request.user, pk)
    services.acknowledge(ack=ack, by=request.user)
    messages.success(
        request, f"Thank you: learning from {ack.summary.plan.reference} acknowledged."
    )
    return redirect("learning:to_read")


def _agenda_meetings(user) -> QuerySet[Meeting]:
    """Meetings a review can be put on: the user's groups' meetings from the last six
    months onwards (an older meeting cannot still be discussing it)."""
    since = timezone.localdate() - datetime.timedelta(days=183)
    return (
        visible_meetings(user)
        .filter(held_on__gte=since)
        .select_related("group")
        .order_by("held_on", "pk")
    )


@require_POST
def review_agenda(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_review_for_user(request.user, pk, write=True)
    form = AgendaForm(request.POST, meetings=_agenda_meetings(request.user), prefix="agenda")
    if form.is_valid():
        try:
            services.put_review_on_agenda(
                review=item, by=request.user, meeting=form.cleaned_data["meeting"]
            )
        except services.LearningRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            meeting = form.cleaned_data["meeting"]
            messages.success(
                request, f"On the agenda of {meeting}." if meeting else "Taken off the agenda."
            )
    else:
        messages.error(request, "Choose a meeting from the list.")
    return redirect("learning:review", pk)


def reviews(request: HttpRequest) -> HttpResponse:
    """Learning due for its relevance review, then the most recent outcomes."""
    today = timezone.localdate()
    visible = visible_summaries(request.user).values("pk")
    base = LearningReview.objects.filter(summary__in=visible).select_related(
        "summary__plan__theme", "reviewed_by", "meeting__group"
    )
    due = list(base.due_for_review(today).filter(summary__status=LearningSummary.Status.ACTIVE))
    upcoming = list(
        base.open().filter(due_on__gt=today, summary__status=LearningSummary.Status.ACTIVE)[:20]
    )
    done = list(base.exclude(outcome="").order_by("-reviewed_on", "-pk")[:20])
    return render(
        request,
        "learning/reviews.html",
        {
            "due": due,
            "upcoming": upcoming,
            "done": done,
            "today": today,
            "can_review": can_review_learning(request.user),
        },
    )


def review(request: HttpRequest, pk: int) -> HttpResponse:
    writing = request.method == "POST"
    item = get_review_for_user(request.user, pk, write=writing)
    summary = item.summary
    may_record = can_review_learning(request.user) and item.is_open and not summary.is_retired
    initial = {name: getattr(summary, name) for name in ReviewForm.TEXT_FIELDS}
    initial["meeting"] = item.meeting_id
    meetings = _agenda_meetings(request.user)
    form = ReviewForm(request.POST or None, initial=initial, meetings=meetings)
    if writing:
        if not may_record:
            messages.error(request, "This review already has an outcome.")
            return redirect("learning:review", pk)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.record_review(
                    review=item,
                    by=request.user,
                    outcome=data["outcome"],
                    note=data["note"],
                    new_text={name: data[name] for name in ReviewForm.TEXT_FIELDS},
                    reembed_kind=data["reembed_kind"],
                    reembed_due_on=data["reembed_due_on"],
                    meeting=data.get("meeting"),
                )
            except services.LearningRefused as refused:
                for reason in refused.reasons:
                    messages.error(request, reason)
            else:
                messages.success(request, "Review outcome recorded.")
                return redirect(
                    reverse("learning:detail", args=[summary.plan.reference]) + "#reviews"
                )
        else:
            messages.error(
                request, "The outcome was not recorded. Please correct the errors marked below."
            )
    return render(
        request,
        "learning/review.html",
        {
            "review": item,
            "summary": summary,
            "plan": summary.plan,
            "form": form,
            "may_record": may_record,
            "follow_ups": list(item.follow_ups.all()),
            "agenda_form": AgendaForm(
                initial={"meeting": item.meeting_id}, meetings=meetings, prefix="agenda"
            ),
            "today": timezone.localdate(),
        },
    )
