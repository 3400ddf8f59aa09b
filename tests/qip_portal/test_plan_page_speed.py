"""The plan page after a change (issue 19): charts memoised by their exact inputs
(``core.memo``), the timeline and chart tables built in Python, and a worker rendering
a changed plan's page again for its recent viewers so that the next view is a hit."""

from __future__ import annotations

import dataclasses
import datetime
import re

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audits import services as audit_services
from audits.charts import drawn_chart
from audits.verdicts import plan_verdicts
from core import memo
from plans import services
from plans.timeline import Entry
from qip_portal.pages import plans as plan_pages
from qip_portal.pages.timeline import timeline_html
from tests import factories

HIT_QUERIES = 3  # the session, the user and the plan's head


def _queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries), response.content.decode()


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


def _result(plan, by, *, days_ago=3, numerator=7, notes=""):
    return audit_services.record_measurement(
        plan=plan,
        by=by,
        fields={
            "indicator": plan.indicators.first(),
            "measured_on": timezone.localdate() - datetime.timedelta(days=days_ago),
            "numerator": numerator,
            "denominator": 13,
            "value": None,
            "location": plan.locations.first(),
            "source": "re_audit",
            "notes": notes,
        },
    )


@pytest.fixture
def locmem(settings):
    """A local-memory cache, whose keys a test can read."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield cache
    cache.clear()


def _memo_keys(namespace: str) -> set[str]:
    return {k for k in cache._cache if f"{memo.PREFIX}{namespace}:" in k}


# --- The memo: keyed by the exact inputs --------------------------------------------------


@pytest.mark.django_db
def test_a_charts_memo_key_changes_with_every_input(quality_lead, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    for days in (40, 30, 20, 10):
        _result(plan, quality_lead, days_ago=days)
    verdict = plan_verdicts(plan).indicators[0]
    key = memo.key_for("chart", (verdict, "chart-1"))
    assert memo.key_for("chart", (plan_verdicts(plan).indicators[0], "chart-1")) == key

    def key_with(change) -> str:
        again = plan_verdicts(plan).indicators[0]
        change(again)
        return memo.key_for("chart", (again, "chart-1"))

    def set_attr(obj, name, value):
        setattr(obj, name, value)

    changed = {
        "a result's numerator": lambda v: set_attr(v.measurements[0], "numerator", 8),
        "a result's date": lambda v: set_attr(
            v.measurements[1],
            "measured_on",
            v.measurements[1].measured_on - datetime.timedelta(days=1),
        ),
        "a result more": lambda v: v.measurements.append(v.measurements[-1]),
        "the indicator's target": lambda v: set_attr(v.indicator, "target", 1),
        "the indicator's name": lambda v: set_attr(v.indicator, "name", "Other"),
    }
    for name, change in changed.items():
        assert key_with(change) != key, name
    assert memo.key_for("chart", (verdict, "chart-2")) != key  # the chart's id
    # A dataclass field (the criteria verdict) and a frozen one replaced.
    other = dataclasses.replace(verdict, criteria=dataclasses.replace(verdict.criteria, met=True))
    assert memo.key_for("chart", (other, "chart-1")) != key


def test_a_memo_key_tells_types_and_the_code_version_apart(settings):
    assert memo.fingerprint((1,)) != memo.fingerprint((1.0,)) != memo.fingerprint(("1",))
    assert memo.fingerprint({"a": [1, 2]}) != memo.fingerprint({"a": [2, 1]})
    first = memo.key_for("chart", (1,))
    settings.CODE_VERSION = "another-deploy"
    from core import freshness

    freshness.code_version.cache_clear()
    try:
        assert memo.key_for("chart", (1,)) != first
    finally:
        freshness.code_version.cache_clear()


@pytest.mark.django_db
def test_a_memo_computes_once_per_content(locmem):
    calls = []
    for inputs in ((1, "a"), (1, "a"), (1, "b"), (1, "a")):
        memo.memoised("test", inputs, lambda: calls.append(1) or "value")
    assert len(calls) == 2


@pytest.mark.django_db
def test_drawn_charts_are_plain_values_and_the_same_as_drawn_afresh(locmem, quality_lead, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    for days in (30, 20, 10):
        _result(plan, quality_lead, days_ago=days)
    verdict = plan_verdicts(plan).indicators[0]
    first = drawn_chart(verdict, chart_id="c", table=True)
    assert len(_memo_keys("chart")) == 1
    again = drawn_chart(plan_verdicts(plan).indicators[0], chart_id="c", table=True)
    assert len(_memo_keys("chart")) == 1  # a hit
    assert str(again["svg"]) == str(first["svg"]) and "<svg" in str(first["svg"])
    assert str(again["table"]).count("<tr>") == 3


# --- The plan page: what a change draws again -----------------------------------------------


@pytest.mark.django_db
def test_a_change_elsewhere_in_the_plan_draws_no_chart_again(
    client, locmem, quality_lead, oakfield
):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    _result(plan, quality_lead, days_ago=10)
    client.force_login(quality_lead)
    _queries(client, plan.get_absolute_url())
    charts = _memo_keys("chart")
    assert charts

    _action(plan, quality_lead, "Buy new sensor mats")  # not an input of any chart
    _, page = _queries(client, plan.get_absolute_url())
    assert "Buy new sensor mats" in page
    assert _memo_keys("chart") == charts  # every chart was a hit

    _result(plan, quality_lead, days_ago=2, numerator=3)  # an input of one chart
    _, page = _queries(client, plan.get_absolute_url())
    assert len(_memo_keys("chart") - charts) == 1
    assert "23.1%" in page  # 3 of 13, in the chart's table


@pytest.mark.django_db
def test_the_computed_plan_page_reads_a_fixed_number_of_rows(client, quality_lead, oakfield):
    from core import freshness

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    _action(plan, quality_lead, "First")
    _result(plan, quality_lead, days_ago=50)
    client.get(plan.get_absolute_url())  # the first request of a session reads more
    freshness.data_changed()
    few, _ = _queries(client, plan.get_absolute_url())
    for i in range(6):
        _action(plan, quality_lead, f"Action {i}")
        _result(plan, quality_lead, days_ago=20 + i)
    freshness.data_changed()
    many, _ = _queries(client, plan.get_absolute_url())
    assert many == few
    assert many <= 39


# --- The timeline, built in Python ------------------------------------------------------


def test_the_timeline_says_when_each_thing_happened_and_was_entered():
    when = datetime.datetime(2026, 3, 9, 14, 5, tzinfo=datetime.UTC)  # 14:05 GMT
    summer = datetime.datetime(2026, 7, 1, 8, 30, tzinfo=datetime.UTC)  # 09:30 BST
    html = str(
        timeline_html(
            [
                Entry(when=when, who="Priya <Lead>", text="logged a result", reason=""),
                Entry(
                    when=summer,
                    who="Sam",
                    text="opened the plan",
                    reason="Falls & trips",
                    happened_on=datetime.date(2026, 6, 2),
                ),
                Entry(when=None, who="The system", text="x", reason="", happened_on=summer.date()),
            ]
        )
    )
    items = re.findall(r"<li>.*?</li>", html)
    assert len(items) == 3
    assert '<time datetime="2026-03-09T14:05:00+00:00">9 Mar 2026, 14:05</time>' in items[0]
    assert "Priya &lt;Lead&gt;" in items[0] and "Why:" not in items[0]
    assert '<time datetime="2026-06-02">2 Jun 2026</time> · entered ' in items[1]
    assert '<time datetime="2026-07-01T09:30:00+01:00">1 Jul 2026, 09:30</time>' in items[1]
    assert "Why: Falls &amp; trips" in items[1]
    assert '<time datetime="2026-07-01">1 Jul 2026</time></div>' in items[2]


# --- A worker renders a changed plan's page again ----------------------------------------
# These commit for real (``transaction=True``): the re-render is queued when a
# transaction commits, and tasks run in-process (eagerly) in tests.


@pytest.mark.django_db(transaction=True)
def test_after_a_change_the_worker_renders_the_page_again_and_the_next_view_is_a_hit(
    client, quality_lead, oakfield
):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    _queries(client, plan.get_absolute_url())  # viewed: its class is noted
    assert plan_pages.recent_viewers(plan.pk) == {"quality_lead": quality_lead.pk}

    _action(plan, quality_lead, "Buy new sensor mats")  # commits; the task runs eagerly
    hit, page = _queries(client, plan.get_absolute_url())
    assert hit <= HIT_QUERIES
    assert "Buy new sensor mats" in page


@pytest.mark.django_db(transaction=True)
def test_each_recent_viewer_class_gets_its_own_page_rendered_again(
    client, quality_lead, manager, oakfield
):
    from django.urls import reverse

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    edit = reverse("plans:edit", args=[plan.reference])
    hits = {}
    for user in (quality_lead, manager):
        client.force_login(user)
        _queries(client, plan.get_absolute_url())
        hits[user.pk], _ = _queries(client, plan.get_absolute_url())  # what a hit reads
    assert set(plan_pages.recent_viewers(plan.pk)) == {"quality_lead", "manager"}

    services.update_plan(plan=plan, by=quality_lead, fields={"summary": "Night falls rose"})
    client.force_login(manager)
    client.get("/accounts/password/")  # the first request of a session reads more
    hit, page = _queries(client, plan.get_absolute_url())
    assert hit == hits[manager.pk] and "Night falls rose" in page
    assert edit not in page  # the manager's own page, not the quality lead's
    client.force_login(quality_lead)
    client.get("/accounts/password/")
    hit, page = _queries(client, plan.get_absolute_url())
    assert hit == hits[quality_lead.pk] and "Night falls rose" in page and edit in page


@pytest.mark.django_db
def test_a_viewer_who_lost_access_is_not_rendered_for(
    client, quality_lead, manager, oakfield, riverside
):
    from core.models import SecurityEvent

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(manager)
    _queries(client, plan.get_absolute_url())
    manager.locations.set([riverside])
    events = SecurityEvent.objects.count()
    assert plan_pages.rerender(plan.pk) == []
    assert SecurityEvent.objects.count() == events  # no refusal recorded in their name


@pytest.mark.django_db(transaction=True)
def test_a_failing_rerender_never_breaks_the_request(
    client, quality_lead, oakfield, monkeypatch, caplog
):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    _queries(client, plan.get_absolute_url())

    def broken(user, reference):
        raise RuntimeError("the worker's renderer broke")

    monkeypatch.setattr(plan_pages, "render_body", broken)
    _action(plan, quality_lead, "Still saved")  # no exception reaches the writer
    assert "could not be rendered again" in caplog.text
    monkeypatch.undo()
    computed, page = _queries(client, plan.get_absolute_url())
    assert computed > HIT_QUERIES and "Still saved" in page  # rendered by the viewer


@pytest.mark.django_db(transaction=True)
def test_one_rerender_is_queued_per_plan_and_transaction_and_none_for_unviewed_plans(
    client, quality_lead, oakfield
):
    from celery.app.task import Task

    viewed = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Viewed")
    unviewed = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Not viewed")
    client.force_login(quality_lead)
    _queries(client, viewed.get_absolute_url())

    queued = []
    original = Task.apply_async

    def counting(self, args=None, kwargs=None, **options):  # the broker: outside world
        if self.name == "qip_portal.tasks.rerender_plan_page":
            queued.append(tuple(args))
            return None
        return original(self, args, kwargs, **options)

    Task.apply_async = counting
    try:
        with transaction.atomic():
            for i in range(3):
                _action(viewed, quality_lead, f"Action {i}")
                _action(unviewed, quality_lead, f"Other {i}")
    finally:
        Task.apply_async = original
    assert queued == [(viewed.pk,)]


# --- The live closure report: one reading of the plan ------------------------------------


@pytest.fixture
def ready_plan(quality_lead, oakfield):
    """A plan genuinely ready for closure review, built through the services."""
    return factories.make_ready(
        factories.live_plan(owner=quality_lead, locations=[oakfield]), by=quality_lead
    )


@pytest.mark.django_db
def test_the_live_report_read_once_is_the_report_submission_would_freeze(ready_plan):
    from governance import reports
    from qip_portal import closure

    plan = reports.preloaded_plan(ready_plan.pk)
    verdicts = plan_verdicts(plan, preloaded=True)
    blockers = closure.closure_blockers(plan, verdicts=verdicts)
    once = closure.compile_report(plan, verdicts=verdicts, blockers=blockers, preloaded=True)
    afresh = closure.compile_report(type(ready_plan).objects.get(pk=ready_plan.pk))
    once.pop("compiled_at"), afresh.pop("compiled_at")
    assert once == afresh
    assert once["actions"] and once["indicators"] and once["criteria"]


@pytest.mark.django_db
def test_the_live_report_page_computes_in_few_queries(client, quality_lead, ready_plan):
    from django.urls import reverse

    from core import freshness

    url = reverse("governance:plan_report", args=[ready_plan.reference])
    client.force_login(quality_lead)
    client.get(url)
    freshness.data_changed()
    computed, page = _queries(client, url)
    assert "Residual risks" in page
    assert computed <= 26  # 26 on PostgreSQL before issue 19, the verdicts built thrice
