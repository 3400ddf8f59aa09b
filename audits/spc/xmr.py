"""XmR (individuals and moving range) chart, built as NHS England's Making Data Count
SQL tool builds it (SPC.md §3): no moving-range screening, limits from each partition's
own non-ghosted points, a frozen baseline extended forward."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from itertools import pairwise

from .arithmetic import (
    Measures,
    Number,
    check_indices,
    check_labels,
    exact,
    read_measures,
    to_decimal,
)
from .chart import MIN_PARTITION_POINTS, Span, build_chart, plan_partitions, span_warnings
from .rules import Lines, SeriesView
from .text import point_names
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
    goal = None if target is None else to_decimal(target, "target")
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


def _one_partition(
    x: Measures,
    names: Sequence[str],
    direction: Direction,
    target: Decimal | None,
    settings: RuleSettings,
) -> ChartResult:
    """`xmr_chart` of a series with no baseline, recalculation or ghosted point: one
    partition (numbered 1, as MDC numbers it) whose limits every point shares."""
    count = len(x)
    total, ranges = x.sums(range(count))
    mr_mean = ranges / (count - 1)
    lines = Lines.around(total / count, XMR_CONSTANT * mr_mean)
    limits = lines.public()
    trial = count < MIN_PARTITION_POINTS
    partition = Partition(1, 0, count - 1, count, limits, None, trial, float(mr_mean))
    view = SeriesView(
        x,
        [True] * count,
        [1] * count,
        [limits] * count,
        lambda i: lines,
        names,
        direction,
        settings,
    )
    return build_chart(
        view,
        kind=ChartKind.XMR,
        partitions=lambda: (partition,),
        target=target,
        assurance_lines=lambda: lines,
        point_limits=lambda i: limits,
        warnings=_TRIAL_WARNING[count] if trial else [],
    )


class _TrialWarnings(dict[int, list[str]]):
    def __missing__(self, count: int) -> list[str]:
        return span_warnings([Span(1, 0, count - 1, None)], [(True, count, True)], None, count)


_TRIAL_WARNING = _TrialWarnings()
