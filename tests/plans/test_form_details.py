"""Smaller things a person meets on the plan's pages: optional rows not marked
required, the activate page's optional reason, no edit links on a closed plan, a
favicon, and dates shown and typed as day/month/year whatever the browser's language."""

import datetime
import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone

from plans.models import Plan
from tests import factories
from tests.learning.helpers import close_plan, write_summary
from tests.plans.test_views import create_post


@pytest.fixture
def theme(db):
    return factories.ThemeFactory()


def _section(body: str, section_id: str) -> str:
    start = body.index(f'id="{section_id}"')
    return body[start : body.index("</section>", start)]


def _rows(section: str) -> list[str]:
    return section.split('<fieldset class="formset-row">')[1:]


def test_optional_rows_of_the_open_plan_form_mark_nothing_required(client, quality_lead):
    client.force_login(quality_lead)
    body = client.get(reverse("plans:create")).content.decode()
    indicators = _rows(_section(body, "step-indicators"))
    assert len(indicators) == 3
    assert "asteriskField" in indicators[0]  # the one indicator every plan needs
    assert all("asteriskField" not in row for row in indicators[1:])
    actions = _rows(_section(body, "step-actions"))
    assert actions and all("asteriskField" not in row for row in actions)
    assert all(" required" not in row for row in actions)


def test_a_started_optional_row_still_needs_its_fields(client, quality_lead, oakfield, theme):
    data = create_post(theme, oakfield, quality_lead, **{"actions-1-description": "Audit nights"})
    client.force_login(quality_lead)
    response = client.post(reverse("plans:create"), data)
    assert response.status_code == 200 and Plan.objects.count() == 0
    body = response.content.decode()
    assert '<a href="#id_actions-1-owner">Action 2, owner: This field is required.</a>' in body
    # Once started, the row's required fields are marked as such.
    assert "asteriskField" in _rows(_section(body, "step-actions"))[1]


def test_the_activate_page_says_its_reason_is_optional_and_keeps_it(client, quality_lead, oakfield):
    plan = factories.draft_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(quality_lead)
    url = reverse("plans:transition", args=[plan.reference, "activate"])
    body = client.get(url).content.decode()
    assert re.search(r"Reason\s*\(optional\)", body)
    assert "asteriskField" not in body[body.index("<main") :]
    response = client.post(url, {"reason": "Agreed at the quality meeting"})
    assert response.status_code == 302
    latest = Plan.history.filter(id=plan.pk).latest("history_date")
    assert latest.status == Plan.Status.LIVE
    assert latest.history_change_reason == "Activate: Agreed at the quality meeting"


def test_a_closed_plan_page_offers_no_edit_links(client, plan, quality_lead, manager):
    write_summary(plan, by=quality_lead)
    close_plan(plan, by=quality_lead)
    action = plan.actions.get()
    changes = [
        reverse("plans:edit", args=[plan.reference]),
        reverse("plans:edit_criteria", args=[plan.reference]),
        reverse("plans:add_indicator", args=[plan.reference]),
        reverse("plans:add_trigger", args=[plan.reference]),
        reverse("plans:add_action", args=[plan.reference]),
        reverse("plans:edit_action", args=[plan.reference, action.pk]),
        reverse("learning:summary", args=[plan.reference]),
        reverse("audits:log", args=[plan.reference]),
        reverse("audits:add_evidence", args=[plan.reference]),
        reverse("audits:import", args=[plan.reference]),
    ]
    for user in (quality_lead, manager):
        client.force_login(user)
        body = client.get(plan.get_absolute_url()).content.decode()
        links = set(re.findall(r'href="([^"#]+)', body))
        assert not links & set(changes), (user.role, links & set(changes))
        assert not re.search(r">\s*Edit[^<]*<", body), user.role


def test_every_page_links_a_favicon_that_is_served(client, quality_lead):
    client.force_login(quality_lead)
    body = client.get("/").content.decode()
    icons = re.findall(r'<link rel="icon"[^>]*href="/static/([^"]+)"', body)
    assert icons
    for name in icons:
        assert finders.find(name), name
    client.logout()
    login = client.get(reverse("login")).content.decode()
    assert 'rel="icon"' in login


def test_dates_are_shown_and_typed_as_day_month_year(client, quality_lead, oakfield, theme):
    client.force_login(quality_lead)
    body = client.get(reverse("plans:create")).content.decode()
    assert 'type="date"' not in body  # the browser's own locale would decide its order
    today = timezone.localdate()
    opened = re.search(r'<input[^>]*name="plan-opened_on"[^>]*>', body).group(0)
    assert f'value="{today:%d/%m/%Y}"' in opened
    assert 'placeholder="dd/mm/yyyy"' in opened and 'inputmode="numeric"' in opened
    data = create_post(
        theme,
        oakfield,
        quality_lead,
        **{
            "plan-opened_on": (today - datetime.timedelta(days=3)).strftime("%d/%m/%Y"),
            "plan-target_date": "01/02/" + str(today.year + 1),
            "triggers-0-occurred_on": (today - datetime.timedelta(days=4)).strftime("%d/%m/%Y"),
        },
    )
    assert client.post(reverse("plans:create"), data).status_code == 302
    plan = Plan.objects.get()
    assert plan.opened_on == today - datetime.timedelta(days=3)
    assert plan.target_date == datetime.date(today.year + 1, 2, 1)  # 1 February, not 2 January


@pytest.mark.parametrize(
    "url_name",
    ["audits:log", "audits:add_evidence", "learning:library", "packs:register"],
)
def test_no_page_uses_the_browsers_date_picker(client, plan, quality_lead, url_name):
    client.force_login(quality_lead)
    args = [] if url_name in ("learning:library", "packs:register") else [plan.reference]
    body = client.get(reverse(url_name, args=args)).content.decode()
    assert "dd/mm/yyyy" in body
    assert 'type="date"' not in body
