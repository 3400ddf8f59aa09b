"""An action already completed when its plan is opened keeps the date it was completed:
the open-plan form asks for it, and the plan page and closure report show it."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from plans import services
from plans.models import Plan
from qip_portal import closure
from tests import factories
from tests.plans.test_views import create_post


@pytest.fixture
def theme(db):
    return factories.ThemeFactory()


def _completed_action(owner, **fields) -> dict:
    today = timezone.localdate()
    row = {
        "actions-0-description": "Locked the treatment room fridge",
        "actions-0-owner": owner.pk,
        "actions-0-due_date": today.isoformat(),
        "actions-0-status": "completed",
        "actions-0-completion_note": "Fridge locked and keys logged.",
    }
    row.update({f"actions-0-{k}": v for k, v in fields.items()})
    return row


def test_an_action_completed_before_the_plan_was_written_keeps_its_date(
    client, quality_lead, oakfield, theme
):
    today = timezone.localdate()
    opened = today - datetime.timedelta(days=10)
    done = today - datetime.timedelta(days=12)
    data = create_post(
        theme,
        oakfield,
        quality_lead,
        **{
            "plan-opened_on": opened.isoformat(),
            "triggers-0-occurred_on": (today - datetime.timedelta(days=14)).isoformat(),
        },
        **_completed_action(quality_lead, completed_on=done.strftime("%d/%m/%Y")),
    )
    client.force_login(quality_lead)
    response = client.post(reverse("plans:create"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    plan = Plan.objects.get()
    action = plan.actions.get()
    assert action.completed_on == done != plan.opened_on
    page = client.get(plan.get_absolute_url()).content.decode()
    assert f"Yes, {done.day} {done:%b %Y}" in page
    report = closure.compile_report(plan)
    assert [a["completed_on"] for a in report["actions"]] == [f"{done.day} {done:%b %Y}"]


@pytest.mark.parametrize(
    ("completed_on", "message"),
    [
        ("", "Give the date this action was completed."),
        ("tomorrow", "Enter the date as day/month/year, for example"),
        ("future", "An action cannot be completed in the future."),
        ("before-trigger", "before what triggered the plan"),
    ],
)
def test_a_completed_action_needs_a_believable_completion_date(
    client, quality_lead, oakfield, theme, completed_on, message
):
    today = timezone.localdate()
    occurred = today - datetime.timedelta(days=5)
    value = {
        "future": (today + datetime.timedelta(days=1)).isoformat(),
        "before-trigger": (occurred - datetime.timedelta(days=1)).isoformat(),
    }.get(completed_on, completed_on)
    data = create_post(
        theme,
        oakfield,
        quality_lead,
        **{"triggers-0-occurred_on": occurred.isoformat()},
        **_completed_action(quality_lead, completed_on=value),
    )
    client.force_login(quality_lead)
    response = client.post(reverse("plans:create"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Plan.objects.count() == 0


def test_an_action_not_completed_does_not_keep_a_completion_date(
    client, quality_lead, oakfield, theme
):
    data = create_post(
        theme,
        oakfield,
        quality_lead,
        **_completed_action(
            quality_lead,
            status="in_progress",
            completed_on=timezone.localdate().isoformat(),
            completion_note="",
        ),
    )
    client.force_login(quality_lead)
    assert client.post(reverse("plans:create"), data).status_code == 302
    assert Plan.objects.get().actions.get().completed_on is None


def test_create_plan_refuses_a_completed_action_without_its_date(quality_lead, oakfield):
    """The service does not invent a date (it used to take the opened date)."""
    data = factories.new_plan_data(
        owner=quality_lead,
        locations=[oakfield],
        actions=[
            {
                "description": "Done already",
                "owner": quality_lead,
                "due_date": timezone.localdate(),
                "status": "completed",
                "completion_note": "Done.",
            }
        ],
    )
    with pytest.raises(services.TransitionRefused, match="date “Done already” was completed"):
        services.create_plan(by=quality_lead, data=data)
    assert Plan.objects.count() == 0


def test_editing_an_action_to_completed_asks_for_the_date(client, manager, plan):
    action = plan.actions.get()
    client.force_login(manager)
    url = reverse("plans:edit_action", args=[plan.reference, action.pk])
    fields = {
        "description": action.description,
        "owner": manager.pk,
        "due_date": action.due_date.isoformat(),
        "status": "completed",
        "completion_note": "Delivered.",
    }
    assert "Give the date this action was completed." in client.post(url, fields).content.decode()
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    response = client.post(url, {**fields, "completed_on": yesterday.strftime("%d/%m/%Y")})
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.completed_on == yesterday
