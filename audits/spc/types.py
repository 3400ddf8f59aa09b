"""The engine's vocabulary: settings, limits, signals and chart results.

Every result is a frozen dataclass holding plain floats, ints and strings, so it can be
shown in a template, stored as JSON (`dataclasses.asdict`) or compared in a test. Point
indices are 0-based; explanations name points 1-based, as a reader counts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import localcontext
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any, TypeVar

from .arithmetic import _EXACT, check_length
from .text import Formatter, format_number, formatter_for, join_names, plural, span

E = TypeVar("E", bound=StrEnum)


def parse_choice(kind: type[E], value: E | str, what: str) -> E:
    """`value` as a member of `kind`, accepting any letter case ("Up", "up", Direction.UP)."""
    if isinstance(value, str):
        found = _choices(kind).get(value) or _choices(kind).get(value.lower())
        if found is not None:
            return found  # type: ignore[return-value]
    choices = ", ".join(member.value for member in kind)
    raise ValueError(f"{what} must be one of {choices}; got {value!r}")


@cache
def _choices(kind: type[StrEnum]) -> dict[str, StrEnum]:
    return {member.value.lower(): member for member in kind}


class Direction(StrEnum):
    """Which way is better for the measure."""

    UP = "up"  # higher is better
    DOWN = "down"  # lower is better
    NEITHER = "neither"


class TwoOfThree(StrEnum):
    """Variant of the two-out-of-three rule (SPC.md §4.4)."""

    SQL_V2 = "sql_v2"  # MDC SQL v2.x and NHSRplotthedots: only points between 2 and 3 sigma count
    MDC2023 = "mdc2023"  # MDC from Nov 2023: every point beyond 2 sigma counts


class ConflictRule(StrEnum):
    """What a point shows when it signals improvement and concern at once (SPC.md §4.5)."""

    CONCERN = "concern"  # product default: a warning must never be hidden
    IMPROVEMENT = "improvement"  # MDC Single Chart tool


class Rule(StrEnum):
    ASTRONOMICAL = "astro"
    SHIFT = "shift"
    TREND = "trend"
    TWO_OF_THREE = "2of3"
    LONG_RUN = "long_run"  # Anhøj run-chart rule
    FEW_CROSSINGS = "few_crossings"  # Anhøj run-chart rule


class Side(StrEnum):
    HIGH = "high"  # above the centre line, or increasing for a trend
    LOW = "low"


class Effect(StrEnum):
    IMPROVEMENT = "improvement"
    CONCERN = "concern"
    NEUTRAL = "neutral"  # special cause on a measure with no direction of improvement


class VariationIcon(StrEnum):
    """MDC variation icon: the special-cause state of the latest point (SPC.md §5.1)."""

    COMMON_CAUSE = "Common Cause"
    IMPROVEMENT_HIGH = "Improvement (High)"
    IMPROVEMENT_LOW = "Improvement (Low)"
    CONCERN_HIGH = "Concern (High)"
    CONCERN_LOW = "Concern (Low)"
    NEITHER_HIGH = "Neither (High)"
    NEITHER_LOW = "Neither (Low)"


class AssuranceIcon(StrEnum):
    """MDC assurance icon: the target against the process limits (SPC.md §5.2)."""

    PASS = "Pass"  # an icon, not a password  # noqa: S105  # nosec B105
    FAIL = "Fail"
    HIT_OR_MISS = "Hit or Miss"


class ChartKind(StrEnum):
    XMR = "xmr"
    P = "p"
    P_PRIME = "p_prime"  # Laney p', used only when the baseline is over-dispersed


# Rule lengths outside 6-8 draw a warning in MDC's SQL tool (SPC.md §1, S1).
_MDC_LENGTHS = range(6, 9)


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """The configurable part of the special-cause rules; stored with each evaluation so a
    result can be reproduced (SPC.md §10.7)."""

    shift: int = 7
    trend: int = 7
    two_of_three: TwoOfThree = TwoOfThree.MDC2023
    conflict: ConflictRule = ConflictRule.CONCERN

    @classmethod
    def build(
        cls,
        shift: int,
        trend: int,
        two_of_three: TwoOfThree | str,
        conflict: ConflictRule | str,
    ) -> RuleSettings:
        """Checked settings. Parsed once for each distinct set of arguments (`typed`, so
        that 7.0 or True is still refused where 7 is accepted)."""
        key = (shift, trend, two_of_three, conflict)
        known = _SETTINGS.get(key)
        # The types are part of the key's check, so 7.0 or True is still refused.
        if known is not None and known[1] == (
            type(shift),
            type(trend),
            type(two_of_three),
            type(conflict),
        ):
            return known[0]
        settings = cls._checked(shift, trend, two_of_three, conflict)
        if len(_SETTINGS) < 512 and all(type(v) in _HASHABLE for v in key):
            _SETTINGS[key] = (
                settings,
                (type(shift), type(trend), type(two_of_three), type(conflict)),
            )
        return settings

    @classmethod
    def _checked(
        cls,
        shift: int,
        trend: int,
        two_of_three: TwoOfThree | str,
        conflict: ConflictRule | str,
    ) -> RuleSettings:
        return cls(
            shift=check_length(shift, "shift", 2),
            trend=check_length(trend, "trend", 2),
            two_of_three=parse_choice(TwoOfThree, two_of_three, "two_of_three"),
            conflict=parse_choice(ConflictRule, conflict, "conflict"),
        )

    def warnings(self) -> list[str]:
        return list(self.notes())

    def notes(self) -> tuple[str, ...]:
        """`warnings()` as a tuple, shared (never changed)."""
        known = _WARNINGS.get(id(self))
        if known is None or known[0] is not self:
            if len(_WARNINGS) > 1024:
                _WARNINGS.clear()
            known = _WARNINGS[id(self)] = (self, _settings_warnings(self))
        return known[1]


# Settings are built once per distinct arguments (see `build`), so their warnings are
# looked up by identity; the entry keeps its settings alive, so an id is never reused.
_WARNINGS: dict[int, tuple[RuleSettings, tuple[str, ...]]] = {}


_HASHABLE = frozenset({int, str, TwoOfThree, ConflictRule})


# Settings already checked, by their arguments (and the arguments' types).
_SETTINGS: dict[tuple, tuple[RuleSettings, tuple[type, ...]]] = {}


@lru_cache(maxsize=512)
def _settings_warnings(settings: RuleSettings) -> tuple[str, ...]:
    return tuple(
        [
            f"A {name} length of {length} is outside the 6 to 8 points that Making Data "
            "Count recommends."
            for name, length in (("shift", settings.shift), ("trend", settings.trend))
            if length not in _MDC_LENGTHS
        ]
    )


@dataclass(frozen=True, slots=True)
class Limits:
    """Centre line and process limits at one point. For a p-chart `mean` is p-bar."""

    mean: float
    lower: float
    upper: float
    lower_2sigma: float
    upper_2sigma: float
    lower_1sigma: float
    upper_1sigma: float


@dataclass(frozen=True, slots=True)
class Point:
    index: int
    value: float  # the measurement; a proportion on a p-chart
    name: str  # "point 3 (2021-01-18)"
    ghost: bool  # plotted but left out of limits and rules
    partition: int
    limits: Limits | None  # None when its partition has too few points for limits
    rules: tuple[str, ...]  # codes of the rules that flag it: "astro_hi", "shift_lo", ...
    classification: Effect | None  # None: common cause
    conflict: bool  # flagged for improvement and concern at once
    numerator: int | None = None
    denominator: int | None = None


@dataclass(frozen=True, slots=True)
class Partition:
    """A run of points sharing one set of limits. Numbered as in MDC: 0 is the baseline,
    1 extends the baseline's limits, each recalculation starts the next number."""

    number: int
    first: int
    last: int
    n_points: int  # non-ghosted points in it
    limits: Limits | None  # p-chart: the limits at its average sample size
    inherited_from: int | None  # number of the partition whose limits it extends
    trial: bool  # limits set from fewer than 12 points (MDC minimum per partition)
    mr_mean: float | None = None  # XmR
    mean_denominator: float | None = None  # p-chart
    sigma_z: float | None = None  # p-chart: Laney's over-dispersion factor
    laney: bool = False  # p-chart: limits widened by sigma_z


_RULE_TITLES = {
    Rule.ASTRONOMICAL: "Point beyond a process limit",
    Rule.SHIFT: "Shift",
    Rule.TREND: "Trend",
    Rule.TWO_OF_THREE: "Two out of three points beyond 2 sigma",
    Rule.LONG_RUN: "Long run (Anhøj)",
    Rule.FEW_CROSSINGS: "Too few crossings (Anhøj)",
}
_RULE_ORDER = {rule: order for order, rule in enumerate(Rule)}
_EFFECT_SENTENCES = {
    Effect.IMPROVEMENT: "This is special cause improvement.",
    Effect.CONCERN: "This is special cause concern.",
    Effect.NEUTRAL: "This is special cause variation (the measure has no direction of "
    "improvement).",
}


@dataclass(frozen=True)
class Signal:
    """One detected pattern: which rule, on which side, which points, against which lines.

    The engine may make `lines` when first read (`lazy`): the exact float of a p-chart's
    limit takes decimal square roots, and a sweep reading only the codes never needs it.
    """

    rule: Rule
    side: Side | None  # None only for too few crossings, which has no side
    effect: Effect
    points: tuple[int, ...]  # flagged points, in time order
    detected_at: int  # the point at which the pattern was first complete
    detected_name: str
    names: tuple[str, ...]  # display names of `points`
    values: tuple[float, ...]  # values of `points`
    lines: tuple[float, ...]  # the line each point was judged against (none for a trend)
    count: int | None = None  # run length, or crossings
    count_limit: int | None = None  # the length needed, or the fewest crossings expected

    @classmethod
    def made(cls, given: dict[str, Any]) -> Signal:
        """`Signal(**given)` without the frozen dataclass's per-field setattr: `given`
        holds every field, checked by the engine that made it."""
        signal = object.__new__(cls)
        signal.__dict__.update(given)
        return signal

    @classmethod
    def lazy(cls, lines: Callable[[], tuple[float, ...]], **given: Any) -> Signal:
        """A signal whose `lines` are made by `lines()` when first read."""
        signal = object.__new__(cls)
        state = signal.__dict__
        state.update(given)
        state["_lines"] = lines
        return signal

    @classmethod
    def lazy_from(cls, given: dict[str, Any], lines: Callable[[], tuple[float, ...]]) -> Signal:
        """`lazy(lines, **given)`, taking `given` (every field but `lines`) as its own."""
        signal = object.__new__(cls)
        given["_lines"] = lines
        object.__setattr__(signal, "__dict__", given)
        return signal

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes not yet set: `lines` of a lazy signal, on first use.
        make = self.__dict__.get("_lines")
        if make is None or name != "lines":
            raise AttributeError(name)
        with localcontext(_EXACT):
            value = self.__dict__["lines"] = make()
        return value

    def __getstate__(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def code(self) -> str:
        """Short code used in the test vectors and charts: "astro_hi", "trend_dn", ..."""
        if self.side is None:
            return self.rule.value
        if self.rule is Rule.TREND:
            return "trend_up" if self.side is Side.HIGH else "trend_dn"
        return f"{self.rule.value}_{'hi' if self.side is Side.HIGH else 'lo'}"

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (self.detected_at, _RULE_ORDER[self.rule], self.code)

    def explain(self, fmt: Formatter | None = None) -> str:
        """One paragraph: the rule, the points, the line and what it means."""
        f = fmt or formatter_for(self.lines, self.values)
        high = self.side is Side.HIGH
        above = "above" if high else "below"
        if self.rule is Rule.ASTRONOMICAL:
            body = (
                f"{self._which(f)} {self._line(f, 'upper' if high else 'lower', 'process limit')}."
            )
        elif self.rule is Rule.SHIFT:
            body = (
                f"{self.count} points in a row {above} the mean of {f(self.lines[0])}, "
                f"{span(self.names)}. {self.count_limit} are needed, so the shift was "
                f"complete at {self.detected_name}."
            )
        elif self.rule is Rule.TREND:
            body = (
                f"{self.count} points in a row, each {'higher' if high else 'lower'} than "
                f"the one before, {span(self.names)}. {self.count_limit} are needed, so the "
                f"trend was complete at {self.detected_name}."
            )
        elif self.rule is Rule.TWO_OF_THREE:
            body = (
                f"{self._which(f)} {self._line(f, 'upper' if high else 'lower', '2-sigma line')}"
                f", within groups of three consecutive points that are all {above} the mean. "
                f"The pattern was complete at {self.detected_name}."
            )
        elif self.rule is Rule.LONG_RUN:
            body = (
                f"{self.count} points in a row {above} the median of {f(self.lines[0])}, "
                f"{span(self.names)} (points on the median are skipped). More than "
                f"{self.count_limit} in a row is unlikely by chance."
            )
        else:
            return (
                f"{_RULE_TITLES[self.rule]}: the series crosses the median of "
                f"{f(self.lines[0])} only {plural(self.count or 0, 'time')} over "
                f"{len(self.points)} points not on it; fewer than {self.count_limit} "
                "crossings is unlikely by chance. The process has changed, but this rule "
                "does not say in which direction."
            )
        return f"{_RULE_TITLES[self.rule]}: {body} {_EFFECT_SENTENCES[self.effect]}"

    def _which(self, f: Formatter) -> str:
        """The flagged points: summarised when they are many in a row, else listed."""
        if len(self.points) == 1:
            return f"{self.names[0]} is {f(self.values[0])},"
        if len(self.points) > 2 and self.points[-1] - self.points[0] + 1 == len(self.points):
            return f"{len(self.points)} points in a row, {span(self.names)}, are"
        listed = [f"{n} at {f(v)}" for n, v in zip(self.names, self.values, strict=True)]
        return join_names(listed) + " are"

    def _line(self, f: Formatter, which: str, line: str) -> str:
        """Where the points lie: "above the upper process limit of 0.9362", or a range of
        lines where they differ (p-chart limits vary with sample size)."""
        lowest, highest = min(self.lines), max(self.lines)
        where = "above" if self.side is Side.HIGH else "below"
        if lowest == highest:
            return f"{where} the {which} {line} of {f(lowest)}"
        return f"{where} their {which} {line}s ({f(lowest)} to {f(highest)})"


@dataclass(frozen=True, slots=True)
class Assurance:
    """Will the process meet the target? The target against the latest process limits."""

    icon: AssuranceIcon
    target: float
    lower: float
    upper: float
    direction: Direction

    def explain(self, fmt: Formatter | None = None) -> str:
        f = fmt or formatter_for([self.lower, self.upper], [self.target])
        target = f"The target of {f(self.target)}"
        limits = f"the process limits ({f(self.lower)} to {f(self.upper)})"
        if self.icon is AssuranceIcon.HIT_OR_MISS:
            return (
                f"Assurance: hit or miss. {target} lies between {limits}, so it will "
                "sometimes be met and sometimes missed."
            )
        up = self.direction is Direction.UP
        passes = self.icon is AssuranceIcon.PASS
        # Up: a pass sits at or below the lower limit; down: at or above the upper limit.
        at_lower = up == passes
        where = (
            f"at or below the lower process limit of {f(self.lower)}"
            if at_lower
            else f"at or above the upper process limit of {f(self.upper)}"
        )
        outcome = (
            "the process can be expected to meet it consistently"
            if passes
            else "the process will consistently miss it unless the process changes"
        )
        return f"Assurance: {self.icon.value.lower()}. {target} is {where}, so {outcome}."


_VARIATION_TEXT = {
    VariationIcon.COMMON_CAUSE: "common cause variation only",
    VariationIcon.IMPROVEMENT_HIGH: "special cause improvement (high)",
    VariationIcon.IMPROVEMENT_LOW: "special cause improvement (low)",
    VariationIcon.CONCERN_HIGH: "special cause concern (high)",
    VariationIcon.CONCERN_LOW: "special cause concern (low)",
    VariationIcon.NEITHER_HIGH: "special cause variation, high (no direction of improvement)",
    VariationIcon.NEITHER_LOW: "special cause variation, low (no direction of improvement)",
}
_CHART_TITLES = {
    ChartKind.XMR: "XmR chart",
    ChartKind.P: "p-chart",
    ChartKind.P_PRIME: "Laney p′ chart",
}


_LAZY_FIELDS = frozenset({"points", "partitions", "assurance"})
_new, _set = object.__new__, object.__setattr__


@dataclass(frozen=True)
class ChartResult:
    """An XmR chart or p-chart with its signals, icons and warnings.

    The engine builds `points`, `partitions` and `assurance` on first use (`lazy`): a
    sweep that reads only the signals never pays for 36 points it does not look at.
    Equality, `dataclasses.asdict`, pickling and repr see every field as usual.
    """

    kind: ChartKind
    direction: Direction
    settings: RuleSettings
    target: float | None
    points: tuple[Point, ...]
    partitions: tuple[Partition, ...]
    signals: tuple[Signal, ...]  # ordered by the point at which each was complete
    variation: VariationIcon
    assurance: Assurance | None
    warnings: tuple[str, ...]

    @classmethod
    def lazy(cls, state: dict[str, Any]) -> ChartResult:
        """A result whose `points`, `partitions` and `assurance` are made by
        `state["_later"].build(name)` when first read (`later.latest()` gives the latest
        point on its own); `state` holds every other field and becomes the result's own."""
        result = _new(cls)
        _set(result, "__dict__", state)
        return result

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes not yet set: the lazy fields, on first use.
        later = self.__dict__.get("_later")
        if later is None or name not in _LAZY_FIELDS:
            raise AttributeError(name)
        value = self.__dict__[name] = later.build(name)
        return value

    def __getstate__(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def latest(self) -> Point:
        """The latest non-ghosted point, which sets the icons."""
        later = self.__dict__.get("_later")
        if "points" not in self.__dict__ and later is not None:
            return later.latest()
        return next(point for point in reversed(self.points) if not point.ghost)

    @property
    def limits(self) -> Limits | None:
        """The limits in force at the latest point."""
        return self.latest.limits

    @property
    def has_concern(self) -> bool:
        return any(signal.effect is Effect.CONCERN for signal in self.signals)

    @property
    def has_improvement(self) -> bool:
        return any(signal.effect is Effect.IMPROVEMENT for signal in self.signals)

    def explain(self, fmt: Formatter | None = None) -> str:
        """Several lines of plain English: limits, signals, icons and warnings."""
        f = fmt or format_number
        ghosts = sum(point.ghost for point in self.points)
        counted = f"{len(self.points) - ghosts} points" + (
            f" ({plural(ghosts, 'ghosted point')} left out)" if ghosts else ""
        )
        lines = [f"{_CHART_TITLES[self.kind]} of {counted}."]
        lines += [self._describe(partition, f) for partition in self.partitions]
        if self.signals:
            lines.append("Special cause variation:")
            lines += [f"- {signal.explain(fmt)}" for signal in self.signals]
        else:
            lines.append("No special cause variation: every point is within common cause.")
        latest = self.latest
        lines.append(f"The latest point is {latest.name}: {_VARIATION_TEXT[self.variation]}.")
        if latest.conflict:
            lines.append(
                f"It signals both improvement and concern; {self.settings.conflict.value} is "
                "shown (conflict rule)."
            )
        lines.append(self._assurance_text(fmt))
        lines += [f"Note: {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def _describe(self, partition: Partition, f: Formatter) -> str:
        first, last = self.points[partition.first].name, self.points[partition.last].name
        if len(self.partitions) == 1:
            where = "Baseline, all points" if partition.number == 0 else "All points"
        elif partition.number == 0:
            where = f"Baseline, from {first} to {last}"
        elif partition.inherited_from is not None:
            where = f"From {first} to {last}, the baseline limits extended"
        else:
            where = f"At {first}" if first == last else f"From {first} to {last}"
        limits = partition.limits
        if limits is None:
            return f"{where}: no limits can be set (see the notes below)."
        trial = " These are trial limits, set from fewer than 12 points." if partition.trial else ""
        if self.kind is ChartKind.XMR:
            return (
                f"{where}: mean {f(limits.mean)}, process limits {f(limits.lower)} to "
                f"{f(limits.upper)} (mean ± 2.66 × the average moving range of "
                f"{f(partition.mr_mean or 0.0)}).{trial}"
            )
        widened = (
            f", widened by Laney's sigma-z of {f(partition.sigma_z or 0.0)} because the "
            "baseline varies more than sample size explains"
            if partition.laney
            else ""
        )
        return (
            f"{where}: mean proportion {f(limits.mean)}; each point has limits from its own "
            f"sample size ({f(limits.lower)} to {f(limits.upper)} at the average sample of "
            f"{f(partition.mean_denominator or 0.0)}){widened}.{trial}"
        )

    def _assurance_text(self, fmt: Formatter | None) -> str:
        if self.assurance is not None:
            return self.assurance.explain(fmt)
        if self.target is None:
            return "Assurance: no target is set."
        if self.direction is Direction.NEITHER:
            return "Assurance: not assessed, as the measure has no direction of improvement."
        return "Assurance: not assessed, as the latest point has no process limits."


@dataclass(frozen=True, slots=True)
class RunPattern:
    """An IHI (Perla) run-chart shift or trend."""

    first: int
    last: int
    side: Side  # HIGH: above the median, or going up
    n_points: int  # points that count (on-median points and repeats are skipped)


@dataclass(frozen=True, slots=True)
class AnhoejResult:
    n_useful: int  # points not on the centre line
    longest_run: int
    longest_run_max: int  # round(log2(n)) + 3
    crossings: int
    crossings_min: int  # lower 5% point of Binomial(n - 1, 0.5)
    signal: bool


@dataclass(frozen=True, slots=True)
class IhiResult:
    shifts: tuple[RunPattern, ...]
    trends: tuple[RunPattern, ...]
    n_runs: int


@dataclass(frozen=True, slots=True)
class RunChartResult:
    """Run-chart analysis: Anhøj rules decide (SPC.md §8.2); IHI rules are shown beside."""

    direction: Direction
    centre: float
    centre_basis: str  # "the median of all 15 points", "a given centre line", ...
    points: tuple[Point, ...]
    anhoej: AnhoejResult
    ihi: IhiResult
    signals: tuple[Signal, ...]  # the Anhøj signals
    warnings: tuple[str, ...]

    @property
    def has_concern(self) -> bool:
        return any(signal.effect is Effect.CONCERN for signal in self.signals)

    def explain(self, fmt: Formatter | None = None) -> str:
        f = fmt or format_number
        a = self.anhoej
        lines = [
            f"Run chart of {plural(len(self.points), 'point')} around {self.centre_basis}, "
            f"{f(self.centre)}.",
            f"Anhøj rules, from {a.n_useful} points not on the median: the longest run is "
            f"{a.longest_run} points (more than {a.longest_run_max} would signal) and the "
            f"series crosses the median {plural(a.crossings, 'time')} (fewer than "
            f"{a.crossings_min} would signal).",
        ]
        if self.signals:
            lines += [f"- {signal.explain(fmt)}" for signal in self.signals]
        else:
            lines.append("No non-random variation: the process looks stable around the median.")
        ihi = [
            f"{kind} {span([self.points[p.first].name, self.points[p.last].name])}"
            for kind, patterns in (("shift", self.ihi.shifts), ("trend", self.ihi.trends))
            for p in patterns
        ]
        lines.append(
            f"IHI rules (for reference): {plural(self.ihi.n_runs, 'run')}"
            + (f"; {join_names(ihi)}." if ihi else "; no shift or trend.")
        )
        lines += [f"Note: {warning}" for warning in self.warnings]
        return "\n".join(lines)
