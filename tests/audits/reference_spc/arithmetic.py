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


def check_indices(indices: Collection[int], count: int, what: str) -> frozenset[int]:
    """0-based point indices, each inside a series of `count` points."""
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
