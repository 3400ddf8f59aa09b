"""One call that picks the right analysis for however many points a measure has."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .arithmetic import Number, check_indices, to_decimals
from .chart import MIN_SPC_POINTS
from .pchart import analyse_p_chart, check_counts
from .runchart import analyse_run_chart
from .text import Formatter, plural
from .types import (
    ChartResult,
    ConflictRule,
    Direction,
    Effect,
    RuleSettings,
    RunChartResult,
    Signal,
    TwoOfThree,
    parse_choice,
)
from .xmr import checked_xmr, usual_xmr

# Run-chart rules and their tables start at 10 useful observations (Perla 2011; Anhøj
# 2014); below that the product makes no statistical judgement (SPC.md §3.4 policy).
MIN_RUN_CHART_POINTS = 10

NOT_ENOUGH_DATA = "not enough data for statistical confirmation"


_SEVEN = 7
_DEFAULTS = RuleSettings.build(7, 7, TwoOfThree.MDC2023, ConflictRule.CONCERN)
_DIRECTIONS = {member.value: member for member in Direction}  # the usual spellings


class Method(StrEnum):
    INSUFFICIENT_DATA = "insufficient_data"
    RUN_CHART = "run_chart"
    XMR = "xmr"
    P_CHART = "p_chart"


@dataclass(frozen=True, slots=True)
class SeriesAssessment:
    """The statistical assurance shown beside a chart: which method the number of points
    allows, and its result (None when there are too few points for any)."""

    method: Method
    n_points: int  # non-ghosted points
    result: ChartResult | RunChartResult | None

    @property
    def signals(self) -> tuple[Signal, ...]:
        return () if self.result is None else self.result.signals

    @property
    def has_concern(self) -> bool:
        return any(signal.effect is Effect.CONCERN for signal in self.signals)

    def explain(self, fmt: Formatter | None = None) -> str:
        if self.result is None:
            return (
                f"Only {plural(self.n_points, 'measurement')}: {NOT_ENOUGH_DATA}. Run-chart "
                f"rules need at least {MIN_RUN_CHART_POINTS} points and control limits at "
                f"least {MIN_SPC_POINTS}."
            )
        if self.method is Method.RUN_CHART:
            return (
                f"{self.n_points} points are too few for control limits (at least "
                f"{MIN_SPC_POINTS} are needed), so run-chart rules are used.\n"
                + self.result.explain(fmt)
            )
        return self.result.explain(fmt)


_new = object.__new__
_set_method = SeriesAssessment.method.__set__  # type: ignore[attr-defined]
_set_count = SeriesAssessment.n_points.__set__  # type: ignore[attr-defined]
_set_result = SeriesAssessment.result.__set__  # type: ignore[attr-defined]
_XMR = Method.XMR


def _xmr_assessment(count: int, result: ChartResult) -> SeriesAssessment:
    """`SeriesAssessment(Method.XMR, count, result)`, without the frozen dataclass's
    setattr call per field."""
    assessment = _new(SeriesAssessment)
    _set_method(assessment, _XMR)
    _set_count(assessment, count)
    _set_result(assessment, result)
    return assessment


def assess_series(
    values: Sequence[Number] | None = None,
    *,
    numerators: Sequence[Number] | None = None,
    denominators: Sequence[Number] | None = None,
    direction: Direction | str,
    target: Number | None = None,
    baseline: int | None = None,
    recalc_at: Collection[int] = (),
    ghosts: Collection[int] = (),
    labels: Sequence[str] | None = None,
    shift: int = 7,
    trend: int = 7,
    two_of_three: TwoOfThree | str = TwoOfThree.MDC2023,
    conflict: ConflictRule | str = ConflictRule.CONCERN,
) -> SeriesAssessment:
    """Assess `values`, or `numerators` out of `denominators` for audit proportions.

    Fewer than 10 non-ghosted points: not enough data for statistical confirmation.
    10 to 14: run chart (Anhøj rules; `target` and `recalc_at` do not apply). 15 or more:
    p-chart when denominators are given, XmR chart otherwise (SPC.md §2.3, §3.4).
    """
    # Checked whatever the length, so bad settings fail before there is enough data too.
    way = _DIRECTIONS.get(direction) if type(direction) is str else None
    if way is None:
        way = parse_choice(Direction, direction, "direction")
    if (
        shift is _SEVEN
        and trend is _SEVEN
        and two_of_three is TwoOfThree.MDC2023
        and conflict is ConflictRule.CONCERN
    ):
        settings = _DEFAULTS  # the defaults themselves (an int 7 is never True or 7.0)
    else:
        settings = RuleSettings.build(shift, trend, two_of_three, conflict)
    if (numerators is None) != (denominators is None):
        raise ValueError("numerators and denominators must be given together")
    if (values is None) == (numerators is None):
        raise ValueError("give either values, or numerators with denominators, not both")

    if (
        numerators is None
        and type(values) is list
        and len(values) >= MIN_SPC_POINTS
        and baseline is None
        and labels is None
        and type(ghosts) is tuple
        and not ghosts
        and type(recalc_at) is tuple
        and not recalc_at
    ):
        # The usual call: an XmR chart of one partition, nothing more to check.
        return _xmr_assessment(len(values), usual_xmr(values, way, target, settings))
    if numerators is not None and denominators is not None:
        active = _active_points(numerators, ghosts)
        if active >= MIN_SPC_POINTS:
            chart = analyse_p_chart(
                numerators,
                denominators,
                direction=direction,
                target=target,
                baseline=baseline,
                recalc_at=recalc_at,
                ghosts=ghosts,
                labels=labels,
                shift=shift,
                trend=trend,
                two_of_three=two_of_three,
                conflict=conflict,
            )
            return SeriesAssessment(Method.P_CHART, active, chart)
        x, n = check_counts(numerators, denominators)
        series: Sequence[Number] = [xi / ni for xi, ni in zip(x, n, strict=True)]
    else:
        assert values is not None
        active = _active_points(values, ghosts)
        if active >= MIN_SPC_POINTS:
            chart = checked_xmr(
                values,
                direction=way,
                target=target,
                baseline=baseline,
                recalc_at=recalc_at,
                ghosts=ghosts,
                labels=labels,
                settings=settings,
            )
            return SeriesAssessment(Method.XMR, active, chart)
        to_decimals(values, "values")
        series = values

    if active < MIN_RUN_CHART_POINTS:
        return SeriesAssessment(Method.INSUFFICIENT_DATA, active, None)
    run = analyse_run_chart(
        series, direction=direction, baseline=baseline, ghosts=ghosts, labels=labels
    )
    return SeriesAssessment(Method.RUN_CHART, active, run)


def _active_points(given: Sequence[Number], ghosts: Collection[int]) -> int:
    """The number of points that count: those not ghosted."""
    if type(given) is not list and (
        isinstance(given, str | bytes) or not isinstance(given, Sequence)
    ):
        raise ValueError(f"expected a sequence of measurements, got {given!r}")
    return len(given) - len(check_indices(ghosts, len(given), "ghosts"))
