from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from plans.access import visible_plans
from plans.models import Action, Plan


def home(request: HttpRequest) -> HttpResponse:
    """What needs my attention now, first; then the shape of the register."""
    user = request.user
    today = timezone.localdate()
    plans = visible_plans(user)
    counts = plans.aggregate(
        draft=Count("pk", filter=Q(status=Plan.Status.DRAFT)),
        live=Count("pk", filter=Q(status=Plan.Status.LIVE)),
        closure_review=Count("pk", filter=Q(status=Plan.Status.CLOSURE_REVIEW)),
        monitoring=Count("pk", filter=Q(status=Plan.Status.MONITORING)),
        closed=Count("pk", filter=Q(status=Plan.Status.CLOSED)),
        stale=Count("pk", filter=Q(pk__in=Plan.objects.stale().values("pk"))),
    )
    my_actions = (
        Action.objects.filter(owner=user, plan__in=plans)
        .exclude(status=Action.Status.COMPLETED)
        .exclude(plan__status__in=Plan.FINAL_STATUSES)
        .select_related("plan")
        .order_by("due_date")[:10]
    )
    overdue_plans = (
        plans.exclude(status__in=Plan.FINAL_STATUSES)
        .annotate(
            n=Count(
                "actions",
                filter=Q(actions__due_date__lt=today) & ~Q(actions__status=Action.Status.COMPLETED),
                distinct=True,
            )
        )
        .filter(n__gt=0)
        .select_related("owner")
        .order_by("-n", "reference")[:10]
    )
    return render(
        request,
        "home.html",
        {
            "counts": counts,
            "my_actions": list(my_actions),
            "overdue_plans": list(overdue_plans),
            "today": today,
            "stale_days": settings.STALE_PLAN_DAYS,
        },
    )


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
