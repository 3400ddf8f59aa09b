"""Pages served from rendered fragments (core.freshness): the plan page's content, the
register's form and rows, the live closure report, the home figures and governance
home. Each optimisation has its test here: the queries of a hit, a change to one plan
leaving another plan's fragment (and another location's register) cached, every writer
of a plan's data showing on its next view, viewers of another class never served
someone else's buttons, only plain values cached, and the code version in every key."""

from __future__ import annotations

import datetime
import pickle
import re

import pytest
from django.core.cache import cache
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import freshness
from plans import services
from plans.models import Indicator
from tests import factories


def _queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries), response.content.decode()


def _content(page: str) -> str:
    """The page without its per-request tokens (CSRF in the sign-out form, CSP nonces)."""
    return re.sub(r'(value|nonce)="[^"]+"', "", page)


def _action(plan, by, description):
    services.save_action(
        plan=plan,
        by=by,
        fields={
            "description": description,
            "owner": by,
            "due_date": timezone.localdate() + datetime.timedelta(days=10),
            "status": "open",
        },
    )


@pytest.mark.django_db
def test_a_plan_page_hit_runs_no_section_and_few_queries(client, quality_lead, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    computed, first = _queries(client, plan.get_absolute_url())
    hit, second = _queries(client, plan.get_absolute_url())
    # The session, the user and the plan's head (reference and title) only.
    assert hit <= 3 < computed
    assert _content(second) == _content(first)


@pytest.mark.django_db
def test_a_change_to_one_plan_leaves_another_plans_fragment_cached(
    client, quality_lead, oakfield, riverside
):
    a = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Plan A")
    b = factories.live_plan(owner=quality_lead, locations=[riverside], title="Plan B")
    client.force_login(quality_lead)
    _queries(client, a.get_absolute_url())
    _queries(client, b.get_absolute_url())
    hit, _ = _queries(client, b.get_absolute_url())

    _action(a, quality_lead, "Only plan A changes")
    again, _ = _queries(client, b.get_absolute_url())
    assert again == hit  # still a hit
    computed, page = _queries(client, a.get_absolute_url())
    assert computed > hit and "Only plan A changes" in page


def _writers(plan, lead):
    """Every kind of change a plan's page shows, each through its service (or a bulk
    path), with the text the next view must show."""
    from audits import services as audit_services
    from governance import services as governance_services
    from learning import services as learning_services

    today = timezone.localdate()
    indicator = plan.indicators.first()
    yield "action", lambda: _action(plan, lead, "Buy new sensor mats"), "Buy new sensor mats"
    yield (
        "plan details",
        lambda: services.update_plan(plan=plan, by=lead, fields={"summary": "Falls at night rose"}),
        "Falls at night rose",
    )
    yield (
        "trigger",
        lambda: services.add_trigger(
            plan=plan,
            by=lead,
            fields={
                "kind": "incident",
                "reference": "INC-4471",
                "occurred_on": today,
                "description": "x",
            },
        ),
        "INC-4471",
    )
    yield (
        "result",
        lambda: audit_services.record_measurement(
            plan=plan,
            by=lead,
            fields={
                "indicator": indicator,
                "measured_on": today - datetime.timedelta(days=3),
                "numerator": 7,
                "denominator": 13,
                "value": None,
                "location": plan.locations.first(),
                "source": "re_audit",
                "notes": "Night re-audit by the falls lead",
            },
        ),
        "Night re-audit by the falls lead",
    )
    yield (
        "evidence",
        lambda: audit_services.add_evidence(
            plan=plan,
            by=lead,
            fields={
                "kind": "audit",
                "title": "Night audit sheet",
                "occurred_on": today,
                "description": "",
            },
        ),
        "Night audit sheet",
    )
    yield (
        "residual risk",
        lambda: governance_services.record_residual_risk(
            plan=plan, by=lead, description="Agency staff", monitoring="Spot checks"
        ),
        "1 residual risk recorded",
    )
    yield (
        "learning",
        lambda: learning_services.save_summary(
            plan=plan,
            by=lead,
            what_happened="Mats were missing",
            what_changed="Mats on every bed",
            key_messages="Check the mats nightly",
        ),
        "Check the mats nightly",
    )
    yield (
        "indicator renamed in bulk (QuerySet.update)",
        lambda: Indicator.objects.filter(plan=plan).update(name="Falls per 1,000 bed days"),
        "Falls per 1,000 bed days",
    )


@pytest.mark.django_db
def test_every_writer_of_a_plan_shows_on_its_next_view(
    client, quality_lead, oakfield, django_capture_on_commit_callbacks
):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    for name, write, text in _writers(plan, quality_lead):
        _, before = _queries(client, plan.get_absolute_url())
        hit, _ = _queries(client, plan.get_absolute_url())
        assert text not in before, name
        with django_capture_on_commit_callbacks(execute=True):
            write()
        computed, after = _queries(client, plan.get_absolute_url())
        assert text in after, f"{name}: the plan page did not show it"
        assert computed > hit, name


@pytest.mark.django_db
def test_each_viewer_class_gets_its_own_buttons(client, quality_lead, manager, viewer, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    edit = reverse("plans:edit", args=[plan.reference])
    add_action = reverse("plans:add_action", args=[plan.reference])
    client.force_login(quality_lead)
    assert edit in client.get(plan.get_absolute_url()).content.decode()
    client.force_login(manager)  # may add actions, not edit the details
    page = client.get(plan.get_absolute_url()).content.decode()
    assert edit not in page and add_action in page
    client.force_login(viewer)  # reads only
    page = client.get(plan.get_absolute_url()).content.decode()
    assert edit not in page and add_action not in page


@pytest.mark.django_db
def test_a_governance_member_sees_only_their_groups_reports_links(
    client, quality_lead, oakfield, governance_member
):
    from governance.models import ClosureReport, GovernanceGroup, Membership

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    theirs = GovernanceGroup.objects.create(name="Safeguarding", authority_level=3)
    other = GovernanceGroup.objects.create(name="Board", authority_level=4)
    Membership.objects.create(group=theirs, user=governance_member, role="member")
    second_member = factories.UserFactory(role="governance_member")
    Membership.objects.create(group=other, user=second_member, role="member")
    report = ClosureReport.objects.create(
        plan=plan,
        group=other,
        submitted_by=quality_lead,
        sign_off_level=3,
        content_json="{}",
        content_html="",
        sha256="0" * 64,
    )
    link = reverse("governance:report", args=[report.pk])
    client.force_login(second_member)
    assert link in client.get(plan.get_absolute_url()).content.decode()
    client.force_login(governance_member)  # same role, another group: no link
    assert link not in client.get(plan.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_a_change_at_one_location_leaves_another_locations_register_cached(
    client, quality_lead, manager, outsider, oakfield, riverside
):
    here = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Oakfield plan")
    factories.live_plan(owner=quality_lead, locations=[riverside], title="Riverside plan")
    register = reverse("plans:register")
    client.force_login(outsider)  # Riverside's manager
    _queries(client, register)
    hit, _ = _queries(client, register)
    client.force_login(manager)  # Oakfield's
    _queries(client, register)

    services.update_plan(plan=here, by=quality_lead, fields={"title": "Oakfield plan renamed"})
    computed, page = _queries(client, register)
    assert "Oakfield plan renamed" in page and computed > hit
    client.force_login(outsider)
    # Riverside's rows are served from the cache: no count, no page of plans. (The
    # filter form is computed again: its owner choices are every plan's owners.)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(register).content.decode()
    statements = [q["sql"] for q in captured.captured_queries]
    assert "Riverside plan" in page
    assert not [s for s in statements if "COUNT(" in s or '"plans_plan"."title"' in s]


@pytest.mark.django_db
def test_register_hits_run_no_register_query(client, quality_lead, oakfield):
    for i in range(3):
        factories.live_plan(owner=quality_lead, locations=[oakfield], title=f"Plan {i}")
    client.force_login(quality_lead)
    url = reverse("plans:register") + "?status=open&sort=-risk_score"
    computed, first = _queries(client, url)
    # The same filters in another order, with an empty field: the same normalised query.
    hit, second = _queries(client, reverse("plans:register") + "?q=&sort=-risk_score&status=open")
    assert hit <= 2 < computed  # the session and the user
    assert second.count("<tr>") == first.count("<tr>")


@pytest.mark.django_db
def test_the_live_closure_report_is_cached_per_plan_version(client, quality_lead, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    other = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Other")
    url = reverse("governance:plan_report", args=[plan.reference])
    client.force_login(quality_lead)
    computed, _ = _queries(client, url)
    hit, _ = _queries(client, url)
    assert hit < computed
    _action(other, quality_lead, "Elsewhere")
    assert _queries(client, url)[0] == hit
    _action(plan, quality_lead, "Call the falls team")
    again, page = _queries(client, url)
    assert again > hit and "Call the falls team" in page


@pytest.mark.django_db
def test_a_managers_home_stays_cached_after_a_change_at_another_location(
    client, quality_lead, manager, oakfield, riverside
):
    factories.live_plan(owner=quality_lead, locations=[oakfield])
    elsewhere = factories.live_plan(owner=quality_lead, locations=[riverside])
    client.force_login(manager)
    _queries(client, reverse("home"))
    hit, _ = _queries(client, reverse("home"))
    _action(elsewhere, quality_lead, "Riverside only")
    assert _queries(client, reverse("home"))[0] == hit


def _cached_values():
    """Every value the local-memory cache holds, unpickled."""
    store = getattr(cache, "_cache", None)
    if store is None:
        pytest.skip("inspects the local-memory cache")
    return [pickle.loads(v) for v in store.values()]  # noqa: S301  # nosec B301 - our cache


def _has_model_instance(value) -> bool:
    if isinstance(value, models.Model):
        return True
    if isinstance(value, dict):
        return any(_has_model_instance(k) or _has_model_instance(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_model_instance(v) for v in value)
    return False


@pytest.mark.django_db
def test_only_plain_values_are_cached(
    client, settings, quality_lead, manager, governance_member, oakfield
):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    for user in (quality_lead, manager, governance_member):
        client.force_login(user)
        for url in (
            reverse("home"),
            plan.get_absolute_url(),
            reverse("plans:register"),
            reverse("governance:plan_report", args=[plan.reference]),
        ):
            client.get(url)
    values = _cached_values()
    assert any(isinstance(v, str) and "<section" in v for v in values)  # rendered HTML
    assert any(isinstance(v, dict) and "attention" in v for v in values)  # home figures
    assert not [v for v in values if _has_model_instance(v)]


@pytest.mark.django_db
def test_every_key_holds_the_code_version(client, quality_lead, oakfield, settings):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    _queries(client, plan.get_absolute_url())
    hit, _ = _queries(client, plan.get_absolute_url())
    settings.CODE_VERSION = "a-new-deploy"
    freshness.code_version.cache_clear()
    try:
        computed, _ = _queries(client, plan.get_absolute_url())
    finally:
        freshness.code_version.cache_clear()
    assert computed > hit  # the new code does not read what the old code cached


def test_the_code_version_needs_no_git(settings, tmp_path):
    """Without CODE_VERSION, a digest of the source: the same for the same files, another
    after any change, and no .git needed."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "views.py").write_text("x = 1\n")
    (tmp_path / "page.html").write_text("<p>\n")
    settings.BASE_DIR = tmp_path
    settings.CODE_VERSION = ""
    freshness.code_version.cache_clear()
    try:
        first = freshness.code_version()
        freshness.code_version.cache_clear()
        assert freshness.code_version() == first
        (tmp_path / "page.html").write_text("<p>changed\n")
        freshness.code_version.cache_clear()
        assert freshness.code_version() != first
    finally:
        freshness.code_version.cache_clear()


def test_the_cached_plan_content_reads_nothing_of_the_viewer_but_its_context():
    """The plan page's content is cached per viewer class and rendered without the
    request: a template in it that read ``user`` or ``request`` would show one viewer's
    buttons to another (or none), and a CSRF token would be another person's. What
    depends on the viewer comes in the context, computed from the viewer class."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    seen, todo, offences = set(), ["plans/_body.html"], []
    while todo:
        name = todo.pop()
        if name in seen or not (root / name).exists():
            continue
        seen.add(name)
        text = (root / name).read_text()
        if re.search(r"csrf_token|\{\{\s*(user|request)\b|\{%[^%]*\b(user|request)\.", text):
            offences.append(name)
        todo.extend(re.findall(r'\{%\s*include\s+"([^"]+)"', text))
    assert len(seen) > 5  # the walk found the sections
    assert offences == []
