"""The plan page and the register, composed from every app's part by plain calls.

``plans`` owns the plan's own rows; each higher app gives its section of the plan page
through one function (audits: verdicts, charts, results and evidence; governance: its
reports; learning: the summary; the evidence pack), the closure workflow says what
the plan needs next (``qip_portal/closure/workflow.py``), and the timeline tells what happened,
whichever app holds it (``qip_portal/pages/timeline.py``). Reading this file shows everything
the page is made of.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

from audits.views import plan_panel_context as audits_section
from core import freshness, queueing
from governance.panels import plan_panel_context as governance_section
from learning.panels import panel_context as learning_section
from plans import views as plan_views
from plans.access import get_plan_for_user, visible_plans
from plans.models import Plan
from qip_portal import closure
from qip_portal.packs.views import plan_panel_context as pack_section
from qip_portal.pages import timeline

logger = logging.getLogger(__name__)


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


def body_context(user, reference: str) -> dict:
    """Everything the plan page's content shows, computed from the rows (for ``user``:
    no request is needed, so a worker can render it too)."""
    context = plan_views.detail_context(user, reference)
    plan = context["plan"]
    audits = audits_section(plan, user)
    governance = governance_section(plan, user)
    learning = learning_section(plan, user)
    # The timeline tells the rows the sections read already: not read again.
    entries = timeline.plan_timeline(
        plan,
        indicators=context["indicators"],
        evidence=audits["evidence"],
        reports=governance["all_reports"],
        learning={k: learning[k] for k in ("summary", "embeddings", "reviews")},
    )
    context.update(
        {
            "audits": audits,
            "governance": governance,
            "learning": learning,
            "pack": pack_section(plan, user),
            "closure": closure.plan_page_context(plan, user, verdicts=audits["verdicts"]),
            "timeline": entries,
            # Built in Python (qip_portal.pages.timeline.timeline_html): hundreds of items.
            "timeline_items": timeline.timeline_html(entries),
        }
    )
    return context


def render_body(user, reference: str) -> str:
    return str(render_to_string("plans/_body.html", body_context(user, reference)))


def _body_key(plan_id: int, klass: str, today) -> str:
    return f"plan-body:{plan_id}:{klass}:{today.isoformat()}"


def _cached_body(plan: Plan, user, klass: str, *, on_compute=None) -> str:
    """The plan's content for ``user`` (of viewer class ``klass``), from the cache or
    rendered and cached under the plan's version."""
    today = timezone.localdate()
    scopes = [f"plan:{plan.pk}"]

    def compute() -> str:
        if on_compute is not None:
            on_compute()
        return render_body(user, plan.reference)

    # Held from before the content's rows are read (core.freshness.pinned).
    with freshness.pinned(*scopes):
        return freshness.cached(_body_key(plan.pk, klass, today), compute, scopes=scopes)


def detail(request: HttpRequest, reference: str) -> HttpResponse:
    """The plan page: the plan read for the access check and the title, and its content
    (criteria, indicators with charts and verdicts, results, evidence, governance,
    learning, actions, timeline) as HTML cached under the plan's version, the day and
    the viewer's class (``core.freshness``). On a hit that is the whole page: no
    section is computed. On a miss the viewer's class is noted for the plan, so that
    after its next change a worker renders the content again for that class
    (``rerender``) and the next viewer gets a hit."""
    user = request.user
    try:
        # The head of the page only (its title and crumbs): the content reads its own.
        plan = visible_plans(user).only("pk", "reference", "title").get(reference=reference)
    except Plan.DoesNotExist:
        get_plan_for_user(user, reference)  # records the refusal and answers 404
        raise
    klass = viewer_class(user)
    body = _cached_body(plan, user, klass, on_compute=lambda: note_viewer(plan.pk, klass, user.pk))
    return render(request, "plans/detail.html", {"plan": plan, "body": mark_safe(body)})  # noqa: S308 - our own rendered template  # nosec B703 B308


# --- Rendering again after a change, for the next viewer --------------------------------

VIEWERS_PREFIX = "qip:plan-viewers:"
MAX_VIEWER_CLASSES = 6  # the most recent; a plan is seldom read by more kinds of people


def _viewers_key(plan_id: int) -> str:
    return f"{VIEWERS_PREFIX}{plan_id}"


def note_viewer(plan_id: int, klass: str, user_id: int) -> None:
    """Remember that a viewer of class ``klass`` (``user_id``, one of them) read this
    plan's page: its most recent classes, each with the last of its viewers, kept in
    the cache for ``settings.PLAN_VIEWERS_SECONDS``. Written only when the content was
    computed (a hit writes nothing). Best effort: a cache failure is logged."""
    key = _viewers_key(plan_id)
    try:
        viewers = dict(cache.get(key) or {})
        viewers.pop(klass, None)
        viewers[klass] = user_id  # the most recent last
        while len(viewers) > MAX_VIEWER_CLASSES:
            viewers.pop(next(iter(viewers)))
        cache.set(key, viewers, timeout=settings.PLAN_VIEWERS_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("The plan's recent viewers could not be noted.", exc_info=True)


def recent_viewers(plan_id: int) -> dict[str, int]:
    try:
        return dict(cache.get(_viewers_key(plan_id)) or {})
    except Exception:  # noqa: BLE001
        logger.warning("The plan's recent viewers could not be read.", exc_info=True)
        return {}


def queue_rerenders(plan_ids: set[int]) -> None:
    """After a commit moved these plans' versions (``core.freshness.on_plans_committed``):
    queue one re-render per plan that was viewed recently (one cache read for them
    all; a plan nobody viewed queues nothing). Through ``core.queueing``: a broker
    outage is logged, never raised."""
    from qip_portal.tasks import rerender_plan_page

    keys = {_viewers_key(pid): pid for pid in plan_ids}
    try:
        found = cache.get_many(list(keys))
    except Exception:  # noqa: BLE001
        logger.warning("The plans' recent viewers could not be read.", exc_info=True)
        return
    for key in sorted(found, key=lambda k: keys[k]):
        if found[key]:
            queueing.send_task(rerender_plan_page, keys[key])


def rerender(plan_id: int) -> list[str]:
    """Render the plan's content again (if it is not cached already) for each class of
    its recent viewers, as one of them, so that the next viewer of that class gets a
    hit. A viewer who can no longer see the plan, or whose class changed, is skipped.
    Returns the classes rendered (a hit counts: nothing to do)."""
    from plans.models import User

    viewers = recent_viewers(plan_id)
    if not viewers:
        return []
    users = User.objects.filter(pk__in=set(viewers.values()), is_active=True).in_bulk()
    done = []
    for klass, user_id in viewers.items():
        user = users.get(user_id)
        if user is None or viewer_class(user) != klass:
            continue
        plan = visible_plans(user).only("pk", "reference", "title").filter(pk=plan_id).first()
        if plan is None:  # no longer theirs to see: nothing rendered, nothing recorded
            continue
        _cached_body(plan, user, klass)
        done.append(klass)
    return done


def register(request: HttpRequest) -> HttpResponse:
    # Each row's detail: its indicators with their Making Data Count icons (audits).
    return plan_views.register(
        request, flags=closure.REGISTER_FLAGS, row_detail="audits:plan_icons"
    )
