"""Emails that could not be sent, shown to administrators: a tile on their home page,
a list with a retry per email and for all, and a daily email listing them (itself an
outbox alert, keyed by the day). It lives in ``qip_portal`` because it needs the
portal's roles; the outbox itself (``core/outbox.py``) knows nothing of them."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import jobs, outbox
from core.models import Alert
from plans.models import User

PAGE_SIZE = 50
# The daily email lists at most this many; the page lists them all.
REPORT_LIMIT = 50

KIND_LABELS = {
    "plan-transition": "Plan moved on",
    "overdue-action": "Overdue action",
    "stale-plan": "Stale plan",
    "weekly-digest": "Weekly digest",
    "audits-deterioration": "Deterioration",
    "audits-monitoring-ended": "Monitoring ended",
    "audits-monitoring-short": "Monitoring ended without enough data",
    "audits-ready-for-review": "Ready for closure review",
    "audits-reaudit-due": "Re-audit due",
    "audits-reaudit-overdue": "Re-audit overdue",
    "governance-report-submitted": "Closure report submitted",
    "governance-decision": "Governance decision",
    "learning-shared": "Learning to read",
    "learning-reminder": "Learning reminder",
    "learning-review-due": "Learning review due",
    "failed-alerts": "Emails not sent (daily)",
    "sign-in-unlock": "Sign-in link",
    "mfa-setup": "Two-step set-up link",
}


def is_administrator(user) -> bool:
    """Who sees failed emails and may send them again: administrators (the role), and
    superusers, who can do as much in the admin anyway."""
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.role == User.Role.ADMINISTRATOR or user.is_superuser)
    )


def failed_count(user) -> int | None:
    """The home tile's number: failed emails, for administrators only (None for anyone
    else, who sees no tile). One query; not cached, because the outbox's writes do not
    move the data version the home page's cache is keyed on."""
    if not is_administrator(user):
        return None
    return Alert.objects.filter(status=Alert.Status.FAILED).count()


def _failed():
    return Alert.objects.filter(status=Alert.Status.FAILED).order_by("-created_at", "-pk")


def _rows(alerts) -> list[dict]:
    return [
        {"alert": alert, "kind_label": KIND_LABELS.get(alert.kind, alert.kind)} for alert in alerts
    ]


def _require_administrator(request: HttpRequest) -> None:
    if not is_administrator(request.user):
        raise Http404("No such page.")  # as for any page the user may not see


def failed_list(request: HttpRequest) -> HttpResponse:
    """Every email that could not be sent, newest first, with why. Two queries."""
    _require_administrator(request)
    page = Paginator(_failed(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "alerts/failed_list.html",
        {"page": page, "rows": _rows(page.object_list)},
    )


@require_POST
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Send one failed email again, with a fresh set of attempts."""
    _require_administrator(request)
    with transaction.atomic():
        count = outbox.retry_failed([pk])
    if count:
        messages.success(request, "The email will be sent again within a minute.")
    else:
        messages.info(request, "That email is no longer waiting for a retry.")
    return redirect("alerts:failed")


@require_POST
def retry_all(request: HttpRequest) -> HttpResponse:
    """Send every failed email again (e.g. once the mail server is fixed)."""
    _require_administrator(request)
    with transaction.atomic():
        count = outbox.retry_failed()
    messages.success(request, f"{count} email{'s' if count != 1 else ''} will be sent again.")
    return redirect("alerts:failed")


# --- The daily email -----------------------------------------------------------------


def administrator_addresses() -> list[str]:
    return list(
        User.objects.filter(is_active=True, role=User.Role.ADMINISTRATOR)
        .exclude(email="")
        .values_list("email", flat=True)
    )


@jobs.register("failed_alerts_report", "Email administrators, daily, the emails not sent.")
@transaction.atomic
def send_failed_alerts_report(today: datetime.date | None = None) -> str:
    """Queue today's email to administrators listing the emails that could not be
    sent, if there are any. Safe to run any number of times: the key is the day, so
    there is at most one a day (and it goes through the outbox like any other)."""
    today = today or timezone.localdate()
    failed = _failed()
    total = failed.count()
    if not total:
        return "no failed emails"
    recipients = administrator_addresses()
    if not recipients:
        return f"{total} failed email(s), no administrator to tell"
    alert = outbox.queue(
        "failed-alerts",
        key=f"failed-alerts:{today.isoformat()}",
        recipients=recipients,
        context=lambda: {
            "today": today,
            "total": total,
            "rows": _rows(failed[:REPORT_LIMIT]),
            "more": max(total - REPORT_LIMIT, 0),
        },
    )
    return f"{total} failed email(s), report {'queued' if alert else 'already queued'}"


@shared_task(name="qip_portal.alerts.send_failed_alerts_report")
def send_failed_alerts_report_task() -> str:
    return send_failed_alerts_report()
