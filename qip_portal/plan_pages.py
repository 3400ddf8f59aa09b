"""The plan page and the register, composed from every app's part by plain calls.

``plans`` owns the plan's own rows; each higher app gives its section of the plan page
through one function (audits: verdicts, charts, results and evidence; governance: its
reports; learning: the summary; the evidence pack), the closure workflow says what
the plan needs next (``qip_portal/closure.py``), and the timeline tells what happened,
whichever app holds it (``qip_portal/timeline.py``). Reading this file shows everything
the page is made of.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

from audits.views import plan_panel_context as audits_section
from core import freshness
from governance.panels import plan_panel_context as governance_section
from learning.panels import panel_context as learning_section
from plans import views as plan_views
from plans.access import get_plan_for_user, visible_plans
from plans.models import Plan
from qip_portal import closure, timeline
from qip_portal.pack_views import plan_panel_context as pack_section


def viewer_class(user) -> str:
    """Who the viewer is, as far as the plan page's content can tell: the role (every
    button and link the sections offer depends on it and on the plan) and, for a
    governance member, their groups and their role in each (which closure reports they
    may open, and which decisions they may sign or record). Two viewers of one class see
    the same HTML."""
    if user.is_governance_member:
        from governance.models import Membership

        groups = sorted(Membership.objects.filter(user=user).values_list("group_id", "role"))
        return f"{user.role}-" + ".".join(f"{group}{role[0]}" for group, role in groups)
    return user.role


def body_context(request: HttpRequest, reference: str) -> dict:
    """Everything the plan page's content shows, computed from the rows."""
    user = request.user
    context = plan_views.detail_context(request, reference)
    plan = context["plan"]
    audits = audits_section(plan, user)
    entries = timeline.plan_timeline(plan, indicators=context["indicators"])
    context.update(
        {
            "audits": audits,
            "governance": governance_section(plan, user),
            "learning": learning_section(plan, user),
            "pack": pack_section(plan, user),
            "closure": closure.plan_page_context(plan, user, verdicts=audits["verdicts"]),
            "timeline": entries,
            # Built in Python (qip_portal.timeline.timeline_html): hundreds of items.
            "timeline_items": timeline.timeline_html(entries),
        }
    )
    return context


def render_body(request: HttpRequest, reference: str) -> str:
    return str(render_to_string("plans/_body.html", body_context(request, reference)))


def detail(request: HttpRequest, reference: str) -> HttpResponse:
    """The plan page: the plan read for the access check and the title, and its content
    (criteria, indicators with charts and verdicts, results, evidence, governance,
    learning, actions, timeline) as HTML cached under the plan's version, the day and
    the viewer's class (``core.freshness``). On a hit that is the whole page: no
    section is computed."""
    user = request.user
    try:
        # The head of the page only (its title and crumbs): the content reads its own.
        plan = visible_plans(user).only("pk", "reference", "title").get(reference=reference)
    except Plan.DoesNotExist:
        get_plan_for_user(user, reference)  # records the refusal and answers 404
        raise
    today = timezone.localdate()
    scopes = [f"plan:{plan.pk}"]
    # Held from before the content's rows are read (core.freshness.pinned).
    with freshness.pinned(*scopes):
        body = freshness.cached(
            f"plan-body:{plan.pk}:{viewer_class(user)}:{today.isoformat()}",
            lambda: render_body(request, reference),
            scopes=scopes,
        )
    return render(request, "plans/detail.html", {"plan": plan, "body": mark_safe(body)})  # noqa: S308 - our own rendered template  # nosec B703 B308


def register(request: HttpRequest) -> HttpResponse:
    # Each row's detail: its indicators with their Making Data Count icons (audits).
    return plan_views.register(
        request, flags=closure.REGISTER_FLAGS, row_detail="audits:plan_icons"
    )
