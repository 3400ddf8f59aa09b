"""The four Making Data Count special-cause rules (SPC.md §4), shared by XmR and p-charts.

All comparisons are strict and exact. Ghosted points are skipped: they neither break nor
extend a pattern and are never flagged. Shift and two-of-three are confined to one
partition; a trend may cross partitions (MDC SQL v2.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import groupby, pairwise

from .types import Direction, Effect, Limits, Rule, RuleSettings, Side, Signal, TwoOfThree


@dataclass(frozen=True, slots=True)
class Lines:
    """Exact centre line, process limits and sigma lines at one point."""

    mean: Decimal
    lower: Decimal
    upper: Decimal
    lower_2sigma: Decimal
    upper_2sigma: Decimal
    lower_1sigma: Decimal
    upper_1sigma: Decimal

    @classmethod
    def around(cls, mean: Decimal, width: Decimal, *, proportion: bool = False) -> Lines:
        """Lines at mean ± width (3 sigma), ± 2/3 and ± 1/3 of it.

        The 3-sigma width is used as given, not rebuilt from sigma, so that a limit stays
        exact: 92 - 2.66 x 4 is exactly 81.36 (SPC.md TV-12). Proportions are clamped to
        [0, 1], which never changes a rule since no proportion lies outside it.
        """
        low, high = (Decimal(0), Decimal(1)) if proportion else (None, None)

        def clamp(value: Decimal) -> Decimal:
            if low is None or high is None:
                return value
            return min(high, max(low, value))

        two, one = width * 2 / 3, width / 3
        return cls(
            mean=mean,
            lower=clamp(mean - width),
            upper=clamp(mean + width),
            lower_2sigma=clamp(mean - two),
            upper_2sigma=clamp(mean + two),
            lower_1sigma=clamp(mean - one),
            upper_1sigma=clamp(mean + one),
        )

    def public(self) -> Limits:
        return Limits(
            mean=float(self.mean),
            lower=float(self.lower),
            upper=float(self.upper),
            lower_2sigma=float(self.lower_2sigma),
            upper_2sigma=float(self.upper_2sigma),
            lower_1sigma=float(self.lower_1sigma),
            upper_1sigma=float(self.upper_1sigma),
        )


def effect_of(side: Side, direction: Direction) -> Effect:
    if direction is Direction.NEITHER:
        return Effect.NEUTRAL
    better = Side.HIGH if direction is Direction.UP else Side.LOW
    return Effect.IMPROVEMENT if side is better else Effect.CONCERN


@dataclass(frozen=True, slots=True)
class SeriesView:
    """What the rules need to know about a series, point by point."""

    x: Sequence[Decimal]
    active: Sequence[bool]  # False for ghosted points
    partition: Sequence[int]
    lines: Sequence[Lines | None]
    names: Sequence[str]
    direction: Direction
    settings: RuleSettings
    # p-charts: False where the sample is too small to trust a single point beyond a limit.
    astro_trusted: Sequence[bool] | None = None

    def at(self, i: int) -> Lines:
        """The lines at a point known to have them."""
        lines = self.lines[i]
        assert lines is not None
        return lines

    def signal(
        self,
        rule: Rule,
        side: Side,
        points: Sequence[int],
        detected_at: int,
        lines: Sequence[Decimal],
        count: int | None = None,
        count_limit: int | None = None,
    ) -> Signal:
        return Signal(
            rule=rule,
            side=side,
            effect=effect_of(side, self.direction),
            points=tuple(points),
            detected_at=detected_at,
            detected_name=self.names[detected_at],
            names=tuple(self.names[i] for i in points),
            values=tuple(float(self.x[i]) for i in points),
            lines=tuple(float(line) for line in lines),
            count=count,
            count_limit=count_limit,
        )


def find_signals(view: SeriesView) -> list[Signal]:
    """Every special-cause pattern in the series, ordered by the point completing it."""
    order = [i for i, active in enumerate(view.active) if active]
    found = [
        *_beyond_limits(view, order),
        *_shifts(view, order),
        *_trends(view, order),
        *_two_of_three(view, order),
    ]
    return sorted(found, key=lambda signal: signal.sort_key)


def _side(x: Decimal, centre: Decimal) -> int:
    """+1 above, -1 below, 0 exactly on the line (which breaks a run)."""
    return (x > centre) - (x < centre)


def _beyond_limits(view: SeriesView, order: list[int]) -> list[Signal]:
    """Rule 1: a point beyond a process limit. Consecutive points beyond the same limit
    make one signal, complete at its first point."""
    found = []

    def side_of(i: int) -> tuple[int, int]:
        lines = view.lines[i]
        if lines is None or (view.astro_trusted is not None and not view.astro_trusted[i]):
            return view.partition[i], 0
        return view.partition[i], (view.x[i] > lines.upper) - (view.x[i] < lines.lower)

    for (_, side), group in groupby(order, key=side_of):
        run = list(group)
        if side > 0:
            found.append(
                view.signal(
                    Rule.ASTRONOMICAL, Side.HIGH, run, run[0], [view.at(i).upper for i in run]
                )
            )
        elif side < 0:
            found.append(
                view.signal(
                    Rule.ASTRONOMICAL, Side.LOW, run, run[0], [view.at(i).lower for i in run]
                )
            )
    return found


def _shifts(view: SeriesView, order: list[int]) -> list[Signal]:
    """Rule 2: `settings.shift` points in a row on one side of the mean, in one partition."""
    needed = view.settings.shift

    def key(i: int) -> tuple[int, int]:
        lines = view.lines[i]
        return view.partition[i], 0 if lines is None else _side(view.x[i], lines.mean)

    found = []
    for (_, side), group in groupby(order, key=key):
        run = list(group)
        if side and len(run) >= needed:
            found.append(
                view.signal(
                    Rule.SHIFT,
                    Side.HIGH if side > 0 else Side.LOW,
                    run,
                    run[needed - 1],
                    [view.at(i).mean for i in run],
                    count=len(run),
                    count_limit=needed,
                )
            )
    return found


def _trends(view: SeriesView, order: list[int]) -> list[Signal]:
    """Rule 3: `settings.trend` points in a row each higher (or lower) than the last.

    A tie breaks the trend. Partitions are ignored, as in MDC SQL v2.2; consecutive
    trends up and down share their turning point.
    """
    needed = view.settings.trend
    found = []

    def close(run: list[int], step: int) -> None:
        if step and len(run) >= needed:
            side = Side.HIGH if step > 0 else Side.LOW
            found.append(
                view.signal(
                    Rule.TREND, side, run, run[needed - 1], [], count=len(run), count_limit=needed
                )
            )

    run: list[int] = order[:1]
    step = 0
    for previous, i in pairwise(order):
        move = _side(view.x[i], view.x[previous])
        if move and move == step:
            run.append(i)
            continue
        close(run, step)
        run, step = ([previous, i] if move else [i]), move
    close(run, step)
    return found


def _two_of_three(view: SeriesView, order: list[int]) -> list[Signal]:
    """Rule 4: two of three consecutive points beyond the same 2-sigma line, all three on
    that side of the mean. Only the points beyond 2 sigma are flagged. Overlapping
    windows make one signal.

    `sql_v2` counts only points between the 2-sigma line and the process limit (MDC SQL,
    NHSRplotthedots); `mdc2023` counts every point beyond 2 sigma (MDC, Nov 2023).
    """
    beyond_limits_count = view.settings.two_of_three is TwoOfThree.MDC2023

    def zone(i: int) -> int:
        """+1 beyond the upper 2-sigma line, -1 beyond the lower, 0 between them."""
        x, lines = view.x[i], view.at(i)
        if x > lines.upper_2sigma and (beyond_limits_count or x <= lines.upper):
            return 1
        if x < lines.lower_2sigma and (beyond_limits_count or x >= lines.lower):
            return -1
        return 0

    found = []
    for _, group in groupby(order, key=lambda i: view.partition[i]):
        points = list(group)
        if view.lines[points[0]] is None:
            continue  # a partition either has limits for all its points or for none
        sides = [_side(view.x[i], view.at(i).mean) for i in points]
        zones = [zone(i) for i in points]
        for side, sign in ((Side.HIGH, 1), (Side.LOW, -1)):
            flagged: set[int] = set()
            detected_at, last_start = -1, -3
            for start in range(len(points) - 2):
                if not sides[start] == sides[start + 1] == sides[start + 2] == sign:
                    continue
                hits = [points[k] for k in range(start, start + 3) if zones[k] == sign]
                if len(hits) < 2:
                    continue
                if start - last_start > 2 and flagged:  # no overlap: the last signal is over
                    found.append(_two_of_three_signal(view, side, flagged, detected_at))
                    flagged = set()
                if not flagged:
                    detected_at = points[start + 2]
                flagged.update(hits)
                last_start = start
            if flagged:
                found.append(_two_of_three_signal(view, side, flagged, detected_at))
    return found


def _two_of_three_signal(view: SeriesView, side: Side, flagged: set[int], at: int) -> Signal:
    points = sorted(flagged)
    lines = [
        view.at(i).upper_2sigma if side is Side.HIGH else view.at(i).lower_2sigma for i in points
    ]
    return view.signal(Rule.TWO_OF_THREE, side, points, at, lines)
