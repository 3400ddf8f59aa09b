"""Putting a control chart together: partitions, point classification, icons, assurance.

Shared by the XmR chart and the p-chart, which differ only in how they set their lines.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from core.thresholds import MIN_PARTITION_POINTS, MIN_SPC_POINTS

from .rules import Lines, SeriesView, find_signals
from .types import (
    Assurance,
    AssuranceIcon,
    ChartKind,
    ChartResult,
    ConflictRule,
    Direction,
    Effect,
    Limits,
    Partition,
    Point,
    Rule,
    Side,
    Signal,
    VariationIcon,
)

# MDC SQL @SettingMinimumPointsPartition (12) and @SettingMinimumPoints (15) are
# imported above from core/thresholds.py, where every such number lives.


@dataclass(frozen=True, slots=True)
class Span:
    """Where a partition lies, before its limits are known."""

    number: int
    first: int
    last: int
    inherits: int | None


def plan_partitions(count: int, baseline: int | None, recalc_at: Collection[int]) -> list[Span]:
    """Partitions numbered as MDC does (SPC.md §3.3).

    The first `baseline` points are partition 0; partition 1 follows it and extends its
    limits; each recalculation point starts a partition with its own limits, numbered
    1 + the recalculation points up to it. Without a baseline the series starts at 1.
    """
    if baseline is not None and (isinstance(baseline, bool) or not isinstance(baseline, int)):
        raise ValueError(f"baseline must be a number of points, got {baseline!r}")
    if baseline is not None and baseline < 1:
        raise ValueError(f"baseline must hold at least one point, got {baseline}")
    first_after = 0 if baseline is None else min(baseline, count)
    for start in recalc_at:
        if start == 0:
            raise ValueError("a recalculation point cannot be the first point")
        if start < first_after:
            raise ValueError(
                f"recalculation at point {start + 1} is inside the baseline (points 1 to "
                f"{first_after}): Making Data Count does not allow limits to be "
                "recalculated within a baseline"
            )
    spans = [] if baseline is None else [Span(0, 0, first_after - 1, None)]
    for first, end in pairwise(sorted({first_after, *recalc_at, count})):
        number = 1 + sum(start <= first for start in recalc_at)
        inherits = 0 if baseline is not None and number == 1 else None
        spans.append(Span(number, first, end - 1, inherits))
    return spans


def span_warnings(
    spans: list[Span], partitions: list[Partition], baseline: int | None, count: int
) -> list[str]:
    """MDC's warnings about short baselines and partitions."""
    warnings = []
    if baseline is not None and baseline > count:
        warnings.append(
            f"The baseline is set to {baseline} points but only {count} are available, so "
            "the whole series is treated as baseline."
        )
    for span, partition in zip(spans, partitions, strict=True):
        if span.inherits is not None:
            continue
        where = "The baseline" if span.number == 0 else f"Partition {span.number}"
        if partition.limits is None and partition.n_points < 2:
            warnings.append(
                f"{where} has {partition.n_points} non-ghosted point(s): at least 2 are "
                "needed to set limits, so its points are judged by the trend rule only."
            )
        elif partition.trial:
            warnings.append(
                f"{where} has only {partition.n_points} points, so its limits are trial "
                f"limits (Making Data Count asks for at least {MIN_PARTITION_POINTS})."
            )
    return warnings


def _variation(
    point: Point, sides: set[Side], direction: Direction, mean: Decimal | None, value: Decimal
) -> VariationIcon:
    if point.classification is None:
        return VariationIcon.COMMON_CAUSE
    if direction is Direction.NEITHER:
        # With signals on both sides, the point's own side of the mean decides.
        high = Side.HIGH in sides if len(sides) == 1 else (mean is None or value > mean)
        return VariationIcon.NEITHER_HIGH if high else VariationIcon.NEITHER_LOW
    improving = point.classification is Effect.IMPROVEMENT
    if direction is Direction.UP:
        return VariationIcon.IMPROVEMENT_HIGH if improving else VariationIcon.CONCERN_LOW
    return VariationIcon.IMPROVEMENT_LOW if improving else VariationIcon.CONCERN_HIGH


def assess_target(
    target: Decimal | None, lines: Lines | None, direction: Direction
) -> Assurance | None:
    """MDC's assurance icon, inclusive at the limits as in MDC SQL v2.1 (SPC.md §5.2)."""
    if target is None or lines is None or direction is Direction.NEITHER:
        return None
    lower, upper = lines.lower, lines.upper
    if direction is Direction.UP:
        passes, fails = target <= lower, target >= upper
    else:
        passes, fails = target >= upper, target <= lower
    if passes:
        icon = AssuranceIcon.PASS
    elif fails:
        icon = AssuranceIcon.FAIL
    else:
        icon = AssuranceIcon.HIT_OR_MISS
    return Assurance(icon, float(target), float(lower), float(upper), direction)


def _code_order(signal: Signal) -> tuple[int, bool]:
    """Rules in a point's list: beyond limit, shift, trend, two of three; high side first."""
    return list(Rule).index(signal.rule), signal.side is Side.LOW


def _classify(
    hits: list[Signal], direction: Direction, rule: ConflictRule
) -> tuple[Effect | None, bool]:
    """A point's classification and whether its signals conflict (SPC.md §4.5)."""
    if not hits:
        return None, False
    if direction is Direction.NEITHER:
        return Effect.NEUTRAL, len({s.side for s in hits}) > 1
    effects = {s.effect for s in hits}
    if len(effects) == 1:
        return effects.pop(), False
    return (Effect.CONCERN if rule is ConflictRule.CONCERN else Effect.IMPROVEMENT), True


def build_chart(
    view: SeriesView,
    *,
    kind: ChartKind,
    partitions: list[Partition],
    target: Decimal | None,
    assurance_lines: Lines | None,
    warnings: list[str],
    numerators: list[int] | None = None,
    denominators: list[int] | None = None,
) -> ChartResult:
    """Find the signals, classify each point and set the icons."""
    signals = find_signals(view)
    on_point: dict[int, list[Signal]] = {}
    for signal in signals:
        for i in signal.points:
            on_point.setdefault(i, []).append(signal)

    limits_cache: dict[int, Limits] = {}
    points = []
    for i, x in enumerate(view.x):
        hits = sorted(on_point.get(i, ()), key=_code_order)
        classification, conflict = _classify(hits, view.direction, view.settings.conflict)
        lines = view.lines[i]
        if lines is not None and id(lines) not in limits_cache:
            limits_cache[id(lines)] = lines.public()
        points.append(
            Point(
                index=i,
                value=float(x),
                name=view.names[i],
                ghost=not view.active[i],
                partition=view.partition[i],
                limits=None if lines is None else limits_cache[id(lines)],
                rules=tuple(dict.fromkeys(s.code for s in hits)),
                classification=classification,
                conflict=conflict,
                numerator=None if numerators is None else numerators[i],
                denominator=None if denominators is None else denominators[i],
            )
        )

    latest = max(i for i, active in enumerate(view.active) if active)
    latest_lines = view.lines[latest]
    variation = _variation(
        points[latest],
        {s.side for s in on_point.get(latest, []) if s.side is not None},
        view.direction,
        None if latest_lines is None else latest_lines.mean,
        view.x[latest],
    )
    warnings = [*view.settings.warnings(), *warnings]
    if any(view.partition[i] == 0 for s in signals for i in s.points):
        warnings.append(
            "The baseline includes special cause variation, so it may not be a stable "
            "reference (Making Data Count warning)."
        )
    active_count = sum(view.active)
    if active_count < MIN_SPC_POINTS:
        warnings.append(
            f"Only {active_count} non-ghosted points: Making Data Count shows fewer than "
            f"{MIN_SPC_POINTS} as a run chart, without limits or icons."
        )
    return ChartResult(
        kind=kind,
        direction=view.direction,
        settings=view.settings,
        target=None if target is None else float(target),
        points=tuple(points),
        partitions=tuple(partitions),
        signals=tuple(signals),
        variation=variation,
        assurance=assess_target(target, assurance_lines, view.direction),
        warnings=tuple(warnings),
    )
