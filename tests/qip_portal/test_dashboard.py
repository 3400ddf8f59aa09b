import datetime

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from plans import services
from tests import factories


def _plans(n, owner, locations):
    for i in range(n):
        plan = factories.live_plan(owner=owner, locations=locations, title=f"Plan {i}")
        if i % 3 == 0:
            services.withdraw_plan(plan=plan, by=owner, reason="Merged")


@pytest.mark.parametrize("rows", [1, 50])
def test_home_runs_a_fixed_number_of_queries(
    request, rows, quality_lead, oakfield, django_assert_max_num_queries
):
    personas = ["quality_lead", "manager", "governance_member", "viewer"]
    people = {persona: request.getfixturevalue(persona) for persona in personas}
    _plans(rows, quality_lead, [oakfield])  # built once, read by each persona in turn
    for persona, person in people.items():
        cache.clear()  # each persona's page computed, not read from the last one's cache
        client = Client()
        client.force_login(person)
        try:
            with django_assert_max_num_queries(25) as captured:
                response = client.get(reverse("home"))
        except pytest.fail.Exception as failure:
            pytest.fail(f"the {persona}'s home page: {failure}")
        assert response.status_code == 200, persona
        # The re-audit tiles count on each indicator's stored latest-result date: no
        # statement reads the results table, whose size grows fastest (BENCHMARKS.md).
        reads = [q["sql"] for q in captured.captured_queries if "audits_measurement" in q["sql"]]
        assert not reads, persona


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
    shape = client.get(reverse("home")).context["shape"]
    assert shape["median_days_to_close"] == 90 and shape["closed_count"] == 3
    months = {m["key"]: m for m in shape["months"]}
    assert months[today.strftime("%Y-%m")]["closed"] == 3
    opened = (today - datetime.timedelta(days=90)).strftime("%Y-%m")
    assert months[opened]["opened"] >= 1  # the 400-day-old plan is outside the year shown
    assert sum(m["opened"] for m in shape["months"]) == 2


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


def test_reaudit_counts_in_the_database_agree_with_next_due_on(quality_lead, oakfield):
    """The home page counts in SQL what audits.models.next_due_on defines in Python."""
    from decimal import Decimal

    from django.db.models import Max

    from audits.models import next_due_on
    from plans.models import Indicator
    from qip_portal.pages import dashboard
    from tests.audits.factories import measure

    today = timezone.localdate()
    cases = [  # (frequency, plan opened days ago, results days ago)
        ("weekly", 3, []),
        ("weekly", 10, []),
        ("weekly", 40, [2]),
        ("weekly", 40, [9]),
        ("monthly", 5, []),
        ("monthly", 40, []),
        ("monthly", 200, [20]),
        ("monthly", 200, [40]),
        ("monthly", 200, [10]),
        ("quarterly", 300, [85]),
        ("quarterly", 300, [100, 200]),
        ("fortnightly", 30, [1]),
        ("fortnightly", 30, [15]),
        ("monthly", 20, [25]),
    ]
    for number, (frequency, opened, results) in enumerate(cases):
        plan = factories.live_plan(
            owner=quality_lead,
            locations=[oakfield],
            title=f"Case {number}",
            opened_on=today - datetime.timedelta(days=opened),
            indicators=[
                {
                    "name": "Audit",
                    "measure_type": "proportion",
                    "direction": "higher",
                    "target": Decimal("90"),
                    "unit": "%",
                    "frequency": frequency,
                }
            ],
        )
        for days_ago in results:
            measure(plan, by=quality_lead, on=today - datetime.timedelta(days=days_ago))
    # A frequency outside the known ones counts at the default interval, as in Python.
    odd = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        title="Odd frequency",
        opened_on=today - datetime.timedelta(days=100),
    )
    Indicator.objects.filter(plan=odd).update(frequency="yearly")  # legacy data (set-up)
    expected_overdue = expected_soon = 0
    horizon = today + datetime.timedelta(days=dashboard.REAUDIT_HORIZON_DAYS)
    # From the results themselves, not from the stored last_measured_on.
    for indicator in Indicator.objects.filter(plan__status="live").annotate(
        latest=Max("measurements__measured_on")
    ):
        due = next_due_on(
            frequency=indicator.frequency,
            last_measured_on=indicator.latest,
            start=indicator.plan.opened_on,
        )
        expected_overdue += due < today
        expected_soon += today <= due <= horizon
    assert dashboard._reaudits(quality_lead, today) == (expected_overdue, expected_soon)
    assert expected_overdue > 0 and expected_soon > 0


def test_ready_and_deteriorating_plans_are_counted_and_listed(
    client, quality_lead, manager, oakfield, riverside, django_capture_on_commit_callbacks
):
    """The two tiles that come from audits: ready for closure review (every indicator
    met) and deteriorating in monitoring, each linked to the register showing just those
    plans; a manager sees only their own locations' plans in both."""
    from decimal import Decimal

    from audits import services as audit_services
    from plans import services as plan_services
    from plans.models import Plan
    from tests.audits.factories import measure

    today = timezone.localdate()

    def days_ago(n):
        return today - datetime.timedelta(days=n)

    ready = factories.live_plan(
        owner=quality_lead, locations=[riverside], opened_on=days_ago(200), title="Ready one"
    )
    factories.make_ready(ready, by=quality_lead)  # nothing the closure workflow asks is missing
    watched = factories.live_plan(
        owner=quality_lead, locations=[oakfield], opened_on=days_ago(400), title="Watched one"
    )
    for i in range(6):
        measure(watched, by=quality_lead, on=days_ago(30 * (6 - i) + 5))
    watched.status = Plan.Status.MONITORING
    plan_services._save(watched, by=quality_lead)
    audit_services.start_monitoring(
        plan=watched,
        by=quality_lead,
        floors={watched.indicators.get().pk: Decimal("85")},
        end_date=today + datetime.timedelta(days=60),
        escalate_to=[],
    )
    with django_capture_on_commit_callbacks(execute=True):
        measure(watched, by=quality_lead, on=today, numerator=10)  # 50 %: below 85
    factories.live_plan(owner=quality_lead, locations=[oakfield], title="Ordinary one")

    client.force_login(quality_lead)
    response = client.get(reverse("home"))
    attention = response.context["attention"]
    assert (attention["ready_for_review"], attention["deteriorating"]) == (1, 1)
    assert attention["overdue_actions"] == 2  # the first action of each plan not yet ready
    # The ready plan was re-audited today: its next one is a month away.
    assert (attention["reaudits_overdue"], attention["reaudits_soon"]) == (0, 1)
    body = response.content.decode()
    assert "?flag=ready" in body and "?flag=deteriorating" in body
    register = reverse("plans:register")
    listed = client.get(register, {"flag": "ready"})
    assert [p.pk for p in listed.context["page"].object_list] == [ready.pk]
    assert "Showing plans ready for closure review" in listed.content.decode()
    listed = client.get(register, {"flag": "deteriorating"})
    assert [p.pk for p in listed.context["page"].object_list] == [watched.pk]
    nonsense = client.get(register, {"flag": "nonsense"})
    assert nonsense.status_code == 200
    assert "were not understood" in nonsense.content.decode()

    client.force_login(manager)  # Oakfield House only
    attention = client.get(reverse("home")).context["attention"]
    assert (attention["ready_for_review"], attention["deteriorating"]) == (0, 1)
    assert attention["overdue_actions"] == 2
    assert (attention["reaudits_overdue"], attention["reaudits_soon"]) == (0, 1)
