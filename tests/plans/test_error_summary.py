"""A form that was not saved says at its top what is wrong, field by field, each linked
to its field: the open-plan form is long, and "correct the errors marked below" sends
people hunting."""

import re

import pytest
from django.urls import reverse

from plans.models import Plan
from tests import factories
from tests.plans.test_views import create_post


@pytest.fixture
def theme(db):
    return factories.ThemeFactory()


def _summary(body: str) -> str:
    match = re.search(r'<div[^>]*id="error-summary".*?</div>', body, re.S)
    assert match, "no error summary on the page"
    return match.group(0)


def test_the_open_plan_form_lists_each_error_at_the_top_linked_to_its_field(
    client, quality_lead, oakfield, theme
):
    data = create_post(
        theme,
        oakfield,
        quality_lead,
        **{
            "plan-title": "",
            "criteria-success_in_practice": "",
            "indicators-0-target": "ninety",
        },
    )
    client.force_login(quality_lead)
    response = client.post(reverse("plans:create"), data)
    assert response.status_code == 200 and Plan.objects.count() == 0
    body = response.content.decode()
    summary = _summary(body)
    assert 'role="alert"' in summary and 'tabindex="-1"' in summary
    assert "3 problems" in summary
    links = re.findall(r'<a href="#([^"]+)">(.*?)</a>', summary, re.S)
    assert [anchor for anchor, _ in links] == [
        "id_plan-title",
        "id_criteria-success_in_practice",
        "id_indicators-0-target",
    ]
    texts = [re.sub(r"\s+", " ", text).strip() for _, text in links]
    assert texts[0] == "Title: This field is required."
    assert texts[1] == "What success looks like in practice: This field is required."
    assert texts[2] == "Indicator 1, target: The target must be a number, such as 90 or 2.5."
    # Every anchor names a field on the page.
    for anchor, _ in links:
        assert f'id="{anchor}"' in body
    # The summary comes before the form's first field, and the vague message is gone.
    assert body.index('id="error-summary"') < body.index('id="id_plan-title"')
    assert "correct the errors marked below" not in body


def test_a_formset_error_links_to_its_section(client, quality_lead, oakfield, theme):
    data = create_post(theme, oakfield, quality_lead)
    for field in ["kind", "reference", "occurred_on", "description"]:
        data.pop(f"triggers-0-{field}", None)
    client.force_login(quality_lead)
    summary = _summary(client.post(reverse("plans:create"), data).content.decode())
    assert '<a href="#step-triggers">Triggers: Add at least 1 trigger.</a>' in summary


def test_the_page_moves_focus_to_the_error_summary(client, quality_lead, oakfield, theme):
    client.force_login(quality_lead)
    body = client.post(
        reverse("plans:create"), create_post(theme, oakfield, quality_lead, **{"plan-title": ""})
    ).content.decode()
    assert "data-error-summary" in _summary(body)
    assert "js/portal.js" in body


def test_a_form_with_no_errors_has_no_summary(client, quality_lead):
    client.force_login(quality_lead)
    assert 'id="error-summary"' not in client.get(reverse("plans:create")).content.decode()
