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

from audits.views import plan_panel_context as audits_section
from core import freshness
from governance.panels import plan_panel_context as governance_section
from learning.panels import panel_context as learning_section
from plans import views as plan_views
from qip_portal import closure, timeline
from qip_portal.pack_views import plan_panel_context as pack_section


def detail(request: HttpRequest, reference: str) -> HttpResponse:
    user = request.user
    # Cached figures are computed from rows read below: the data version is held from
    # before the first read (core.freshness.pinned).
    with freshness.pinned():
        context = plan_views.detail_context(request, reference)
        plan = context["plan"]
        audits = audits_section(plan, user)
        context.update(
            {
                "audits": audits,
                "governance": governance_section(plan, user),
                "learning": learning_section(plan, user),
                "pack": pack_section(plan, user),
                "closure": closure.plan_page_context(plan, user, verdicts=audits["verdicts"]),
                # The same for everyone who can see the plan: cached until data changes.
                "timeline": freshness.cached(
                    f"plan-timeline:{plan.pk}",
                    lambda: timeline.plan_timeline(plan, indicators=context["indicators"]),
                ),
            }
        )
        return render(request, "plans/detail.html", context)


def register(request: HttpRequest) -> HttpResponse:
    # Each row's detail: its indicators with their Making Data Count icons (audits).
    return plan_views.register(
        request, flags=closure.REGISTER_FLAGS, row_detail="audits:plan_icons"
    )
