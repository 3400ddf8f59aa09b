"""Cached figures (core.freshness): kept until what they are computed from changes (the
plan's version, a scope's, or everything's), never longer than DERIVED_CACHE_SECONDS,
and the home page serves them without counting again. Every writer of every model is
walked in tests/core/test_freshness_walk.py."""

import datetime

import pytest
import time_machine
from django.urls import reverse

from core import freshness
from plans.models import Action, Plan
from tests import factories


@pytest.mark.django_db
def test_cached_until_the_data_version_changes_or_it_expires(settings):
    # A cache in this process, whose expiry follows the travelling clock (Redis keeps
    # its own time).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.DERIVED_CACHE_SECONDS = 60
    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    with time_machine.travel(datetime.datetime(2026, 3, 2, 9, 0), tick=False) as clock:
        assert freshness.cached("k", compute) == {"n": 1}
        assert freshness.cached("k", compute) == {"n": 1}
        freshness.data_changed()
        assert freshness.cached("k", compute) == {"n": 2}
        clock.shift(59)
        assert freshness.cached("k", compute) == {"n": 2}
        clock.shift(2)
        assert freshness.cached("k", compute) == {"n": 3}


@pytest.mark.django_db
def test_figures_computed_inside_pinned_are_kept_under_the_version_read_on_entry():
    """A view reads rows, another request commits a change, then the view caches what
    it computed from the rows it read: that must not be what the next view finds."""
    with freshness.pinned():
        freshness.data_changed()  # the other request's commit, after the rows were read
        assert freshness.cached("k", lambda: "from the rows before") == "from the rows before"
        # Inside, the same version throughout: the figures are found again.
        assert freshness.cached("k", lambda: "recomputed") == "from the rows before"
    assert freshness.cached("k", lambda: "from the rows after") == "from the rows after"


@pytest.mark.django_db
def test_pinned_without_a_cache_computes_afresh(monkeypatch):
    monkeypatch.setattr(freshness, "versions", lambda scopes: None)
    with freshness.pinned("plan:1"):
        assert freshness.cached("k", lambda: 1) == 1
        assert freshness.cached("k", lambda: 2) == 2


@pytest.mark.django_db
def test_a_change_to_one_plan_moves_its_versions_and_not_another_plans(
    quality_lead, oakfield, riverside, django_capture_on_commit_callbacks
):
    a = factories.live_plan(owner=quality_lead, locations=[oakfield])
    b = factories.live_plan(owner=quality_lead, locations=[riverside], title="Another")
    scopes = [f"plan:{a.pk}", f"plan:{b.pk}", f"loc:{oakfield.pk}", f"loc:{riverside.pk}"]
    scopes += ["all", "epoch"]
    seen = freshness.versions(scopes)

    def moved() -> set[str]:
        nonlocal seen
        now = freshness.versions(scopes)
        changed = {s for s in scopes if now[s] != seen[s]}
        seen = now
        return changed

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        a.title = "Renamed"
        a.save()
    assert callbacks  # and again when the transaction commits
    assert moved() == {f"plan:{a.pk}", f"loc:{oakfield.pk}", "all"}
    a.locations.add(riverside)  # both locations' registers now list it
    assert moved() == {f"plan:{a.pk}", f"loc:{oakfield.pk}", f"loc:{riverside.pk}", "all"}
    b.actions.all().delete()
    assert moved() == {f"plan:{b.pk}", f"loc:{riverside.pk}", "all"}
    Action.objects.filter(plan=a).update(description="Bulk")
    assert moved() == {f"plan:{a.pk}", f"loc:{oakfield.pk}", f"loc:{riverside.pk}", "all"}
    oakfield.name = "Oakfield House"  # reference data: every page may show it
    oakfield.save()
    assert "epoch" in moved()


@pytest.mark.django_db
def test_signing_in_leaves_the_version_alone(client, quality_lead):
    scopes = [f"user:{quality_lead.pk}", "all", "epoch"]
    before = freshness.versions(scopes)
    response = client.post(
        reverse("login"), {"username": quality_lead.username, "password": factories.PASSWORD}
    )
    assert response.status_code == 302
    quality_lead.refresh_from_db()
    assert quality_lead.last_login is not None
    assert freshness.versions(scopes) == before
    quality_lead.job_title = "Head of Quality"  # a real change to the person does move them
    quality_lead.save()
    assert (
        freshness.versions(scopes)[f"user:{quality_lead.pk}"] != before[f"user:{quality_lead.pk}"]
    )


@pytest.mark.django_db
def test_home_counts_once_then_serves_the_figures_until_a_change(
    client, quality_lead, oakfield, django_assert_max_num_queries
):
    factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    with django_assert_max_num_queries(30) as first:
        response = client.get(reverse("home"))
    assert response.context["attention"]["overdue_actions"] == 1
    with django_assert_max_num_queries(3) as second:  # session and user only
        response = client.get(reverse("home"))
    assert response.context["attention"]["overdue_actions"] == 1
    assert len(second.captured_queries) < len(first.captured_queries)

    action = Action.objects.get()
    action.due_date = datetime.date.today() + datetime.timedelta(days=7)
    action.save()
    assert client.get(reverse("home")).context["attention"]["overdue_actions"] == 0
    action.due_date = datetime.date.today() - datetime.timedelta(days=7)
    action.save()
    factories.live_plan(owner=quality_lead, locations=[oakfield], title="Another")
    response = client.get(reverse("home"))
    assert response.context["attention"]["overdue_actions"] == 2
    assert response.context["shape"]["by_location"][0]["n"] == 2


@pytest.mark.django_db
def test_home_figures_are_each_users_own(client, quality_lead, manager, oakfield, riverside):
    factories.live_plan(owner=quality_lead, locations=[riverside])
    client.force_login(quality_lead)
    assert client.get(reverse("home")).context["attention"]["overdue_actions"] == 1
    client.force_login(manager)  # Oakfield only: the lead's cached figures are not theirs
    assert client.get(reverse("home")).context["attention"]["overdue_actions"] == 0
    manager.locations.add(riverside)
    assert client.get(reverse("home")).context["attention"]["overdue_actions"] == 1
    assert Plan.objects.count() == 1


@pytest.mark.django_db
def test_pages_work_without_the_cache(client, quality_lead, oakfield, monkeypatch):
    """Redis down: the figures are computed afresh, the page does not fail."""
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    for method in ("get", "set", "add"):
        monkeypatch.setattr(cache, method, down)
    client.force_login(quality_lead)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert response.context["attention"]["overdue_actions"] == 1
    assert client.get(plan.get_absolute_url()).status_code == 200
    plan.title = "Saved while the cache is down"
    plan.save()  # the data version cannot move on: logged, not raised
