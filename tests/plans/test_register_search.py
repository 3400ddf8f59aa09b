"""The register search: any part of a word, in any letter case, in a plan's reference,
title and summary and its triggers' references; on PostgreSQL through trigram indexes
(migration plans 0007), on SQLite by a plain scan, with the same results."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from plans import services
from plans.models import Trigger
from plans.views import _register_queryset
from tests import factories


def _search(client, q):
    response = client.get(reverse("plans:register"), {"q": q})
    assert response.status_code == 200
    return list(response.context["page"].object_list)


@pytest.fixture
def plans(quality_lead, oakfield):
    falls = factories.live_plan(
        owner=quality_lead, locations=[oakfield], title="Falls at night on Ward 7"
    )
    data = factories.new_plan_data(
        owner=quality_lead, locations=[oakfield], title="Bedside handover"
    )
    data.plan_fields["summary"] = "Nurses missed sepsis screening after a FALL-related admission."
    bedside = services.activate_plan(
        plan=services.create_plan(by=quality_lead, data=data), by=quality_lead
    )
    services.add_trigger(
        plan=bedside,
        by=quality_lead,
        fields={
            "kind": Trigger.Kind.choices[0][0],
            "reference": "DATIX-20931",
            "occurred_on": datetime.date(2026, 1, 5),
            "description": "Reported incident.",
        },
    )
    other = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Medicines")
    return falls, bedside, other


@pytest.mark.parametrize(
    "q, expected",
    [
        ("fall", {"falls", "bedside"}),  # part of a word, in the title and in a summary
        ("FALLS", {"falls"}),  # any letter case
        ("t nig", {"falls"}),  # across words
        ("atix-209", {"bedside"}),  # part of a trigger's reference
        ("sepsis", {"bedside"}),
        ("nothing like it", set()),
    ],
)
def test_search_finds_any_part_of_a_word_in_every_searched_field(
    client, quality_lead, plans, q, expected
):
    client.force_login(quality_lead)
    falls, bedside, other = plans
    names = {falls.pk: "falls", bedside.pk: "bedside", other.pk: "other"}
    found = _search(client, q)
    assert len(found) == len(set(found))  # each plan once, whatever matched
    assert {names[p.pk] for p in found} == expected


def test_a_plan_reference_finds_its_plan(client, quality_lead, plans):
    client.force_login(quality_lead)
    falls = plans[0]
    assert _search(client, falls.reference[-4:].lower()) == [falls]


def _indexed(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql[0], sql[1])
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
def test_on_postgresql_the_search_reads_trigram_indexes(rf, quality_lead, plans):
    """The four trigram indexes exist and the planner answers the search through them
    (sequential scans are switched off, so it must use an index if one fits)."""
    from plans.forms import RegisterFilterForm

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm'")
        names = {row[0] for row in cursor.fetchall()}
    assert names == {
        "plans_plan_reference_trgm",
        "plans_plan_title_trgm",
        "plans_plan_summary_trgm",
        "plans_trigger_reference_trgm",
    }
    form = RegisterFilterForm({"q": "fall"}, user=quality_lead, flags={})
    # The matching ids are read once, while the register's queryset is built.
    with CaptureQueriesContext(connection) as ctx:
        _register_queryset(quality_lead, form, {})
    (matching,) = [q["sql"] for q in ctx.captured_queries if "LIKE" in q["sql"]]
    plan = _indexed((matching.replace("%", "%%"), ()))  # its literals inlined
    for name in names:
        assert name in plan, plan
