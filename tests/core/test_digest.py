"""The weekly digest: one a week per person with something to look at, only what they
may see, none for those who opted out (who still get escalations)."""

import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from plans.models import Plan
from qip_portal.pages import digest
from tests import factories

MONDAY_730 = datetime.datetime(2026, 3, 2, 7, 30, tzinfo=ZoneInfo("Europe/London"))


@pytest.fixture
def frozen():
    with time_machine.travel(MONDAY_730, tick=False) as traveller:
        yield traveller


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    def run(*args):
        with django_capture_on_commit_callbacks(execute=True):
            return digest.send_weekly_digests(*args)

    return run


@pytest.fixture
def busy_week(frozen, quality_lead, manager, oakfield, viewer):
    """The manager has an overdue action; the lead owns a plan in closure review."""
    overdue = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        title="Medicines recording",
        actions=[
            {
                "description": "Audit MAR charts",
                "owner": manager,
                "due_date": datetime.date(2026, 2, 20),
                "status": "open",
                "completion_note": "",
            }
        ],
    )
    review = factories.live_plan(
        owner=quality_lead, locations=[oakfield], title="Falls", actions=[]
    )
    Plan.objects.filter(pk=review.pk).update(status=Plan.Status.CLOSURE_REVIEW)
    return overdue, review


def test_digest_twice_sends_one_email_per_person_with_something_to_look_at(
    busy_week, run, mailoutbox
):
    overdue, review = busy_week
    mailoutbox.clear()
    assert run() == "2 digest(s) due, 2 queued"
    assert run() == "2 digest(s) due, 0 queued"
    by_person = {email.to[0]: email for email in mailoutbox}
    assert set(by_person) == {"manager@example.test", "lead@example.test"}  # not the viewer
    manager_email = by_person["manager@example.test"].body
    assert "Audit MAR charts" in manager_email and overdue.reference in manager_email
    assert review.reference not in manager_email  # closure review is for quality leads
    lead_email = by_person["lead@example.test"]
    assert review.reference in lead_email.body and "closure review" in lead_email.body
    assert "1 in closure review" in lead_email.subject
    assert f"http://127.0.0.1:8000{review.get_absolute_url()}" in lead_email.body
    assert "http://127.0.0.1:8000/accounts/security/" in lead_email.body
    assert "cannot be turned off" in lead_email.body  # escalations: no opt-out


def test_the_next_monday_brings_the_next_digest(busy_week, run, frozen, mailoutbox):
    mailoutbox.clear()
    run()
    frozen.shift(datetime.timedelta(days=7))
    run()
    run()
    assert len(mailoutbox) == 4


def test_the_digest_goes_out_on_its_day_not_whenever_the_jobs_start(
    busy_week, run, frozen, mailoutbox
):
    """`make run` runs every job at start and every ten minutes: the digest still waits
    for Monday 07:30."""
    mailoutbox.clear()
    frozen.move_to(MONDAY_730 - datetime.timedelta(minutes=1))
    assert run().startswith("0 digest(s) due")
    frozen.move_to(MONDAY_730 + datetime.timedelta(days=1))  # Tuesday
    assert run().startswith("0 digest(s) due")
    assert mailoutbox == []
    frozen.move_to(MONDAY_730 + datetime.timedelta(days=7))
    assert run() == "2 digest(s) due, 2 queued"


def test_opted_out_users_get_no_digest(busy_week, run, mailoutbox, manager):
    mailoutbox.clear()
    digest.set_weekly_digest(user=manager, enabled=False)
    manager.refresh_from_db()
    assert manager.weekly_digest is False
    assert manager.history.first().history_change_reason == "Weekly digest turned off"
    run()
    assert [email.to for email in mailoutbox] == [["lead@example.test"]]


def test_stale_plans_appear_in_their_owners_digest(frozen, plan, run, mailoutbox, settings):
    mailoutbox.clear()
    plan.actions.all().delete()
    Plan.objects.filter(pk=plan.pk).update(
        last_activity_at=MONDAY_730 - datetime.timedelta(days=settings.STALE_PLAN_DAYS + 5)
    )
    run()
    assert len(mailoutbox) == 1
    assert "no recent activity" in mailoutbox[0].body and plan.reference in mailoutbox[0].body


def test_nothing_to_look_at_means_no_email(frozen, quality_lead, run, mailoutbox):
    assert run() == "0 digest(s) due, 0 queued"
    assert mailoutbox == []


def test_building_digests_takes_a_fixed_number_of_queries(
    busy_week, django_assert_max_num_queries, oakfield
):
    for n in range(5):
        factories.UserFactory(username=f"extra{n}", role="manager", locations=[oakfield])
    with django_assert_max_num_queries(4):
        digests = digest.build_digests()
    assert len(digests) >= 7


def test_the_digest_is_a_registered_job():
    from core.jobs import JOBS

    assert "weekly_digest" in {job.name for job in JOBS}


@pytest.mark.parametrize("n", [1, 30])
def test_sending_digests_takes_the_same_queries_for_1_or_30_people(
    n, frozen, quality_lead, oakfield, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.models import Alert

    owners = [
        factories.UserFactory(username=f"owner{i}", role="manager", locations=[oakfield])
        for i in range(n)
    ]
    factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        actions=[
            {
                "description": f"Action {i}",
                "owner": owner,
                "due_date": datetime.date(2026, 2, 20),
                "status": "open",
                "completion_note": "",
            }
            for i, owner in enumerate(owners)
        ],
    )
    with (
        CaptureQueriesContext(connection) as ctx,
        django_capture_on_commit_callbacks(execute=False),
    ):
        assert digest.send_weekly_digests() == f"{n} digest(s) due, {n} queued"
    assert Alert.objects.filter(kind="weekly-digest").count() == n
    # build_digests (four), the outbox's keys, one bulk insert, and four savepoint
    # statements (the sweep's transaction and the insert's, inside the test's).
    assert len(ctx.captured_queries) == 10, len(ctx.captured_queries)
