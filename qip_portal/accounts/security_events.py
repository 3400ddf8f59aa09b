"""The security events, for administrators: one list, filtered by kind, person and
dates, and the same rows as a CSV file. Constant queries whatever the number of rows
(a count and a page; the CSV streams one query). Everyone else gets 404."""

from __future__ import annotations

import datetime

from django import forms
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core import security
from core.exports import csv_response
from core.forms import DateInput
from core.models import SecurityEvent
from qip_portal.pages.failed_emails import _require_administrator

PAGE_SIZE = 50
# The most rows one CSV carries; narrow the dates for more.
CSV_MAX_ROWS = 100_000


class EventFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any kind"), *SecurityEvent.Kind.choices]
    )
    user = forms.CharField(
        label="Person",
        required=False,
        max_length=150,
        help_text="Username, or part of one",
    )
    date_from = forms.DateField(label="From", required=False, widget=DateInput())
    date_to = forms.DateField(label="To", required=False, widget=DateInput())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            css = "form-select" if isinstance(field, forms.ChoiceField) else "form-control"
            field.widget.attrs["class"] = css

    def clean_user(self):
        # A NUL cannot be matched by PostgreSQL; nobody's username has one.
        return self.cleaned_data["user"].replace("\x00", "").strip()

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def filtered_events(form: EventFilterForm) -> QuerySet[SecurityEvent]:
    """Newest first; the filters that were understood are applied, the rest ignored."""
    events = SecurityEvent.objects.order_by("-created_at", "-pk")
    if not form.is_bound:
        return events
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    if data.get("kind"):
        events = events.filter(kind=data["kind"])
    if data.get("user"):
        events = events.filter(Q(username__icontains=data["user"]))
    if data.get("date_from"):
        events = events.filter(created_at__gte=_day_start(data["date_from"]))
    if data.get("date_to") and "date_to" not in form.errors:
        events = events.filter(
            created_at__lt=_day_start(data["date_to"] + datetime.timedelta(days=1))
        )
    return events


CSV_HEADER = ["When (UTC)", "Kind", "Username", "Address", "Page", "Detail"]


def security_events(request: HttpRequest) -> HttpResponse:
    _require_administrator(request)
    bound = any(key in request.GET for key in ("kind", "user", "date_from", "date_to"))
    form = EventFilterForm(request.GET if bound else None)
    events = filtered_events(form)
    labels = dict(SecurityEvent.Kind.choices)
    if request.GET.get("export") == "csv":
        security.record("export", request=request, detail="security events as csv")
        rows = (
            (
                created_at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                labels.get(kind, kind),
                username,
                ip_address or "",
                path,
                detail,
            )
            for created_at, kind, username, ip_address, path, detail in events.values_list(
                "created_at", "kind", "username", "ip_address", "path", "detail"
            )[:CSV_MAX_ROWS].iterator(chunk_size=2000)
        )
        stamp = timezone.localdate().isoformat()
        return csv_response(f"security-events-{stamp}.csv", CSV_HEADER, rows)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "security/events.html",
        {
            "form": form,
            "page": page,
            "filtered": bound,
            "invalid": bound and bool(form.errors),
        },
    )
