"""Plans' sweeps and transition emails: run twice (or any number of times) under frozen
time, one email; the next ISO week, the next reminder."""

import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction

from core import outbox
from core.models import Alert
from plans import services, sweeps
from plans.models import Action, Plan
from tests import factories

MONDAY_7AM = datetime.datetime(2026, 3, 2, 7, 0, tzinfo=ZoneInfo("Europe/London"))


@pytest.fixture
def frozen():
    with time_machine.travel(MONDAY_7AM, tick=False) as traveller:
        yield traveller


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a sweep as beat would: its queued deliveries go out after commit."""

    def run(sweep, *args):
        with django_capture_on_commit_callbacks(execute=True):
            return sweep(*args)

    return run


@pytest.fixture
def overdue_plan(frozen, quality_lead, manager, oakfield):
    """A live plan whose action (owned by the manager) fell due ten days ago."""
    plan = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        actions=[
            {
                "description": "Refresher training on escalation",
                "owner": manager,
                "due_date": datetime.date(2026, 2, 20),
                "status": "open",
                "completion_note": "",
            }
        ],
    )
    return plan


def test_overdue_action_sweep_twice_sends_one_email_to_the_action_owner(
    overdue_plan, run, mailoutbox
):
    mailoutbox.clear()  # the activation email
    assert run(sweeps.overdue_actions) == "1 overdue action(s), 1 reminder(s) queued"
    assert run(sweeps.overdue_actions) == "1 overdue action(s), 0 reminder(s) queued"
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == ["manager@example.test"]
    assert "10 days overdue" in email.subject and overdue_plan.reference in email.subject
    assert f"http://127.0.0.1:8000{overdue_plan.get_absolute_url()}" in email.body


def test_overdue_reminder_comes_again_next_week_until_the_action_is_done(
    overdue_plan, run, frozen, mailoutbox, manager
):
    mailoutbox.clear()
    run(sweeps.overdue_actions)
    frozen.shift(datetime.timedelta(days=3))
    run(sweeps.overdue_actions)  # same ISO week: nothing
    assert len(mailoutbox) == 1
    frozen.shift(datetime.timedelta(days=4))  # next Monday
    run(sweeps.overdue_actions)
    assert len(mailoutbox) == 2
    action = overdue_plan.actions.get()
    services.save_action(
        plan=overdue_plan, by=manager, fields={"status": "completed"}, action=action
    )
    frozen.shift(datetime.timedelta(days=7))
    assert run(sweeps.overdue_actions).startswith("0 overdue")
    assert len(mailoutbox) == 2


def test_draft_plans_actions_are_not_chased(frozen, quality_lead, oakfield, run, mailoutbox):
    factories.draft_plan(
        owner=quality_lead, locations=[oakfield], opened_on=datetime.date(2026, 1, 1)
    )
    assert Action.objects.filter(due_date__lt=datetime.date(2026, 3, 2)).exists()
    run(sweeps.overdue_actions)
    assert mailoutbox == []


def test_stale_plan_sweep_twice_sends_one_email_to_the_owner(
    frozen, plan, run, mailoutbox, settings
):
    mailoutbox.clear()
    Plan.objects.filter(pk=plan.pk).update(
        last_activity_at=MONDAY_7AM - datetime.timedelta(days=settings.STALE_PLAN_DAYS + 1)
    )
    assert run(sweeps.stale_plans) == "1 stale plan(s), 1 reminder(s) queued"
    assert run(sweeps.stale_plans) == "1 stale plan(s), 0 reminder(s) queued"
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["lead@example.test"]
    assert f"no activity for {settings.STALE_PLAN_DAYS + 1} days" in mailoutbox[0].subject
    assert plan.get_absolute_url() in mailoutbox[0].body


def test_a_fresh_plan_is_not_stale(frozen, plan, run, mailoutbox):
    mailoutbox.clear()
    assert run(sweeps.stale_plans).startswith("0 stale")
    assert mailoutbox == []


def test_transition_email_goes_through_the_outbox_once(
    frozen, quality_lead, manager, oakfield, mailoutbox, django_capture_on_commit_callbacks
):
    plan = factories.draft_plan(owner=manager, locations=[oakfield])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.activate_plan(plan=plan, by=quality_lead)
    assert len(mailoutbox) == 1
    alert = Alert.objects.get(kind="plan-transition")
    # Keyed by the plan's history row for this transition: one email per transition.
    record = plan.history.get(status=Plan.Status.LIVE)
    assert alert.key == f"plan-transition:{plan.pk}:{record.history_id}"
    assert alert.status == Alert.Status.SENT
    # The delivery task redelivered (or run twice), and the relay: no second email.
    for callback in callbacks:
        callback()
    outbox.deliver_due()
    assert len(mailoutbox) == 1


def test_a_transition_that_rolls_back_leaves_no_email(quality_lead, manager, oakfield):
    plan = factories.draft_plan(owner=manager, locations=[oakfield])
    with pytest.raises(RuntimeError), transaction.atomic():
        services.activate_plan(plan=plan, by=quality_lead)
        assert Alert.objects.filter(kind="plan-transition").count() == 1
        raise RuntimeError("the request failed after the transition")
    assert not Alert.objects.filter(kind="plan-transition").exists()


def test_the_plans_sweeps_are_registered_jobs():
    from core.jobs import JOBS

    assert {"plans_overdue_actions", "plans_stale"} <= {job.name for job in JOBS}


def test_the_beat_schedule_triggers_every_sweep_away_from_the_clock_change_hour(settings):
    from qip_portal.celery import app
    from qip_portal.pages import failed_emails as alerts  # noqa: F401 - register their tasks

    schedule = settings.CELERY_BEAT_SCHEDULE
    tasks = {entry["task"] for entry in schedule.values()}
    assert tasks == {
        "core.tasks.deliver_due",
        "core.tasks.recover_stuck_claims",
        "plans.tasks.overdue_actions",
        "plans.tasks.stale_plans",
        "qip_portal.digest.send_weekly_digests",
        "qip_portal.alerts.send_failed_alerts_report",
        "audits.tasks.deterioration",
        "audits.tasks.monitoring_ended",
        "qip_portal.tasks.announce_ready_plans",
        "audits.tasks.reaudits_due",
        "learning.tasks.schedule_due_reviews",
        "learning.tasks.remind_outstanding_acknowledgements",
        "qip_portal.recovery.recover_stuck_work",
    }
    app.loader.import_default_modules()
    assert tasks <= set(app.tasks)
    for name, entry in schedule.items():
        hours = entry["schedule"].hour
        if len(hours) < 24:  # daily or weekly jobs
            assert 1 not in hours, name
    assert settings.CELERY_TIMEZONE == "Europe/London"


# --- Constant queries however many reminders are due (issue #19) -------------------------


def _overdue_actions(n, owner):
    return [
        {
            "description": f"Overdue action {i}",
            "owner": owner,
            "due_date": datetime.date(2026, 2, 20),
            "status": "open",
            "completion_note": "",
        }
        for i in range(n)
    ]


def _queries(django_capture_on_commit_callbacks, sweep, *args):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with (
        CaptureQueriesContext(connection) as ctx,
        django_capture_on_commit_callbacks(execute=False),
    ):
        outcome = sweep(*args)
    return len(ctx.captured_queries), outcome


@pytest.mark.parametrize("n", [1, 30])
def test_overdue_action_sweep_queries_do_not_grow_per_reminder(
    n, frozen, quality_lead, manager, oakfield, django_capture_on_commit_callbacks
):
    factories.live_plan(
        owner=quality_lead, locations=[oakfield], actions=_overdue_actions(n, manager)
    )
    count, outcome = _queries(django_capture_on_commit_callbacks, sweeps.overdue_actions)
    assert outcome == f"{n} overdue action(s), {n} reminder(s) queued"
    assert Alert.objects.filter(kind="overdue-action").count() == n
    # The actions, the outbox's keys, one bulk insert, and three savepoint statements
    # (the sweep's transaction and the insert's; a test runs inside a transaction).
    assert count == 7, count
    again, outcome = _queries(django_capture_on_commit_callbacks, sweeps.overdue_actions)
    assert outcome == f"{n} overdue action(s), 0 reminder(s) queued"
    assert again == 4, again  # no insert


@pytest.mark.parametrize("n", [1, 30])
def test_stale_plan_sweep_queries_do_not_grow_per_reminder(
    n, frozen, quality_lead, oakfield, settings, django_capture_on_commit_callbacks
):
    plans = [
        factories.live_plan(owner=quality_lead, locations=[oakfield], title=f"Plan {i}")
        for i in range(n)
    ]
    Plan.objects.filter(pk__in=[p.pk for p in plans]).update(
        last_activity_at=MONDAY_7AM - datetime.timedelta(days=settings.STALE_PLAN_DAYS + 1)
    )
    count, outcome = _queries(django_capture_on_commit_callbacks, sweeps.stale_plans)
    assert outcome == f"{n} stale plan(s), {n} reminder(s) queued"
    assert count == 7, count


def test_a_key_taken_by_a_concurrent_run_is_skipped_and_the_rest_queued(
    frozen, quality_lead, manager, oakfield
):
    """The bulk insert loses the race for one key: that batch is queued one by one, the
    taken key skipped (never twice), every other email still queued (none dropped)."""
    factories.live_plan(
        owner=quality_lead, locations=[oakfield], actions=_overdue_actions(3, manager)
    )
    week = sweeps.iso_week(datetime.date(2026, 3, 2))
    first = Action.objects.filter(description="Overdue action 0").get()
    key = f"overdue-action:{first.pk}:{week}"
    real = outbox.existing_keys

    # Another run queues the first key just after this run looked at the outbox.
    def look_then_race(keys):
        found = real(keys)
        Alert.objects.create(kind="overdue-action", key=key, recipients=["x@example.test"])
        return found

    outbox.existing_keys, saved = look_then_race, outbox.existing_keys
    try:
        assert sweeps.overdue_actions() == "3 overdue action(s), 2 reminder(s) queued"
    finally:
        outbox.existing_keys = saved
    assert Alert.objects.filter(kind="overdue-action").count() == 3
    assert Alert.objects.get(key=key).recipients == ["x@example.test"]
