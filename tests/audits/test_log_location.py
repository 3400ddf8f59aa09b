"""Logging a result on a plan that covers two locations: a manager of one of them has
it chosen for them, and anyone who leaves it out is told which field is missing."""

import pytest
from django.urls import reverse
from django.utils import timezone

from audits.models import Measurement
from tests import factories


@pytest.fixture
def shared_plan(quality_lead, oakfield, riverside):
    return factories.live_plan(owner=quality_lead, locations=[oakfield, riverside])


def _post(indicator, **overrides) -> dict:
    data = {
        "indicator": indicator.pk,
        "measured_on": timezone.localdate().isoformat(),
        "numerator": "19",
        "denominator": "20",
        "source": "re_audit",
        "notes": "",
    }
    data.update(overrides)
    return data


def test_a_manager_of_one_of_the_plans_locations_has_it_preselected(
    client, shared_plan, manager, oakfield
):
    client.force_login(manager)
    form = client.get(reverse("audits:log", args=[shared_plan.reference])).context["form"]
    assert str(form["location"].value()) == str(oakfield.pk)


def test_a_quality_lead_chooses_the_location(client, shared_plan, quality_lead):
    client.force_login(quality_lead)
    form = client.get(reverse("audits:log", args=[shared_plan.reference])).context["form"]
    assert form["location"].value() in (None, "")


def test_leaving_out_the_location_says_which_field_is_missing(client, shared_plan, quality_lead):
    client.force_login(quality_lead)
    indicator = shared_plan.indicators.get()
    response = client.post(
        reverse("audits:log", args=[shared_plan.reference]), _post(indicator, location="")
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Choose the location this result is for." in body
    assert '<a href="#id_location">Location: Choose the location this result is for.</a>' in body
    assert "This field is required." not in body
    assert not Measurement.objects.exists()


def test_the_manager_saves_with_the_preselected_location(client, shared_plan, manager, oakfield):
    client.force_login(manager)
    indicator = shared_plan.indicators.get()
    response = client.post(
        reverse("audits:log", args=[shared_plan.reference]), _post(indicator, location=oakfield.pk)
    )
    assert response.status_code == 302
    assert Measurement.objects.get().location == oakfield
