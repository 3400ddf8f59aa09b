"""Plain-English wording shared by every explanation (UK English).

Explanations are shown on web pages, in closure reports and in alert emails, so they name
points the way a reader sees them ("point 10 (2021-03-08)", 1-based) and print numbers
with four significant figures unless that would make a point look equal to the line it
was judged against.
"""

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


def point_names(count: int, labels: Sequence[str] | None, prefix: str = "point") -> list[str]:
    """Display names, 1-based: "point 3", or "point 3 (2021-01-18)" when labels are given."""
    if labels is None:
        return [f"{prefix} {i + 1}" for i in range(count)]
    return [f"{prefix} {i + 1} ({label})" for i, label in enumerate(labels)]


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
