import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from core import freshness
from plans.models import Plan
from tests import factories

# What a browser posts for an untouched extra row: its select boxes' defaults.
UNTOUCHED = {"indicators": {"frequency": "monthly"}, "actions": {"status": "open"}}


def _formset(prefix: str, rows: list[dict], total: int) -> dict:
    rows = rows + [UNTOUCHED.get(prefix, {})] * (total - len(rows))
    data = {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def create_post(theme, location, owner, **overrides) -> dict:
    today = timezone.localdate()
    data = {
        "plan-title": "Missed escalation of safeguarding concerns",
        "plan-summary": "Several alerts about missed escalation.",
        "plan-theme": theme.pk,
        "plan-locations": [location.pk],
        "plan-owner": owner.pk,
        "plan-likelihood": "4",
        "plan-impact": "4",
        "plan-key_questions": ["safe"],
        "plan-opened_on": today.isoformat(),
        "plan-target_date": (today + datetime.timedelta(days=180)).isoformat(),
        "criteria-success_in_practice": "Concerns escalated within 24 hours.",
        "criteria-sustain_months": "3",
        "criteria-min_reaudits": "2",
        "criteria-required_evidence": ["re_audit"],
        "criteria-sign_off_level": "3",
    }
    data.update(
        _formset(
            "triggers",
            [
                {
                    "kind": "safeguarding_alert",
                    "reference": "SG-1",
                    "occurred_on": today.isoformat(),
                    "description": "Late escalation",
                }
            ],
            2,
        )
    )
    data.update(
        _formset(
            "indicators",
            [
                {
                    "name": "Escalated in 24h",
                    "measure_type": "proportion",
                    "direction": "higher",
                    "target": "95",
                    "unit": "%",
                    "frequency": "monthly",
                }
            ],
            3,
        )
    )
    data.update(
        _formset(
            "actions",
            [
                {
                    "description": "Refresher training",
                    "owner": owner.pk,
                    "due_date": (today + datetime.timedelta(days=14)).isoformat(),
                    "status": "open",
                    "completion_note": "",
                }
            ],
            3,
        )
    )
    data.update(overrides)
    return data


@pytest.fixture
def theme(db):
    return factories.ThemeFactory()


def test_quality_lead_opens_a_plan_with_everything_in_one_form(
    client, quality_lead, oakfield, theme
):
    client.force_login(quality_lead)
    response = client.post(reverse("plans:create"), create_post(theme, oakfield, quality_lead))
    plan = Plan.objects.get()
    assert response.status_code == 302 and response["Location"] == plan.get_absolute_url()
    assert plan.status == Plan.Status.DRAFT and plan.risk_score == 16
    assert plan.triggers.count() == 1 and plan.indicators.count() == 1 and plan.actions.count() == 1
    assert plan.criteria.sustain_months == 3
    page = client.get(plan.get_absolute_url()).content.decode()
    assert "opened the plan" in page  # the timeline, in words


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"criteria-success_in_practice": ""}, "This field is required."),
        ({"indicators-0-target": "ninety"}, "The target must be a number"),
        ({"criteria-sustain_months": "0"}, "The sustain period must be at least one month."),
        ({"criteria-sustain_months": "-2"}, "at least one month"),
        (
            {"actions-0-due_date": "2000-01-01"},
            "The due date cannot be before the plan was opened.",
        ),
        (
            {
                "triggers-1-kind": "safeguarding_alert",
                "triggers-1-reference": "sg-1",
                "triggers-1-occurred_on": "2026-01-01",
                "triggers-1-description": "Same",
            },
            "is entered twice",
        ),
        ({"plan-title": "x" * 201}, "at most 200 characters"),
        ({"indicators-0-name": ""}, "Add at least 1 indicator"),
        (
            {"plan-target_date": "2001-01-01"},
            "The target date cannot be before the plan was opened.",
        ),
        ({"indicators-0-target": "150"}, "between 0 and 100"),
    ],
)
def test_bad_input_is_explained_and_nothing_is_saved(
    client, quality_lead, oakfield, theme, overrides, message
):
    client.force_login(quality_lead)
    data = create_post(theme, oakfield, quality_lead, **overrides)
    if overrides.get("indicators-0-name") == "":
        for field in ["measure_type", "direction", "target", "unit"]:
            data[f"indicators-0-{field}"] = ""
    response = client.post(reverse("plans:create"), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body
    # Listed at the top too, in the error summary.
    start = body.index('id="error-summary"')
    summary = body[start : body.index("</div>", start)]
    assert "Nothing was saved" in summary and message in summary
    assert Plan.objects.count() == 0
    assert "Several alerts about missed escalation." in body  # what was typed is kept


def test_register_filters_search_and_sort(client, quality_lead, oakfield, riverside):
    client.force_login(quality_lead)
    a = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Falls at night")
    b = factories.draft_plan(owner=quality_lead, locations=[riverside], title="Medicines rounds")
    url = reverse("plans:register")
    assert list(client.get(url, {"q": "falls"}).context["page"].object_list) == [a]
    # A trigger reference finds its plans, each once (the factory gives both "SG-1").
    from plans.models import Trigger

    Trigger.objects.create(plan=a, kind="complaint", reference="SG-12", occurred_on=a.opened_on)
    found = list(client.get(url, {"q": "sg-1", "sort": "title"}).context["page"].object_list)
    assert found == [a, b]
    assert list(client.get(url, {"location": riverside.pk}).context["page"].object_list) == [b]
    assert list(client.get(url, {"status": "live"}).context["page"].object_list) == [a]
    assert list(client.get(url, {"sort": "title"}).context["page"].object_list) == [a, b]
    # The owner filter offers the people who own a plan, each once.
    owners = list(client.get(url).context["form"].fields["owner"].choices)
    assert owners == [("", "Any owner"), (quality_lead.pk, str(quality_lead))]
    other = factories.UserFactory(
        username="nobody-owns", first_name="", last_name="", role="manager", locations=[oakfield]
    )
    c = factories.draft_plan(owner=other, locations=[oakfield], title="Night checks")
    form = client.get(url).context["form"]
    assert (other.pk, "nobody-owns") in form.fields["owner"].choices  # the username if unnamed
    assert list(client.get(url, {"owner": other.pk}).context["page"].object_list) == [c]
    found = client.get(url, {"theme": c.theme_id, "q": "checks"}).context["page"].object_list
    assert list(found) == [c]
    # Nonsense in the query string is ignored, not an error.
    assert client.get(url, {"status": "nonsense", "page": "x", "q": "\"'<>ü"}).status_code == 200
    # An id that is not offered is not understood (and not used), whatever it is.
    for bad in ("999999", "x", "1.5"):
        response = client.get(url, {"location": bad})
        assert response.status_code == 200
        assert "Some filters were not understood" in response.content.decode()
        assert len(response.context["page"].object_list) == 3


def test_register_location_filter_offers_only_the_users_own_locations(
    client, manager, oakfield, riverside
):
    client.force_login(manager)
    url = reverse("plans:register")
    choices = client.get(url).context["form"].fields["location"].choices
    assert choices == [("", "Any location"), (oakfield.pk, "Oakfield House")]
    # Riverside's id is refused as a choice: it filters nothing and reveals nothing.
    body = client.get(url, {"location": riverside.pk}).content.decode()
    assert "Some filters were not understood" in body
    assert "Riverside Court" not in body


def test_register_counts_overdue_actions_per_plan_without_joining_every_action(
    client, quality_lead, oakfield
):
    """The overdue column and filter come from a correlated subquery: the page query
    never joins plans to all their actions (BENCHMARKS.md, fix 2)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    today = timezone.localdate()
    late = today - datetime.timedelta(days=3)
    action = {"owner": quality_lead, "completion_note": ""}
    busy = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        title="Two overdue",
        actions=[
            {**action, "description": "Late one", "status": "open", "due_date": late},
            {**action, "description": "Late two", "status": "in_progress", "due_date": late},
            {
                **action,
                "description": "Late but done",
                "status": "completed",
                "due_date": late,
                "completed_on": late,
                "completion_note": "Done on the ward.",
            },
            {
                **action,
                "description": "Not due yet",
                "status": "open",
                "due_date": today + datetime.timedelta(days=9),
            },
        ],
    )
    calm = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        title="Nothing late",
        actions=[
            {
                **action,
                "description": "Due next month",
                "status": "open",
                "due_date": today + datetime.timedelta(days=30),
            }
        ],
    )
    client.force_login(quality_lead)
    url = reverse("plans:register")
    with CaptureQueriesContext(connection) as captured:
        rows = {p.pk: p.overdue_actions for p in client.get(url).context["page"].object_list}
    assert rows == {busy.pk: 2, calm.pk: 0}
    assert not [q["sql"] for q in captured if 'JOIN "plans_action"' in q["sql"]]
    listed = client.get(url, {"overdue": "on"}).context["page"].object_list
    assert [p.pk for p in listed] == [busy.pk]
    assert "2 overdue actions" in client.get(url).content.decode()


@pytest.mark.parametrize("rows", [1, 50])
def test_register_runs_a_fixed_number_of_queries(
    client, quality_lead, oakfield, riverside, rows, django_assert_max_num_queries, settings
):
    settings.REGISTER_PAGE_SIZE = 50
    for i in range(rows):
        factories.live_plan(owner=quality_lead, locations=[oakfield, riverside], title=f"Plan {i}")
    client.force_login(quality_lead)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("plans:register"))
    assert len(response.context["page"].object_list) == rows


def test_plan_page_runs_a_fixed_number_of_queries(
    client, quality_lead, oakfield, django_assert_max_num_queries
):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    with django_assert_max_num_queries(60) as small:
        client.get(plan.get_absolute_url())
    from plans import services

    for i in range(20):
        services.save_action(
            plan=plan,
            by=quality_lead,
            fields={
                "description": f"Action {i}",
                "owner": quality_lead,
                "due_date": plan.opened_on + datetime.timedelta(days=i),
                "status": "open",
            },
        )
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(plan.get_absolute_url())


def test_plan_page_reads_the_plan_and_its_parts_once_even_when_computing_verdicts(
    client, quality_lead, oakfield
):
    """The plan (with its criteria), its indicators and its actions are read once and
    shared by the page, its sections and the verdicts, on a first view too."""
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core import freshness
    from plans import services

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    services.save_action(
        plan=plan,
        by=quality_lead,
        fields={
            "description": "Retrain night staff",
            "owner": quality_lead,
            "due_date": plan.opened_on,
            "status": "open",
        },
    )
    client.force_login(quality_lead)
    client.get(plan.get_absolute_url())
    freshness.data_changed()  # computed afresh: verdicts, charts and timeline
    with CaptureQueriesContext(connection) as captured:
        response = client.get(plan.get_absolute_url())
    assert response.status_code == 200
    statements = [q["sql"] for q in captured.captured_queries]
    # The page's head reads the plan's reference and title for the access check (the
    # content, cached as HTML, reads its own rows): the whole row is read once.
    for table in ("plans_plan", "plans_closurecriteria", "plans_indicator", "plans_action"):
        reads = [s for s in statements if re.search(rf'FROM "{table}"', s)]
        if table == "plans_plan":
            reads = [s for s in reads if '"plans_plan"."summary"' in s]
        assert len(reads) == (0 if table == "plans_closurecriteria" else 1), (table, reads)
    assert any('LEFT OUTER JOIN "plans_closurecriteria"' in s for s in statements)
    # And what they feed is right: the open action holds the plan back from closure.
    audits = response.context["audits"]
    open_actions = plan.actions.exclude(status="completed").count()
    assert open_actions == 2  # the factory's and this one
    assert len(audits["verdicts"].open_actions) == open_actions
    assert [v.indicator.pk for v in audits["verdicts"].indicators] == [
        i.pk for i in plan.indicators.all()
    ]
    assert audits["verdicts"].criteria == plan.criteria


def test_plan_page_never_caches_figures_from_rows_older_than_their_version(
    client, quality_lead, oakfield, monkeypatch
):
    """The plan page reads its plan, indicators and actions before it computes the
    verdicts; a change committed by someone else in between must not leave verdicts
    from the older rows cached for everyone (core.freshness.pinned)."""
    from core import freshness
    from plans import views
    from plans.models import Action

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    assert plan.actions.exclude(status="completed").count() == 1
    client.force_login(quality_lead)
    real = views.prefetch_related_objects

    def read_then_someone_else_commits(*args, **kwargs):
        real(*args, **kwargs)
        Action.objects.filter(plan=plan).update(
            status="completed", completed_on=plan.opened_on
        )  # the other request's change, and its commit moving the version on
        freshness.data_changed()

    monkeypatch.setattr(views, "prefetch_related_objects", read_then_someone_else_commits)

    def audits_panel():
        response = client.get(plan.get_absolute_url())
        return response.context["audits"]

    assert len(audits_panel()["verdicts"].open_actions) == 1  # this view read the rows before
    monkeypatch.setattr(views, "prefetch_related_objects", real)
    assert len(audits_panel()["verdicts"].open_actions) == 0  # the next one is not served them


def test_cached_plan_figures_carry_no_ones_password_hash(client, quality_lead, oakfield):
    """The verdicts are cached (pickled); the plan page's rows come with their owner
    and the actions' owners. None of that goes into the cache."""
    import pickle

    from core import freshness

    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    freshness.data_changed()
    response = client.get(plan.get_absolute_url())
    verdicts = response.context["audits"]["verdicts"]
    quality_lead.refresh_from_db()
    pickled = pickle.dumps(verdicts)
    assert quality_lead.password and quality_lead.password.encode() not in pickled
    assert verdicts.plan.pk == plan.pk and verdicts.indicators  # still the plan's verdicts
    assert not getattr(verdicts.plan, "_prefetched_objects_cache", None)


def test_plan_page_queries_do_not_grow_with_indicators_and_their_history(
    client, quality_lead, oakfield, django_assert_max_num_queries
):
    """Five indicators with results (each with history records in the timeline) cost
    what one does: the timeline names each from its history record, not by reading
    the live row per record (simple-history's ``record.instance`` would)."""
    from decimal import Decimal

    from tests.audits.factories import measure

    def indicator(name):
        return {
            "name": name,
            "measure_type": "proportion",
            "direction": "higher",
            "target": Decimal("90"),
            "unit": "%",
            "frequency": "monthly",
        }

    one = factories.live_plan(owner=quality_lead, locations=[oakfield], title="One")
    five = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        title="Five",
        indicators=[indicator(f"Audit {i}") for i in range(5)],
    )
    for plan in (one, five):
        for ind in plan.indicators.all():
            measure(plan, by=quality_lead, on=plan.opened_on, indicator=ind)
    client.force_login(quality_lead)
    client.get(one.get_absolute_url())
    freshness.data_changed()  # the pages as computed, not as cached (core.freshness)
    with django_assert_max_num_queries(60) as small:
        client.get(one.get_absolute_url())
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(five.get_absolute_url())
    assert "Audit 4" in response.content.decode()


def test_plan_page_queries_do_not_grow_with_the_plans_own_changes(
    client, quality_lead, oakfield, django_assert_max_num_queries
):
    """Each change to the plan is a history record diffed against the one before:
    without its many-to-many fields, or simple-history reads their history per record."""
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    client.get(plan.get_absolute_url())
    freshness.data_changed()
    with django_assert_max_num_queries(60) as few:
        client.get(plan.get_absolute_url())
    for i in range(6):
        plan.title = f"Renamed {i}"
        plan.save()
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(plan.get_absolute_url())
    assert "changed the plan: title from Renamed 4 to Renamed 5" in response.content.decode()


def test_export_neutralises_formula_cells(client, quality_lead, oakfield):
    factories.live_plan(owner=quality_lead, locations=[oakfield], title='=HYPERLINK("http://x")')
    client.force_login(quality_lead)
    response = client.get(reverse("plans:register"), {"export": "csv"})
    body = response.content.decode()
    assert response["Content-Type"].startswith("text/csv")
    assert "'=HYPERLINK" in body and ",=HYPERLINK" not in body
    response = client.get(reverse("plans:register"), {"export": "xlsx"})
    assert response.status_code == 200 and response.content[:2] == b"PK"


def _plan_urls(plan) -> list[tuple[str, bool]]:
    """Every plan URL, and whether it changes something."""
    action = plan.actions.first()
    ref = plan.reference
    return [
        (reverse("plans:detail", args=[ref]), False),
        (reverse("plans:edit", args=[ref]), True),
        (reverse("plans:edit_criteria", args=[ref]), True),
        (reverse("plans:add_indicator", args=[ref]), True),
        (reverse("plans:add_trigger", args=[ref]), True),
        (reverse("plans:add_action", args=[ref]), True),
        (reverse("plans:edit_action", args=[ref, action.pk]), True),
        (reverse("plans:verify_action", args=[ref, action.pk]), True),
        (reverse("plans:transition", args=[ref, "withdraw"]), True),
        (reverse("plans:transition", args=[ref, "activate"]), True),
    ]


def test_every_plan_url_is_404_to_a_manager_of_another_location(client, plan, outsider):
    client.force_login(outsider)
    for url, _ in _plan_urls(plan):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"reason": "x"}).status_code == 404, url
    assert plan.reference not in client.get(reverse("plans:register")).content.decode()
    plan.refresh_from_db()
    assert plan.status == Plan.Status.LIVE


@pytest.mark.parametrize("persona", ["viewer", "governance_member"])
def test_read_only_roles_can_read_but_change_nothing(client, plan, persona, request):
    client.force_login(request.getfixturevalue(persona))
    before = Plan.history.count()
    for url, changes in _plan_urls(plan):
        if changes:
            assert client.get(url).status_code == 404, url
            assert client.post(url, {"reason": "x", "description": "y"}).status_code == 404, url
        else:
            assert client.get(url).status_code == 200, url
    assert Plan.history.count() == before
    assert client.get(reverse("plans:create")).status_code == 404


def test_manager_sees_only_their_locations(client, manager, quality_lead, oakfield, riverside):
    mine = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Mine")
    theirs = factories.live_plan(owner=quality_lead, locations=[riverside], title="Theirs")
    client.force_login(manager)
    listed = list(client.get(reverse("plans:register")).context["page"].object_list)
    assert listed == [mine]
    assert client.get(theirs.get_absolute_url()).status_code == 404
    assert client.get(mine.get_absolute_url()).status_code == 200


def test_manager_can_complete_an_action_but_not_edit_the_plan(client, manager, plan):
    client.force_login(manager)
    action = plan.actions.get()
    assert client.get(reverse("plans:edit", args=[plan.reference])).status_code == 404
    response = client.post(
        reverse("plans:edit_action", args=[plan.reference, action.pk]),
        {
            "description": action.description,
            "owner": manager.pk,
            "due_date": action.due_date.isoformat(),
            "status": "completed",
            "completion_note": "",
        },
    )
    assert "Say what was done" in response.content.decode()
    action.refresh_from_db()
    assert action.status == "open"


def test_withdraw_from_the_plan_page_needs_a_reason(client, quality_lead, plan):
    client.force_login(quality_lead)
    url = reverse("plans:transition", args=[plan.reference, "withdraw"])
    response = client.post(url, {"reason": ""})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    response = client.post(url, {"reason": "Merged", "merged_into": "QIP-1999-0001"})
    assert "There is no plan QIP-1999-0001 that you can see." in response.content.decode()
    response = client.post(url, {"reason": "Opened twice"})
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.status == Plan.Status.WITHDRAWN


def test_activate_from_the_plan_page_lists_what_is_missing(client, quality_lead, oakfield):
    plan = factories.draft_plan(owner=quality_lead, locations=[oakfield], indicators=[])
    client.force_login(quality_lead)
    url = reverse("plans:transition", args=[plan.reference, "activate"])
    assert "Add at least one indicator" in client.get(url).content.decode()
    response = client.post(url, {})
    assert "Add at least one indicator" in response.content.decode()
    plan.refresh_from_db()
    assert plan.status == Plan.Status.DRAFT


def test_state_changes_need_post(client, quality_lead, plan):
    client.force_login(quality_lead)
    client.get(reverse("plans:transition", args=[plan.reference, "withdraw"]), {"reason": "x"})
    plan.refresh_from_db()
    assert plan.status == Plan.Status.LIVE


def test_revising_locked_criteria_from_the_page_needs_a_reason(client, quality_lead, plan):
    client.force_login(quality_lead)
    url = reverse("plans:edit_criteria", args=[plan.reference])
    indicator = plan.indicators.get()
    data = {
        "criteria-success_in_practice": "Better",
        "criteria-sustain_months": "6",
        "criteria-min_reaudits": "2",
        "criteria-sign_off_level": "3",
        "criteria-reason": "",
        f"ind-{indicator.pk}-name": indicator.name,
        f"ind-{indicator.pk}-measure_type": "proportion",
        f"ind-{indicator.pk}-direction": "higher",
        f"ind-{indicator.pk}-target": "90",
        f"ind-{indicator.pk}-unit": "%",
        f"ind-{indicator.pk}-frequency": "monthly",
    }
    response = client.post(url, data)
    assert "give a reason for revising them" in response.content.decode()
    plan.criteria.refresh_from_db()
    assert plan.criteria.sustain_months == 3
    data["criteria-reason"] = "Governance group asked for a longer window"
    assert client.post(url, data).status_code == 302
    plan.criteria.refresh_from_db()
    assert plan.criteria.sustain_months == 6
    page = client.get(plan.get_absolute_url()).content.decode()
    assert "Governance group asked for a longer window" in page
