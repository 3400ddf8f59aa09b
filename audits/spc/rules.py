"""The four Making Data Count special-cause rules (SPC.md §4), shared by XmR and p-charts.

All comparisons are strict and exact. Ghosted points are skipped: they neither break nor
extend a pattern and are never flagged. Shift and two-of-three are confined to one
partition; a trend may cross partitions (MDC SQL v2.2).

Each point is compared with its lines once, through floats (see `arithmetic`): a float
comparison that is decided by more than the point's margin is exact, and only the
undecided ones (equal floats, or a p-chart point within a hair of an estimated line)
are settled with the exact decimals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from itertools import groupby, pairwise
from operator import sub
from typing import Protocol

from .text import Names
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
        two, one = width * 2 / 3, width / 3
        if not proportion:
            return cls(
                mean, mean - width, mean + width, mean - two, mean + two, mean - one, mean + one
            )
        low, high = _ZERO, _ONE
        return cls(
            mean=mean,
            lower=min(high, max(low, mean - width)),
            upper=min(high, max(low, mean + width)),
            lower_2sigma=min(high, max(low, mean - two)),
            upper_2sigma=min(high, max(low, mean + two)),
            lower_1sigma=min(high, max(low, mean - one)),
            upper_1sigma=min(high, max(low, mean + one)),
        )

    def public(self) -> Limits:
        return Limits(
            float(self.mean),
            float(self.lower),
            float(self.upper),
            float(self.lower_2sigma),
            float(self.upper_2sigma),
            float(self.lower_1sigma),
            float(self.upper_1sigma),
        )


_ZERO, _ONE = Decimal(0), Decimal(1)


def effect_of(side: Side, direction: Direction) -> Effect:
    if direction is Direction.NEITHER:
        return Effect.NEUTRAL
    better = Side.HIGH if direction is Direction.UP else Side.LOW
    return Effect.IMPROVEMENT if side is better else Effect.CONCERN


_EFFECTS = {
    (side, direction): effect_of(side, direction) for side in Side for direction in Direction
}


class Values(Protocol):
    """A series as the rules read it: floats, and each point's exact value on demand."""

    f: list[float]
    faithful: bool  # equal floats always mean equal exact values

    def exact(self, i: int) -> Decimal: ...


@dataclass(slots=True)
class Marks:
    """Where each point lies: against its mean (+1, 0, -1), beyond a process limit
    (+1 above the upper, -1 below the lower, else 0), and beyond a 2-sigma line in the
    sense of the two-of-three rule (+1, -1, 0). Zero for points without lines."""

    mean: list[int]
    astro: list[int]
    zone: list[int]
    mean_bytes: bytes | None = None  # `mean` as bytes 0, 1, 2, where it is at hand
    # Set together by a chart that marks a one-partition series itself (`mean`, `astro`
    # and `zone` are then left empty): `astro` as bytes 0, 1, 2 (None when no point is
    # beyond a limit), and the indices marked +1 and -1 in `zone`, in order.
    astro_bytes: bytes | None = None
    zone_hits: tuple[list[int], list[int]] | None = None
    moves: bytes | None = None  # the trend rule's moves (see `_runs_trends`), if known


@dataclass(slots=True)
class SeriesView:
    """What the rules need to know about a series, point by point."""

    x: Values
    active: Sequence[bool]  # False for ghosted points
    partition: Sequence[int]
    # Each point's lines as floats: exactly float() of its exact lines (None: no lines).
    limits: Sequence[Limits | None]
    exact_lines: Callable[[int], Lines]  # a point's exact lines (it must have some)
    names: Sequence[str]
    direction: Direction
    settings: RuleSettings
    # p-charts: False where the sample is too small to trust a single point beyond a limit.
    astro_trusted: Sequence[bool] | None = None
    # Points marked by the chart itself from estimated lines (p-charts, and XmR charts
    # whose points are all clear of their lines): `limits` then only tells which points
    # have lines, and `mean` may give the exact float of a single partition's mean.
    marks: Marks | None = None
    mean: float | None = None
    all_active: bool = False  # True: `active` is known to hold no False (no ghost)

    def line(self, i: int, name: str) -> float:
        """float() of one of a point's exact lines."""
        if self.marks is None:
            limits = self.limits[i]
            assert limits is not None
            return getattr(limits, name)
        if name == "mean" and self.mean is not None:
            return self.mean
        return float(getattr(self.exact_lines(i), name))

    def signal(
        self,
        rule: Rule,
        side: Side,
        points: Sequence[int],
        detected_at: int,
        line: str | None,
        count: int | None = None,
        count_limit: int | None = None,
    ) -> Signal:
        f = self.x.f
        names = self.names
        plain = type(names) is Names
        given = {
            "rule": rule,
            "side": side,
            "effect": _EFFECTS[side, self.direction],
            "points": tuple(points),
            "detected_at": detected_at,
            "detected_name": names.name(detected_at) if plain else names[detected_at],
            "names": names.take(points)
            if plain or isinstance(names, Names)
            else tuple([names[i] for i in points]),
            "values": tuple([f[i] for i in points]),
            "lines": (),  # (in its place among the fields)
            "count": count,
            "count_limit": count_limit,
        }
        if line is None:
            return Signal.made(given)
        if self.marks is None:
            # The floats are at hand and exact.
            given["lines"] = tuple([self.line(i, line) for i in points])
            return Signal.made(given)
        if line == "mean" and self.mean is not None:
            given["lines"] = (self.mean,) * len(points)  # one mean, exact, for every point
            return Signal.made(given)
        del given["lines"]
        return Signal.lazy_from(given, lambda: tuple([self.line(i, line) for i in points]))


def mark_points(view: SeriesView, order: Sequence[int]) -> Marks:
    """Compare every analysed point with its lines, once."""
    if view.marks is not None:
        return view.marks
    count = len(view.active)
    marks = Marks([0] * count, [0] * count, [0] * count)
    limits = view.limits
    # Exact float lines, shared by a partition: a partition at a time.
    partition = view.partition
    if partition[order[0]] == partition[order[-1]]:
        if limits[order[0]] is not None:
            _mark_run(view, order, limits[order[0]], marks)  # type: ignore[arg-type]
        return marks
    for _, group in groupby(order, key=partition.__getitem__):
        run = list(group)
        shared = limits[run[0]]
        if shared is not None:
            _mark_run(view, run, shared, marks)
    return marks


def _settle(view: SeriesView, i: int, name: str) -> int:
    """The exact comparison of point i with one of its lines: +1 above, 0 on, -1 below."""
    line = getattr(view.exact_lines(i), name)
    x = view.x.exact(i)
    return (x > line) - (x < line)


def _mark_run(view: SeriesView, run: list[int], lim: Limits, marks: Marks) -> None:
    """Points sharing exact float lines: each comparison of floats is exact unless the
    floats are equal, and only those are settled with the decimals."""
    f = view.x.f
    fs = [f[i] for i in run]
    m, u2, l2 = lim.mean, lim.upper_2sigma, lim.lower_2sigma
    side = [(a > m) - (a < m) for a in fs]
    if m in fs:
        for k, a in enumerate(fs):
            if a == m:
                side[k] = _settle(view, run[k], "mean")
    high = [a > u2 for a in fs]
    if u2 in fs:
        for k, a in enumerate(fs):
            if a == u2:
                high[k] = _settle(view, run[k], "upper_2sigma") > 0
    low = [a < l2 for a in fs]
    if l2 in fs:
        for k, a in enumerate(fs):
            if a == l2:
                low[k] = _settle(view, run[k], "lower_2sigma") < 0
    mean, astro, zone = marks.mean, marks.astro, marks.zone
    first, last = run[0], run[-1]
    if last - first + 1 == len(run):
        mean[first : last + 1] = side
    else:
        for k, i in enumerate(run):
            mean[i] = side[k]
    if True not in high and True not in low:
        return
    u, lo = lim.upper, lim.lower
    every = view.settings.two_of_three is TwoOfThree.MDC2023
    trusted = view.astro_trusted
    for k, i in enumerate(run):
        if high[k]:
            a = fs[k]
            above = a > u or (a == u and _settle(view, i, "upper") > 0)
            if above and (trusted is None or trusted[i]):
                astro[i] = 1
            if every or not above:
                zone[i] = 1
        elif low[k]:
            a = fs[k]
            below = a < lo or (a == lo and _settle(view, i, "lower") < 0)
            if below and (trusted is None or trusted[i]):
                astro[i] = -1
            if every or not below:
                zone[i] = -1


def find_signals(view: SeriesView) -> list[Signal]:
    """Every special-cause pattern in the series, ordered by the point completing it."""
    active, partition = view.active, view.partition
    count = len(active)
    marks = view.marks
    if marks is not None and marks.zone_hits is not None:
        # Marked as bytes by the chart itself (one partition, no ghost): each rule is
        # looked for only where a plain search of the marks says it may be.
        return _marked_signals(view, marks)
    if (view.all_active or False not in active) and partition[0] == partition[-1]:
        # One partition and no ghosted point, the usual case: the runs are found by
        # regular expressions over the points' marks, in C.
        marks = marks or mark_points(view, list(range(count)))
        if marks.mean_bytes is None:  # (read by the shift and two-of-three rules)
            marks.mean_bytes = bytes([side + 1 for side in marks.mean])
        found = [
            *_runs_beyond_limits(view, marks),
            *_runs_shifts(view, marks),
            *_runs_trends(view),
            *_runs_two_of_three(view, marks),
        ]
    else:
        order = [i for i, on in enumerate(active) if on]
        marks = mark_points(view, order)
        found = [
            *_beyond_limits(view, order, marks),
            *_shifts(view, order, marks),
            *_trends(view, order),
            *_two_of_three(view, order, marks),
        ]
    if len(found) > 1:
        found.sort(key=lambda signal: signal.sort_key)
    return found


def _marked_signals(view: SeriesView, marks: Marks) -> list[Signal]:
    """`find_signals` of a series whose chart set `mean_bytes`, `astro_bytes` (None when
    no point is beyond a limit), `zone_hits` and `moves`."""
    settings = view.settings
    above, moves = marks.mean_bytes, marks.moves
    assert above is not None and moves is not None
    found = [] if marks.astro_bytes is None else _runs_beyond_limits(view, marks)
    high, low = _RUN_BYTES[settings.shift]
    if high in above or low in above:
        found += _runs_shifts(view, marks)
    high, low = _RUN_BYTES[settings.trend - 1]
    if high in moves or low in moves:
        found += _runs_trends(view)
    hits = marks.zone_hits
    if len(hits[0]) > 1 or len(hits[1]) > 1:  # type: ignore[index]
        found += _runs_two_of_three(view, marks)
    if len(found) > 1:
        found.sort(key=lambda signal: signal.sort_key)
    return found


class _RunBytes(dict[int, tuple[bytes, bytes]]):
    """For each length, that many marks above (2) and below (0) in a row."""

    def __missing__(self, length: int) -> tuple[bytes, bytes]:
        value = (b"\x02" * length, b"\x00" * length)
        if len(self) < 64:
            self[length] = value
        return value


_RUN_BYTES = _RunBytes()


# Marks -1, 0, +1 are written as the bytes 0, 1, 2, and runs are found with a pattern.
_ONE_UP = (1).__add__
_ANY_RUN = re.compile(rb"\x02+|\x00+")


@lru_cache(maxsize=64)
def _runs_of(length: int) -> re.Pattern[bytes]:
    """Runs of at least `length` equal marks above or below (never on) the line."""
    return re.compile(rb"\x02{%d,}|\x00{%d,}" % (length, length))


def _runs_beyond_limits(view: SeriesView, marks: Marks) -> list[Signal]:
    """`_beyond_limits` for one partition without ghosted points."""
    astro = marks.astro_bytes
    if astro is None:
        if not any(marks.astro):
            return []
        astro = bytes(map(_ONE_UP, marks.astro))
    found = []
    for match in _ANY_RUN.finditer(astro):
        run = list(range(match.start(), match.end()))
        high = match.group()[0] == 2
        found.append(
            view.signal(
                Rule.ASTRONOMICAL,
                Side.HIGH if high else Side.LOW,
                run,
                run[0],
                "upper" if high else "lower",
            )
        )
    return found


def _runs_shifts(view: SeriesView, marks: Marks) -> list[Signal]:
    """`_shifts` for one partition without ghosted points."""
    needed = view.settings.shift
    above = marks.mean_bytes or bytes(map(_ONE_UP, marks.mean))
    high, low = _RUN_BYTES[needed]
    if high not in above and low not in above:
        return []
    return [
        _shift(
            view,
            list(range(match.start(), match.end())),
            1 if match.group()[0] == 2 else -1,
            needed,
        )
        for match in _runs_of(needed).finditer(above)
    ]


def _runs_trends(view: SeriesView) -> list[Signal]:
    """`_trends` for a series without ghosted points: runs of moves the same way."""
    needed = view.settings.trend
    f = view.x.f
    if len(f) < needed:
        return []
    # Each move as a byte: 0 down, 1 level, 2 up.
    if view.marks is not None and view.marks.moves is not None:
        moves = view.marks.moves
    else:
        # The sign of a difference of floats is exact, and it is zero only between equals.
        moves = bytes([2 if d > 0.0 else 0 if d else 1 for d in map(sub, f[1:], f)])
    if not view.x.faithful and 1 in moves:
        exact = view.x.exact
        settled = bytearray(moves)
        for k, move in enumerate(moves):
            if move == 1:
                xa, xb = exact(k), exact(k + 1)
                settled[k] = (xb > xa) - (xb < xa) + 1
        moves = bytes(settled)
    high, low = _RUN_BYTES[needed - 1]
    if high not in moves and low not in moves:
        return []
    # k moves the same way make a run of k + 1 points.
    return [
        _trend(
            view,
            list(range(match.start(), match.end() + 1)),
            1 if match.group()[0] == 2 else -1,
            needed,
        )
        for match in _runs_of(needed - 1).finditer(moves)
    ]


def _runs_two_of_three(view: SeriesView, marks: Marks) -> list[Signal]:
    """`_two_of_three` for one partition without ghosted points."""
    hits_of = marks.zone_hits
    if hits_of is None:
        zones = marks.zone
        if zones.count(1) < 2 and zones.count(-1) < 2:  # a signal needs two on a side
            return []
        hits_of = (
            [k for k, zone in enumerate(zones) if zone == 1],
            [k for k, zone in enumerate(zones) if zone == -1],
        )
    elif not (hits_of[0] or hits_of[1]):
        return []
    if view.limits[0] is None:
        return []
    sides = marks.mean_bytes or bytes(map(_ONE_UP, marks.mean))  # 2 above, 0 below
    last_window = len(sides) - 3
    found = []
    for side, sign, hits in ((Side.HIGH, 2, hits_of[0]), (Side.LOW, 0, hits_of[1])):
        if len(hits) < 2:
            continue
        # A window of three holds two hits only where two hits are at most 2 apart.
        starts = sorted(
            {
                start
                for h1, h2 in pairwise(hits)
                if h2 - h1 <= 2
                for start in range(max(h2 - 2, 0), min(h1, last_window) + 1)
            }
        )
        flagged: set[int] = set()
        detected_at, last_start = -1, -3
        for start in starts:
            if not sides[start] == sides[start + 1] == sides[start + 2] == sign:
                continue
            window = [k for k in hits if start <= k <= start + 2]
            if start - last_start > 2 and flagged:  # no overlap: the last signal is over
                found.append(_two_of_three_signal(view, side, flagged, detected_at))
                flagged = set()
            if not flagged:
                detected_at = start + 2
            flagged.update(window)
            last_start = start
        if flagged:
            found.append(_two_of_three_signal(view, side, flagged, detected_at))
    return found


def _beyond_limits(view: SeriesView, order: list[int], marks: Marks) -> list[Signal]:
    """Rule 1: a point beyond a process limit. Consecutive points beyond the same limit
    make one signal, complete at its first point."""
    astro = marks.astro
    if not any(astro):
        return []
    partition = view.partition
    found = []
    for (_, side), group in groupby(order, key=lambda i: (partition[i], astro[i])):
        if side:
            run = list(group)
            high = side > 0
            found.append(
                view.signal(
                    Rule.ASTRONOMICAL,
                    Side.HIGH if high else Side.LOW,
                    run,
                    run[0],
                    "upper" if high else "lower",
                )
            )
    return found


def _shifts(view: SeriesView, order: list[int], marks: Marks) -> list[Signal]:
    """Rule 2: `settings.shift` points in a row on one side of the mean, in one partition."""
    needed = view.settings.shift
    partition, mean = view.partition, marks.mean
    found = []
    start = 0  # position in `order` where the current run began
    key = None
    for position, i in enumerate(order):
        here = (partition[i], mean[i])
        if here != key:
            if key is not None and key[1] and position - start >= needed:
                found.append(_shift(view, order[start:position], key[1], needed))
            key, start = here, position
    if key is not None and key[1] and len(order) - start >= needed:
        found.append(_shift(view, order[start:], key[1], needed))
    return found


def _shift(view: SeriesView, run: list[int], side: int, needed: int) -> Signal:
    return view.signal(
        Rule.SHIFT,
        Side.HIGH if side > 0 else Side.LOW,
        run,
        run[needed - 1],
        "mean",
        count=len(run),
        count_limit=needed,
    )


def _trends(view: SeriesView, order: list[int]) -> list[Signal]:
    """Rule 3: `settings.trend` points in a row each higher (or lower) than the last.

    A tie breaks the trend. Partitions are ignored, as in MDC SQL v2.2; consecutive
    trends up and down share their turning point.
    """
    needed = view.settings.trend
    found: list[Signal] = []
    if len(order) < needed:
        return found
    f = view.x.f
    faithful = view.x.faithful
    exact = view.x.exact
    # A run is order[start:end]; `step` is its direction (0: a single point).
    start, step = 0, 0
    previous = order[0]
    b = f[previous]
    for position in range(1, len(order)):
        i = order[position]
        a = f[i]
        if a > b:
            move = 1
        elif a < b:
            move = -1
        elif faithful:
            move = 0
        else:
            xa, xb = exact(i), exact(previous)
            move = (xa > xb) - (xa < xb)
        if not move or move != step:
            if step and position - start >= needed:
                found.append(_trend(view, order[start:position], step, needed))
            start, step = (position - 1 if move else position), move
        previous, b = i, a
    if step and len(order) - start >= needed:
        found.append(_trend(view, order[start:], step, needed))
    return found


def _trend(view: SeriesView, run: list[int], step: int, needed: int) -> Signal:
    side = Side.HIGH if step > 0 else Side.LOW
    return view.signal(
        Rule.TREND, side, run, run[needed - 1], None, count=len(run), count_limit=needed
    )


def _two_of_three(view: SeriesView, order: list[int], marks: Marks) -> list[Signal]:
    """Rule 4: two of three consecutive points beyond the same 2-sigma line, all three on
    that side of the mean. Only the points beyond 2 sigma are flagged. Overlapping
    windows make one signal.

    `sql_v2` counts only points between the 2-sigma line and the process limit (MDC SQL,
    NHSRplotthedots); `mdc2023` counts every point beyond 2 sigma (MDC, Nov 2023).
    """
    zone_of = marks.zone
    if not any(zone_of):
        return []
    mean, partition = marks.mean, view.partition
    found = []
    for _, group in groupby(order, key=lambda i: partition[i]):
        points = list(group)
        if view.limits[points[0]] is None:
            continue  # a partition either has limits for all its points or for none
        sides = [mean[i] for i in points]
        zones = [zone_of[i] for i in points]
        last_window = len(points) - 3
        for side, sign in ((Side.HIGH, 1), (Side.LOW, -1)):
            if sign not in zones:
                continue
            # Only windows holding a point beyond the line can count.
            starts = sorted(
                {
                    start
                    for k, zone in enumerate(zones)
                    if zone == sign
                    for start in (k - 2, k - 1, k)
                    if 0 <= start <= last_window
                }
            )
            flagged: set[int] = set()
            detected_at, last_start = -1, -3
            for start in starts:
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
    line = "upper_2sigma" if side is Side.HIGH else "lower_2sigma"
    return view.signal(Rule.TWO_OF_THREE, side, sorted(flagged), at, line)
