import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from plans import services
from tests import factories


def _plans(n, owner, locations):
    for i in range(n):
        plan = factories.live_plan(owner=owner, locations=locations, title=f"Plan {i}")
        if i % 3 == 0:
            services.withdraw_plan(plan=plan, by=owner, reason="Merged")


@pytest.mark.parametrize("persona", ["quality_lead", "manager", "governance_member", "viewer"])
@pytest.mark.parametrize("rows", [1, 50])
def test_home_runs_a_fixed_number_of_queries(
    client, request, persona, rows, quality_lead, oakfield, django_assert_max_num_queries
):
    _plans(rows, quality_lead, [oakfield])
    client.force_login(request.getfixturevalue(persona))
    with django_assert_max_num_queries(25):
        response = client.get(reverse("home"))
    assert response.status_code == 200


def test_quality_lead_home_counts_and_links(client, quality_lead, manager, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    action = plan.actions.get()
    assert action.due_date < timezone.localdate()  # the factory's action is overdue
    client.force_login(quality_lead)
    response = client.get(reverse("home"))
    body = response.content.decode()
    assert response.context["attention"]["overdue_actions"] == 1
    assert "?overdue=on&amp;status=open" in body
    shape = response.context["shape"]
    assert shape["by_location"][0]["name"] == "Oakfield House"
    month = plan.opened_on.strftime("%Y-%m")
    assert f"?opened_month={month}" in body
    listed = client.get(reverse("plans:register"), {"opened_month": month}).context["page"]
    assert plan in listed.object_list


def test_median_time_to_closure(client, quality_lead, oakfield):
    from tests.learning.helpers import close_plan

    today = timezone.localdate()
    for days in (30, 90, 400):
        plan = factories.live_plan(
            owner=quality_lead,
            locations=[oakfield],
            opened_on=today - datetime.timedelta(days=days),
        )
        close_plan(plan, by=quality_lead)
    client.force_login(quality_lead)
    assert client.get(reverse("home")).context["shape"]["median_days_to_close"] == 90


def test_manager_home_shows_their_work_and_not_the_register_shape(
    client, manager, quality_lead, oakfield
):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    services.save_action(
        plan=plan,
        by=quality_lead,
        fields={
            "description": "Audit the handover sheets",
            "owner": manager,
            "due_date": timezone.localdate() + datetime.timedelta(days=3),
            "status": "open",
        },
    )
    client.force_login(manager)
    response = client.get(reverse("home"))
    assert "shape" not in response.context
    assert "Audit the handover sheets" in response.content.decode()
