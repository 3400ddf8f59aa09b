from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from core import freshness
from qip_portal import alerts, dashboard


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


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset: the same answer whether or not the address has an account
    (no user enumeration). Each request is recorded as a security event."""

    def form_valid(self, form):
        from core import security

        security.record(
            "password_reset_requested", request=self.request, detail=form.cleaned_data["email"]
        )
        return super().form_valid(form)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Changing the password ends every other session (Django checks the password hash
    on each request); this one stays signed in. Recorded as a security event."""

    def form_valid(self, form):
        from core import security

        response = super().form_valid(form)
        security.record("password_changed", request=self.request)
        return response
