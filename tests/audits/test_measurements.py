import datetime
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from audits import services
from audits.forms import MeasurementContext, MeasurementForm
from audits.models import Measurement
from core import freshness
from plans.models import Plan
from tests import factories
from tests.audits.factories import measure

pytestmark = pytest.mark.django_db


def _form(plan, **data):
    indicator = plan.indicators.first()
    payload = {
        "indicator": indicator.pk,
        "measured_on": (timezone.localdate() - datetime.timedelta(days=1)).isoformat(),
        "numerator": "18",
        "denominator": "20",
        "value": "",
        "location": "",
        "source": "re_audit",
        "notes": "",
    }
    payload.update(data)
    return MeasurementForm(payload, context=MeasurementContext.for_plan(plan))


def test_a_valid_proportion_stores_its_percentage(plan, manager):
    form = _form(plan)
    assert form.is_valid(), form.errors
    m = services.record_measurement(plan=plan, by=manager, fields=form.measurement_fields())
    assert m.value == Decimal("90.000")
    assert (m.numerator, m.denominator) == (18, 20)
    assert m.location == plan.locations.get()
    assert m.recorded_by == manager
    assert m.history.get().history_user == manager
    assert m.value_display() == "90.0% (18 of 20)"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"numerator": "21"}, "numerator", "cannot be larger"),
        ({"denominator": "0", "numerator": "0"}, "denominator", "must be more than 0"),
        ({"numerator": "eighteen"}, "numerator", "Enter a whole number."),
        ({"denominator": ""}, "denominator", "how many were checked"),
        ({"value": "90"}, "value", "give the two numbers"),
        ({"measured_on": "2999-01-01"}, "measured_on", "cannot be in the future"),
        ({"measured_on": "2000-01-01"}, "measured_on", "before the plan opened"),
        ({"measured_on": "31/02/2026"}, "measured_on", "Enter a valid date"),
        ({"indicator": "Nonsense"}, "indicator", "no indicator called “Nonsense”"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(plan, data, field, message):
    form = _form(plan, **data)
    assert not form.is_valid()
    assert any(message in e for e in form.errors[field]), form.errors


def test_a_second_result_for_the_same_indicator_and_date_is_refused(plan, manager):
    day = timezone.localdate() - datetime.timedelta(days=2)
    measure(plan, by=manager, on=day)
    form = _form(plan, measured_on=day.isoformat())
    assert not form.is_valid()
    assert "already has a result" in form.errors["measured_on"][0]
    # and the database constraint backs the form up when two people race
    with pytest.raises(services.MeasurementRefused):
        measure(plan, by=manager, on=day)
    assert Measurement.objects.count() == 1


def test_count_indicators_take_a_value_not_two_numbers(quality_lead, oakfield):
    plan = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        indicators=[
            {
                "name": "Repeat alerts",
                "measure_type": "count",
                "direction": "lower",
                "target": Decimal("0"),
                "unit": "alerts",
                "frequency": "monthly",
            }
        ],
    )
    form = _form(plan, numerator="", denominator="", value="2")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["value"] == Decimal("2")
    form = _form(plan, numerator="1", denominator="2", value="")
    assert not form.is_valid()
    assert "give one value" in str(form.errors["value"])


def test_an_indicator_can_be_named_instead_of_numbered(plan):
    form = _form(plan, indicator="  escalated WITHIN 24h ")
    assert form.is_valid(), form.errors


def test_correcting_a_result_keeps_the_old_value_in_history(plan, manager):
    m = measure(plan, by=manager, on=plan.opened_on, numerator=10, denominator=20)
    fields = {
        "indicator": m.indicator,
        "measured_on": m.measured_on,
        "numerator": 15,
        "denominator": 20,
        "value": None,
        "location": m.location,
        "source": "re_audit",
        "notes": "Recount",
    }
    with pytest.raises(services.MeasurementRefused):
        services.correct_measurement(measurement=m, by=manager, fields=fields, reason=" ")
    services.correct_measurement(measurement=m, by=manager, fields=fields, reason="Miscounted")
    m.refresh_from_db()
    assert m.value == Decimal("75.000")
    old, new = m.history.order_by("history_date")
    assert old.value == Decimal("50.000") and new.value == Decimal("75.000")
    assert new.history_change_reason == "Corrected: Miscounted"


def test_each_indicator_keeps_the_date_of_its_latest_result(plan, manager):
    """``last_measured_on`` (what the home page and the re-audit sweep count on) follows
    the results as they are logged and corrected, whichever order they come in."""
    indicator = plan.indicators.get()
    assert indicator.last_measured_on is None
    early = plan.opened_on + datetime.timedelta(days=2)
    late = plan.opened_on + datetime.timedelta(days=9)
    m = measure(plan, by=manager, on=late)
    measure(plan, by=manager, on=early)  # an older result logged later changes nothing
    indicator.refresh_from_db()
    assert indicator.last_measured_on == late
    fields = {
        "indicator": indicator,
        "measured_on": plan.opened_on + datetime.timedelta(days=5),
        "numerator": 15,
        "denominator": 20,
        "value": None,
        "location": m.location,
        "source": "re_audit",
        "notes": "Wrong date",
    }
    services.correct_measurement(measurement=m, by=manager, fields=fields, reason="Misdated")
    indicator.refresh_from_db()
    assert indicator.last_measured_on == plan.opened_on + datetime.timedelta(days=5)
    # Derived, so not in the indicator's history.
    assert indicator.history.count() == 1


# --- Views ---------------------------------------------------------------------------


def test_manager_logs_a_re_audit_from_the_plan_page_in_two_screens(client, plan, manager):
    client.force_login(manager)
    page = client.get(plan.get_absolute_url())
    indicator = plan.indicators.get()
    today = timezone.localdate()
    log_url = reverse("audits:log", args=[plan.reference])
    link = f"{log_url}?indicator={indicator.pk}&amp;date={today:%Y-%m-%d}"
    assert link in page.content.decode()
    # Screen 1 -> screen 2: the form, prefilled.
    form_page = client.get(link.replace("&amp;", "&"))
    assert form_page.status_code == 200
    form = form_page.context["form"]
    assert str(form["indicator"].value()) == str(indicator.pk)
    assert str(form["measured_on"].value()) == today.isoformat()
    # Submit: back on the plan page, with the result listed.
    response = client.post(
        reverse("audits:log", args=[plan.reference]),
        {
            "indicator": indicator.pk,
            "measured_on": today.isoformat(),
            "numerator": "19",
            "denominator": "20",
            "source": "re_audit",
            "notes": "Re-audit of 20 records",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0].startswith(plan.get_absolute_url())
    body = response.content.decode()
    assert "Result logged" in body and "95.0% (19 of 20)" in body
    plan.refresh_from_db()
    assert plan.last_activity_at > timezone.now() - datetime.timedelta(minutes=1)


def test_bad_input_on_the_form_keeps_what_was_typed_and_saves_nothing(client, plan, manager):
    client.force_login(manager)
    indicator = plan.indicators.get()
    response = client.post(
        reverse("audits:log", args=[plan.reference]),
        {
            "indicator": indicator.pk,
            "measured_on": timezone.localdate().isoformat(),
            "numerator": "25",
            "denominator": "20",
            "source": "re_audit",
            "notes": "typed notes",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing was saved" in body and "cannot be larger" in body
    assert 'value="25"' in body and "typed notes" in body
    assert not Measurement.objects.exists()


@pytest.mark.parametrize("persona", ["viewer", "governance_member", "outsider"])
def test_only_people_who_may_change_the_plan_can_log(client, plan, persona, request):
    client.force_login(request.getfixturevalue(persona))
    url = reverse("audits:log", args=[plan.reference])
    assert client.get(url).status_code == 404
    assert client.post(url, {"indicator": 1}).status_code == 404


def test_read_only_roles_see_results_without_log_buttons(client, plan, manager, viewer):
    measure(plan, by=manager, on=plan.opened_on)
    client.force_login(viewer)
    body = client.get(plan.get_absolute_url()).content.decode()
    assert "Re-audits and results" in body and "95.0% (19 of 20)" in body
    assert "Log a re-audit" not in body and "Add evidence" not in body


def test_a_correction_needs_a_reason(client, plan, manager):
    m = measure(plan, by=manager, on=plan.opened_on)
    client.force_login(manager)
    url = reverse("audits:edit_measurement", args=[plan.reference, m.pk])
    data = {
        "indicator": m.indicator_id,
        "measured_on": m.measured_on.isoformat(),
        "numerator": "12",
        "denominator": "20",
        "source": "re_audit",
    }
    response = client.post(url, data)
    assert "Say why" in response.content.decode()
    m.refresh_from_db()
    assert m.numerator == 19
    response = client.post(url, data | {"reason": "Two records double counted"})
    assert response.status_code == 302
    m.refresh_from_db()
    assert m.numerator == 12 and m.history.count() == 2


@pytest.mark.parametrize("rows", [1, 25])
def test_plan_page_panel_runs_a_fixed_number_of_queries(
    client, plan, manager, rows, django_assert_max_num_queries
):
    client.force_login(manager)
    client.get(plan.get_absolute_url())  # warm the session
    freshness.data_changed()  # the page as computed, not as cached (core.freshness)
    with django_assert_max_num_queries(60) as baseline:
        client.get(plan.get_absolute_url())
    for i in range(rows):
        measure(plan, by=manager, on=plan.opened_on + datetime.timedelta(days=i))
    with django_assert_max_num_queries(len(baseline.captured_queries)):
        response = client.get(plan.get_absolute_url())
    # Each result once in the results table (the chart and its data table show it too).
    assert response.content.decode().count('<td class="text-nowrap">95.0% (19 of 20)</td>') == rows


def test_plan_page_verdicts_and_charts_are_cached_until_a_result_changes_them(
    client, plan, manager, django_assert_max_num_queries
):
    """The plan page's content (verdicts and charts included) is cached as HTML under
    the plan's version (qip_portal/pages/plans.py): served again with no section
    computed, and computed afresh once a result changes it."""
    client.force_login(manager)
    with django_assert_max_num_queries(80) as first:
        response = client.get(plan.get_absolute_url())
    before = response.context["audits"]
    with django_assert_max_num_queries(80) as again:
        cached = client.get(plan.get_absolute_url())
    assert "audits" not in cached.context  # no section computed
    # The same page, but for its per-request tokens (CSRF, CSP nonces).
    assert re.sub(r'(value|nonce)="[^"]+"', "", cached.content.decode()) == re.sub(
        r'(value|nonce)="[^"]+"', "", response.content.decode()
    )
    assert len(again.captured_queries) < len(first.captured_queries)
    assert [len(v.measurements) for v in before["verdicts"].indicators] == [0]

    measure(plan, by=manager, on=plan.opened_on + datetime.timedelta(days=1))
    after = client.get(plan.get_absolute_url()).context["audits"]
    assert [len(v.measurements) for v in after["verdicts"].indicators] == [1]
    assert after["charts"][0]["svg"] != before["charts"][0]["svg"]


# --- Re-audits due ---------------------------------------------------------------------


def _plans_with_indicators(owner, location, n):
    return [
        factories.live_plan(owner=owner, locations=[location], title=f"Plan {i}") for i in range(n)
    ]


@pytest.mark.parametrize("rows", [1, 50])
def test_due_list_runs_a_fixed_number_of_queries(
    client, quality_lead, manager, oakfield, rows, django_assert_max_num_queries
):
    _plans_with_indicators(quality_lead, oakfield, 1)
    client.force_login(manager)
    client.get(reverse("audits:due"))
    with django_assert_max_num_queries(40) as baseline:
        client.get(reverse("audits:due") + "?show=all")
    _plans_with_indicators(quality_lead, oakfield, rows - 1)
    with django_assert_max_num_queries(len(baseline.captured_queries)):
        response = client.get(reverse("audits:due") + "?show=all")
    assert len(response.context["rows"]) == rows


def test_due_list_shows_next_due_from_frequency_and_last_result(
    client, quality_lead, manager, outsider, oakfield, riverside
):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    elsewhere = factories.live_plan(owner=quality_lead, locations=[riverside], title="Elsewhere")
    draft = factories.draft_plan(owner=quality_lead, locations=[oakfield], title="Draft plan")
    last = timezone.localdate() - datetime.timedelta(days=40)
    measure(plan, by=manager, on=last)
    client.force_login(manager)
    response = client.get(reverse("audits:due"))
    rows = response.context["rows"]
    assert [r.plan for r in rows] == [plan]
    assert rows[0].next_due_on == last + datetime.timedelta(days=31)
    body = response.content.decode()
    assert "9 days overdue" in body
    assert f"?indicator={rows[0].pk}&amp;date=" in body
    assert elsewhere.reference not in body and draft.reference not in body
    assert 'aria-current="page" href="/audits/">Audits' in body


def test_due_list_has_a_clear_empty_state(client, manager):
    client.force_login(manager)
    body = client.get(reverse("audits:due")).content.decode()
    assert "no re-audits are scheduled" in body


def test_closed_plans_take_no_new_results(plan, manager):
    Plan.objects.filter(pk=plan.pk).update(status=Plan.Status.WITHDRAWN)  # test set-up only
    plan.refresh_from_db()
    with pytest.raises(services.MeasurementRefused):
        measure(plan, by=manager, on=plan.opened_on)


def test_the_service_refuses_a_future_dated_result(plan, quality_lead):
    import datetime

    import pytest as _pytest
    from django.utils import timezone as _tz

    from audits.services import MeasurementRefused
    from tests.audits.factories import measure

    with _pytest.raises(MeasurementRefused, match="future"):
        measure(plan, by=quality_lead, on=_tz.localdate() + datetime.timedelta(days=1))


def test_downloads_and_exports_are_security_events(client, plan, quality_lead):
    from core.models import SecurityEvent

    client.force_login(quality_lead)
    client.get(f"/audits/plans/{plan.reference}/results/export.csv")
    assert SecurityEvent.objects.filter(kind="export", user=quality_lead).exists()


def test_kept_criteria_dates_are_written_in_one_statement_whatever_their_number(
    quality_lead, oakfield, django_assert_num_queries
):
    """The readiness sweep's first run at scale changed thousands of plans' dates, one
    statement per distinct date; now one update per batch, each plan its own date (plus
    what core.freshness reads to move the versions of the plans it touched)."""
    from types import SimpleNamespace

    from audits.services.measurements import store_criteria_met

    plans = [factories.live_plan(owner=quality_lead, locations=[oakfield]) for _ in range(4)]
    today = timezone.localdate()
    met = {
        plans[0].pk: SimpleNamespace(since=today),
        plans[1].pk: SimpleNamespace(since=today - datetime.timedelta(days=3)),
        plans[2].pk: SimpleNamespace(since=today - datetime.timedelta(days=9)),
    }  # plans[3]: not met
    plans[3].criteria_met_since = today  # stale: to be cleared
    Plan.objects.filter(pk=plans[3].pk).update(criteria_met_since=today)
    with django_assert_num_queries(3):  # the update, and freshness's read of its rows
        assert store_criteria_met(plans, met) == 4
    stored = dict(
        Plan.objects.filter(pk__in=[p.pk for p in plans]).values_list("pk", "criteria_met_since")
    )
    assert stored == {
        plans[0].pk: today,
        plans[1].pk: today - datetime.timedelta(days=3),
        plans[2].pk: today - datetime.timedelta(days=9),
        plans[3].pk: None,
    }
    with django_assert_num_queries(0):
        assert store_criteria_met(plans, met) == 0
