from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import (
    Count,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

from core import freshness, security
from core.exports import csv_response, xlsx_response
from core.forms import error_summary
from plans import lifecycle, services
from plans.access import (
    can_edit_plan,
    can_edit_plan_details,
    can_open_plans,
    get_plan_for_user,
    visible_plans,
)
from plans.forms import (
    ActionForm,
    ActionFormSet,
    CriteriaForm,
    CriteriaRevisionForm,
    IndicatorForm,
    IndicatorFormSet,
    PlanForm,
    ReasonForm,
    RegisterFilterForm,
    TriggerForm,
    TriggerFormSet,
    VerifyActionForm,
    WithdrawForm,
    filled,
)
from plans.models import Action, Location, Plan, QualityStatement, Regulation, Trigger

REGISTER_COLUMNS = (
    "reference",
    "title",
    "status",
    "risk_score",
    "opened_on",
    "target_date",
    "last_activity_at",
    "theme__name",
    "owner__first_name",
    "owner__last_name",
    "owner__username",
)


def _register_queryset(user, form: RegisterFilterForm, flags: dict) -> QuerySet[Plan]:
    today = timezone.localdate()
    plans = (
        visible_plans(user)
        .select_related("theme", "owner")
        # Only what the rows (and the export) show: no summary, key questions or history.
        .only(*REGISTER_COLUMNS)
        .prefetch_related(Prefetch("locations", queryset=Location.objects.only("id", "name")))
    )
    # A correlated subquery, evaluated only for the rows on the page (a joined Count
    # would group every plan with every action before sorting: see BENCHMARKS.md).
    overdue = Action.objects.filter(plan=OuterRef("pk"), due_date__lt=today).exclude(
        status=Action.Status.COMPLETED
    )
    plans = plans.annotate(
        overdue_actions=Coalesce(
            Subquery(overdue.order_by().values("plan").annotate(n=Count("pk")).values("n")[:1]),
            0,
        )
    )
    if not form.is_valid():
        return plans.order_by("-opened_on", "-reference")
    data = form.cleaned_data
    if data["q"]:
        q = data["q"].strip()
        # Any part of a word, in any letter case ("fall" finds "Falls"): the matching
        # ids are read once, in one query (plans' reference, title and summary, and
        # their triggers' references; trigram indexes over UPPER(column) on PostgreSQL,
        # migration plans 0007), and the count and the page are then taken from them,
        # rather than matching every summary again for each. SQLite scans, the same.
        matching = (
            Plan.objects.filter(
                Q(reference__icontains=q) | Q(title__icontains=q) | Q(summary__icontains=q)
            )
            .order_by()
            .values_list("pk", flat=True)
            .union(
                Trigger.objects.filter(reference__icontains=q)
                .order_by()
                .values_list("plan_id", flat=True)
            )
        )
        plans = plans.filter(pk__in=sorted(matching))
    if data["status"] == "open":
        plans = plans.filter(status__in=Plan.OPEN_STATUSES)
    elif data["status"]:
        plans = plans.filter(status=data["status"])
    if data["location"]:
        plans = plans.filter(locations=data["location"])
    if data["theme"]:
        plans = plans.filter(theme=data["theme"])
    if data["owner"]:
        plans = plans.filter(owner=data["owner"])
    if data["risk"]:
        low, high = RegisterFilterForm.RISK_RANGES[data["risk"]]
        plans = plans.filter(risk_score__gte=low, risk_score__lte=high)
    if data["overdue"]:
        plans = plans.filter(Exists(overdue))
    for field, lookup in (("opened_month", "opened_on"), ("closed_month", "status_changed_at")):
        if data[field]:
            year, month = (int(part) for part in data[field].split("-"))
            plans = plans.filter(**{f"{lookup}__year": year, f"{lookup}__month": month})
            if field == "closed_month":
                plans = plans.filter(status=Plan.Status.CLOSED)
    if data["stale"]:
        plans = plans.filter(pk__in=Plan.objects.stale().values("pk"))
    if data["flag"] and (flag := flags.get(data["flag"])):
        plans = flag.apply(plans)
    sort = RegisterFilterForm.SORTS.get(data["sort"] or "-opened_on", "-opened_on")
    return plans.order_by(sort, "-reference")


def _normalised_query(query) -> str:
    """The register's query string, as a key: every parameter with a value, sorted (the
    same filters in another order, or with empty fields, are the same query)."""
    pairs = sorted((k, v) for k in query for v in query.getlist(k) if v.strip())
    return hashlib.sha256(urlencode(pairs).encode()).hexdigest()[:24]


def register(
    request: HttpRequest, *, flags: dict | None = None, row_detail: str = ""
) -> HttpResponse:
    """The plan register. ``flags``: the named filters (``name`` -> an object with
    ``label`` and ``apply(queryset)``) that the composing page offers: "ready for
    closure review" is the closure workflow's (qip_portal/pages/plans.py).
    ``row_detail``: the name of a URL (taking a plan's reference) whose page is each
    row's detail, loaded when the row's detail is hovered or opened.

    Both parts are cached as HTML (``core.freshness``) per normalised query: the filter
    form (its owner choices are every plan's owners) under the version of all plans; the
    count and rows under the versions of the plans the viewer sees (their locations',
    or all), so a change at one location leaves the other locations' registers cached."""
    flags = flags or {}
    user = request.user
    export = request.GET.get("export")
    if export in ("csv", "xlsx"):
        form = RegisterFilterForm(
            request.GET or None, user=user, flags={k: f.label for k, f in flags.items()}
        )
        security.record("export", request=request, detail=f"plan register as {export}")
        return _export(_register_queryset(user, form, flags), export)
    query = _normalised_query(request.GET)
    scopes = freshness.plan_scopes_of(user)
    built = {}

    def form() -> RegisterFilterForm:
        if "form" not in built:
            built["form"] = RegisterFilterForm(
                request.GET or None, user=user, flags={k: f.label for k, f in flags.items()}
            )
        return built["form"]

    def filtered() -> bool:
        f = form()
        return f.is_bound and any(
            v for k, v in (f.cleaned_data.items() if f.is_valid() else []) if k != "sort"
        )

    def render_form() -> str:
        context = {"form": form(), "filtered": filtered(), "can_open": can_open_plans(user)}
        return str(render_to_string("plans/_register_form.html", context, request=request))

    def render_results() -> str:
        plans = _register_queryset(user, form(), flags)
        page = Paginator(plans, settings.REGISTER_PAGE_SIZE).get_page(request.GET.get("page"))
        context = {
            "page": page,
            "filtered": filtered(),
            "can_open": can_open_plans(user),
            "now": timezone.now(),
            "stale_days": settings.STALE_PLAN_DAYS,
            "row_detail": row_detail,
        }
        return str(render_to_string("plans/_register_results.html", context, request=request))

    today = timezone.localdate().isoformat()
    with freshness.pinned(freshness.ALL, *scopes):  # held from before the rows are read
        form_html = freshness.cached(
            f"register-form:{user.role}:{query}", render_form, scopes=[freshness.ALL, *scopes]
        )
        results_html = freshness.cached(
            f"register-rows:{user.role}:{row_detail}:{today}:{query}", render_results, scopes=scopes
        )
    return render(
        request,
        "plans/register.html",
        # Our own templates, rendered above.
        {"form_html": mark_safe(form_html), "results_html": mark_safe(results_html)},  # noqa: S308  # nosec B308 B703
    )


EXPORT_HEADER = [
    "Reference",
    "Title",
    "Status",
    "Theme",
    "Locations",
    "Owner",
    "Risk score",
    "Risk level",
    "Opened on",
    "Target date",
    "Overdue actions",
    "Last activity",
]


def _export(plans: QuerySet[Plan], kind: str) -> HttpResponse:
    def rows():
        for plan in plans.iterator(chunk_size=2000):
            yield [
                plan.reference,
                plan.title,
                plan.get_status_display(),
                plan.theme.name,
                ", ".join(loc.name for loc in plan.locations.all()),
                str(plan.owner),
                plan.risk_score,
                plan.risk_level,
                plan.opened_on,
                plan.target_date,
                plan.overdue_actions,
                timezone.localtime(plan.last_activity_at).replace(tzinfo=None),
            ]

    stamp = timezone.localdate().isoformat()
    if kind == "csv":
        return csv_response(f"qip-register-{stamp}.csv", EXPORT_HEADER, rows())
    return xlsx_response(f"qip-register-{stamp}.xlsx", EXPORT_HEADER, rows(), sheet="Register")


def create(request: HttpRequest) -> HttpResponse:
    if not can_open_plans(request.user):
        raise Http404("No such page.")
    user = request.user
    data = request.POST if request.method == "POST" else None
    plan_form = PlanForm(
        data, user=user, prefix="plan", initial={"owner": user, "opened_on": timezone.localdate()}
    )
    opened_on = None
    if plan_form.is_bound and plan_form.is_valid():
        opened_on = plan_form.cleaned_data["opened_on"]
    triggers = TriggerFormSet(data, prefix="triggers")
    earliest = None
    if triggers.is_bound and triggers.is_valid():
        earliest = min((t["occurred_on"] for t in filled(triggers)), default=None)
    criteria_form = CriteriaForm(
        data, prefix="criteria", initial={"sustain_months": 3, "min_reaudits": 2}
    )
    indicators = IndicatorFormSet(data, prefix="indicators")
    actions = ActionFormSet(
        data, prefix="actions", user=user, opened_on=opened_on, earliest=earliest
    )
    parts = [plan_form, triggers, criteria_form, indicators, actions]
    if request.method == "POST":
        # Validate every part (not just up to the first failure) so all errors show.
        valid = [part.is_valid() for part in parts]
        if all(valid):
            plan_data = dict(plan_form.cleaned_data)
            new_plan = services.NewPlan(
                plan_fields={
                    k: v
                    for k, v in plan_data.items()
                    if k not in ("locations", "quality_statements", "regulations")
                },
                locations=plan_data["locations"],
                quality_statements=plan_data["quality_statements"],
                regulations=plan_data["regulations"],
                triggers=[_strip(f) for f in filled(triggers)],
                criteria=criteria_form.cleaned_data,
                indicators=[_strip(f) for f in filled(indicators)],
                actions=[_strip(f) for f in filled(actions)],
            )
            plan = services.create_plan(by=user, data=new_plan)
            messages.success(
                request,
                f"{plan.reference} opened as a draft. Activate it when the criteria are agreed.",
            )
            return redirect(plan)
    return render(
        request,
        "plans/create.html",
        {
            # What stopped the plan being saved, at the top, each linked to its field.
            "errors": error_summary(
                plan_form,
                (triggers, "Trigger", "step-triggers"),
                criteria_form,
                (indicators, "Indicator", "step-indicators"),
                (actions, "Action", "step-actions"),
            ),
            "plan_form": plan_form,
            "triggers": triggers,
            "criteria_form": criteria_form,
            "indicators": indicators,
            "actions": actions,
        },
    )


def _strip(cleaned: dict) -> dict:
    return {k: v for k, v in cleaned.items() if k != "DELETE"}


def detail_context(user, reference: str) -> dict:
    """The plan page's own part: the plan (read once, with what it points to; the
    other sections share its indicators and actions), its criteria, actions and flags.
    The page itself is composed in ``qip_portal/pages/plans.py``, which adds each higher
    app's section and the timeline. Call it inside ``core.freshness.pinned()``: cached
    figures are computed from the rows read here. Needs no request: the page's content
    is rendered by a worker too (``qip_portal.pages.plans.rerender``)."""
    plan = get_plan_for_user(user, reference, related=("criteria", "merged_into", "recurrence_of"))
    prefetch_related_objects(
        [plan],
        # Only the columns the page shows (it is rendered once per version, then cached).
        Prefetch("locations", queryset=Location.objects.only("id", "name")),
        Prefetch("quality_statements", queryset=QualityStatement.objects.only("id", "name")),
        Prefetch("regulations", queryset=Regulation.objects.only("id", "number", "title")),
        "triggers",
        "indicators",
        Prefetch("actions", queryset=Action.objects.select_related("owner", "verified_by")),
    )
    today = timezone.localdate()
    actions = list(plan.actions.all())
    gaps = services.criteria_gaps(plan) if plan.is_draft else []
    activate = lifecycle.TRANSITIONS["activate"]
    return {
        "plan": plan,
        "criteria": getattr(plan, "criteria", None),
        "indicators": list(plan.indicators.all()),
        "actions": actions,
        "overdue_count": sum(1 for a in actions if a.is_overdue(today)),
        "today": today,
        "criteria_gaps": gaps,
        # Offered only when it can succeed: the gaps are listed instead.
        "can_activate": plan.is_draft and not gaps and lifecycle.may_perform(activate, user),
        "can_edit": can_edit_plan(user, plan),
        "can_edit_details": can_edit_plan_details(user, plan),
        "is_stale": plan.is_stale(),
        "stale_days": settings.STALE_PLAN_DAYS,
        "age_days": plan.age_days(today),
    }


def edit(request: HttpRequest, reference: str) -> HttpResponse:
    plan = get_plan_for_user(request.user, reference, write=True)
    if not can_edit_plan_details(request.user, plan):
        raise Http404("No such page.")
    form = PlanForm(request.POST or None, instance=plan, user=request.user)
    if request.method == "POST" and form.is_valid():
        fields = {
            k: v
            for k, v in form.cleaned_data.items()
            if k not in ("locations", "quality_statements", "regulations")
        }
        try:
            services.update_plan(
                plan=plan,
                by=request.user,
                fields=fields,
                locations=form.cleaned_data["locations"],
                quality_statements=form.cleaned_data["quality_statements"],
                regulations=form.cleaned_data["regulations"],
            )
        except services.TransitionRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            messages.success(request, "Plan details saved.")
            return redirect(plan)
    return render(request, "plans/edit.html", {"plan": plan, "form": form})


def edit_criteria(request: HttpRequest, reference: str) -> HttpResponse:
    plan = get_plan_for_user(request.user, reference, write=True)
    if not can_edit_plan_details(request.user, plan):
        raise Http404("No such page.")
    criteria = plan.criteria
    indicators = list(plan.indicators.all())
    data = request.POST or None
    form = CriteriaRevisionForm(
        data, instance=criteria, locked=criteria.is_locked, prefix="criteria"
    )
    indicator_forms = [IndicatorForm(data, instance=i, prefix=f"ind-{i.pk}") for i in indicators]
    if request.method == "POST":
        valid = [form.is_valid()] + [f.is_valid() for f in indicator_forms]
        if all(valid):
            fields = {k: v for k, v in form.cleaned_data.items() if k != "reason"}
            try:
                services.revise_criteria(
                    plan=plan,
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    criteria_fields=fields,
                    indicators=[(f.instance, f.cleaned_data) for f in indicator_forms],
                )
            except services.TransitionRefused as refused:
                for reason in refused.reasons:
                    messages.error(request, reason)
            else:
                messages.success(request, "Closure criteria saved.")
                return redirect(plan)
    return render(
        request,
        "plans/criteria_form.html",
        {
            "plan": plan,
            "form": form,
            "indicator_forms": indicator_forms,
            "criteria": criteria,
            "errors": error_summary(
                form, *[(f, f"Indicator “{f.instance.name}”") for f in indicator_forms]
            ),
        },
    )


def add_indicator(request: HttpRequest, reference: str) -> HttpResponse:
    plan = get_plan_for_user(request.user, reference, write=True)
    if not can_edit_plan_details(request.user, plan):
        raise Http404("No such page.")
    form = IndicatorForm(request.POST or None)
    reason_form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and reason_form.is_valid():
        try:
            services.add_indicator(
                plan=plan,
                by=request.user,
                fields=form.cleaned_data,
                reason=reason_form.cleaned_data["reason"],
            )
        except services.TransitionRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            messages.success(request, "Indicator added.")
            return redirect(plan)
    return render(
        request,
        "plans/simple_form.html",
        {
            "plan": plan,
            "forms": [form, reason_form] if plan.criteria.is_locked else [form],
            "title": "Add an indicator",
            "submit": "Add indicator",
        },
    )


def add_trigger(request: HttpRequest, reference: str) -> HttpResponse:
    plan = get_plan_for_user(request.user, reference, write=True)
    if not can_edit_plan_details(request.user, plan):
        raise Http404("No such page.")
    form = TriggerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.add_trigger(plan=plan, by=request.user, fields=form.cleaned_data)
        except services.TransitionRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            messages.success(request, "Trigger added.")
            return redirect(plan)
    return render(
        request,
        "plans/simple_form.html",
        {"plan": plan, "forms": [form], "title": "Add a trigger", "submit": "Add trigger"},
    )


def action_form(request: HttpRequest, reference: str, action_id: int | None = None) -> HttpResponse:
    plan = get_plan_for_user(request.user, reference, write=True)
    action = get_object_or_404(Action, pk=action_id, plan=plan) if action_id else None
    if plan.is_final:
        messages.error(request, "A closed or withdrawn plan's actions cannot change.")
        return redirect(plan)
    earliest = min((t.occurred_on for t in plan.triggers.all()), default=None)
    form = ActionForm(
        request.POST or None,
        instance=action,
        user=request.user,
        opened_on=plan.opened_on,
        earliest=earliest,
    )
    if request.method == "POST" and form.is_valid():
        services.save_action(plan=plan, by=request.user, fields=form.cleaned_data, action=action)
        messages.success(request, "Action saved.")
        return redirect(f"{plan.get_absolute_url()}#actions")
    title = "Edit action" if action else "Add an action"
    return render(
        request,
        "plans/simple_form.html",
        {"plan": plan, "forms": [form], "title": title, "submit": "Save action"},
    )


def verify_action(request: HttpRequest, reference: str, action_id: int) -> HttpResponse:
    plan = get_plan_for_user(request.user, reference, write=True)
    action = get_object_or_404(Action, pk=action_id, plan=plan)
    form = VerifyActionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.verify_action_effective(
                action=action, by=request.user, note=form.cleaned_data["note"]
            )
        except services.TransitionRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            messages.success(request, "Action verified as effective.")
            return redirect(f"{plan.get_absolute_url()}#actions")
    return render(
        request,
        "plans/simple_form.html",
        {
            "plan": plan,
            "forms": [form],
            "title": f"Verify effective: {action}",
            "submit": "Record verification",
        },
    )


def transition(request: HttpRequest, reference: str, name: str) -> HttpResponse:
    """Confirm page (GET) and the change itself (POST) for the plan's own transitions
    (activate, withdraw). The closure steps have their own pages, composed by the
    closure workflow (qip_portal/closure/views.py)."""
    plan = get_plan_for_user(request.user, reference, write=True)
    step = lifecycle.TRANSITIONS.get(name)
    if step is None or step.composed:
        raise Http404("No such action.")
    if name == "withdraw":
        form = WithdrawForm(request.POST or None, plans=visible_plans(request.user))
    else:
        form = ReasonForm(request.POST or None)
        form.fields["reason"].required = step.needs_reason
        if not step.needs_reason:
            form.fields["reason"].label = "Reason (optional)"
            form.fields["reason"].help_text = "Kept with this change in the plan's history."
    if request.method == "POST" and form.is_valid():
        try:
            if name == "activate":
                services.activate_plan(
                    plan=plan, by=request.user, reason=form.cleaned_data["reason"]
                )
            elif name == "withdraw":
                services.withdraw_plan(
                    plan=plan,
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    merged_into=form.cleaned_data["merged_into"],
                )
        except services.TransitionRefused as refused:
            for reason in refused.reasons:
                messages.error(request, reason)
        else:
            done = "now live" if name == "activate" else "withdrawn"
            messages.success(request, f"{plan.reference}: {done}.")
            return redirect(plan)
    blocking = lifecycle.plan_refusals(step, plan)
    if not lifecycle.may_perform(step, request.user):
        blocking.append(f"Your role may not {step.label.lower()} a plan.")
    if name == "activate" and plan.is_draft:
        blocking += services.criteria_gaps(plan)
    return render(
        request,
        "plans/transition.html",
        {
            "plan": plan,
            "step": step,
            "form": form,
            "blocking": blocking,
            "target_label": Plan.Status(step.target).label,
        },
    )
