"""The closure workflow (qip_portal/closure/workflow.py): one meaning of "ready" everywhere, and
buttons that never lead to a dead end. Plans are built through the services with the
real rules; nothing here stubs a guard, a verdict or another app's service."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from django.urls import reverse

from audits import sweeps as audit_sweeps
from core import freshness
from core.models import Alert
from governance import services as governance
from governance.models import Membership, ResidualRisk
from plans import services as plan_services
from plans.models import Plan, SignOffLevel
from qip_portal import closure
from qip_portal.closure import workflow
from tests import factories
from tests.audits.factories import measure
from tests.factories import PASSWORD

LONDON = ZoneInfo("Europe/London")
NOW = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=LONDON)
TODAY = NOW.date()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run


@pytest.fixture
def chair(db):
    return factories.UserFactory(username="chair", role="governance_member")


@pytest.fixture
def group(quality_lead, chair):
    group = governance.create_group(
        by=quality_lead, name="Safeguarding Governance Group", authority_level=SignOffLevel.BOARD
    )
    governance.set_membership(group=group, user=chair, role=Membership.Role.CHAIR, by=quality_lead)
    return group


def _plan(owner, location, title, **kwargs):
    return factories.live_plan(
        owner=owner,
        locations=[location],
        title=title,
        opened_on=TODAY - datetime.timedelta(days=200),
        **kwargs,
    )


def _step_down(plan, *, lead, chair, group, ends_in_days: int):
    report = closure.submit_for_closure(plan=plan, by=lead, group=group)
    meeting = factories.meeting_of(group, on=TODAY, by=lead, attendees=[chair])
    indicator = plan.indicators.get()
    closure.sign_decision(
        report=report,
        meeting=meeting,
        by=chair,
        otp_token=factories.signing_code(chair),
        password=PASSWORD,
        outcome="step_down",
        reasons="Improvement delivered; keep watching",
        monitoring_indicators=[indicator],
        monitoring_floors={indicator.pk: "85"},
        monitoring_ends_on=TODAY + datetime.timedelta(days=ends_in_days),
    )
    plan.refresh_from_db()
    return plan


def _twenty_plans(lead, manager, chair, group, location) -> tuple[dict[str, Plan], set[str]]:
    """20 plans covering every blocker, and the names of those that are ready."""
    by = lead
    plans: dict[str, Plan] = {}
    for n in range(3):
        plans[f"ready {n}"] = factories.make_ready(_plan(by, location, f"Ready {n}"), by=by)
    # Ready but for one thing each.
    p = _plan(by, location, "No results")
    factories.complete_actions(p, by=by)
    factories.add_required_evidence(p, by=by)
    factories.write_learning_summary(p, by=by)
    factories.record_residual_risk(p, by=by)
    plans["no results"] = p
    p = factories.make_ready(_plan(by, location, "Latest missed"), by=by)
    measure(p, by=manager, on=TODAY - datetime.timedelta(days=1), numerator=10)
    plans["latest missed"] = p
    p = factories.make_ready(_plan(by, location, "Too soon"), by=by)  # a second indicator
    plan_services.add_indicator(
        plan=p,
        by=by,
        fields={
            "name": "Recording quality",
            "measure_type": "proportion",
            "direction": "higher",
            "target": Decimal("90"),
            "unit": "%",
            "frequency": "monthly",
        },
        reason="Commissioner asked for recording quality too",
    )
    plans["new indicator"] = p
    p = factories.make_ready(_plan(by, location, "Open action"), by=by)
    plan_services.save_action(
        plan=p,
        by=by,
        fields={
            "description": "Supervision audit",
            "owner": by,
            "due_date": TODAY + datetime.timedelta(days=10),
            "status": "open",
            "completion_note": "",
        },
    )
    plans["open action"] = p
    p = _plan(by, location, "No evidence")
    factories.meet_criteria(p, by=by)
    factories.complete_actions(p, by=by)
    factories.write_learning_summary(p, by=by)
    factories.record_residual_risk(p, by=by)
    plans["no evidence"] = p
    p = _plan(by, location, "No summary")
    factories.meet_criteria(p, by=by)
    factories.complete_actions(p, by=by)
    factories.add_required_evidence(p, by=by)
    factories.record_residual_risk(p, by=by)
    plans["no summary"] = p
    p = _plan(by, location, "No risks")
    factories.meet_criteria(p, by=by)
    factories.complete_actions(p, by=by)
    factories.add_required_evidence(p, by=by)
    factories.write_learning_summary(p, by=by)
    plans["no risks"] = p
    p = _plan(by, location, "Completed, not verified")  # verification is not a blocker
    factories.meet_criteria(p, by=by)
    factories.complete_actions(p, by=by, verify=False)
    factories.add_required_evidence(p, by=by)
    factories.write_learning_summary(p, by=by)
    factories.record_residual_risk(p, by=by)
    plans["not verified"] = p
    plans["untouched"] = _plan(by, location, "Untouched")
    plans["draft"] = factories.draft_plan(owner=by, locations=[location], title="Draft")
    p = _plan(by, location, "Withdrawn")
    plan_services.withdraw_plan(plan=p, by=by, reason="Opened in error")
    plans["withdrawn"] = p
    p = factories.make_ready(_plan(by, location, "In review"), by=by)
    closure.submit_for_closure(plan=p, by=by, group=group)
    plans["in review"] = p
    p = factories.make_ready(_plan(by, location, "Closed"), by=by)
    report = closure.submit_for_closure(plan=p, by=by, group=group)
    meeting = factories.meeting_of(group, on=TODAY, by=by, attendees=[chair])
    closure.sign_decision(
        report=report,
        meeting=meeting,
        by=chair,
        otp_token=factories.signing_code(chair),
        password=PASSWORD,
        outcome="close",
    )
    plans["closed"] = p
    plans["monitoring running"] = _step_down(
        factories.make_ready(_plan(by, location, "Monitoring running"), by=by),
        lead=by,
        chair=chair,
        group=group,
        ends_in_days=90,
    )
    plans["monitoring ended"] = _step_down(
        factories.make_ready(_plan(by, location, "Monitoring ended"), by=by),
        lead=by,
        chair=chair,
        group=group,
        ends_in_days=10,
    )
    plans["monitoring deteriorated"] = _step_down(
        factories.make_ready(_plan(by, location, "Monitoring deteriorated"), by=by),
        lead=by,
        chair=chair,
        group=group,
        ends_in_days=10,
    )
    plans["monitoring no risks"] = _step_down(
        factories.make_ready(_plan(by, location, "Monitoring, risk removed"), by=by),
        lead=by,
        chair=chair,
        group=group,
        ends_in_days=10,
    )
    assert len(plans) == 20
    # Ready: the evidence and delivery are complete. A missing learning summary or
    # residual risk is the closure report's to add, after the quality lead is told.
    ready = {
        "ready 0",
        "ready 1",
        "ready 2",
        "not verified",
        "no summary",
        "no risks",
        "monitoring ended",
        "monitoring no risks",
    }
    return plans, ready


@pytest.mark.django_db
def test_home_register_plan_page_and_emails_agree_on_what_is_ready(
    client,
    frozen,
    run,
    quality_lead,
    manager,
    chair,
    group,
    oakfield,
    django_capture_on_commit_callbacks,
    mailoutbox,
):
    with django_capture_on_commit_callbacks(execute=True):
        plans, ready = _twenty_plans(quality_lead, manager, chair, group, oakfield)
    frozen.move_to(NOW + datetime.timedelta(days=12))  # two periods have ended
    with django_capture_on_commit_callbacks(execute=True):
        inside = TODAY + datetime.timedelta(days=5)  # inside its period, logged late
        measure(
            plans["monitoring deteriorated"], by=manager, on=inside, numerator=10, denominator=20
        )
        risk = ResidualRisk.objects.get(plan=plans["monitoring no risks"])
        governance.remove_residual_risk(risk=risk, by=quality_lead)
    expected = {plans[name].pk for name in ready}

    # 1. The one function.
    blockers = closure.blockers_for_plans(Plan.objects.all())
    assert {pk for pk, found in blockers.items() if closure.is_ready(found)} == expected
    for name, plan in plans.items():
        assert closure.is_ready(blockers[plan.pk]) == (name in ready), (name, blockers[plan.pk])
        if name.startswith("ready"):
            assert blockers[plan.pk] == []  # nothing at all: may be submitted as it is

    # 2. The plan page, for each plan.
    client.force_login(quality_lead)
    on_page = set()
    for plan in plans.values():
        response = client.get(plan.get_absolute_url())
        assert response.status_code == 200
        context = response.context["closure"]
        status = response.context["plan"].status
        if context["ready"]:
            assert status in ("live", "monitoring")
            on_page.add(plan.pk)
            assert b"Ready for closure review." in response.content, plan.title
    assert on_page == expected

    # 3. The home count and 4. the register's flag.
    cache.clear()
    freshness.data_changed()
    home = client.get(reverse("home"))
    assert home.context["attention"]["ready_for_review"] == len(expected)
    register = client.get(reverse("plans:register"), {"flag": "ready"})
    assert {p.pk for p in register.context["page"].object_list} == expected

    # 5. The emails: "ready for closure review" for live plans, "ready for final closure"
    # when monitoring ends well; every one of them, and no other.
    mailoutbox.clear()
    run(audit_sweeps.monitoring_ended)
    run(closure.announce_ready_plans)
    announced = set()
    for alert in Alert.objects.filter(
        kind__in=["audits-ready-for-review", "audits-monitoring-ended"]
    ):
        reference = re.match(r"QIP-\d{4}-\d{4}", alert.subject).group(0)
        announced.add(Plan.objects.get(reference=reference).pk)
    assert announced == expected
    # And again: nothing more.
    before = Alert.objects.count()
    run(closure.announce_ready_plans)
    assert Alert.objects.count() == before


@pytest.mark.django_db
def test_the_readiness_email_goes_once_per_window_and_again_after_a_slip(
    frozen, run, quality_lead, manager, oakfield, mailoutbox
):
    plan = factories.make_ready(_plan(quality_lead, oakfield, "Announced"), by=quality_lead)
    mailoutbox.clear()
    assert run(closure.announce_ready_plans).startswith("1 plan(s) newly ready")
    run(closure.announce_ready_plans)
    subjects = [m.subject for m in mailoutbox]
    assert subjects == [f"{plan.reference}: ready for closure review"]
    # A miss restarts the window; once it is met again, a new email.
    measure(plan, by=manager, on=TODAY - datetime.timedelta(days=1), numerator=10)
    run(closure.announce_ready_plans)
    assert len(mailoutbox) == 1
    frozen.move_to(NOW + datetime.timedelta(days=120))
    for n in (110, 80, 0):
        measure(plan, by=manager, on=TODAY + datetime.timedelta(days=120 - n))
    run(closure.announce_ready_plans)
    run(closure.announce_ready_plans)
    assert len(mailoutbox) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("extra", [0, 30])
def test_the_readiness_sweep_runs_a_bounded_number_of_queries(
    extra, frozen, run, quality_lead, manager, oakfield, django_assert_max_num_queries
):
    """Queries per batch of plans, not per plan: 1 or 31 live plans, one of them ready,
    cost the same."""
    factories.make_ready(_plan(quality_lead, oakfield, "Ready"), by=quality_lead)
    for i in range(extra):
        other = factories.live_plan(owner=quality_lead, locations=[oakfield], title=f"Other {i}")
        measure(other, by=manager, on=TODAY - datetime.timedelta(days=5))
    # (25: the emails are queued in a transaction of their own, a savepoint in a test;
    # 26: the plans held back by an action not completed, read before any verdict.)
    with django_assert_max_num_queries(26):
        assert run(closure.announce_ready_plans).startswith("1 plan(s)")
    # Already announced for this window: skipped before its verdicts are built.
    with django_assert_max_num_queries(12):
        assert run(closure.announce_ready_plans).endswith("0 email(s) queued")


@pytest.mark.django_db
def test_the_sweep_repairs_the_kept_criteria_date(frozen, run, quality_lead, manager, oakfield):
    plan = _plan(quality_lead, oakfield, "Kept date")
    factories.meet_criteria(plan, by=manager)
    plan.refresh_from_db()
    assert plan.criteria_met_since == TODAY
    Plan.objects.filter(pk=plan.pk).update(criteria_met_since=None)  # test set-up only
    assert closure.ready_plan_ids(Plan.objects.all()) == set()
    run(closure.announce_ready_plans)
    plan.refresh_from_db()
    assert plan.criteria_met_since == TODAY


@pytest.mark.django_db
@pytest.mark.parametrize("n_plans", [1, 50])
def test_the_ready_count_runs_a_fixed_number_of_queries(
    n_plans, frozen, quality_lead, oakfield, django_assert_max_num_queries
):
    for i in range(n_plans):
        factories.make_ready(_plan(quality_lead, oakfield, f"Ready {i}"), by=quality_lead)
    with django_assert_max_num_queries(10):
        assert len(closure.ready_plan_ids(Plan.objects.all())) == n_plans


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["locmem", "file"])
def test_the_ready_count_judges_again_only_the_plan_that_changed(
    backend, frozen, quality_lead, oakfield, django_assert_max_num_queries, settings, tmp_path
):
    """Each plan's answer is kept under its own version where the cache keeps many values
    cheaply (Redis, local memory): with nothing changed no plan is judged again (only
    the candidates are read), and a change to one plan is counted at once. Django's file
    cache would thrash with one value per plan, so there every plan is judged each time."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache"
            if backend == "locmem"
            else "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        }
    }
    waiting = _plan(quality_lead, oakfield, "Waits for its evidence")
    factories.meet_criteria(waiting, by=quality_lead)
    factories.complete_actions(waiting, by=quality_lead)
    factories.write_learning_summary(waiting, by=quality_lead)
    factories.record_residual_risk(waiting, by=quality_lead)
    ready = factories.make_ready(_plan(quality_lead, oakfield, "Ready"), by=quality_lead)
    everything = Plan.objects.all()
    assert closure.ready_plan_ids(everything) == {ready.pk}
    with django_assert_max_num_queries(1 if backend == "locmem" else 10):
        assert closure.ready_plan_ids(everything) == {ready.pk}
    factories.add_required_evidence(waiting, by=quality_lead)
    assert closure.ready_plan_ids(everything) == {ready.pk, waiting.pk}


# --- No dead ends -----------------------------------------------------------------------


def _sign_in(client, user) -> None:
    """Signed in as the user would be: administrators and chairs with a confirmed
    authenticator, verified in this session (django-otp's own session key)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


DEAD_END = b"This cannot happen yet"


def _plans_in_every_status(lead, manager, chair, group, location) -> list[Plan]:
    not_ready = _plan(lead, location, "Live, not ready")
    ready = factories.make_ready(_plan(lead, location, "Live, ready"), by=lead)
    overridable = _plan(lead, location, "Live, criteria not met")
    factories.complete_actions(overridable, by=lead)
    factories.add_required_evidence(overridable, by=lead)
    factories.write_learning_summary(overridable, by=lead)
    factories.record_residual_risk(overridable, by=lead)
    draft = factories.draft_plan(owner=lead, locations=[location], title="Draft")
    incomplete = factories.draft_plan(
        owner=lead, locations=[location], title="Draft, no indicators", indicators=[]
    )
    withdrawn = _plan(lead, location, "Withdrawn")
    plan_services.withdraw_plan(plan=withdrawn, by=lead, reason="Opened in error")
    review = factories.make_ready(_plan(lead, location, "In review"), by=lead)
    closure.submit_for_closure(plan=review, by=lead, group=group)
    closed = factories.make_ready(_plan(lead, location, "Closed"), by=lead)
    report = closure.submit_for_closure(plan=closed, by=lead, group=group)
    meeting = factories.meeting_of(group, on=TODAY, by=lead, attendees=[chair])
    closure.sign_decision(
        report=report,
        meeting=meeting,
        by=chair,
        otp_token=factories.signing_code(chair),
        password=PASSWORD,
        outcome="close",
    )
    running = _step_down(
        factories.make_ready(_plan(lead, location, "Monitoring"), by=lead),
        lead=lead,
        chair=chair,
        group=group,
        ends_in_days=90,
    )
    deteriorating = _step_down(
        factories.make_ready(_plan(lead, location, "Deteriorating"), by=lead),
        lead=lead,
        chair=chair,
        group=group,
        ends_in_days=90,
    )
    ended = _step_down(
        factories.make_ready(_plan(lead, location, "Monitoring ended"), by=lead),
        lead=lead,
        chair=chair,
        group=group,
        ends_in_days=1,
    )
    return [
        not_ready,
        ready,
        overridable,
        draft,
        incomplete,
        withdrawn,
        review,
        closed,
        running,
        deteriorating,
        ended,
    ]


@pytest.mark.django_db
def test_no_button_on_any_plan_page_leads_to_a_dead_end(
    client,
    frozen,
    quality_lead,
    manager,
    viewer,
    administrator,
    chair,
    group,
    oakfield,
    django_capture_on_commit_callbacks,
):
    """Every plan status, every role: each button the page offers leads to a page where
    the step can be completed (its form is there), never to "This cannot happen yet"."""
    with django_capture_on_commit_callbacks(execute=True):
        plans = _plans_in_every_status(quality_lead, manager, chair, group, oakfield)
    frozen.move_to(NOW + datetime.timedelta(days=3))  # one monitoring period has ended
    deteriorating = next(p for p in plans if p.title == "Deteriorating")
    with django_capture_on_commit_callbacks(execute=True):
        measure(deteriorating, by=manager, on=TODAY + datetime.timedelta(days=2), numerator=10)
    followed = 0
    for user in (quality_lead, manager, viewer, administrator, chair):
        _sign_in(client, user)
        for plan in plans:
            page = client.get(plan.get_absolute_url())
            assert page.status_code == 200, (user.role, plan.title)
            html = page.content.decode()
            context = page.context
            links = [step.url for step in context["closure"]["steps"]]
            if context["closure"]["reopen_url"]:
                links.append(context["closure"]["reopen_url"])
            if context["can_activate"]:
                links.append(reverse("plans:transition", args=[plan.reference, "activate"]))
            for url in links:
                assert f'href="{url}"' in html  # offered on the page itself
                target = client.get(url)
                followed += 1
                assert target.status_code == 200, (user.role, plan.title, url)
                assert DEAD_END not in target.content, (user.role, plan.title, url)
                assert b"<form" in target.content and b'type="submit"' in target.content
                if url.endswith("#submit"):  # the submit form itself, not only the risk form
                    assert reverse("governance:submit", args=[plan.reference]).encode() in (
                        target.content
                    )
    assert followed >= 10  # the walk did follow the buttons


@pytest.mark.django_db
def test_a_deteriorating_plan_leads_with_the_signal_and_re_opening(
    client,
    frozen,
    quality_lead,
    manager,
    chair,
    group,
    oakfield,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        plan = _step_down(
            factories.make_ready(_plan(quality_lead, oakfield, "Deteriorating"), by=quality_lead),
            lead=quality_lead,
            chair=chair,
            group=group,
            ends_in_days=90,
        )
    frozen.move_to(NOW + datetime.timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True):
        measure(plan, by=manager, on=TODAY + datetime.timedelta(days=1), numerator=10)
    client.force_login(quality_lead)
    response = client.get(plan.get_absolute_url())
    html = response.content.decode()
    banner = html.index('id="deterioration-banner"')
    assert banner < html.index('id="summary-h"')
    assert "Below the monitoring floor" in html[banner : banner + 600]
    assert "50.0%" in html[banner : banner + 600]
    assert html.count(">Re-open the plan</a>") == 1  # once, in the banner
    steps = response.context["closure"]["steps"]  # computed: the page's first view
    assert not any("final closure" in s.label.lower() for s in steps)


@pytest.mark.django_db
@pytest.mark.parametrize("n", [1, 30])
def test_the_readiness_sweep_queues_1_or_30_emails_in_the_same_queries(
    n, frozen, quality_lead, oakfield, django_capture_on_commit_callbacks
):
    """Every ready plan's email missed (the at-once announcements lost): the sweep
    queues them all in a fixed number of queries (issue #19)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(n):
        factories.make_ready(_plan(quality_lead, oakfield, f"Ready {i}"), by=quality_lead)
    Alert.objects.filter(kind="audits-ready-for-review").delete()
    with (
        CaptureQueriesContext(connection) as ctx,
        django_capture_on_commit_callbacks(execute=False),
    ):
        outcome = closure.announce_ready_plans()
    assert outcome.startswith(f"{n} plan(s) newly ready"), outcome
    assert Alert.objects.filter(kind="audits-ready-for-review").count() == n
    assert len(ctx.captured_queries) == 23, len(ctx.captured_queries)


def test_blocker_urls_are_exactly_what_reverse_gives(quality_lead, oakfield):
    """The readiness check reverses each view once and puts each plan's reference in
    (workflow._PlanUrls); the result must be reverse()'s own, for any reference shape."""
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    urls = workflow._PlanUrls()
    for reference in (plan.reference, "QIP-1-0001", "QIP-2026-12345678901"):
        plan.reference = reference
        for name in ("plans:detail", "audits:log", "governance:plan_report", "audits:reopen"):
            assert urls(name, plan) == reverse(name, args=[reference])
        assert urls("plans:detail", plan, "actions") == reverse(
            "plans:detail", args=[reference]
        ) + "#actions"
