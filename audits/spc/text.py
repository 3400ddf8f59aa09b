"""Plain-English wording shared by every explanation (UK English).

Explanations are shown on web pages, in closure reports and in alert emails, so they name
points the way a reader sees them ("point 10 (2021-03-08)", 1-based) and print numbers
with four significant figures unless that would make a point look equal to the line it
was judged against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from functools import partial

Formatter = Callable[[float], str]


def format_number(value: float, digits: int = 4) -> str:
    """`value` with `digits` significant figures (all of a whole number's digits), never in
    exponent form: 0.9362, 96.07, 0.00456, 266,501."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def formatter_for(lines: Iterable[float], values: Iterable[float]) -> Formatter:
    """The default formatter, with more digits where four would print a point (0.965) the
    same as a different line it is compared with (0.96502)."""
    lines, values = set(lines), set(values)
    digits = 4
    while digits < 12 and _clash(lines, values, digits):
        digits += 1
    return partial(format_number, digits=digits)


def _clash(lines: set[float], values: set[float], digits: int) -> bool:
    """Whether some line and some different value print the same at ``digits``
    (each number formatted once: a chart's many limits and points stay cheap)."""
    by_text: dict[str, set[float]] = {}
    for line in lines:
        by_text.setdefault(format_number(line, digits), set()).add(line)
    for value in values:
        same = by_text.get(format_number(value, digits))
        if same and (len(same) > 1 or value not in same):
            return True
    return False


def point_names(count: int, labels: Sequence[str] | None, prefix: str = "point") -> Names:
    """Display names, 1-based: "point 3", or "point 3 (2021-01-18)" when labels are given.
    Each name is written when it is first read (a chart names only its flagged points)."""
    return Names(count, labels, prefix)


_POINT = [f"point {number}" for number in range(1001)]  # "point 0" is never used


class Names(Sequence[str]):
    """The names of `count` points, made on demand; slices and `+` give more Names."""

    __slots__ = ("_count", "_labels", "_prefix", "_start", "_parts")

    def __init__(
        self,
        count: int,
        labels: Sequence[str] | None,
        prefix: str = "point",
        start: int = 0,
        parts: tuple[Names, ...] = (),
    ) -> None:
        self._count, self._labels, self._prefix, self._start = count, labels, prefix, start
        self._parts = parts

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        if isinstance(index, slice):
            first, last, step = index.indices(self._count)
            if step == 1 and not self._parts:
                labels = None if self._labels is None else self._labels[first:last]
                return Names(max(last - first, 0), labels, self._prefix, self._start + first)
            return [self[i] for i in range(first, last, step)]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        for part in self._parts:
            if index < part._count:
                return part[index]
            index -= part._count
        number = self._start + index + 1
        if self._labels is None:
            return f"{self._prefix} {number}"
        return f"{self._prefix} {number} ({self._labels[index]})"

    def name(self, index: int) -> str:
        """`self[index]` for an index from 0 to len - 1."""
        if self._labels is None and not self._parts and self._prefix == "point":
            number = self._start + index + 1
            if number < len(_POINT):
                return _POINT[number]
        return self[index]

    def take(self, indices: Sequence[int]) -> tuple[str, ...]:
        """The names at `indices`, as a tuple."""
        if self._labels is None and not self._parts and self._prefix == "point":
            start = self._start + 1
            if start + self._count <= len(_POINT):
                return tuple([_POINT[start + i] for i in indices])
        return tuple([self[i] for i in indices])

    def __add__(self, other: Names) -> Names:  # type: ignore[override]
        return Names(self._count + other._count, None, parts=(self, other))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(list(self))


def join_names(names: Sequence[str]) -> str:
    """Names joined as a sentence: "point 3, point 5 and point 9"."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def span(names: Sequence[str]) -> str:
    """A run of points as a sentence: "from point 19 to point 25"."""
    return f"from {names[0]} to {names[-1]}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
