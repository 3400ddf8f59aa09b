"""Exact decimal arithmetic and the input checks shared by every chart.

The rules test equality: a point exactly on the mean breaks a shift, a tie breaks a trend
and a target exactly on a limit passes (SPC.md §10.3). Binary floats get those wrong
(92 - 2.66 * 4 == 81.36000000000001), so every number is read as the decimal it was
written as and the arithmetic runs with 40 significant digits (MDC's SQL uses
DECIMAL(38,19)). Results are handed back as floats, for charts and templates.
"""

import math
from collections.abc import Callable, Collection, Sequence
from decimal import Context, Decimal, localcontext
from functools import wraps
from itertools import pairwise
from operator import sub
from typing import ParamSpec, TypeVar

Number = int | float | Decimal

_EXACT = Context(prec=40)

P = ParamSpec("P")
R = TypeVar("R")


def exact(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func` with 40-digit decimal arithmetic, whatever the caller's context is."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(_EXACT):
            return func(*args, **kwargs)

    return wrapper


def to_decimal(value: object, what: str) -> Decimal:
    """One finite number as the decimal it was written as; anything else is a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} must be a finite number, got {value!r}")
        # repr gives the shortest decimal that reads back as this float: 0.1, not 0.1000...0555.
        return Decimal(repr(float(value)))
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return value


def read_target(value: object) -> Decimal | float | None:
    """A target: None, or a finite number as `to_decimal` reads it. A float is checked
    and kept as it is (its decimal is made when the assurance is read)."""
    if value is None:
        return None
    if type(value) is float and math.isfinite(value):
        return value
    return to_decimal(value, "target")


def to_decimals(values: Sequence[Number], what: str) -> list[Decimal]:
    """A non-empty series of finite numbers."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{what} must be a sequence of numbers, got {values!r}")
    if not values:
        raise ValueError(f"{what} is empty: at least one measurement is needed")
    return [to_decimal(value, f"{what}[{i}]") for i, value in enumerate(values)]


def to_whole(value: object, what: str) -> int:
    """A count (numerator or denominator): a whole number, given as int, float or Decimal."""
    number = to_decimal(value, what)
    if number != number.to_integral_value():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(number)


_NONE: frozenset[int] = frozenset()


def check_indices(indices: Collection[int], count: int, what: str) -> frozenset[int]:
    """0-based point indices, each inside a series of `count` points."""
    if not indices and type(indices) in (tuple, list, frozenset, set):
        return _NONE
    if isinstance(indices, str | bytes):
        raise ValueError(f"{what} must be a collection of point indices, got {indices!r}")
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ValueError(
                f"{what} must hold 0-based point indices from 0 to {count - 1}, got {index!r}"
            )
    return frozenset(indices)


def check_labels(labels: Sequence[str] | None, count: int) -> Sequence[str] | None:
    if labels is not None and len(labels) != count:
        raise ValueError(f"labels has {len(labels)} entries but there are {count} points")
    return labels


def check_length(value: int, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be a whole number of at least {minimum}, got {value!r}")
    return value


def median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


# --- The fast exact path ------------------------------------------------------------------
#
# Decimal arithmetic on every point was most of the engine's time. A series is now read
# once into floats and, where the values allow it, integers on a common decimal scale:
#
# - Sums (a mean, a mean moving range) are taken over the integers, so they are exact, and
#   the few per-partition lines are then computed with the same 40-digit decimal steps as
#   before, so every line is the very decimal the engine always produced.
# - A point is compared with a line through the floats of both. float() of a decimal is
#   correctly rounded, and correct rounding is monotone: if float(a) > float(b) then
#   a > b exactly. Only when the two floats are equal is the exact comparison needed, and
#   then the decimals are made (on demand) and compared.

_SCALES = (1, 2, 3, 4, 6, 9)
_FLOAT = {float}
# Below this, a float has at most one value with `d` decimals that rounds to it, so that
# value is the decimal its shortest repr spells (see `_scaled`).
_SCALE_BOUND = 2.0**50


# Adding and then taking away 1.5 * 2**52 rounds a float below 2**51 in magnitude to the
# nearest whole number, ties to even, as round() does, without a call per value.
_ROUNDER = 6755399441055744.0


def _scaled(values: list[float], biggest: float | None = None) -> tuple[list[float], int] | None:
    """Whole numbers k (as floats, each below 2**50 in magnitude, so every sum and
    difference of a few is exact) and a scale d with value == k / 10**d exactly (as
    decimals), or None.

    k / 10**d is correctly rounded, so when it equals the float v, the decimal k·10^-d
    rounds to v; with |k| < 2**50 it is the only decimal of d places that does, and the
    shortest repr of v (which has no more significant digits) names the same number.
    """
    if biggest is None:  # (the largest magnitude, when the caller has not found it)
        biggest = max(map(abs, values))
    rounder = _ROUNDER
    for d in _SCALES:
        p = 10.0**d
        if biggest * p >= _SCALE_BOUND:
            return None
        ks = [v * p + rounder - rounder for v in values]
        if [k / p for k in ks] == values:
            return ks, d
    return None


class Measures:
    """A checked series: floats for the comparisons, exact decimals on demand.

    `f[i]` is float(the exact value of point i). `faithful` is True when equal floats
    always mean equal exact values (every value was a float, or an int the float holds).
    `ordered` is `f` sorted, where it is at hand. `_k`, where the values allow it, holds
    whole numbers k (floats below 2**50 in magnitude, see `_scaled`) with each value
    exactly k / 10**`_d`.
    """

    __slots__ = ("_exact", "_given", "_k", "_d", "f", "faithful", "ordered")

    def __init__(
        self,
        f: list[float],
        given: Sequence[object],
        exact: list[Decimal | None] | None,
        scaled: tuple[list[float], int] | None,
        faithful: bool,
    ) -> None:
        self.f = f
        self._given = given
        self._exact = exact
        self._k, self._d = scaled if scaled is not None else (None, 0)
        self.faithful = faithful
        self.ordered: list[float] | None = None

    def __len__(self) -> int:
        return len(self.f)

    def exact(self, i: int) -> Decimal:
        """The exact value of point i, as `to_decimal` reads it."""
        exact = self._exact
        if exact is None:
            exact = self._exact = [None] * len(self.f)
        value = exact[i]
        if value is None:
            value = exact[i] = to_decimal(self._given[i], "value")
        return value

    def decimals(self) -> list[Decimal]:
        return [self.exact(i) for i in range(len(self.f))]

    def __getitem__(self, where: slice) -> "Measures":
        k = None if self._k is None else (self._k[where], self._d)
        exact = None if self._exact is None else self._exact[where]
        return Measures(self.f[where], self._given[where], exact, k, self.faithful)

    def __add__(self, other: "Measures") -> "Measures":
        scaled = None
        if self._k is not None and other._k is not None:
            d = max(self._d, other._d)
            ks = _rescaled(self._k, d - self._d) + _rescaled(other._k, d - other._d)
            if not ks or max(map(abs, ks)) < _SCALE_BOUND:  # (else the decimals are used)
                scaled = (ks, d)
        exact = None
        if self._exact is not None or other._exact is not None:
            exact = (self._exact or [None] * len(self)) + (other._exact or [None] * len(other))
        return Measures(
            self.f + other.f,
            [*self._given, *other._given],
            exact,
            scaled,
            self.faithful and other.faithful,
        )

    def sums(self, indices: Sequence[int]) -> tuple[Decimal, Decimal]:
        """The exact sum of the points at `indices` and of their moving ranges (each
        |x[b] - x[a]| for consecutive indices), as the 40-digit decimal sums would be."""
        k = self._k
        if k is not None:
            vals = [int(k[i]) for i in indices]
            total = sum(vals)
            ranges = sum(map(abs, map(sub, vals[1:], vals)))
            return Decimal(total).scaleb(-self._d), Decimal(ranges).scaleb(-self._d)
        xs = [self.exact(i) for i in indices]
        return (
            sum(xs, Decimal(0)),
            sum((abs(b - a) for a, b in pairwise(xs)), Decimal(0)),
        )


def _rescaled(ks: list[float], places: int) -> list[float]:
    """Whole numbers `ks` times 10**places: exact wherever the product stays below 2**50
    in magnitude (a float of a larger product is at least 2**50, and is refused)."""
    if not places:
        return ks
    factor = 10.0**places
    return [k * factor for k in ks]


def read_measures(values: Sequence[Number], what: str) -> Measures:
    """`to_decimals` for the fast path: the same checks and errors, without making a
    decimal of every value."""
    if type(values) is not list and (
        isinstance(values, str | bytes) or not isinstance(values, Sequence)
    ):
        raise ValueError(f"{what} must be a sequence of numbers, got {values!r}")
    if not values:
        raise ValueError(f"{what} is empty: at least one measurement is needed")
    if set(map(type, values)) == _FLOAT:
        floats = list(values)
        if math.isfinite(sum(floats)):  # a nan or an infinity would make the sum one too
            ordered = sorted(floats)
            biggest = max(-ordered[0], ordered[-1])
            measures = Measures(floats, floats, None, _scaled(floats, biggest), True)
            measures.ordered = ordered
            return measures
    exact = to_decimals(values, what)
    faithful = all(type(v) is float or (type(v) is int and abs(v) <= 2**53) for v in values)
    return Measures([float(x) for x in exact], exact, list(exact), None, faithful)


def measures_of(exact: Sequence[Decimal]) -> Measures:
    """Measures of decimals that are already checked."""
    exact = list(exact)
    return Measures([float(x) for x in exact], exact, list(exact), None, False)
