"""One form per audit: one date's results for every indicator, evidence attached once,
saved all or nothing, with the same rules and error summary as one result."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from audits import services
from audits.models import EvidenceItem, Measurement
from tests import factories
from tests.audits.factories import PDF_BYTES, measure, upload

INDICATORS = [
    {
        "name": "Escalated within 24h",
        "measure_type": "proportion",
        "direction": "higher",
        "target": Decimal("95"),
        "unit": "%",
        "frequency": "monthly",
    },
    {
        "name": "Recorded factually",
        "measure_type": "proportion",
        "direction": "higher",
        "target": Decimal("90"),
        "unit": "%",
        "frequency": "monthly",
    },
    {
        "name": "Repeat alerts",
        "measure_type": "count",
        "direction": "lower",
        "target": Decimal("0"),
        "unit": "alerts",
        "frequency": "monthly",
    },
]


@pytest.fixture
def plan(quality_lead, oakfield):
    return factories.live_plan(owner=quality_lead, locations=[oakfield], indicators=INDICATORS)


def _ids(plan):
    return [i.pk for i in plan.indicators.order_by("position")]


def _audit(plan, day: datetime.date, **overrides) -> dict:
    first, second, third = _ids(plan)
    data = {
        "measured_on": day.strftime("%d/%m/%Y"),
        "source": "re_audit",
        "notes": "Monthly records audit",
        f"i{first}-numerator": "19",
        f"i{first}-denominator": "20",
        f"i{second}-numerator": "18",
        f"i{second}-denominator": "20",
        f"i{third}-value": "0",
        "evidence-kind": "re_audit",
        "evidence-title": "Records audit (May)",
        "evidence-description": "20 records checked.",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_one_form_logs_every_indicator_and_the_evidence_once(client, manager, plan):
    client.force_login(manager)
    url = reverse("audits:log_audit", args=[plan.reference])
    page = client.get(url)
    assert page.status_code == 200
    for indicator in INDICATORS:
        assert indicator["name"] in page.content.decode()
    day = timezone.localdate()
    data = _audit(plan, day)
    data["evidence-upload"] = upload("audit.pdf", PDF_BYTES, "application/pdf")
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    results = Measurement.objects.filter(indicator__plan=plan).order_by("indicator__position")
    assert [(m.measured_on, m.value, m.recorded_by) for m in results] == [
        (day, Decimal("95.000"), manager),
        (day, Decimal("90.000"), manager),
        (day, Decimal("0.000"), manager),
    ]
    assert {m.notes for m in results} == {"Monthly records audit"}
    assert {m.location.name for m in results} == {"Oakfield House"}
    [evidence] = EvidenceItem.objects.filter(plan=plan)
    assert (evidence.title, evidence.occurred_on, evidence.kind) == (
        "Records audit (May)",
        day,
        "re_audit",
    )
    assert evidence.has_file and evidence.content_type == "application/pdf"
    page = client.get(plan.get_absolute_url()).content.decode()
    assert (
        f"Audit of {day.strftime('%-d %b %Y')} logged with its evidence: “Escalated within 24h” "
        "95.0% (19 of 20); “Recorded factually” 90.0% (18 of 20); “Repeat alerts” 0 alerts."
    ) in page


def test_indicators_left_blank_are_not_part_of_the_audit(client, manager, plan):
    first, second, third = _ids(plan)
    client.force_login(manager)
    url = reverse("audits:log_audit", args=[plan.reference])
    data = _audit(
        plan,
        timezone.localdate(),
        **{
            f"i{second}-numerator": "",
            f"i{second}-denominator": "",
            f"i{third}-value": "",
            "evidence-title": "",
        },
    )
    assert client.post(url, data).status_code == 302
    assert list(Measurement.objects.values_list("indicator_id", flat=True)) == [first]
    assert not EvidenceItem.objects.exists()


def test_an_audit_with_no_result_is_refused(client, manager, plan):
    first, second, third = _ids(plan)
    client.force_login(manager)
    blank = {
        f"i{first}-numerator": "",
        f"i{first}-denominator": "",
        f"i{second}-numerator": "",
        f"i{second}-denominator": "",
        f"i{third}-value": "",
    }
    response = client.post(
        reverse("audits:log_audit", args=[plan.reference]),
        _audit(plan, timezone.localdate(), **blank),
    )
    assert response.status_code == 200
    errors = [(e.label, e.message, e.anchor) for e in response.context["errors"]]
    assert errors == [("Results", "Enter at least one result.", f"id_i{first}-numerator")]
    assert not Measurement.objects.exists() and not EvidenceItem.objects.exists()


def test_one_bad_result_saves_nothing_and_each_problem_names_its_field(client, manager, plan):
    first, second, third = _ids(plan)
    client.force_login(manager)
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    response = client.post(
        reverse("audits:log_audit", args=[plan.reference]),
        _audit(
            plan,
            timezone.localdate(),
            **{
                f"i{second}-numerator": "21",
                f"i{third}-value": "",
                f"i{third}-numerator": "3",  # not a field of a count: ignored
            },
        ),
    )
    assert response.status_code == 200
    errors = [(e.label, e.message, e.anchor) for e in response.context["errors"]]
    assert errors == [
        (
            "“Recorded factually”, met the standard",
            "21 met the standard but only 20 were checked: the first cannot be larger.",
            f"id_i{second}-numerator",
        )
    ]
    body = response.content.decode()
    assert "Nothing was saved" in body and f'href="#id_i{second}-numerator"' in body
    assert not Measurement.objects.exists() and not EvidenceItem.objects.exists()

    response = client.post(
        reverse("audits:log_audit", args=[plan.reference]),
        _audit(plan, tomorrow, **{f"i{third}-value": "x"}),
    )
    errors = [(e.label, e.message) for e in response.context["errors"]]
    assert ("Audit date", "The audit date cannot be in the future.") in errors
    assert ("“Repeat alerts”, value", "Enter a number.") in errors
    assert not Measurement.objects.exists()


def test_a_result_already_logged_for_the_date_refuses_the_whole_audit(
    client, manager, quality_lead, plan
):
    day = timezone.localdate() - datetime.timedelta(days=1)
    first, second, third = _ids(plan)
    existing = measure(plan, by=quality_lead, on=day, indicator=plan.indicators.get(pk=second))
    client.force_login(manager)
    response = client.post(reverse("audits:log_audit", args=[plan.reference]), _audit(plan, day))
    [error] = response.context["errors"]
    assert error.anchor == f"id_i{second}-numerator"
    assert "“Recorded factually” already has a result for" in error.message
    assert list(Measurement.objects.all()) == [existing]
    assert not EvidenceItem.objects.exists()


def test_the_service_saves_all_or_nothing(quality_lead, plan):
    """Two people logging the same audit at once: the form's check passed for both, the
    database refuses the second, and none of its results or evidence remain."""
    day = timezone.localdate()
    first, second, _ = plan.indicators.order_by("position")
    measure(plan, by=quality_lead, on=day, indicator=second)
    fields = {
        "measured_on": day,
        "numerator": 19,
        "denominator": 20,
        "value": None,
        "location": None,
        "source": "re_audit",
        "notes": "",
    }
    with pytest.raises(services.MeasurementRefused, match="already has a result"):
        services.record_audit(
            plan=plan,
            by=quality_lead,
            results=[{**fields, "indicator": first}, {**fields, "indicator": second}],
            evidence={
                "kind": "re_audit",
                "title": "Audit",
                "occurred_on": day,
                "description": "",
            },
        )
    assert Measurement.objects.count() == 1 and not EvidenceItem.objects.exists()


def test_a_file_needs_a_title(client, manager, plan):
    client.force_login(manager)
    data = _audit(plan, timezone.localdate(), **{"evidence-title": ""})
    data["evidence-upload"] = upload("audit.pdf", PDF_BYTES, "application/pdf")
    response = client.post(reverse("audits:log_audit", args=[plan.reference]), data)
    errors = [(e.label, e.message, e.anchor) for e in response.context["errors"]]
    assert errors == [("Evidence, title", "Give the evidence a title.", "id_evidence-title")]
    assert not Measurement.objects.exists()


def test_a_manager_of_one_of_two_locations_logs_for_theirs(
    client, quality_lead, oakfield, riverside
):
    plan = factories.live_plan(
        owner=quality_lead, locations=[oakfield, riverside], indicators=INDICATORS[:1]
    )
    manager = factories.UserFactory(username="m2", role="manager", locations=[riverside])
    client.force_login(manager)
    response = client.get(reverse("audits:log_audit", args=[plan.reference]))
    assert response.context["form"].initial["location"] == riverside.pk
    response = client.post(
        reverse("audits:log_audit", args=[plan.reference]),
        {
            "measured_on": timezone.localdate().strftime("%d/%m/%Y"),
            "location": "",
            "source": "re_audit",
            f"i{plan.indicators.get().pk}-numerator": "19",
            f"i{plan.indicators.get().pk}-denominator": "20",
            "evidence-kind": "re_audit",
        },
    )
    errors = [(e.label, e.message) for e in response.context["errors"]]
    assert errors == [("Location", "Choose the location this result is for.")]


@pytest.mark.parametrize("who", ["viewer", "outsider", "governance_member"])
def test_only_people_who_log_results_see_the_form(client, plan, who, request):
    client.force_login(request.getfixturevalue(who))
    url = reverse("audits:log_audit", args=[plan.reference])
    assert client.get(url).status_code == 404
    assert client.post(url, _audit(plan, timezone.localdate())).status_code == 404
    assert not Measurement.objects.exists()


def test_the_plan_page_offers_the_audit_form(client, manager, plan):
    client.force_login(manager)
    page = client.get(plan.get_absolute_url()).content.decode()
    assert f'href="{reverse("audits:log_audit", args=[plan.reference])}">Log a re-audit' in page
