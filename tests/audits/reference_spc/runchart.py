"""Run-chart analysis for short series (SPC.md §8): Anhøj's rules decide, because they
keep a false-signal rate near 5% whatever the length; the IHI (Perla) shift and trend
rules are reported beside them, as improvement teams know them.

Points exactly on the centre line are not "useful": they neither extend nor break a run.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from decimal import Decimal
from itertools import accumulate, groupby, pairwise

from .arithmetic import (
    Number,
    check_indices,
    check_labels,
    check_length,
    exact,
    median,
    to_decimal,
    to_decimals,
)
from .rules import effect_of
from .text import point_names
from .types import (
    AnhoejResult,
    Direction,
    Effect,
    IhiResult,
    Point,
    Rule,
    RunChartResult,
    RunPattern,
    Side,
    Signal,
    parse_choice,
)


def _crossings_min(useful: int) -> int:
    """qbinom(0.05, n - 1, 0.5): the smallest k with P(Binomial(n - 1, 1/2) <= k) >= 5%,
    counted exactly with integers (Anhøj & Olesen 2014; qicharts2 `crsignal`)."""
    trials = max(useful - 1, 0)
    cumulative = accumulate(math.comb(trials, k) for k in range(trials + 1))
    return next(k for k, total in enumerate(cumulative) if 20 * total >= 2**trials)


def _ihi_trends(x: Sequence[Decimal], order: list[int], needed: int) -> list[RunPattern]:
    """IHI trend: `needed` points all going up or all going down. Repeated values are
    skipped, neither adding to nor breaking a trend, so a trend starts at the last of
    the repeated values it turns from and ends at the last point that moved."""
    moves = [(a, b, step) for a, b in pairwise(order) if (step := (x[b] > x[a]) - (x[b] < x[a]))]
    found = []
    for step, group in groupby(moves, key=lambda move: move[2]):
        steps = list(group)
        if len(steps) + 1 >= needed:
            side = Side.HIGH if step > 0 else Side.LOW
            found.append(RunPattern(steps[0][0], steps[-1][1], side, len(steps) + 1))
    return found


@exact
def analyse_run_chart(
    values: Sequence[Number],
    *,
    direction: Direction | str,
    centre: Number | None = None,
    baseline: int | None = None,
    ghosts: Collection[int] = (),
    labels: Sequence[str] | None = None,
    ihi_shift: int = 6,
    ihi_trend: int = 5,
) -> RunChartResult:
    """Run chart of `values` around the median of all points, the median of the first
    `baseline` points, or a given `centre`. Raises ValueError on bad input."""
    x = to_decimals(values, "values")
    count = len(x)
    names = point_names(count, check_labels(labels, count))
    ghosted = check_indices(ghosts, count, "ghosts")
    way = parse_choice(Direction, direction, "direction")
    check_length(ihi_shift, "ihi_shift", 2)
    check_length(ihi_trend, "ihi_trend", 2)
    order = [i for i in range(count) if i not in ghosted]
    if not order:
        raise ValueError("every point is ghosted: at least one point must be analysed")
    if centre is not None and baseline is not None:
        raise ValueError("give either a centre line or a baseline, not both")

    if centre is not None:
        line, basis = to_decimal(centre, "centre"), "the given centre line"
    elif baseline is not None:
        check_length(baseline, "baseline", 1)
        first = [i for i in order if i < baseline]
        if not first:
            raise ValueError(f"the first {baseline} points are all ghosted: no baseline median")
        line, basis = median([x[i] for i in first]), f"the median of the first {len(first)} points"
    else:
        line, basis = median([x[i] for i in order]), f"the median of all {len(order)} points"

    useful = [i for i in order if x[i] != line]
    runs = [
        (Side.HIGH if above else Side.LOW, list(group))
        for above, group in groupby(useful, key=lambda i: x[i] > line)
    ]
    n_useful = len(useful)
    longest = max((len(run) for _, run in runs), default=0)
    # Anhøj: a run longer than round(log2(n)) + 3 is unlikely by chance (qicharts2).
    longest_max = round(math.log2(n_useful)) + 3 if n_useful else 0
    crossings = max(len(runs) - 1, 0)
    crossings_min = _crossings_min(n_useful)

    def signal(
        rule: Rule, side: Side | None, points: list[int], at: int, count: int, limit: int
    ) -> Signal:
        return Signal(
            rule=rule,
            side=side,
            effect=Effect.NEUTRAL if side is None else effect_of(side, way),
            points=tuple(points),
            detected_at=at,
            detected_name=names[at],
            names=tuple(names[i] for i in points),
            values=tuple(float(x[i]) for i in points),
            lines=(float(line),),
            count=count,
            count_limit=limit,
        )

    signals = [
        signal(Rule.LONG_RUN, side, run, run[longest_max], len(run), longest_max)
        for side, run in runs
        if n_useful and len(run) > longest_max
    ]
    if n_useful and crossings < crossings_min:
        signals.append(
            signal(Rule.FEW_CROSSINGS, None, useful, useful[-1], crossings, crossings_min)
        )

    flagged: dict[int, list[Signal]] = {}
    for s in signals:
        for i in s.points:
            flagged.setdefault(i, []).append(s)
    points = []
    for i in range(count):
        hits = flagged.get(i, [])
        # A point lies in one run at most, so its long run (if any) gives its direction.
        run_effect = next((s.effect for s in hits if s.rule is Rule.LONG_RUN), None)
        points.append(
            Point(
                index=i,
                value=float(x[i]),
                name=names[i],
                ghost=i in ghosted,
                partition=1,
                limits=None,
                rules=tuple(s.code for s in hits),
                classification=run_effect or (Effect.NEUTRAL if hits else None),
                conflict=False,
            )
        )

    warnings = [] if n_useful else ["Every point lies on the centre line: nothing to analyse."]
    ihi = IhiResult(
        shifts=tuple(
            RunPattern(run[0], run[-1], side, len(run))
            for side, run in runs
            if len(run) >= ihi_shift
        ),
        trends=tuple(_ihi_trends(x, order, ihi_trend)),
        n_runs=len(runs),
    )
    return RunChartResult(
        direction=way,
        centre=float(line),
        centre_basis=basis,
        points=tuple(points),
        anhoej=AnhoejResult(
            n_useful=n_useful,
            longest_run=longest,
            longest_run_max=longest_max,
            crossings=crossings,
            crossings_min=crossings_min,
            signal=bool(signals),
        ),
        ihi=ihi,
        signals=tuple(signals),
        warnings=tuple(warnings),
    )
