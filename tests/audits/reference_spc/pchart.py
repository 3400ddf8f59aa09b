"""p-chart for audit proportions with a stored denominator, and Laney p' where the
baseline is over-dispersed (SPC.md §2.3, §7).

Each point has its own limits from its own sample size, so a month that audited 6 records
is not judged by the yardstick of a month that audited 30. The rules are MDC's: the shift
is judged against p-bar, beyond-limit and two-of-three against each point's own lines,
the trend against the proportions themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from .arithmetic import (
    Number,
    check_indices,
    check_labels,
    exact,
    to_decimal,
    to_whole,
)
from .chart import MIN_PARTITION_POINTS, build_chart, plan_partitions, span_warnings
from .rules import Lines, SeriesView
from .text import join_names, point_names
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

# d2 = 1.128 for moving ranges of two points: Laney's sigma_z = mean |z_i - z_(i-1)| / d2.
D2 = Decimal("1.128")


@dataclass(frozen=True, slots=True)
class _Model:
    """What a partition's limit-setting points say: p-bar and the sigma multiplier."""

    pbar: Decimal
    factor: Decimal  # sigma_z when Laney p' applies, else 1
    sigma_z: Decimal | None  # None with fewer than two limit-setting points
    mean_n: Decimal
    setting_points: int

    def lines(self, n: Decimal) -> Lines:
        sigma = (self.pbar * (1 - self.pbar) / n).sqrt() * self.factor
        return Lines.around(self.pbar, 3 * sigma, proportion=True)


def _model(x: list[int], n: list[int]) -> _Model | None:
    """p-bar pooled over the points (not the mean of their proportions), and Laney's
    sigma_z; None when there are no points or p-bar is 0 or 1 (zero width)."""
    if not x:
        return None
    pbar = Decimal(sum(x)) / Decimal(sum(n))
    if pbar in (0, 1):
        return None
    z = [
        (Decimal(xi) / ni - pbar) / (pbar * (1 - pbar) / ni).sqrt()
        for xi, ni in zip(x, n, strict=True)
    ]
    sigma_z = (
        sum((abs(b - a) for a, b in pairwise(z)), Decimal(0)) / (len(z) - 1) / D2
        if len(z) > 1
        else None
    )
    # Laney p' only where over-dispersion is shown: with sigma_z <= 1 it would narrow the
    # binomial limits, and on a short baseline sigma_z is itself noisy (SPC.md §2.3).
    factor = sigma_z if sigma_z is not None and sigma_z > 1 else Decimal(1)
    return _Model(pbar, factor, sigma_z, Decimal(sum(n)) / len(n), len(x))


def check_counts(
    numerators: Sequence[Number], denominators: Sequence[Number]
) -> tuple[list[int], list[int]]:
    """Numerators and denominators as whole counts, paired, with 0 <= x <= n and n > 0."""
    if isinstance(numerators, str | bytes) or isinstance(denominators, str | bytes):
        raise ValueError("numerators and denominators must be sequences of counts")
    if not numerators:
        raise ValueError("numerators is empty: at least one measurement is needed")
    if len(numerators) != len(denominators):
        raise ValueError(
            f"numerators has {len(numerators)} entries but denominators has "
            f"{len(denominators)}: they must pair up"
        )
    x = [to_whole(v, f"numerators[{i}]") for i, v in enumerate(numerators)]
    n = [to_whole(v, f"denominators[{i}]") for i, v in enumerate(denominators)]
    for i, (xi, ni) in enumerate(zip(x, n, strict=True)):
        if ni <= 0:
            raise ValueError(f"denominators[{i}] is {ni}: every sample must hold at least one")
        if not 0 <= xi <= ni:
            raise ValueError(f"numerators[{i}] is {xi}, outside 0 to its denominator {ni}")
    return x, n


@exact
def analyse_p_chart(
    numerators: Sequence[Number],
    denominators: Sequence[Number],
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
    """p-chart of numerators[i] / denominators[i] (e.g. compliant records / audited).

    Options as for `analyse_xmr`; `target` is a proportion between 0 and 1. Points whose
    sample is under 4/q (q = the smaller of p-bar and 1 - p-bar) never raise a
    beyond-limit signal on their own (Hart & Hart, SPC.md §2.3).
    """
    x, n = check_counts(numerators, denominators)
    goal = None if target is None else to_decimal(target, "target")
    if goal is not None and not 0 <= goal <= 1:
        raise ValueError(f"a p-chart target is a proportion from 0 to 1, got {target!r}")

    count = len(x)
    names = point_names(count, check_labels(labels, count))
    ghosted = check_indices(ghosts, count, "ghosts")
    active = [i not in ghosted for i in range(count)]
    if not any(active):
        raise ValueError("every point is ghosted: at least one point must be analysed")
    spans = plan_partitions(count, baseline, check_indices(recalc_at, count, "recalc_at"))

    p = [Decimal(xi) / ni for xi, ni in zip(x, n, strict=True)]
    partition_of = [0] * count
    lines_of: list[Lines | None] = [None] * count
    trusted = [True] * count
    partitions: list[Partition] = []
    models: dict[int, _Model | None] = {}
    warnings: list[str] = []
    too_small: list[str] = []
    for span in spans:
        members = range(span.first, span.last + 1)
        setting = [i for i in members if active[i]]
        if span.inherits is None:
            models[span.number] = _model([x[i] for i in setting], [n[i] for i in setting])
            if setting and models[span.number] is None:
                warnings.append(
                    f"Every audited item in partition {span.number} met the standard, or "
                    "every one failed it, so a p-chart has no limits there; a chart of the "
                    "time between failures suits such a measure better."
                )
        else:
            models[span.number] = models[span.inherits]
        model = models[span.number]
        for i in members:
            partition_of[i] = span.number
            if model is not None:
                lines_of[i] = model.lines(Decimal(n[i]))
                q = min(model.pbar, 1 - model.pbar)
                trusted[i] = n[i] * q >= 4
                if active[i] and n[i] * q < 1:
                    too_small.append(names[i])
        partitions.append(
            Partition(
                number=span.number,
                first=span.first,
                last=span.last,
                n_points=len(setting),
                limits=None if model is None else model.lines(model.mean_n).public(),
                inherited_from=span.inherits,
                trial=model is not None and model.setting_points < MIN_PARTITION_POINTS,
                mean_denominator=None if model is None else float(model.mean_n),
                sigma_z=None if model is None or model.sigma_z is None else float(model.sigma_z),
                laney=model is not None and model.factor != 1,
            )
        )
    if too_small:
        warnings.append(
            f"The samples at {join_names(too_small)} are too small to judge on their own "
            "(fewer than 1/q items, Hart & Hart); combine periods where possible."
        )

    latest = max(i for i in range(count) if active[i])
    latest_model = models[partition_of[latest]]
    view = SeriesView(
        p,
        active,
        partition_of,
        lines_of,
        names,
        parse_choice(Direction, direction, "direction"),
        RuleSettings.build(shift, trend, two_of_three, conflict),
        astro_trusted=trusted,
    )
    return build_chart(
        view,
        kind=ChartKind.P_PRIME if any(part.laney for part in partitions) else ChartKind.P,
        partitions=partitions,
        target=goal,
        # The last point's sample size is arbitrary, so assurance is judged at the average
        # sample of the limit-setting points (SPC.md §5.2, a product choice).
        assurance_lines=None if latest_model is None else latest_model.lines(latest_model.mean_n),
        warnings=[*span_warnings(spans, partitions, baseline, count), *warnings],
        numerators=x,
        denominators=n,
    )
