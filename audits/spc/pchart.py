"""p-chart for audit proportions with a stored denominator, and Laney p' where the
baseline is over-dispersed (SPC.md §2.3, §7).

Each point has its own limits from its own sample size, so a month that audited 6 records
is not judged by the yardstick of a month that audited 30. The rules are MDC's: the shift
is judged against p-bar, beyond-limit and two-of-three against each point's own lines,
the trend against the proportions themselves.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from decimal import Decimal, localcontext
from itertools import compress, pairwise
from operator import ge, le, sub, truediv

from .arithmetic import (
    _EXACT,
    Number,
    check_indices,
    check_labels,
    exact,
    read_target,
    to_whole,
)
from .chart import MIN_PARTITION_POINTS, build_chart, plan_partitions, span_warnings
from .rules import Lines, Marks, SeriesView
from .text import join_names, point_names
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

# d2 = 1.128 for moving ranges of two points: Laney's sigma_z = mean |z_i - z_(i-1)| / d2.
D2 = Decimal("1.128")
_ONE, _ZERO = Decimal(1), Decimal(0)
_INT = {int}
# How far a float estimate may be trusted, relative to the size of what it estimates. The
# estimates are good to about 1e-15; anything closer than this is settled exactly.
_ROOM = 1e-9
# A point is looked at against its 2-sigma lines only beyond this share of the 3-sigma
# width (the 2-sigma line is at 2/3 of it; the gap dwarfs any estimate's room).
_NEAR = 0.5


class _Proportions:
    """p_i = x_i / n_i: floats for the comparisons, the engine's 40-digit decimals on
    demand (`Values` in rules)."""

    __slots__ = ("f", "faithful", "_x", "_n", "_exact")

    def __init__(self, x: list[int], n: list[int]) -> None:
        self._x, self._n = x, n
        self._exact: dict[int, Decimal] = {}
        biggest = max(n)
        # x / n of ints is correctly rounded, and with n < 2**40 no 40-digit rounding of a
        # proportion can cross a float rounding boundary, so it is float(the decimal).
        if biggest < 2**40:
            self.f = list(map(truediv, x, n))
        else:
            self.f = [float(Decimal(a) / b) for a, b in zip(x, n, strict=True)]
        # Different fractions with n < 2**20 differ by more than a float can blur.
        self.faithful = biggest < 2**20

    def exact(self, i: int) -> Decimal:
        value = self._exact.get(i)
        if value is None:
            value = self._exact[i] = Decimal(self._x[i]) / self._n[i]
        return value


class _Model:
    """What a partition's limit-setting points say: p-bar and the sigma multiplier, as
    float estimates for the comparisons and as the exact decimals on demand."""

    def __init__(self, x: list[int], n: list[int], pbar: Decimal) -> None:
        self._x, self._n = x, n
        self.pbar = pbar
        self.setting_points = len(x)
        self.pf = pf = float(pbar)
        self._lines: dict[object, Lines] = {}
        self._limits: dict[int, Limits] = {}
        self._sigma_z: Decimal | None = None
        pq = pf * (1 - pf)
        self._pq = pq
        if not pq > 0:
            # p-bar within a float of 0 or 1: no estimate is good enough, so every
            # comparison is settled with the decimals.
            sigma_z = self.sigma_z()
            self.laney = sigma_z is not None and sigma_z > 1
            self.sz, self.sz_room = None if sigma_z is None else float(sigma_z), math.inf
        elif len(x) > 1:
            per_sd = 1 / pq
            sqrt = math.sqrt
            scale = [sqrt(b * per_sd) for b in n]  # 1 / the binomial sd of each point
            p = list(map(truediv, x, n))
            z = [(pi - pf) * si for pi, si in zip(p, scale, strict=True)]
            estimate = sum(map(abs, map(sub, z[1:], z))) / (len(z) - 1) / 1.128
            # How wrong the estimate could be: each z is off by a few units in the last
            # place of the terms it was made from.
            slack = sum(map(abs, z)) + sum(
                [(pi + pf) * si for pi, si in zip(p, scale, strict=True)]
            )
            error = 1e-13 * (slack / (len(z) - 1) + estimate)
            if estimate - error > 1:
                self.laney = True
            elif estimate + error < 1:
                self.laney = False
            else:
                self.laney = self.sigma_z() > 1
            self.sz = estimate
            self.sz_room = error / estimate if estimate else 0.0
        else:
            self.laney, self.sz, self.sz_room = False, None, 0.0
        self.factor_f = self.sz if self.laney and self.sz is not None else 1.0
        # min(p-bar, 1 - p-bar), set by the chart for `_Trusted`
        self.q: Decimal = _ONE
        self.qf = 1.0

    def sigma_z(self) -> Decimal | None:
        """Laney's sigma_z, with the engine's decimal steps; None under two points."""
        if self._sigma_z is None and len(self._x) > 1:
            pbar = self.pbar
            z = [
                (Decimal(xi) / ni - pbar) / (pbar * (1 - pbar) / ni).sqrt()
                for xi, ni in zip(self._x, self._n, strict=True)
            ]
            self._sigma_z = (
                sum((abs(b - a) for a, b in pairwise(z)), Decimal(0)) / (len(z) - 1) / D2
            )
        return self._sigma_z

    @property
    def factor(self) -> Decimal:
        """sigma_z when Laney p' applies, else 1."""
        if not self.laney:
            return _ONE
        sigma_z = self.sigma_z()
        assert sigma_z is not None
        return sigma_z

    @property
    def mean_n(self) -> Decimal:
        return Decimal(sum(self._n)) / len(self._n)

    def lines(self, n: Decimal | int) -> Lines:
        """The exact lines for a sample of n."""
        lines = self._lines.get(n)
        if lines is None:
            pbar = self.pbar
            sigma = (pbar * (1 - pbar) / n).sqrt() * self.factor
            lines = self._lines[n] = Lines.around(pbar, 3 * sigma, proportion=True)
        return lines

    def limits(self, n: int) -> Limits:
        limits = self._limits.get(n)
        if limits is None:
            limits = self._limits[n] = self.lines(n).public()
        return limits

    def width(self, n: int) -> float:
        """Estimate of the 3-sigma width for a sample of n."""
        return 3 * math.sqrt(self._pq / n) * self.factor_f

    def room(self, width: float) -> float:
        """How far the estimated lines around p-bar of this width may be from the exact."""
        return (self.pf + width) * _ROOM + width * self.sz_room * 1e3

    def mark(
        self,
        p: _Proportions,
        n: list[int],
        members: list[int],
        trusted: Sequence[bool],
        every: bool,
        marks: Marks,
    ) -> None:
        """Mark the points at `members` (all analysed) against this model's lines: floats
        where they are clear by more than the estimate's room, the decimals elsewhere."""
        pf, ff, pq = self.pf, self.factor_f, self._pq
        f = p.f
        first, last = members[0], members[-1]
        contiguous = last - first + 1 == len(members)
        if contiguous:
            a, sizes = f[first : last + 1], n[first : last + 1]
        else:
            a, sizes = [f[i] for i in members], [n[i] for i in members]
        sqrt = math.sqrt
        w = [3 * sqrt(pq / b) * ff for b in sizes]
        rel = self.sz_room * 1e3
        mean, astro, zone = marks.mean, marks.astro, marks.zone
        side = [1 if ai > pf else -1 if ai < pf else 0 for ai in a]
        if pf in a:
            for k, ai in enumerate(a):
                if ai == pf:
                    i = members[k]
                    exact = p.exact(i)
                    side[k] = (exact > self.pbar) - (exact < self.pbar)
        if contiguous:
            mean[first : last + 1] = side
        else:
            for k, i in enumerate(members):
                mean[i] = side[k]

        def beyond(k: int, reach: float, sign: int, name: str) -> bool:
            wk = w[k]
            line = min(1.0, max(0.0, pf + sign * reach * wk))
            d = (a[k] - line) * sign
            room = (pf + wk) * _ROOM + wk * rel
            if d > room:
                return True
            if d < -room:
                return False
            i = members[k]
            exact, exact_line = p.exact(i), getattr(_LinesAt(self, n[i]), name)
            return (exact > exact_line) if sign > 0 else (exact < exact_line)

        # Only points near or beyond a 2-sigma line need more than the mean.
        # (a margin far wider than any estimate's room, so no point that needs a look is
        # left out)
        near = _NEAR
        positions = range(len(a))
        high = list(compress(positions, map(ge, a, [pf + wk * near for wk in w])))
        low = list(compress(positions, map(le, a, [pf - wk * near for wk in w])))
        for k in high:
            if side[k] > 0 and beyond(k, 2 / 3, 1, "upper_2sigma"):
                i = members[k]
                above = beyond(k, 1.0, 1, "upper")
                if above and trusted[i]:
                    astro[i] = 1
                if every or not above:
                    zone[i] = 1
        for k in low:
            if side[k] < 0 and beyond(k, 2 / 3, -1, "lower_2sigma"):
                i = members[k]
                below = beyond(k, 1.0, -1, "lower")
                if below and trusted[i]:
                    astro[i] = -1
                if every or not below:
                    zone[i] = -1


_SURE, _UNSURE = 4 * (1 + _ROOM), 4 * (1 - _ROOM)


class _Trusted(Sequence[bool]):
    """Whether a point's sample is large enough for a single point beyond a limit to
    count (n q >= 4, q of its partition's model), worked out only for the points read."""

    __slots__ = ("_n", "_model_of")

    def __init__(self, n: list[int], model_of: list[_Model | None]) -> None:
        self._n, self._model_of = n, model_of

    def __len__(self) -> int:
        return len(self._n)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self._n)))]
        model = self._model_of[i]
        if model is None:
            return True
        nq = self._n[i] * model.qf
        if nq > _SURE:
            return True
        if nq < _UNSURE:
            return False
        with localcontext(_EXACT):
            return self._n[i] * model.q >= 4


class _LinesAt:
    """A point's exact lines, made only as far as a comparison needs: a line that the
    estimate shows is clamped to 0 or 1 is known without the decimals."""

    __slots__ = ("_model", "_n")

    def __init__(self, model: _Model, n: int) -> None:
        self._model, self._n = model, n

    def __getattr__(self, name: str) -> Decimal:
        model = self._model
        if name == "mean":
            return model.pbar
        width = model.width(self._n)
        room = model.room(width)
        reach = width if name in ("lower", "upper") else width * 2 / 3
        if name.endswith("1sigma"):
            reach = width / 3
        unclamped = model.pf + (-reach if name.startswith("lower") else reach)
        if unclamped > 1 + room:
            return _ONE
        if unclamped < -room:
            return _ZERO
        return getattr(model.lines(self._n), name)


def _model(x: list[int], n: list[int]) -> _Model | None:
    """p-bar pooled over the points (not the mean of their proportions), and Laney's
    sigma_z; None when there are no points or p-bar is 0 or 1 (zero width)."""
    if not x:
        return None
    pbar = Decimal(sum(x)) / Decimal(sum(n))
    if pbar in (0, 1):
        return None
    # Laney p' only where over-dispersion is shown: with sigma_z <= 1 it would narrow the
    # binomial limits, and on a short baseline sigma_z is itself noisy (SPC.md §2.3).
    return _Model(x, n, pbar)


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
    if set(map(type, numerators)) == _INT == set(map(type, denominators)):
        x, n = list(numerators), list(denominators)
        if min(n) > 0 and min(x) >= 0 and all(map(le, x, n)):
            return x, n
    else:
        x = [to_whole(v, f"numerators[{i}]") for i, v in enumerate(numerators)]
        n = [to_whole(v, f"denominators[{i}]") for i, v in enumerate(denominators)]
    for i, (xi, ni) in enumerate(zip(x, n, strict=True)):
        if ni <= 0:
            raise ValueError(f"denominators[{i}] is {ni}: every sample must hold at least one")
        if not 0 <= xi <= ni:
            raise ValueError(f"numerators[{i}] is {xi}, outside 0 to its denominator {ni}")
    return x, n


def _at_least(n: int, q: Decimal, qf: float, bound: int) -> bool:
    """n * q >= bound, with the engine's decimal product where the floats are too close."""
    product = n * qf
    if product > bound * (1 + _ROOM):
        return True
    if product < bound * (1 - _ROOM):
        return False
    return n * q >= bound


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
    # A float target stays a float (its decimal is made when the assurance is read): it
    # lies in [0, 1] exactly when the decimal its repr spells does.
    goal = read_target(target)
    if goal is not None and not 0 <= goal <= 1:
        raise ValueError(f"a p-chart target is a proportion from 0 to 1, got {target!r}")

    count = len(x)
    names = point_names(count, check_labels(labels, count))
    ghosted = check_indices(ghosts, count, "ghosts")
    active = [i not in ghosted for i in range(count)] if ghosted else [True] * count
    if not any(active):
        raise ValueError("every point is ghosted: at least one point must be analysed")
    spans = plan_partitions(count, baseline, check_indices(recalc_at, count, "recalc_at"))

    partition_of = [0] * count
    model_of: list[_Model | None] = [None] * count
    trusted = _Trusted(n, model_of)
    models: dict[int, _Model | None] = {}
    facts: list[tuple[bool, int, bool]] = []
    warnings: list[str] = []
    too_small: list[str] = []
    props = _Proportions(x, n)
    marks = Marks([0] * count, [0] * count, [0] * count)
    way = parse_choice(Direction, direction, "direction")
    settings = RuleSettings.build(shift, trend, two_of_three, conflict)
    every = settings.two_of_three is TwoOfThree.MDC2023
    for span in spans:
        members = range(span.first, span.last + 1)
        setting = [i for i in members if active[i]] if ghosted else list(members)
        if span.inherits is None:
            if len(setting) == count:  # every point sets the limits (x and n are never changed)
                models[span.number] = _model(x, n)
            else:
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
        partition_of[span.first : span.last + 1] = [span.number] * len(members)
        if model is not None:
            model_of[span.first : span.last + 1] = [model] * len(members)
            q = min(model.pbar, 1 - model.pbar)
            qf = float(q)
            model.q, model.qf = q, qf  # (trusted[i] reads them when a point needs it)
            near = 1 + _ROOM
            # n * qf grows with n, so the smallest sample tells whether any is too small.
            if min(n[span.first : span.last + 1]) * qf < near:
                too_small += [
                    names[i]
                    for i in members
                    if n[i] * qf < near and active[i] and not _at_least(n[i], q, qf, 1)
                ]
            analysed = [i for i in members if active[i]] if ghosted else list(members)
            if analysed:
                model.mark(props, n, analysed, trusted, every, marks)
        facts.append(
            (
                model is not None,
                len(setting),
                model is not None and model.setting_points < MIN_PARTITION_POINTS,
            )
        )
    if too_small:
        warnings.append(
            f"The samples at {join_names(too_small)} are too small to judge on their own "
            "(fewer than 1/q items, Hart & Hart); combine periods where possible."
        )

    def partitions() -> tuple[Partition, ...]:
        found = []
        for span, (_, n_points, trial) in zip(spans, facts, strict=True):
            model = models[span.number]
            sigma_z = None if model is None else model.sigma_z()
            found.append(
                Partition(
                    number=span.number,
                    first=span.first,
                    last=span.last,
                    n_points=n_points,
                    limits=None if model is None else model.lines(model.mean_n).public(),
                    inherited_from=span.inherits,
                    trial=trial,
                    mean_denominator=None if model is None else float(model.mean_n),
                    sigma_z=None if sigma_z is None else float(sigma_z),
                    laney=model is not None and model.laney,
                )
            )
        return tuple(found)

    def point_limits(i: int) -> Limits | None:
        model = model_of[i]
        return None if model is None else model.limits(n[i])

    latest = next(i for i in range(count - 1, -1, -1) if active[i])
    latest_model = models[partition_of[latest]]

    # (every span holds a point, so its models are the points' models, in the same order)
    distinct = list({id(m): m for m in models.values()}.values())
    if any(m is None for m in distinct):
        distinct = []

    def exact_lines(i: int) -> _LinesAt:
        model = model_of[i]
        assert model is not None
        return _LinesAt(model, n[i])

    view = SeriesView(
        props,
        active,
        partition_of,
        model_of,  # type: ignore[arg-type]
        exact_lines,  # type: ignore[arg-type]
        names,
        way,
        settings,
        astro_trusted=trusted,
        marks=marks,
        # One p-bar for every point: its float is exact (see `Values`).
        mean=None if len(distinct) != 1 else distinct[0].pf,
        all_active=not ghosted,
    )
    laney = any(model is not None and model.laney for model in models.values())
    return build_chart(
        view,
        kind=ChartKind.P_PRIME if laney else ChartKind.P,
        partitions=partitions,
        target=goal,
        # The last point's sample size is arbitrary, so assurance is judged at the average
        # sample of the limit-setting points (SPC.md §5.2, a product choice).
        assurance_lines=lambda: (
            None if latest_model is None else latest_model.lines(latest_model.mean_n)
        ),
        point_limits=point_limits,
        warnings=[*span_warnings(spans, facts, baseline, count), *warnings],
        numerators=x,
        denominators=n,
    )
