"""The home page: what needs the signed-in person's attention first; and the liveness
check for the container health check."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from core import freshness
from qip_portal.pages import dashboard
from qip_portal.pages import failed_emails as alerts


def home(request: HttpRequest) -> HttpResponse:
    """What needs my attention now, first; then what is mine to do; then (for quality
    leads and administrators) the shape of the register. The figures are counted over
    every plan the user can see, so they are cached (as plain values) until something
    they are counted over changes: the plans of the user's locations (or every plan),
    governance, or the user's own rows (``core.freshness``)."""
    user = request.user
    today = timezone.localdate()
    figures = freshness.cached(
        f"home:{user.pk}:{today.isoformat()}",
        lambda: dashboard.home_figures(user, today),
        scopes=[*freshness.viewer_scopes(user), freshness.GOV],
    )
    context = {
        "today": today,
        "stale_days": settings.STALE_PLAN_DAYS,
        "horizon": dashboard.REAUDIT_HORIZON_DAYS,
        "failed_emails": alerts.failed_count(user),
        **figures,
    }
    return render(request, "home.html", context)


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for the container health check: the process answers and the database
    does too. Says nothing else."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
