"""XmR (individuals and moving range) chart, built as NHS England's Making Data Count
SQL tool builds it (SPC.md §3): no moving-range screening, limits from each partition's
own non-ghosted points, a frozen baseline extended forward."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal, localcontext
from itertools import compress, pairwise
from operator import sub

from .arithmetic import (
    _EXACT,
    Measures,
    Number,
    check_indices,
    check_labels,
    exact,
    read_measures,
    read_target,
)
from .chart import MIN_PARTITION_POINTS, Span, build_chart, plan_partitions, span_warnings
from .rules import Lines, Marks, SeriesView
from .text import Names, point_names
from .types import (
    ChartKind,
    ChartResult,
    ConflictRule,
    Direction,
    Limits,
    Partition,
    RuleSettings,
    TwoOfThree,
    parse_choice,
)

# 2.66 = 3/d2 with d2 = 1.128 for moving ranges of two points, rounded as Making Data
# Count and NHSRplotthedots round it, so that limits match MDC's (SPC.md §3.1).
XMR_CONSTANT = Decimal("2.66")
XMR_FLOAT = 2.66


def xmr_lines(values: Sequence[Decimal]) -> tuple[Lines, Decimal] | None:
    """Lines from the mean and the mean moving range; None with fewer than two points."""
    if len(values) < 2:
        return None
    mean = sum(values, Decimal(0)) / len(values)
    mr_mean = sum((abs(b - a) for a, b in pairwise(values)), Decimal(0)) / (len(values) - 1)
    return Lines.around(mean, XMR_CONSTANT * mr_mean), mr_mean


def _partition_lines(x: Measures, members: list[int]) -> tuple[Lines, Decimal] | None:
    """`xmr_lines` of the points at `members`, from exact sums (the same decimals)."""
    if len(members) < 2:
        return None
    total, ranges = x.sums(members)
    mr_mean = ranges / (len(members) - 1)
    return Lines.around(total / len(members), XMR_CONSTANT * mr_mean), mr_mean


@exact
def analyse_xmr(
    values: Sequence[Number],
    *,
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
) -> ChartResult:
    """XmR chart of `values` in time order, with its signals, icons and explanation.

    `baseline` is the number of leading points whose limits are frozen and extended;
    `recalc_at` holds 0-based indices where limits are recalculated; `ghosts` holds
    0-based indices of points that are plotted but left out of limits and rules;
    `labels` (e.g. dates) name the points in explanations. Raises ValueError on bad input.
    """
    return checked_xmr(
        values,
        direction=direction,
        target=target,
        baseline=baseline,
        recalc_at=recalc_at,
        ghosts=ghosts,
        labels=labels,
        settings=lambda: RuleSettings.build(shift, trend, two_of_three, conflict),
    )


def checked_xmr(
    values: Sequence[Number],
    *,
    direction: Direction | str,
    target: Number | None,
    baseline: int | None,
    recalc_at: Collection[int],
    ghosts: Collection[int],
    labels: Sequence[str] | None,
    settings: RuleSettings | Callable[[], RuleSettings],
) -> ChartResult:
    """`analyse_xmr` with the settings already parsed (or a function parsing them, so
    that errors come in the same order), in the 40-digit context."""
    x = read_measures(values, "values")
    count = len(x)
    names = point_names(count, check_labels(labels, count))
    way = parse_choice(Direction, direction, "direction")
    goal = read_target(target)
    if baseline is None and recalc_at == () and ghosts == () and count >= 2:
        # The usual call: nothing more to check.
        return _one_partition(
            x, names, way, goal, settings if isinstance(settings, RuleSettings) else settings()
        )
    recalc = check_indices(recalc_at, count, "recalc_at")
    ghosted = check_indices(ghosts, count, "ghosts")
    return xmr_chart(
        x,
        names=names,
        direction=way,
        target=goal,
        baseline=baseline,
        recalc_at=recalc,
        ghosts=ghosted,
        settings=settings if isinstance(settings, RuleSettings) else settings(),
    )


def usual_xmr(
    values: list[Number], direction: Direction, target: Number | None, settings: RuleSettings
) -> ChartResult:
    """`checked_xmr` of at least two values without baseline, recalculation, ghosts or
    labels, the direction and settings parsed (the same checks, in the same order)."""
    x = read_measures(values, "values")
    return _one_partition(x, _NAMES[len(x)], direction, read_target(target), settings)


class _PlainNames(dict[int, Names]):
    """The names of n unlabelled points, for each n (Names are never changed)."""

    def __missing__(self, count: int) -> Names:
        names = point_names(count, None)
        if len(self) < 256:
            self[count] = names
        return names


_NAMES = _PlainNames()


def xmr_chart(
    x: Measures,
    *,
    names: Sequence[str],
    direction: Direction,
    target: Decimal | None,
    baseline: int | None,
    recalc_at: frozenset[int],
    ghosts: frozenset[int],
    settings: RuleSettings,
) -> ChartResult:
    """`analyse_xmr` on checked input (the lifecycle functions call this too)."""
    count = len(x)
    if baseline is None and not recalc_at and not ghosts and count >= 2:
        return _one_partition(x, names, direction, target, settings)
    with localcontext(_EXACT):
        return _partitioned(x, names, direction, target, baseline, recalc_at, ghosts, settings)


def _partitioned(
    x: Measures,
    names: Sequence[str],
    direction: Direction,
    target: Decimal | None,
    baseline: int | None,
    recalc_at: frozenset[int],
    ghosts: frozenset[int],
    settings: RuleSettings,
) -> ChartResult:
    count = len(x)
    active = [i not in ghosts for i in range(count)] if ghosts else [True] * count
    if not any(active):
        raise ValueError("every point is ghosted: at least one point must be analysed")
    spans = plan_partitions(count, baseline, recalc_at)

    partition_of = [0] * count
    lines_of: list[Lines | None] = [None] * count
    limits_of: list[Limits | None] = [None] * count
    partitions: list[Partition] = []
    facts: list[tuple[bool, int, bool]] = []
    by_number: dict[int, tuple[tuple[Lines, Decimal] | None, Limits | None, int]] = {}
    for span in spans:
        members = range(span.first, span.last + 1)
        own = [i for i in members if active[i]] if ghosts else list(members)
        if span.inherits is None:
            result = _partition_lines(x, own)
            by_number[span.number] = (
                result,
                None if result is None else result[0].public(),
                len(own),
            )
        else:
            by_number[span.number] = by_number[span.inherits]
        result, limits, setting_points = by_number[span.number]
        lines, mr_mean = (None, None) if result is None else result
        partition_of[span.first : span.last + 1] = [span.number] * len(members)
        lines_of[span.first : span.last + 1] = [lines] * len(members)
        limits_of[span.first : span.last + 1] = [limits] * len(members)
        trial = lines is not None and setting_points < MIN_PARTITION_POINTS
        facts.append((lines is not None, len(own), trial))
        partitions.append(
            Partition(
                number=span.number,
                first=span.first,
                last=span.last,
                n_points=len(own),
                limits=limits,
                inherited_from=span.inherits,
                trial=trial,
                mr_mean=None if mr_mean is None else float(mr_mean),
            )
        )

    latest = next(i for i in range(count - 1, -1, -1) if active[i])
    view = SeriesView(
        x,
        active,
        partition_of,
        limits_of,
        lines_of.__getitem__,  # type: ignore[arg-type]
        names,
        direction,
        settings,
    )
    frozen = tuple(partitions)
    return build_chart(
        view,
        kind=ChartKind.XMR,
        partitions=lambda: frozen,
        target=target,
        assurance_lines=lambda: lines_of[latest],
        point_limits=limits_of.__getitem__,
        warnings=span_warnings(spans, facts, baseline, count),
    )


# Estimated lines are trusted only this far from every point, relative to their size:
# the float estimate is good to a few units in the 16th digit.
_ROOM = 1e-12
# The estimate's floats are exact for a mean of integers on a decimal scale up to this.
_SCALE_LIMIT = 10**15
_HAS_LINES = object()  # stands for a point's limits where only their presence matters
_NO_MARKS: list[int] = []  # the list marks of a series marked as bytes and hits


class _Repeated(dict[int, bytes]):
    def __missing__(self, count: int) -> bytes:
        value = b"\x01" * count
        if len(self) < 256:
            self[count] = value
        return value


_LEVEL = _Repeated()


class _Shared(dict[int, tuple[list[bool], list[int], list[object]]]):
    """For a single partition of `count` points with no ghost: every point active, in
    partition 1, with lines (lists only ever read)."""

    def __missing__(self, count: int) -> tuple[list[bool], list[int], list[object]]:
        value = ([True] * count, [1] * count, [_HAS_LINES] * count)
        if len(self) < 256:
            self[count] = value
        return value


_SHARED = _Shared()


class _ExactLines:
    """A single partition's exact lines, made (with the engine's decimals) only when
    something reads them."""

    __slots__ = ("_x", "_result", "_limits")

    def __init__(self, x: Measures) -> None:
        self._x = x
        self._result: tuple[Lines, Decimal] | None = None
        self._limits: Limits | None = None

    def partitions(self) -> tuple[Partition, ...]:
        """The one partition (numbered 1, as MDC numbers it)."""
        count = len(self._x)
        mr_mean = self.result()[1]
        trial = count < MIN_PARTITION_POINTS
        return (Partition(1, 0, count - 1, count, self.limits(), None, trial, float(mr_mean)),)

    def result(self) -> tuple[Lines, Decimal]:
        if self._result is None:
            with localcontext(_EXACT):
                result = _partition_lines(self._x, range(len(self._x)))
            assert result is not None
            self._result = result
        return self._result

    def lines(self, i: int = 0) -> Lines:
        return self.result()[0]

    def limits(self, i: int = 0) -> Limits:
        if self._limits is None:
            self._limits = self.result()[0].public()
        return self._limits


def _indices_of(f: list[float], values: list[float]) -> list[int]:
    """The indices in `f` of the (few) sorted `values` taken from it, in order."""
    found: list[int] = []
    previous, start = None, 0
    for value in values:
        start = f.index(value, start if value == previous else 0)
        found.append(start)
        start += 1
        previous = value
    found.sort()
    return found


def _estimated_marks(x: Measures, settings: RuleSettings) -> tuple[Marks, float] | None:
    """The marks of a one-partition series from float estimates of its lines, and the
    exact float of its mean; None when a point is too close to a line (or on its mean)
    for the estimate to decide, or the values are not on a decimal scale."""
    k = x._k
    if k is None:
        return None
    count = len(k)
    scale = 10**x._d
    f = x.f
    ordered = x.ordered or sorted(f)
    # Every sum below is of whole numbers under 2**52 in magnitude (the largest |k| is at
    # most a hair over the largest |value| times the scale): exact in floats.
    if count * scale > _SCALE_LIMIT or max(-ordered[0], ordered[-1]) * scale * count >= 2**51:
        return None
    # The mean and the mean moving range as single correctly rounded divisions of exact
    # whole numbers: the floats of the engine's 40-digit quotients (no rounding of a
    # fraction with so small a denominator to 40 digits can cross a float's rounding
    # boundary, and a sum below 2**53 is never a float's rounding midpoint).
    mean = sum(k) / (count * scale)
    j = bisect_left(ordered, mean)
    if j < count and ordered[j] == mean:  # a point on the mean
        return None
    steps = list(map(sub, k[1:], k))
    # Each move as the trend rule reads it (0 down, 1 level, 2 up), from the exact steps:
    # below 2**50 distinct decimals have distinct floats, in the same order.
    moves = bytes([2 if d > 0.0 else 0 if d else 1 for d in steps])
    # The moving ranges add up to twice the rises less the net change (exact whole numbers).
    ranges = 2 * sum(compress(steps, moves)) - (k[-1] - k[0])
    width = XMR_FLOAT * (ranges / ((count - 1) * scale))
    two = width * 2 / 3
    room = _ROOM * (abs(mean) + width)
    upper, lower, upper_2, lower_2 = mean + width, mean - width, mean + two, mean - two
    # The first point at or beyond a line's lower margin must lie beyond its upper margin.
    # Lines that every point is clearly below (above the lowest, clearly above) pass.
    top, bottom = ordered[-1], ordered[0]
    if top >= upper_2 - room:
        for line in (upper_2, upper) if top >= upper - room else (upper_2,):
            j = bisect_left(ordered, line - room)
            if j < count and ordered[j] <= line + room:
                return None
    if bottom <= lower_2 + room:
        for line in (lower_2, lower) if bottom <= lower + room else (lower_2,):
            j = bisect_left(ordered, line - room)
            if j < count and ordered[j] <= line + room:
                return None
    hits_high: list[int] = []
    hits_low: list[int] = []
    astro = None
    if top > upper_2 or bottom < lower_2:
        every = settings.two_of_three is TwoOfThree.MDC2023
        marked = bytearray(_LEVEL[count])  # beyond a limit: 2 above, 0 below, else 1
        beyond = False
        if top > upper_2:
            for i in _indices_of(f, ordered[bisect_right(ordered, upper_2) :]):
                if f[i] > upper:
                    marked[i] = 2
                    beyond = True
                    if every:
                        hits_high.append(i)
                else:
                    hits_high.append(i)
        if bottom < lower_2:
            for i in _indices_of(f, ordered[: bisect_left(ordered, lower_2)]):
                if f[i] < lower:
                    marked[i] = 0
                    beyond = True
                    if every:
                        hits_low.append(i)
                else:
                    hits_low.append(i)
        if beyond:
            astro = bytes(marked)
    # No point is on the mean (see above): each is above (2) or below (0) it.
    above = bytes([2 if a > mean else 0 for a in f])
    marks = Marks(_NO_MARKS, _NO_MARKS, _NO_MARKS, above, astro, (hits_high, hits_low), moves)
    return marks, mean


def _one_partition(
    x: Measures,
    names: Sequence[str],
    direction: Direction,
    target: Decimal | float | None,
    settings: RuleSettings,
) -> ChartResult:
    """`xmr_chart` of a series with no baseline, recalculation or ghosted point: one
    partition (numbered 1, as MDC numbers it) whose limits every point shares. Its exact
    lines are made only if a point is too close to one for floats to decide, or when a
    signal, a point, the partition or the assurance is read."""
    count = len(x)
    exact = _ExactLines(x)
    trial = count < MIN_PARTITION_POINTS
    estimated = _estimated_marks(x, settings)
    if estimated is None:
        limits = exact.limits()
        view = SeriesView(
            x,
            [True] * count,
            [1] * count,
            [limits] * count,
            exact.lines,
            names,
            direction,
            settings,
        )
    else:
        marks, mean = estimated
        active, partition, has_lines = _SHARED[count]
        # (in the order of SeriesView's fields: the p-charts' astro_trusted is None)
        view = SeriesView(
            x, active, partition, has_lines, exact.lines, names, direction, settings,  # type: ignore[arg-type]
            None, marks, mean, True,
        )  # fmt: skip

    return build_chart(
        view,
        kind=ChartKind.XMR,
        partitions=exact.partitions,
        target=target,
        assurance_lines=exact.lines,
        point_limits=exact.limits,
        warnings=_TRIAL_WARNING[count] if trial else [],
    )


class _TrialWarnings(dict[int, list[str]]):
    def __missing__(self, count: int) -> list[str]:
        return span_warnings([Span(1, 0, count - 1, None)], [(True, count, True)], None, count)


_TRIAL_WARNING = _TrialWarnings()
