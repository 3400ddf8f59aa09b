"""A re-audit reminder, and every other "re-audit due" link, opens what the re-audit is:
conducting the audit (tool and location pre-filled) for an indicator fed by an audit
tool, the typed result form for any other."""

import datetime

import pytest
from django.urls import reverse

from audits import sweeps
from audits.tools import services
from core.models import Alert
from tests import factories
from tests.audits.test_monitoring import TODAY
from tests.audits.tool_helpers import safeguarding_tool

pytestmark = pytest.mark.django_db


def _due_plan(lead, location, title):
    # Monthly indicator, opened 28 days ago: its first re-audit is due in 3 days.
    return factories.live_plan(
        owner=lead,
        locations=[location],
        title=title,
        opened_on=TODAY - datetime.timedelta(days=28),
    )


def test_the_reminder_links_a_fed_indicator_to_conducting_its_audit(
    frozen, quality_lead, manager, oakfield, run
):
    tool = safeguarding_tool(quality_lead)
    fed = _due_plan(quality_lead, oakfield, "Fed plan")
    typed = _due_plan(quality_lead, oakfield, "Typed plan")
    services.feed_indicator(
        indicator=fed.indicators.get(), tool=tool, scope="question", key="S1.Q1", by=quality_lead
    )
    run(sweeps.reaudits_due)
    fed_row = Alert.objects.get(
        kind="audits-reaudit-due", key__contains=f":{fed.indicators.get().pk}:"
    )
    typed_row = Alert.objects.get(
        kind="audits-reaudit-due", key__contains=f":{typed.indicators.get().pk}:"
    )
    conduct = (
        f"{reverse('audits:audit_start')}?tool={tool.pk}&plan={fed.reference}"
        f"&location={oakfield.pk}"
    )
    assert "Conduct the audit: http" in fed_row.body_text and conduct in fed_row.body_text
    assert conduct.replace("&", "&amp;") in fed_row.body_html
    assert "Safeguarding records" in fed_row.body_text
    assert reverse("audits:log", args=[fed.reference]) not in fed_row.body_text
    log = f"{reverse('audits:log', args=[typed.reference])}?indicator={typed.indicators.get().pk}"
    assert "Log the result: http" in typed_row.body_text and log in typed_row.body_text
    assert log in typed_row.body_html
    assert reverse("audits:audit_start") not in typed_row.body_text + typed_row.body_html


def test_the_overdue_reminder_links_the_same_way(frozen, quality_lead, manager, oakfield, run):
    tool = safeguarding_tool(quality_lead)
    fed = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        opened_on=TODAY - datetime.timedelta(days=40),
    )
    services.feed_indicator(
        indicator=fed.indicators.get(), tool=tool, scope="overall", key="", by=quality_lead
    )
    run(sweeps.reaudits_due)
    row = Alert.objects.get(kind="audits-reaudit-overdue")
    assert f"?tool={tool.pk}&plan={fed.reference}&location={oakfield.pk}" in row.body_text


def test_the_conduct_link_opens_the_start_form_pre_filled(
    client, quality_lead, manager, oakfield, riverside
):
    tool = safeguarding_tool(quality_lead)
    both = factories.live_plan(owner=quality_lead, locations=[oakfield, riverside])
    services.feed_indicator(
        indicator=both.indicators.get(), tool=tool, scope="overall", key="", by=quality_lead
    )
    # A quality lead conducts anywhere: the plan's two locations leave the choice open,
    # unless the link names one.
    client.force_login(quality_lead)
    url = reverse("audits:audit_start")
    form = client.get(url, {"tool": tool.pk, "plan": both.reference}).context["form"]
    assert form.initial["tool"] == str(tool.pk) and "location" not in form.initial
    form = client.get(
        url, {"tool": tool.pk, "plan": both.reference, "location": oakfield.pk}
    ).context["form"]
    assert form.initial["location"] == str(oakfield.pk)
    # A manager at one of them: theirs, chosen for them.
    client.force_login(manager)
    form = client.get(url, {"tool": tool.pk, "plan": both.reference}).context["form"]
    assert form.initial["location"] == oakfield.pk


def test_the_plan_page_and_the_due_list_open_the_audit_for_a_fed_indicator(
    client, quality_lead, manager, oakfield
):
    tool = safeguarding_tool(quality_lead)
    fed = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Fed plan")
    typed = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Typed plan")
    services.feed_indicator(
        indicator=fed.indicators.get(), tool=tool, scope="overall", key="", by=quality_lead
    )
    client.force_login(manager)
    conduct = f"{reverse('audits:audit_start')}?tool={tool.pk}&amp;plan={fed.reference}"
    page = client.get(fed.get_absolute_url()).content.decode()
    assert f'href="{conduct}"' in page
    assert f"?indicator={fed.indicators.get().pk}&amp;date=" not in page
    due = client.get(reverse("audits:due") + "?show=all").content.decode()
    assert conduct in due
    assert f"?indicator={fed.indicators.get().pk}&amp;date=" not in due
    assert f"?indicator={typed.indicators.get().pk}&amp;date=" in due


def test_the_plan_page_link_preselects_each_managers_own_location(
    client, quality_lead, manager, oakfield, riverside
):
    """The plan page's content is cached per role, so its link names no location: the
    start form chooses each manager's own among the plan's, and ignores a location the
    person does not conduct at."""
    tool = safeguarding_tool(quality_lead)
    both = factories.live_plan(owner=quality_lead, locations=[oakfield, riverside])
    services.feed_indicator(
        indicator=both.indicators.get(), tool=tool, scope="overall", key="", by=quality_lead
    )
    other = factories.UserFactory(username="rivermanager", role=manager.role, locations=[riverside])
    url = reverse("audits:audit_start")
    for person, theirs in ((manager, oakfield), (other, riverside)):
        client.force_login(person)
        page = client.get(both.get_absolute_url()).content.decode()
        link = f"{url}?tool={tool.pk}&amp;plan={both.reference}"
        assert f'href="{link}"' in page
        form = client.get(url, {"tool": tool.pk, "plan": both.reference}).context["form"]
        assert form.initial["location"] == theirs.pk
    # A location named in a link that is not theirs is not chosen for them.
    form = client.get(
        url, {"tool": tool.pk, "plan": both.reference, "location": oakfield.pk}
    ).context["form"]
    assert form.initial["location"] == riverside.pk
