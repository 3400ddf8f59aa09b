"""Server-rendered SVG charts: points, limits, target, signals and a text alternative."""

import datetime
import re

import pytest

from audits.charts import chart_for, render_svg
from audits.verdicts import plan_verdicts
from core import freshness
from tests import factories
from tests.audits.factories import measure


@pytest.fixture
def long_plan(quality_lead, manager, oakfield):
    """Sixteen monthly audits of 40 records, the last far below the rest: a p-chart with a
    signal (40 records, so a point beyond a limit can be trusted: Hart & Hart)."""
    start = datetime.date(2024, 1, 10)
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield], opened_on=start)
    for i in range(16):
        numerator = 8 if i == 15 else (38 if i % 2 else 36)
        measure(
            plan,
            by=manager,
            on=start + datetime.timedelta(days=31 * i),
            numerator=numerator,
            denominator=40,
        )
    return plan


def test_chart_svg_has_points_limits_target_and_a_text_alternative(long_plan):
    verdict = plan_verdicts(long_plan).indicators[0]
    assert verdict.assurance.method.value == "p_chart"
    spec = chart_for(verdict, chart_id="c1")
    svg = str(render_svg(spec))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'role="img"' in svg and 'aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Escalated within 24h: 16 results, p-chart' in svg
    assert '<desc id="c1-desc">16 results from 10 Jan 2024 to' in svg
    assert svg.count("<circle") + svg.count('fill="#ed8b00"') >= 16
    assert "Upper limit" in svg and "Lower limit" in svg and "Mean" in svg
    assert "Target ≥ 95%" in svg
    assert 'fill="#ed8b00"' in svg  # the concern point, drawn as an orange diamond
    assert "style=" not in svg and "<script" not in svg
    last = spec.rows[-1]
    assert last["display"] == "20.0% (8 of 40)" and last["signal"].startswith("Concern")
    assert re.search(r"\d", last["limits"])


def test_short_series_still_charts_points_and_target(plan, manager):
    measure(plan, by=manager, on=plan.opened_on)
    verdict = plan_verdicts(plan).indicators[0]
    svg = str(render_svg(chart_for(verdict, chart_id="c2")))
    assert "not enough data" in verdict.assurance.headline().lower()
    assert "<circle" in svg and "Target" in svg and "Upper limit" not in svg


def test_text_in_the_chart_is_escaped(plan, manager):
    indicator = plan.indicators.get()
    indicator.name = "<script>alert(1)</script>"
    indicator.save()
    measure(plan, by=manager, on=plan.opened_on)
    svg = str(render_svg(chart_for(plan_verdicts(plan).indicators[0], chart_id="c3")))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_plan_page_shows_chart_verdicts_and_data_table(client, long_plan, manager):
    client.force_login(manager)
    page = client.get(long_plan.get_absolute_url()).content.decode()
    assert "Sustained improvement" in page and "Criteria verdict" in page
    assert "Statistical assurance" in page and "p-chart (Making Data Count rules)" in page
    assert page.count("<svg") >= 1 and "Chart data as a table" in page
    section = page[page.index('id="verdicts"') : page.index('id="audits"')]
    assert ' style="' not in section  # the CSP forbids inline styles


@pytest.mark.parametrize("per_indicator", [1, 20])
def test_plan_page_query_count_is_constant(
    client, quality_lead, manager, oakfield, per_indicator, django_assert_max_num_queries
):
    from decimal import Decimal

    indicators = [
        {
            "name": f"Indicator {n}",
            "measure_type": "proportion",
            "direction": "higher",
            "target": Decimal("90"),
            "unit": "%",
            "frequency": "monthly",
        }
        for n in range(3)
    ]
    plan = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        indicators=indicators,
        opened_on=datetime.date(2024, 1, 1),
    )
    client.force_login(manager)
    client.get(plan.get_absolute_url())
    freshness.data_changed()  # the page as computed, not as cached (core.freshness)
    with django_assert_max_num_queries(80) as empty:
        client.get(plan.get_absolute_url())
    for ind in plan.indicators.all():
        for i in range(per_indicator):
            measure(
                plan,
                by=manager,
                indicator=ind,
                on=datetime.date(2024, 1, 1) + datetime.timedelta(days=20 * i),
            )
    with django_assert_max_num_queries(len(empty.captured_queries)):
        response = client.get(plan.get_absolute_url())
    assert response.content.decode().count("<svg") >= 3
