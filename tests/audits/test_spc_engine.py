"""Hand-made cases for the SPC engine: behaviour the vectors do not pin down alone."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from audits.spc import (
    NOT_ENOUGH_DATA,
    AssuranceIcon,
    ChartKind,
    ChartResult,
    ClosureState,
    Effect,
    Method,
    Severity,
    VariationIcon,
    analyse_p_chart,
    analyse_run_chart,
    analyse_xmr,
    assess_closure,
    assess_monitoring,
    assess_series,
)

# SPC.md TV-16/TV-17: a baseline, then a clear improvement that holds.
BASELINE = [68, 72, 65, 71, 74, 69, 66, 73, 70, 67, 72, 68, 75, 69, 71]
IMPROVED = [84, 86, 89, 87, 90, 88, 91, 86, 89, 92, 88, 90, 87, 89, 91]
REFERENCE = IMPROVED[:12]
MONITORING = [87, 89, 91, 88, 90, 87, 89, 86, 84, 85, 83, 84, 82, 85, 83]
# SPC.md TV-5: signals of every kind, on both sides, with conflicts.
DEPARTMENT_D = [
    0.971, 0.973, 0.978, 0.979, 0.981, 0.985, 0.987, 0.991, 0.993, 0.987, 0.982, 0.980, 0.979,
    0.972, 0.964, 0.962, 0.958, 0.960, 0.961, 0.963, 0.964, 0.965, 0.966, 0.968, 0.970, 0.972,
]  # fmt: skip
TOTAL = [
    0.922, 0.928, 0.930, 0.926, 0.926, 0.923, 0.921, 0.918, 0.925, 0.910, 0.920, 0.924, 0.923,
    0.920, 0.925, 0.928, 0.927, 0.921, 0.918, 0.921, 0.925, 0.939, 0.929, 0.927, 0.925, 0.926,
]  # fmt: skip
# SPC.md TV-14: NHS A&E patients seen within four hours, out of all seen, over 20 weeks.
# fmt: off
AE_MET = [266501, 264225, 276532, 281461, 269071, 261215, 270409, 279778, 270483, 270320,
          267923, 271478, 255353, 256820, 261835, 259144, 255910, 260863, 264465, 260989]
AE_SEEN = [280443, 276823, 291681, 296155, 282343, 275888, 283867, 295251, 284468, 282529,
           279618, 283932, 266629, 268091, 276803, 271578, 266005, 273520, 278574, 273772]
# fmt: on
WEEKS = [(date(2021, 1, 4) + timedelta(weeks=i)).isoformat() for i in range(len(TOTAL))]

MIRRORED_CODE = {
    "astro_hi": "astro_lo",
    "shift_hi": "shift_lo",
    "trend_up": "trend_dn",
    "2of3_hi": "2of3_lo",
}
MIRRORED_CODE |= {low: high for high, low in MIRRORED_CODE.items()}
MIRRORED_ICON = {
    VariationIcon.COMMON_CAUSE: VariationIcon.COMMON_CAUSE,
    VariationIcon.IMPROVEMENT_HIGH: VariationIcon.IMPROVEMENT_LOW,
    VariationIcon.IMPROVEMENT_LOW: VariationIcon.IMPROVEMENT_HIGH,
    VariationIcon.CONCERN_HIGH: VariationIcon.CONCERN_LOW,
    VariationIcon.CONCERN_LOW: VariationIcon.CONCERN_HIGH,
}


def verdicts(chart: ChartResult, *, mirrored: bool = False) -> list[Any]:
    """Per point: rules (mirrored if asked), classification, conflict; then the icons."""
    rows: list[Any] = [
        (
            sorted(MIRRORED_CODE[c] if mirrored else c for c in p.rules),
            p.classification,
            p.conflict,
        )
        for p in chart.points
    ]
    variation = MIRRORED_ICON[chart.variation] if mirrored else chart.variation
    icon = chart.assurance.icon if chart.assurance else None
    return [*rows, variation, icon]


# --- both directions ----------------------------------------------------------------------


@pytest.mark.parametrize("two_of_three", ["sql_v2", "mdc2023"])
@pytest.mark.parametrize("conflict", ["concern", "improvement"])
@pytest.mark.parametrize("series", [DEPARTMENT_D, TOTAL, BASELINE + IMPROVED])
def test_mirrored_series_under_lower_is_better_gives_mirrored_verdicts(
    series: list[float], two_of_three: str, conflict: str
) -> None:
    options: dict[str, Any] = {"two_of_three": two_of_three, "conflict": conflict}
    up = analyse_xmr(series, direction="up", target=series[0], **options)
    down = analyse_xmr([-v for v in series], direction="down", target=-series[0], **options)

    assert up.signals, "the series should have something to mirror"
    assert verdicts(down) == verdicts(up, mirrored=True)
    assert down.limits is not None and up.limits is not None
    assert down.limits.upper == pytest.approx(-up.limits.lower)


def test_a_p_chart_of_failures_under_lower_is_better_mirrors_one_of_successes() -> None:
    audited = [20, 22, 18, 20, 25, 20, 19, 21, 20, 20, 20, 24, 18, 20, 21, 20, 22, 20, 19, 20]
    passed = [14, 15, 13, 14, 17, 14, 13, 15, 14, 14, 18, 22, 17, 17, 19, 18, 20, 18, 17, 19]
    failed = [n - x for x, n in zip(passed, audited, strict=True)]

    up = analyse_p_chart(passed, audited, direction="up", target=0.6)
    down = analyse_p_chart(failed, audited, direction="down", target=0.4)

    assert up.signals
    assert verdicts(down) == verdicts(up, mirrored=True)


def test_closure_and_monitoring_work_for_lower_is_better() -> None:
    up = assess_closure(BASELINE + IMPROVED, direction="up", baseline=15, target=80)
    down = assess_closure(
        [-v for v in BASELINE + IMPROVED], direction="down", baseline=15, target=-80
    )
    assert up.state is down.state is ClosureState.SUSTAINED_PASS
    assert up.rebase_at == down.rebase_at == 15

    watched_up = assess_monitoring(REFERENCE, MONITORING, direction="up")
    watched_down = assess_monitoring(
        [-v for v in REFERENCE], [-v for v in MONITORING], direction="down"
    )
    assert watched_up.first_detected_at == watched_down.first_detected_at
    assert [MIRRORED_CODE[c] for c in watched_up.concern_rules] == sorted(
        watched_down.concern_rules
    )
    assert watched_down.variation is VariationIcon.CONCERN_HIGH


def test_a_measure_with_no_direction_gets_neutral_signals_and_no_assurance() -> None:
    chart = analyse_xmr(DEPARTMENT_D, direction="neither", target=0.95)
    assert {s.effect for s in chart.signals} == {Effect.NEUTRAL}
    assert chart.variation in (VariationIcon.NEITHER_HIGH, VariationIcon.NEITHER_LOW)
    assert chart.assurance is None


# --- exact rule edges ---------------------------------------------------------------------


@pytest.mark.parametrize("high, centre, low", [(11, 10, 9), (0.3, 0.2, 0.1)])
def test_a_point_exactly_on_the_mean_breaks_a_shift(high: float, centre: float, low: float) -> None:
    # 12 high points, one on the mean, 12 low points: the mean is exactly `centre` (in
    # decimal; in binary floats 0.1-based sums would put 0.2 just off it).
    series = [high] * 6 + [centre] + [high] * 6 + [low] * 12
    chart = analyse_xmr(series, direction="up")

    assert chart.limits is not None and chart.limits.mean == centre
    assert [s.code for s in chart.signals if s.rule == "shift"] == ["shift_lo"]
    assert "shift_hi" not in {code for p in chart.points for code in p.rules}


def test_the_same_run_without_the_point_on_the_mean_is_a_shift() -> None:
    series = [11] * 13 + [9] * 13
    chart = analyse_xmr(series, direction="up")
    assert sorted(s.code for s in chart.signals if s.rule == "shift") == ["shift_hi", "shift_lo"]


def test_a_tie_breaks_a_trend_but_not_an_ihi_run_chart_trend() -> None:
    tied = [5, 1, 2, 3, 4, 4, 5, 6, 7, 3, 4, 2, 5, 3, 4, 5]
    rising = [5, 1, 2, 3, 4, 5, 6, 7, 8, 3, 4, 2, 5, 3, 4, 5]

    assert not analyse_xmr(tied, direction="up").signals
    trend = analyse_xmr(rising, direction="up").signals
    assert [(s.code, s.points) for s in trend] == [("trend_up", tuple(range(1, 9)))]
    assert [(p.first, p.last) for p in analyse_run_chart(tied, direction="up").ihi.trends] == [
        (1, 8)
    ]


def test_a_target_exactly_on_a_limit_passes() -> None:
    # SPC.md TV-12: LPL = 92 - 2.66 x 4 = 81.36 exactly, which binary floats miss.
    chart = analyse_xmr([90, 94] * 8, direction="up", target=81.36)
    assert chart.assurance is not None
    assert chart.assurance.icon is AssuranceIcon.PASS


def test_decimal_input_gives_the_same_chart_as_float_input() -> None:
    as_float = analyse_xmr(TOTAL, direction="up", target=0.95)
    as_decimal = analyse_xmr([Decimal(str(v)) for v in TOTAL], direction="up", target=0.95)
    assert as_decimal == as_float


def test_a_ghosted_point_is_never_flagged_and_sets_no_limits() -> None:
    series = [*TOTAL[:12], 5.0, *TOTAL[12:]]
    chart = analyse_xmr(series, direction="up", ghosts=[12])
    clean = analyse_xmr(TOTAL, direction="up")

    assert chart.points[12].ghost and not chart.points[12].rules
    assert chart.limits == clean.limits


def test_a_small_audit_cannot_raise_a_beyond_limit_signal_on_its_own() -> None:
    # q = 0.1, so a sample needs 4/q = 40 items before one point beyond a limit counts,
    # and 1/q = 10 to be judged at all (Hart & Hart).
    chart = analyse_p_chart([90] * 15 + [0], [100] * 15 + [5], direction="up")
    last = chart.points[-1]
    assert last.limits is not None and last.value < last.limits.lower
    assert "astro_lo" not in last.rules
    assert any("too small to judge" in w for w in chart.warnings)


def test_laney_p_prime_is_used_only_for_over_dispersion() -> None:
    # Huge samples vary more than binomial limits allow: sigma_z = 10.64.
    over = analyse_p_chart(AE_MET, AE_SEEN, direction="up")
    assert over.kind is ChartKind.P_PRIME and over.partitions[0].laney
    assert over.partitions[0].sigma_z == pytest.approx(10.6404, abs=1e-4)
    assert not over.signals  # the plain p-chart would put 16 of 20 points outside
    assert over.points[0].limits is not None
    assert over.points[0].limits.lower == pytest.approx(0.94013, abs=1e-5)

    # SPC.md TV-13: audits of 6 to 30 records, sigma_z = 0.908.
    passed = [19, 21, 13, 19, 2, 13, 23, 11, 15, 22, 12, 20, 18, 10, 15, 21, 16, 18, 18, 21]
    audited = [24, 30, 18, 26, 6, 22, 28, 20, 25, 30, 16, 24, 27, 19, 23, 30, 21, 26, 24, 28]
    under = analyse_p_chart(passed, audited, direction="up")
    assert under.kind is ChartKind.P and not under.partitions[0].laney


@pytest.mark.parametrize(
    "useful, longest_run_max, crossings_min",
    [(10, 6, 2), (12, 7, 3), (15, 7, 4), (20, 7, 6), (24, 8, 8), (30, 8, 10), (40, 8, 14),
     (60, 9, 23)],
)  # fmt: skip
def test_anhoej_limits_match_the_published_table(
    useful: int, longest_run_max: int, crossings_min: int
) -> None:
    # SPC.md §8.2. Alternating around a given centre line: every point is useful.
    run = analyse_run_chart([0, 1] * (useful // 2) + [0] * (useful % 2), direction="up", centre=0.5)
    assert run.anhoej.n_useful == useful
    assert (run.anhoej.longest_run_max, run.anhoej.crossings_min) == (
        longest_run_max,
        crossings_min,
    )
    assert not run.anhoej.signal


# --- choosing the method ------------------------------------------------------------------


@pytest.mark.parametrize(
    "points, ghosts, method",
    [
        (1, [], Method.INSUFFICIENT_DATA),
        (9, [], Method.INSUFFICIENT_DATA),
        (10, [0], Method.INSUFFICIENT_DATA),
        (10, [], Method.RUN_CHART),
        (14, [], Method.RUN_CHART),
        (15, [3], Method.RUN_CHART),
        (15, [], Method.XMR),
    ],
)
def test_the_method_follows_the_number_of_points(
    points: int, ghosts: list[int], method: Method
) -> None:
    result = assess_series(TOTAL[:points], direction="up", target=0.95, ghosts=ghosts)
    assert result.method is method


def test_too_few_points_are_not_enough_data_for_statistical_confirmation() -> None:
    result = assess_series([0.9, 0.8, 0.95], direction="up", target=0.9)
    assert result.method is Method.INSUFFICIENT_DATA
    assert result.result is None and not result.signals
    assert NOT_ENOUGH_DATA == "not enough data for statistical confirmation"
    assert NOT_ENOUGH_DATA in result.explain()


def test_audit_counts_use_a_p_chart_from_15_points() -> None:
    numerators, denominators = [18] * 15, [20] * 15
    assert (
        assess_series(numerators=numerators, denominators=denominators, direction="up").method
        is Method.P_CHART
    )
    short = assess_series(
        numerators=numerators[:12], denominators=denominators[:12], direction="up"
    )
    assert short.method is Method.RUN_CHART


# --- lifecycle states ---------------------------------------------------------------------


def test_closure_waits_for_a_complete_baseline() -> None:
    verdict = assess_closure(BASELINE[:10], direction="up", baseline=15, target=80)
    assert verdict.state is ClosureState.INSUFFICIENT_DATA
    assert NOT_ENOUGH_DATA in verdict.explain().lower()


def test_a_baseline_with_special_cause_is_unstable() -> None:
    unstable = [*BASELINE[:7], 120, *BASELINE[8:]]
    verdict = assess_closure(unstable + IMPROVED, direction="up", baseline=15, target=80)
    assert verdict.state is ClosureState.BASELINE_UNSTABLE
    assert [s.code for s in verdict.baseline_signals] == ["astro_hi"]


def test_a_concern_inside_the_new_phase_means_not_sustained() -> None:
    slipping = BASELINE + IMPROVED[:12] + [85] * 7  # 7 points below the locked mean of 88.3
    verdict = assess_closure(slipping, direction="up", baseline=15, target=80)
    assert verdict.state is ClosureState.UNSTABLE_NEW_PHASE
    assert verdict.concern_rules == ("shift_lo",)
    assert verdict.phase_concerns[0].points == tuple(range(27, 34))
    assert not verdict.is_ready_for_closure


def test_the_target_decides_between_pass_and_hit_or_miss() -> None:
    series = BASELINE + IMPROVED
    assert assess_closure(series, direction="up", baseline=15, target=80).is_ready_for_closure
    hit_or_miss = assess_closure(series, direction="up", baseline=15, target=85)
    assert hit_or_miss.state is ClosureState.SUSTAINED_HIT_OR_MISS
    no_target = assess_closure(series, direction="up", baseline=15)
    assert no_target.state is ClosureState.SUSTAINED_NO_TARGET


def test_monitoring_escalates_by_severity_and_cites_the_completing_point() -> None:
    verdict = assess_monitoring(REFERENCE, MONITORING, direction="up", two_of_three="sql_v2")
    found = [(d.signal.code, d.detected_at - 12 + 1, d.severity) for d in verdict.deteriorations]
    assert found == [
        ("2of3_lo", 13, Severity.EARLY_WARNING),
        ("shift_lo", 14, Severity.SUSTAINED_DETERIORATION),
    ]
    assert verdict.severity is Severity.SUSTAINED_DETERIORATION
    assert verdict.variation is VariationIcon.CONCERN_LOW


def test_monitoring_ignores_improvement_and_suggests_a_rebaseline_when_quiet() -> None:
    quiet = [88, 89, 87, 90, 88, 89] * 4 + [97]  # the last point is beyond the upper limit
    verdict = assess_monitoring(REFERENCE, quiet, direction="up")
    assert not verdict.is_deteriorating
    assert verdict.severity is Severity.NONE
    assert verdict.rebaseline_suggested


def test_a_trend_running_in_the_reference_counts_from_the_first_monitoring_point() -> None:
    reference = [90, 88, 91, 89, 97, 96, 95, 94, 93, 92, 91, 90]  # falling for 8 points
    verdict = assess_monitoring(reference, [89, 91], direction="up")
    trend = verdict.deteriorations[0]
    assert trend.signal.code == "trend_dn"
    assert trend.signal.points == tuple(range(4, 13))
    assert trend.signal.detected_at == 10  # complete inside the reference ...
    assert trend.detected_at == verdict.monitoring_start == 12  # ... but seen in monitoring
    assert trend.severity is Severity.EARLY_WARNING


# --- explanations -------------------------------------------------------------------------


def test_a_signal_explanation_names_the_rule_the_points_and_the_limit() -> None:
    chart = analyse_xmr(TOTAL, direction="up", target=0.95, labels=WEEKS)
    low = next(s for s in chart.signals if s.code == "astro_lo")

    text = low.explain()
    assert text.startswith("Point beyond a process limit:")
    assert "point 10 (2021-03-08)" in text
    assert "0.91," in text and "lower process limit of 0.912" in text
    assert text.endswith("special cause concern.")


def test_a_two_of_three_explanation_keeps_a_value_and_a_close_line_apart() -> None:
    department_a = [
        0.972, 0.965, 0.966, 0.974, 0.970, 0.971, 0.977, 0.970, 0.970, 0.968, 0.965, 0.960,
        0.967, 0.970, 0.981, 0.977, 0.976, 0.970, 0.973, 0.975, 0.977, 0.980, 0.978, 0.980,
        0.973, 0.970,
    ]  # fmt: skip
    chart = analyse_xmr(department_a, direction="up", two_of_three="mdc2023")
    text = next(s for s in chart.signals if s.code == "2of3_lo").explain()
    # 0.965 is below the 2-sigma line 0.9650221: four figures would print both as 0.965.
    assert "point 11 at 0.965" in text and "2-sigma line of 0.96502" in text


def test_a_chart_explanation_covers_limits_signals_icons_and_assurance() -> None:
    text = analyse_xmr(TOTAL, direction="up", target=0.95).explain()
    assert "mean 0.9241, process limits 0.912 to 0.9362" in text
    assert "mean ± 2.66 × the average moving range of 0.00456" in text
    assert "Shift" not in text and "Point beyond a process limit" in text
    assert "The latest point is point 26: common cause variation only." in text
    assert "Assurance: fail. The target of 0.95 is at or above the upper process limit" in text


def test_closure_and_monitoring_explanations_say_what_happened_and_where() -> None:
    closure = assess_closure(BASELINE + IMPROVED, direction="up", baseline=15, target=80)
    text = closure.explain()
    assert "improvement shift was complete at point 22" in text
    assert "new phase starts at point 16" in text
    assert "locked on its first 12 (mean 88.33, process limits 80.6 to 96.07)" in text
    assert "eligible for closure" in text

    alert = assess_monitoring(REFERENCE, MONITORING, direction="up", two_of_three="sql_v2")
    text = alert.explain()
    assert "Early warning, detected at monitoring point 13" in text
    assert "below the lower 2-sigma line of 83.17" in text
    assert "recommend re-opening the plan" in text


def test_results_can_be_stored_as_json() -> None:
    for result in (
        analyse_xmr(TOTAL, direction="up", target=0.95),
        assess_closure(BASELINE + IMPROVED, direction="up", baseline=15, target=80),
        assess_monitoring(REFERENCE, MONITORING, direction="up"),
        assess_series(TOTAL[:12], direction="up"),
    ):
        assert json.loads(json.dumps(dataclasses.asdict(result)))


# --- invalid input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: analyse_xmr([], direction="up"), "empty"),
        (lambda: analyse_xmr([1, math.nan, 3], direction="up"), "finite"),
        (lambda: analyse_xmr([1, math.inf], direction="up"), "finite"),
        (lambda: analyse_xmr([1, "2"], direction="up"), "must be a number"),  # type: ignore[list-item]
        (lambda: analyse_xmr([1, True], direction="up"), "must be a number"),
        (lambda: analyse_xmr([1, 2], direction="sideways"), "direction must be one of"),
        (lambda: analyse_xmr([1, 2], direction="up", target=math.nan), "finite"),
        (lambda: analyse_xmr([1, 2], direction="up", two_of_three="v3"), "two_of_three"),
        (lambda: analyse_xmr([1, 2], direction="up", conflict="both"), "conflict"),
        (lambda: analyse_xmr([1, 2], direction="up", shift=1), "shift"),
        (lambda: analyse_xmr([1, 2], direction="up", ghosts=[2]), "ghosts"),
        (lambda: analyse_xmr([1, 2], direction="up", ghosts=[0, 1]), "every point is ghosted"),
        (lambda: analyse_xmr([1, 2], direction="up", labels=["a"]), "labels has 1"),
        (lambda: analyse_xmr([1, 2, 3], direction="up", baseline=0), "baseline"),
        (
            lambda: analyse_xmr([1, 2, 3, 4], direction="up", baseline=3, recalc_at=[1]),
            "inside the baseline",
        ),
        (lambda: analyse_p_chart([1, 2], [3, 0], direction="up"), r"denominators\[1\] is 0"),
        (lambda: analyse_p_chart([1, 5], [3, 4], direction="up"), r"numerators\[1\] is 5"),
        (lambda: analyse_p_chart([-1, 2], [3, 4], direction="up"), r"numerators\[0\] is -1"),
        (lambda: analyse_p_chart([1, 2], [3], direction="up"), "must pair up"),
        (lambda: analyse_p_chart([1.5, 2], [3, 4], direction="up"), "whole number"),
        (lambda: analyse_p_chart([], [], direction="up"), "empty"),
        (lambda: analyse_p_chart([1, 2], [3, 4], direction="up", target=80), "proportion"),
        (lambda: analyse_run_chart([1, 2], direction="up", centre=1, baseline=1), "either"),
        (lambda: assess_series(direction="up"), "either values"),
        (lambda: assess_series([1, 2], numerators=[1], direction="up"), "together"),
        (lambda: assess_series([1, math.nan], direction="up"), "finite"),
        (
            lambda: assess_series(numerators=[3], denominators=[2], direction="up"),
            "outside 0 to its denominator",
        ),
        (lambda: assess_series([1, 2], direction="down", shift=0), "shift"),
        (lambda: assess_closure(BASELINE, direction="neither", baseline=12), "direction"),
        (lambda: assess_monitoring([88], [80], direction="up"), "at least two"),
    ],
)
def test_invalid_input_raises_a_clear_value_error(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_formatter_for_adds_digits_exactly_where_four_would_blur_a_line_and_a_point():
    """``formatter_for`` (each number formatted once) agrees with its definition: the
    fewest digits, from four, at which no line prints the same as a different value."""
    import random

    from audits.spc.text import format_number, formatter_for

    def by_definition(lines, values):
        digits = 4
        while digits < 12 and any(
            line != value and format_number(line, digits) == format_number(value, digits)
            for line in lines
            for value in values
        ):
            digits += 1
        return digits

    rng = random.Random(7)
    assert formatter_for([0.96502], [0.965])(0.965) == "0.965"
    assert formatter_for([0.96502], [0.965])(0.96502) == "0.96502"
    for _ in range(300):
        base = rng.choice([0.9, 96.0, 1234.5, 0.00456])
        lines = [base + rng.choice([0, 1e-6, 1e-4, 0.01]) for _ in range(rng.randint(0, 6))]
        values = [base + rng.choice([0, 2e-6, 1e-4, 0.02]) for _ in range(rng.randint(0, 8))]
        expected = by_definition(lines, values)
        assert formatter_for(lines, values).keywords["digits"] == expected
