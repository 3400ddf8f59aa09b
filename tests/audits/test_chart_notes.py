"""Notes on charts, recalculating limits after a documented change, and Making Data
Count's variation and assurance icons."""

import datetime
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from audits import services, spc
from audits.charts import (
    ASSURANCE_ICONS,
    VARIATION_ICONS,
    _position,
    chart_for,
    render_icon,
    render_icons,
    render_svg,
)
from audits.models import Annotation, MonitoredIndicator
from audits.verdicts import plan_verdicts
from core import freshness
from plans import services as plan_services
from plans.models import Plan
from plans.services import TransitionRefused
from tests import factories
from tests.audits.factories import measure

SCORE = [
    {
        "name": "Care plan quality score",
        "measure_type": "score",
        "direction": "higher",
        "target": Decimal("80"),
        "unit": "",
        "frequency": "monthly",
    }
]
# SPC.md TV-16: a stable baseline, then a sustained improvement.
BASELINE = [68, 72, 65, 71, 74, 69, 66, 73, 70, 67, 72, 68, 75, 69, 71]
IMPROVED = [84, 86, 89, 87, 90, 88, 91, 86, 89, 92, 88, 90, 87, 89, 91]
START = datetime.date(2023, 1, 5)


def _dates(n: int) -> list[datetime.date]:
    return [START + datetime.timedelta(days=30 * i) for i in range(n)]


def _scored_plan(owner, location, values, *, baseline: int = 0):
    """A live plan with one score indicator and ``values`` monthly; the first
    ``baseline`` of them dated before the plan opened (a frozen baseline)."""
    dates = _dates(len(values))
    opened = dates[baseline] if baseline else START
    plan = factories.live_plan(
        owner=owner, locations=[location], indicators=SCORE, opened_on=opened
    )
    for on, value in zip(dates, values, strict=True):
        measure(plan, by=owner, on=on, numerator=None, denominator=None, value=Decimal(value))
    return plan


@pytest.fixture
def improved(quality_lead, oakfield):
    return _scored_plan(quality_lead, oakfield, BASELINE + IMPROVED, baseline=15)


def _verdict(plan):
    return plan_verdicts(plan).indicators[0]


# --- Notes ----------------------------------------------------------------------------


def test_a_manager_notes_a_pdsa_cycle_and_it_is_drawn_and_listed(client, manager, improved):
    indicator = improved.indicators.get()
    client.force_login(manager)
    url = reverse("audits:add_note", args=[improved.reference])
    assert client.get(url, {"indicator": indicator.pk}).status_code == 200
    response = client.post(
        url,
        {
            "indicator": indicator.pk,
            "noted_on": "20/01/2024",
            "kind": "pdsa",
            "text": "New escalation checklist introduced",
        },
    )
    assert response.status_code == 302
    note = Annotation.objects.get()
    assert (note.kind, note.noted_on, note.created_by) == (
        "pdsa",
        datetime.date(2024, 1, 20),
        manager,
    )
    record = note.history.get()
    assert record.history_user == manager and "Chart note added" in record.history_change_reason

    page = client.get(improved.get_absolute_url()).content.decode()
    # A numbered flag on the chart with its words as a tooltip, in the text alternative,
    # and in the list under the chart.
    words = "20 Jan 2024, PDSA cycle: New escalation checklist introduced"
    assert f"<title>Note 1: {words}</title>" in page
    assert re.search(rf"<desc [^>]*>[^<]*Notes: 1, {words}\.", page)
    assert "Notes on this chart" in page
    assert "<strong>20 Jan 2024</strong>, PDSA cycle: New escalation checklist introduced" in page


def test_a_note_sits_between_the_results_it_falls_between():
    dates = [datetime.date(2026, 1, 1), datetime.date(2026, 1, 11), datetime.date(2026, 2, 1)]
    assert _position(dates, datetime.date(2026, 1, 11)) == 1.0
    assert _position(dates, datetime.date(2026, 1, 6)) == 0.5
    assert _position(dates, datetime.date(2025, 12, 1)) == -0.5  # before: the left edge
    assert _position(dates, datetime.date(2026, 3, 1)) == 2.5  # after: the right edge


@pytest.mark.parametrize("who", ["viewer", "outsider", "governance_member"])
def test_only_people_who_may_edit_the_plan_add_notes(client, improved, who, request):
    client.force_login(request.getfixturevalue(who))
    indicator = improved.indicators.get()
    url = reverse("audits:add_note", args=[improved.reference])
    data = {"indicator": indicator.pk, "noted_on": "20/01/2024", "kind": "note", "text": "x"}
    assert client.post(url, data).status_code == 404
    assert not Annotation.objects.exists()


def test_notes_are_refused_on_a_withdrawn_plan(client, quality_lead, oakfield):
    plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
    indicator = plan.indicators.get()
    plan_services.withdraw_plan(plan=plan, by=quality_lead, reason="Merged")
    with pytest.raises(TransitionRefused, match="withdrawn: its chart notes cannot change"):
        services.add_annotation(
            indicator=indicator, by=quality_lead, noted_on=plan.opened_on, kind="note", text="x"
        )
    client.force_login(quality_lead)
    response = client.post(
        reverse("audits:add_note", args=[plan.reference]),
        {"indicator": indicator.pk, "noted_on": "01/01/2026", "kind": "note", "text": "x"},
        follow=True,
    )
    assert "its charts cannot change" in response.content.decode()
    assert not Annotation.objects.exists()


def test_a_note_needs_words_a_past_date_and_a_note_kind(quality_lead, improved):
    indicator = improved.indicators.get()
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    for kwargs, message in (
        ({"text": "  "}, "Write the note"),
        ({"noted_on": tomorrow}, "cannot be dated in the future"),
        ({"kind": "rebase"}, "Choose what kind of note"),
    ):
        fields = {"noted_on": START, "kind": "note", "text": "x", **kwargs}
        with pytest.raises(services.AnnotationRefused, match=message):
            services.add_annotation(indicator=indicator, by=quality_lead, **fields)
    assert not Annotation.objects.exists()


def test_the_note_form_lists_its_errors_at_the_top(client, manager, improved):
    client.force_login(manager)
    response = client.post(
        reverse("audits:add_note", args=[improved.reference]),
        {"indicator": "", "noted_on": "", "kind": "note", "text": ""},
    )
    errors = [(e.label, e.message, e.anchor) for e in response.context["errors"]]
    assert ("Chart (indicator)", "Choose the chart to note.", "id_indicator") in errors
    assert ("Date", "Enter the date of the note.", "id_noted_on") in errors
    assert ("Note", "Write the note.", "id_text") in errors


# --- Recalculating limits -------------------------------------------------------------


def test_the_quality_lead_recalculates_limits_from_the_start_of_a_sustained_shift(
    client, quality_lead, improved
):
    indicator = improved.indicators.get()
    before = _verdict(improved)
    assert before.assurance.assessment.result.limits.mean == pytest.approx(70.0)
    client.force_login(quality_lead)
    url = reverse("audits:recalculate_limits", args=[improved.reference, indicator.pk])
    page = client.get(url)
    assert page.status_code == 200
    # The start of the improvement shift is offered.
    assert page.context["form"].initial["starts_on"] == _dates(30)[15].isoformat()
    response = client.post(
        url,
        {"starts_on": _dates(30)[15].isoformat(), "reason": "Escalation checklist in use"},
    )
    assert response.status_code == 302
    rebase = Annotation.objects.get(kind=Annotation.Kind.REBASE)
    assert rebase.noted_on == _dates(30)[15] and rebase.text == "Escalation checklist in use"
    assert "Limits recalculated from" in rebase.history.get().history_change_reason

    # Every verdict and chart now judges the new phase by its own limits.
    after = _verdict(improved)
    result = after.assurance.assessment.result
    assert [p.first for p in result.partitions] == [0, 15]
    assert result.partitions[-1].inherited_from is None  # its own limits
    assert result.limits.mean == pytest.approx(sum(IMPROVED) / 15)
    spec = chart_for(after, chart_id="c")
    assert spec.points[14].mean == pytest.approx(70.0)
    assert spec.points[15].mean == pytest.approx(sum(IMPROVED) / 15)  # the step
    assert (15, "Limits recalculated") in spec.markers
    svg = str(render_svg(spec))
    assert "Limits recalculated" in svg and "Escalation checklist in use" in svg
    page = client.get(improved.get_absolute_url()).content.decode()
    assert "Limits recalculated from this result on: Escalation checklist in use" in page
    # And on the plan's timeline, with the reason, on the day of the new phase's start.
    from qip_portal.pages.timeline import plan_timeline

    [entry] = [e for e in plan_timeline(improved) if "recalculated the limits" in e.text]
    assert entry.reason == "Escalation checklist in use" and entry.day == _dates(30)[15]
    assert entry.who == str(quality_lead)


def test_recalculation_is_refused_with_the_reason_where_the_rules_do_not_allow_it(
    quality_lead, improved
):
    indicator = improved.indicators.get()
    dates = _dates(30)
    cases = {
        dates[0]: "The first result already starts the chart",
        dates[5]: "inside the baseline (the 15 results from before the plan opened)",
        dates[20]: "has 10 results; Making Data Count needs at least 12 before limits are "
        "set from it (2 more)",
        datetime.date(2024, 6, 6): "has no result dated 6 Jun 2024",
    }
    for starts_on, message in cases.items():
        with pytest.raises(services.AnnotationRefused) as refused:
            services.recalculate_limits(
                indicator=indicator, by=quality_lead, starts_on=starts_on, reason="Change"
            )
        assert message in " ".join(refused.value.reasons), starts_on
    with pytest.raises(services.AnnotationRefused, match="Say what changed"):
        services.recalculate_limits(
            indicator=indicator, by=quality_lead, starts_on=dates[15], reason=" "
        )
    assert not Annotation.objects.exists()


def test_no_recalculation_without_a_sustained_improvement_shift(quality_lead, oakfield):
    stable = _scored_plan(quality_lead, oakfield, BASELINE * 2)
    with pytest.raises(services.AnnotationRefused, match="There is no sustained shift"):
        services.recalculate_limits(
            indicator=stable.indicators.get(),
            by=quality_lead,
            starts_on=_dates(30)[15],
            reason="New rota",
        )
    # A shift to the worse side is a warning, not a new level.
    worse = _scored_plan(quality_lead, oakfield, IMPROVED + BASELINE)
    with pytest.raises(services.AnnotationRefused, match="on the concern side"):
        services.recalculate_limits(
            indicator=worse.indicators.get(),
            by=quality_lead,
            starts_on=_dates(30)[15],
            reason="New rota",
        )
    assert not Annotation.objects.exists()


def test_a_change_documented_before_the_shift_is_pointed_to_the_shift(quality_lead, oakfield):
    plan = _scored_plan(quality_lead, oakfield, BASELINE + [70, 69] + IMPROVED[:13], baseline=15)
    problems = services.rebase_problems(plan.indicators.get(), _dates(30)[15])
    assert any(
        f"The improvement shift starts at {_dates(30)[17].strftime('%-d %b %Y')}" in p
        for p in problems
    ), problems


def test_recalculation_is_the_quality_leads_and_only_while_live(
    client, manager, quality_lead, improved, oakfield
):
    indicator = improved.indicators.get()
    client.force_login(manager)
    url = reverse("audits:recalculate_limits", args=[improved.reference, indicator.pk])
    assert client.get(url).status_code == 404
    assert (
        client.post(url, {"starts_on": _dates(30)[15].isoformat(), "reason": "x"}).status_code
        == 404
    )
    improved.status = Plan.Status.MONITORING
    plan_services._save(improved, by=quality_lead, reason="test: in monitoring")
    with pytest.raises(services.AnnotationRefused, match="frozen reference"):
        services.recalculate_limits(
            indicator=indicator, by=quality_lead, starts_on=_dates(30)[15], reason="x"
        )
    assert not Annotation.objects.exists()


def test_the_refusal_is_shown_at_the_top_of_the_form(client, quality_lead, improved):
    indicator = improved.indicators.get()
    client.force_login(quality_lead)
    response = client.post(
        reverse("audits:recalculate_limits", args=[improved.reference, indicator.pk]),
        {"starts_on": _dates(30)[20].isoformat(), "reason": "New checklist"},
    )
    assert response.status_code == 200
    [error] = response.context["errors"]
    assert error.anchor == "id_starts_on" and "at least 12" in error.message
    assert "Nothing was saved" in response.content.decode()


# --- Icons ------------------------------------------------------------------------------


def test_icons_follow_the_engine_and_the_recalculated_limits(quality_lead, improved):
    before = chart_for(_verdict(improved), chart_id="c")
    result = _verdict(improved).assurance.assessment.result
    assert result.variation is spc.VariationIcon.IMPROVEMENT_HIGH
    assert result.assurance.icon is spc.AssuranceIcon.HIT_OR_MISS  # 80 inside 57.6-82.4
    assert before.variation == VARIATION_ICONS["improvement-high"]
    assert before.assurance == ASSURANCE_ICONS[spc.AssuranceIcon.HIT_OR_MISS]
    services.recalculate_limits(
        indicator=improved.indicators.get(),
        by=quality_lead,
        starts_on=_dates(30)[15],
        reason="Checklist",
    )
    after = chart_for(_verdict(improved), chart_id="c")
    # Judged by its own phase (lower limit about 81), the target of 80 is passed.
    assert after.variation == VARIATION_ICONS["common"]
    assert after.assurance == ASSURANCE_ICONS[spc.AssuranceIcon.PASS]


def test_no_icons_below_fifteen_results(quality_lead, oakfield):
    plan = _scored_plan(quality_lead, oakfield, BASELINE[:12])
    spec = chart_for(_verdict(plan), chart_id="c")
    assert spec.variation is None and spec.assurance is None
    assert "from 15 results (12 so far)" in spec.no_icons
    assert "from 15 results (12 so far)" in str(render_icons(spec))


def test_in_monitoring_assurance_uses_the_frozen_reference(quality_lead, improved):
    verdict = _verdict(improved)
    indicator = verdict.indicator
    start = _dates(30)[20]
    for lower, upper, expected in (
        (Decimal("81"), Decimal("97"), spc.AssuranceIcon.PASS),
        (Decimal("60"), Decimal("80"), spc.AssuranceIcon.FAIL),  # on a limit: inclusive
        (Decimal("75"), Decimal("95"), spc.AssuranceIcon.HIT_OR_MISS),
    ):
        monitored = MonitoredIndicator(
            indicator=indicator,
            reference_values=[{"on": "2024-01-01", "value": "90"}] * 12,
            reference_mean=(lower + upper) / 2,
            reference_lower=lower,
            reference_upper=upper,
        )
        spec = chart_for(verdict, chart_id="c", monitored=monitored, period_start=start)
        assert spec.assurance == ASSURANCE_ICONS[expected], (lower, upper)
    # A reference frozen from fewer than 12 results sets no icons.
    monitored.reference_values = monitored.reference_values[:4]
    spec = chart_for(verdict, chart_id="c", monitored=monitored, period_start=start)
    assert spec.variation is None and spec.assurance is None
    assert "the frozen reference has 4 results" in spec.no_icons


@pytest.mark.parametrize(
    "icon", [*VARIATION_ICONS.values(), *ASSURANCE_ICONS.values()], ids=lambda i: i.code
)
def test_every_icon_is_an_image_named_by_its_text(icon):
    svg = str(render_icon(icon))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert f'aria-label="{icon.text}"' in svg and f"<title>{icon.text}</title>" in svg
    # Not by colour alone: a letter or a shape says it too.
    cue = {"pass": ">P<", "fail": ">F<", "hit-or-miss": "<polyline"}.get(icon.code)
    if icon.code.endswith("-high"):
        cue = ">H<"
    elif icon.code.endswith("-low"):
        cue = ">L<"
    elif icon.code == "common":
        cue = "<polyline"
    assert cue in svg


def test_the_plan_page_shows_each_indicators_icons_with_their_words(client, manager, improved):
    client.force_login(manager)
    page = client.get(improved.get_absolute_url()).content.decode()
    assert "Variation and assurance" in page
    text = "Variation: special cause improvement, the latest result is significantly higher."
    assert f'aria-label="{text}"' in page
    assert "Special cause improvement (higher)" in page and "Target hit or miss" in page


def test_the_registers_detail_of_a_plan_shows_its_icons(client, manager, outsider, improved):
    client.force_login(manager)
    register = client.get(reverse("plans:register")).content.decode()
    url = reverse("audits:plan_icons", args=[improved.reference])
    assert f'data-peek-url="{url}"' in register and 'aria-expanded="false"' in register
    detail = client.get(url).content.decode()
    assert "Care plan quality score" in detail
    assert (
        'role="img"' in detail
        and "Special cause improvement (higher); target hit or miss." in detail
    )
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_the_closure_report_freezes_the_icons(quality_lead, improved):
    from governance.reports import _indicator_verdict

    services.add_annotation(
        indicator=improved.indicators.get(),
        by=quality_lead,
        noted_on=_dates(30)[2],
        kind="change",
        text="Huddle started",
    )
    part = _indicator_verdict(_verdict(improved))
    assert part["notes"] == [
        f"1. {_dates(30)[2].strftime('%-d %b %Y')}, Process change: Huddle started"
    ]
    assert 'role="img"' in part["icons_svg"]
    assert part["icons_text"].startswith("Variation: special cause improvement")
    assert "Assurance: hit or miss" in part["icons_text"]


def test_notes_and_recalculations_change_the_cached_figures(client, quality_lead, improved):
    client.force_login(quality_lead)
    client.get(improved.get_absolute_url())  # cached
    scopes = [f"plan:{improved.pk}"]
    version = freshness.versions(scopes)
    services.add_annotation(
        indicator=improved.indicators.get(),
        by=quality_lead,
        noted_on=_dates(30)[3],
        kind="change",
        text="Huddle moved to 8am",
    )
    assert freshness.versions(scopes) != version
    assert "Huddle moved to 8am" in client.get(improved.get_absolute_url()).content.decode()


def test_the_evidence_pack_shows_the_icons_and_lists_the_notes(quality_lead, improved):
    from qip_portal.packs.evidence_pack import compile_plan_pack, render_plan_pack_html

    services.add_annotation(
        indicator=improved.indicators.get(),
        by=quality_lead,
        noted_on=_dates(30)[14],
        kind="pdsa",
        text="PDSA cycle 1: checklist piloted on nights",
    )
    html = render_plan_pack_html(compile_plan_pack(improved))
    when = _dates(30)[14].strftime("%-d %b %Y")
    assert f"Notes on the chart:</strong> 1. {when}, PDSA cycle: PDSA cycle 1: checklist" in html
    assert "Variation and assurance:" in html and "Target hit or miss" in html


@pytest.mark.parametrize("indicators", [1, 6])
def test_the_registers_detail_runs_a_fixed_number_of_queries(
    client, quality_lead, oakfield, indicators, django_assert_max_num_queries
):
    plan = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        indicators=[{**SCORE[0], "name": f"Score {n}"} for n in range(indicators)],
    )
    for ind in plan.indicators.all():
        for i, value in enumerate(BASELINE):
            measure(plan, by=quality_lead, indicator=ind, on=_dates(15)[i], value=Decimal(value),
                    numerator=None, denominator=None)  # fmt: skip
            if ind.pk % 2:
                services.add_annotation(
                    indicator=ind, by=quality_lead, noted_on=_dates(15)[i], kind="note", text="n"
                )
    client.force_login(quality_lead)
    url = reverse("audits:plan_icons", args=[plan.reference])
    freshness.data_changed()
    with django_assert_max_num_queries(20):
        response = client.get(url)
    assert response.content.decode().count('class="fw-semibold"') == indicators
