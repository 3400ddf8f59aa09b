"""XmR (individuals and moving range) chart, built as NHS England's Making Data Count
SQL tool builds it (SPC.md §3): no moving-range screening, limits from each partition's
own non-ghosted points, a frozen baseline extended forward."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal
from itertools import pairwise

from .arithmetic import (
    Number,
    check_indices,
    check_labels,
    exact,
    to_decimal,
    to_decimals,
)
from .chart import MIN_PARTITION_POINTS, build_chart, plan_partitions, span_warnings
from .rules import Lines, SeriesView
from .text import point_names
from .types import (
    ChartKind,
    ChartResult,
    ConflictRule,
    Direction,
    Partition,
    RuleSettings,
    TwoOfThree,
    parse_choice,
)

# 2.66 = 3/d2 with d2 = 1.128 for moving ranges of two points, rounded as Making Data
# Count and NHSRplotthedots round it, so that limits match MDC's (SPC.md §3.1).
XMR_CONSTANT = Decimal("2.66")


def xmr_lines(values: Sequence[Decimal]) -> tuple[Lines, Decimal] | None:
    """Lines from the mean and the mean moving range; None with fewer than two points."""
    if len(values) < 2:
        return None
    mean = sum(values, Decimal(0)) / len(values)
    mr_mean = sum((abs(b - a) for a, b in pairwise(values)), Decimal(0)) / (len(values) - 1)
    return Lines.around(mean, XMR_CONSTANT * mr_mean), mr_mean


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
    x = to_decimals(values, "values")
    return xmr_chart(
        x,
        names=point_names(len(x), check_labels(labels, len(x))),
        direction=parse_choice(Direction, direction, "direction"),
        target=None if target is None else to_decimal(target, "target"),
        baseline=baseline,
        recalc_at=check_indices(recalc_at, len(x), "recalc_at"),
        ghosts=check_indices(ghosts, len(x), "ghosts"),
        settings=RuleSettings.build(shift, trend, two_of_three, conflict),
    )


def xmr_chart(
    x: list[Decimal],
    *,
    names: Sequence[str],
    direction: Direction,
    target: Decimal | None,
    baseline: int | None,
    recalc_at: frozenset[int],
    ghosts: frozenset[int],
    settings: RuleSettings,
) -> ChartResult:
    """`analyse_xmr` on checked, exact input (the lifecycle functions call this too)."""
    count = len(x)
    active = [i not in ghosts for i in range(count)]
    if not any(active):
        raise ValueError("every point is ghosted: at least one point must be analysed")
    spans = plan_partitions(count, baseline, recalc_at)

    partition_of = [0] * count
    lines_of: list[Lines | None] = [None] * count
    partitions: list[Partition] = []
    by_number: dict[int, tuple[tuple[Lines, Decimal] | None, int]] = {}
    for span in spans:
        own = [x[i] for i in range(span.first, span.last + 1) if active[i]]
        if span.inherits is None:
            by_number[span.number] = (xmr_lines(own), len(own))
        else:
            by_number[span.number] = by_number[span.inherits]
        result, setting_points = by_number[span.number]
        lines, mr_mean = (None, None) if result is None else result
        for i in range(span.first, span.last + 1):
            partition_of[i], lines_of[i] = span.number, lines
        partitions.append(
            Partition(
                number=span.number,
                first=span.first,
                last=span.last,
                n_points=len(own),
                limits=None if lines is None else lines.public(),
                inherited_from=span.inherits,
                trial=lines is not None and setting_points < MIN_PARTITION_POINTS,
                mr_mean=None if mr_mean is None else float(mr_mean),
            )
        )

    latest = max(i for i in range(count) if active[i])
    view = SeriesView(x, active, partition_of, lines_of, names, direction, settings)
    return build_chart(
        view,
        kind=ChartKind.XMR,
        partitions=partitions,
        target=target,
        assurance_lines=lines_of[latest],
        warnings=span_warnings(spans, partitions, baseline, count),
    )
