"""Putting a control chart together: partitions, point classification, icons, assurance.

Shared by the XmR chart and the p-chart, which differ only in how they set their lines.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal, localcontext
from itertools import pairwise
from typing import Any, TypeVar

from core.thresholds import MIN_PARTITION_POINTS, MIN_SPC_POINTS

from .arithmetic import _EXACT, to_decimal
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

T = TypeVar("T")

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
    if baseline is None and not recalc_at and count > 0:
        return [Span(1, 0, count - 1, None)]  # the usual case: one partition
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
    spans: list[Span], facts: list[tuple[bool, int, bool]], baseline: int | None, count: int
) -> list[str]:
    """MDC's warnings about short baselines and partitions. `facts` has, for each span,
    whether it has limits, its number of non-ghosted points and whether they are trial."""
    warnings = []
    if baseline is not None and baseline > count:
        warnings.append(
            f"The baseline is set to {baseline} points but only {count} are available, so "
            "the whole series is treated as baseline."
        )
    for span, (has_limits, n_points, trial) in zip(spans, facts, strict=True):
        if span.inherits is not None:
            continue
        where = "The baseline" if span.number == 0 else f"Partition {span.number}"
        if not has_limits and n_points < 2:
            warnings.append(
                f"{where} has {n_points} non-ghosted point(s): at least 2 are "
                "needed to set limits, so its points are judged by the trend rule only."
            )
        elif trial:
            warnings.append(
                f"{where} has only {n_points} points, so its limits are trial "
                f"limits (Making Data Count asks for at least {MIN_PARTITION_POINTS})."
            )
    return warnings


def _variation(
    classification: Effect | None, sides: set[Side], direction: Direction, high: bool
) -> VariationIcon:
    """The variation icon of the latest point; `high`: which side its signals (or, with
    signals on both sides of a measure without direction, its value) lie on."""
    if classification is None:
        return VariationIcon.COMMON_CAUSE
    if direction is Direction.NEITHER:
        return VariationIcon.NEITHER_HIGH if high else VariationIcon.NEITHER_LOW
    improving = classification is Effect.IMPROVEMENT
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


_RULE_INDEX = {rule: index for index, rule in enumerate(Rule)}


def _code_order(signal: Signal) -> tuple[int, bool]:
    """Rules in a point's list: beyond limit, shift, trend, two of three; high side first."""
    return _RULE_INDEX[signal.rule], signal.side is Side.LOW


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


class _Later:
    """What a chart builds only when it is read: its points, partitions and assurance,
    always with the engine's 40-digit decimals."""

    __slots__ = (
        "view",
        "signals",
        "_on_point",
        "partitions",
        "target",
        "assurance_lines",
        "point_limits",
        "numerators",
        "denominators",
        "latest_index",
    )

    def __init__(self, view, signals, partitions, target, assurance_lines, point_limits,
                 numerators, denominators, latest_index) -> None:  # fmt: skip
        self.view, self.signals, self.partitions = view, signals, partitions
        self._on_point: dict[int, list[Signal]] | None = None
        self.target, self.assurance_lines, self.point_limits = target, assurance_lines, point_limits
        self.numerators, self.denominators = numerators, denominators
        self.latest_index = latest_index

    def build(self, name: str) -> Any:
        with localcontext(_EXACT):
            if name == "points":
                return tuple([self.point(i) for i in range(len(self.view.active))])
            if name == "partitions":
                return self.partitions()
            target = self.target
            if type(target) is float:
                target = to_decimal(target, "target")
            return assess_target(target, self.assurance_lines(), self.view.direction)

    def latest(self) -> Point:
        with localcontext(_EXACT):
            return self.point(self.latest_index)

    def point(self, i: int) -> Point:
        view = self.view
        on_point = self._on_point
        if on_point is None:  # each point's signals, in the order they were found
            on_point = self._on_point = {}
            for signal in self.signals:
                for k in signal.points:
                    on_point.setdefault(k, []).append(signal)
        hits = on_point.get(i)
        if hits:
            hits = sorted(hits, key=_code_order)
            classification, conflict = _classify(hits, view.direction, view.settings.conflict)
            rules = tuple(dict.fromkeys(s.code for s in hits))
        else:
            classification, conflict, rules = None, False, ()
        return Point(
            index=i,
            value=view.x.f[i],
            name=view.names[i],
            ghost=not view.active[i],
            partition=view.partition[i],
            limits=self.point_limits(i),
            rules=rules,
            classification=classification,
            conflict=conflict,
            numerator=None if self.numerators is None else self.numerators[i],
            denominator=None if self.denominators is None else self.denominators[i],
        )


def build_chart(
    view: SeriesView,
    *,
    kind: ChartKind,
    partitions: Callable[[], tuple[Partition, ...]],
    target: Decimal | float | None,
    assurance_lines: Callable[[], Lines | None],
    point_limits: Callable[[int], Limits | None],
    warnings: list[str],
    numerators: list[int] | None = None,
    denominators: list[int] | None = None,
) -> ChartResult:
    """Find the signals, classify the latest point and set the icons; the points, the
    partitions and the assurance are built when first read."""
    signals = find_signals(view)
    direction = view.direction
    active = view.active
    count = len(active)
    all_active = view.all_active
    settings = view.settings
    latest = count - 1 if all_active or active[-1] else max(i for i in range(count) if active[i])
    latest_hits = [s for s in signals if latest in s.points] if signals else None
    if latest_hits:
        classification = _classify(latest_hits, direction, settings.conflict)[0]
        sides = {s.side for s in latest_hits if s.side is not None}
        if direction is Direction.NEITHER and len(sides) != 1:
            high = view.limits[latest] is None or (
                view.x.exact(latest) > view.exact_lines(latest).mean
            )
        else:
            high = Side.HIGH in sides
        variation = _variation(classification, sides, direction, high)
    else:
        variation = VariationIcon.COMMON_CAUSE
    notes = settings.notes()
    if warnings:
        notes = (*notes, *warnings)
    partition = view.partition
    if partition[0] == 0 and any(partition[i] == 0 for s in signals for i in s.points):
        notes = (
            *notes,
            "The baseline includes special cause variation, so it may not be a stable "
            "reference (Making Data Count warning).",
        )
    active_count = (
        count if all_active or (active[0] and active[-1] and all(active)) else sum(active)
    )
    if active_count < MIN_SPC_POINTS:
        notes = (
            *notes,
            f"Only {active_count} non-ghosted points: Making Data Count shows fewer than "
            f"{MIN_SPC_POINTS} as a run chart, without limits or icons.",
        )
    later = _Later(
        view, signals, partitions, target, assurance_lines, point_limits, numerators,
        denominators, latest,
    )  # fmt: skip
    return ChartResult.lazy(
        {
            "kind": kind,
            "direction": direction,
            "settings": settings,
            "target": None if target is None else float(target),
            "signals": tuple(signals),
            "variation": variation,
            "warnings": notes,
            "_later": later,
        }
    )
