"""Words the walkthroughs found wrong: counts against what is needed, plurals, one
"not enough data" per chart, a pack message that does not contradict the status
beside it, and learning from plans still open marked as a draft."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from audits.verdicts import criteria_verdict, plan_verdicts
from qip_portal import closure
from tests import factories
from tests.audits.factories import measure
from tests.audits.test_verdicts import D, _indicator, _series
from tests.learning.helpers import closed_plan_with_learning, write_summary


def test_more_reaudits_than_needed_read_as_a_count_and_what_is_needed():
    ind = _indicator()
    ms = _series(ind, [(D(2026, 1, 5), 96), (D(2026, 2, 5), 97), (D(2026, 3, 5), 98)])
    verdict = criteria_verdict(ind, ms, sustain_months=3, min_reaudits=2)
    assert not verdict.met
    assert "3 re-audits (2 needed) so far" in verdict.explain()
    assert " of 2 re-audits" not in verdict.explain()
    assert (
        verdict.headline() == "Window started 5 Jan 2026, ends 5 Apr 2026 (3 re-audits, 2 needed)"
    )


def test_one_reaudit_is_singular():
    ind = _indicator()
    ms = _series(ind, [(D(2026, 1, 5), 96), (D(2026, 4, 6), 97)])
    met = criteria_verdict(ind, ms[1:], sustain_months=0, min_reaudits=1)
    assert "(1 re-audit)" in met.explain() and "1 re-audits" not in met.explain()
    waiting = criteria_verdict(ind, ms[:1], sustain_months=3, min_reaudits=1)
    assert "1 re-audit (1 needed) so far" in waiting.explain()


def _outside_svg(html: str) -> str:
    return re.sub(r"<svg.*?</svg>", "", html, flags=re.S)


def test_a_short_series_says_not_enough_data_once_per_chart(client, plan, manager):
    measure(plan, by=manager, on=plan.opened_on)
    verdict = plan_verdicts(plan).indicators[0]
    assert verdict.assurance.headline() == (
        "Not enough data for statistical confirmation (1 result; at least 10 are needed)"
    )
    client.force_login(manager)
    page = client.get(plan.get_absolute_url()).content.decode()
    card = page[page.index('id="verdicts-h"') : page.index('id="audits"')]
    assert len(re.findall("not enough data", _outside_svg(card), re.I)) == 1
    svg = re.search(r"<svg.*?</svg>", card, re.S).group(0)
    assert len(re.findall("not enough data", svg, re.I)) == 1
    assert "1 results" not in page


def test_the_closure_report_says_not_enough_data_once_per_indicator(plan, manager):
    measure(plan, by=manager, on=plan.opened_on)
    report = closure.compile_report(plan)
    indicator = report["indicators"][0]
    text = indicator["assurance_headline"] + " " + indicator["assurance_explanation"]
    assert len(re.findall("not enough data", text, re.I)) == 1


def test_a_pack_message_stays_true_beside_the_finished_pdf(
    client, plan, viewer, django_capture_on_commit_callbacks
):
    client.force_login(viewer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("packs:plan", args=[plan.reference]))
    # The task has finished by the time the page is shown with the message.
    body = client.get(reverse("packs:plan", args=[plan.reference])).content.decode()
    assert "Download the PDF" in body
    assert "Evidence pack requested: its progress is shown below." in body
    assert "being prepared" not in body


@pytest.mark.django_db(transaction=True)
def test_a_pack_rendered_at_once_is_called_ready(client, viewer, quality_lead, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    client.force_login(viewer)
    response = client.post(reverse("packs:plan", args=[plan.reference]), follow=True)
    body = response.content.decode()
    assert "Download the PDF" in body
    assert "The evidence pack is ready." in body and "requested" not in body


def test_the_library_marks_learning_from_plans_not_yet_closed_as_a_draft(
    client, plan, quality_lead, oakfield, viewer
):
    write_summary(plan, by=quality_lead)  # the plan is live
    closed = closed_plan_with_learning(owner=quality_lead, locations=[oakfield], title="Falls")
    client.force_login(viewer)
    body = client.get(reverse("learning:library")).content.decode()
    entries = body.split('<li class="card mb-3">')[1:]
    live = next(e for e in entries if plan.reference in e)
    done = next(e for e in entries if closed.plan.reference in e)
    assert "Draft: plan still live" in live
    assert "Draft" not in done
    detail = client.get(reverse("learning:detail", args=[plan.reference])).content.decode()
    assert "Draft: plan still live" in detail


@pytest.mark.parametrize("months", [1])
def test_a_one_month_review_is_singular(client, quality_lead, oakfield, settings, months):
    from learning import sweeps

    settings.LEARNING_REVIEW_MONTHS = (months,)
    summary = closed_plan_with_learning(
        owner=quality_lead,
        locations=[oakfield],
        closed_at=timezone.now() - datetime.timedelta(days=40),
    )
    sweeps.schedule_due_reviews(timezone.localdate())
    client.force_login(quality_lead)
    for url in (
        reverse("learning:library"),
        reverse("learning:detail", args=[summary.plan.reference]),
        summary.plan.get_absolute_url(),
    ):
        body = client.get(url).content.decode()
        assert "1 months" not in body, url
        assert "1 month" in body, url
    assert factories  # the personas' factories built the plan


def test_one_of_a_counted_unit_is_singular():
    from decimal import Decimal

    from audits.models import Measurement
    from plans.models import Indicator

    alerts = Indicator(name="Repeat alerts", measure_type="count", unit="alerts", target=Decimal(1))
    assert Measurement(indicator=alerts, value=Decimal("1")).value_display() == "1 alert"
    assert Measurement(indicator=alerts, value=Decimal("2")).value_display() == "2 alerts"
    assert alerts.target_display() == "≤ 1 alert"
    rate = Indicator(
        name="Falls", measure_type="rate", unit="per 1,000 bed days", target=Decimal(1)
    )
    assert Measurement(indicator=rate, value=Decimal("1")).value_display() == "1 per 1,000 bed days"
