"""Sustained improvement at closure and deterioration in monitoring (SPC.md §6).

Both are recomputed from the full history on every call (as-of semantics): the verdict
is the state after the latest point, so a late or corrected measurement simply changes
the answer. Callers persist the state and act on changes of state.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from .arithmetic import (
    Number,
    check_indices,
    check_labels,
    check_length,
    exact,
    to_decimal,
    to_decimals,
)
from .chart import MIN_PARTITION_POINTS
from .rules import effect_of
from .text import Formatter, format_number, plural, point_names
from .types import (
    Assurance,
    AssuranceIcon,
    ChartResult,
    ConflictRule,
    Direction,
    Effect,
    Limits,
    Rule,
    RuleSettings,
    Side,
    Signal,
    TwoOfThree,
    VariationIcon,
    parse_choice,
)
from .xmr import xmr_chart, xmr_lines

# A limit-setting phase needs 12 points before its limits are locked: MDC's partition
# minimum, NHSRplotthedots' lock point, and Williams' 10-12 points of persistence.
MIN_PHASE = MIN_PARTITION_POINTS
BASELINE_MIN = MIN_PARTITION_POINTS
# "Chunk monitoring into 2-3 years" (MDC team, SPC.md S4): offer a re-baseline after 24.
REBASELINE_AFTER = 24


def _improvement_direction(direction: Direction | str) -> Direction:
    way = parse_choice(Direction, direction, "direction")
    if way is Direction.NEITHER:
        raise ValueError(
            "closure and monitoring need a direction of improvement (up or down), not neither"
        )
    return way


def _codes(signals: Sequence[Signal]) -> tuple[str, ...]:
    return tuple(sorted({signal.code for signal in signals}))


def _moved(signal: Signal, by: int) -> Signal:
    """A signal found on a slice of the series, re-indexed to the whole series."""
    return replace(
        signal, points=tuple(i + by for i in signal.points), detected_at=signal.detected_at + by
    )


def _signal_lines(signals: Sequence[Signal], fmt: Formatter | None) -> list[str]:
    return [f"- {signal.explain(fmt)}" for signal in signals]


class ClosureState(StrEnum):
    """Where an improvement plan's measure stands (SPC.md §6.1)."""

    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
    BASELINE_UNSTABLE = "BASELINE_UNSTABLE"
    WATCHING = "WATCHING"
    IMPROVEMENT_SIGNAL = "IMPROVEMENT_SIGNAL"
    REBASED = "REBASED"
    IMPROVING_UNCONFIRMED = "IMPROVING_UNCONFIRMED"
    UNSTABLE_NEW_PHASE = "UNSTABLE_NEW_PHASE"
    SUSTAINED_PASS = "SUSTAINED_PASS"  # a state, not a password  # noqa: S105  # nosec B105
    SUSTAINED_HIT_OR_MISS = "SUSTAINED_HIT_OR_MISS"
    SUSTAINED_FAIL = "SUSTAINED_FAIL"
    SUSTAINED_NO_TARGET = "SUSTAINED_NO_TARGET"


_SUSTAINED = {
    AssuranceIcon.PASS: ClosureState.SUSTAINED_PASS,
    AssuranceIcon.HIT_OR_MISS: ClosureState.SUSTAINED_HIT_OR_MISS,
    AssuranceIcon.FAIL: ClosureState.SUSTAINED_FAIL,
}
_SUSTAINED_OUTCOME = {
    ClosureState.SUSTAINED_PASS: "The measure is eligible for closure.",
    ClosureState.SUSTAINED_HIT_OR_MISS: (
        "The improvement is sustained but the target is not reliably met, so closure "
        "needs a human decision."
    ),
    ClosureState.SUSTAINED_FAIL: (
        "The change is sustained, but the process as it now runs cannot meet the target."
    ),
    ClosureState.SUSTAINED_NO_TARGET: (
        "No target is set, so whether the process meets it cannot be assured."
    ),
}


@dataclass(frozen=True, slots=True)
class ClosureAssessment:
    """The statistical closure verdict for one measure, as of its latest point."""

    state: ClosureState
    n_points: int
    baseline: int  # points in the frozen baseline
    min_phase: int
    baseline_limits: Limits | None = None
    baseline_signals: tuple[Signal, ...] = ()  # special cause inside the baseline itself
    signals_since_baseline: tuple[Signal, ...] = ()  # against the frozen baseline limits
    rebase_signal: Signal | None = None  # the improvement shift that started the new phase
    phase_points: int = 0  # non-ghosted points in the new phase
    phase_limits: Limits | None = None  # trial limits, or locked once min_phase points exist
    limits_locked: bool = False
    phase_concerns: tuple[Signal, ...] = ()  # concern signals inside the new phase
    assurance: Assurance | None = None

    @property
    def rebase_at(self) -> int | None:
        """0-based index of the first point of the new phase."""
        return None if self.rebase_signal is None else self.rebase_signal.points[0]

    @property
    def is_ready_for_closure(self) -> bool:
        return self.state is ClosureState.SUSTAINED_PASS

    @property
    def improvement_rules(self) -> tuple[str, ...]:
        """Codes of the improvement rules fired since the baseline, e.g. ("astro_hi",)."""
        return _codes([s for s in self.signals_since_baseline if s.effect is Effect.IMPROVEMENT])

    @property
    def concern_rules(self) -> tuple[str, ...]:
        """Codes of the concern rules fired inside the new phase."""
        return _codes(self.phase_concerns)

    def explain(self, fmt: Formatter | None = None) -> str:
        f = fmt or format_number
        state = self.state
        if state is ClosureState.INSUFFICIENT_DATA:
            return (
                f"Not enough data for statistical confirmation: the baseline needs "
                f"{self.baseline} points, at least 12 of them not ghosted, and "
                f"{plural(self.n_points, 'point')} are available."
            )
        if state is ClosureState.BASELINE_UNSTABLE:
            return "\n".join(
                [
                    f"The baseline (the first {self.baseline} points) already shows special "
                    "cause variation against its own limits, so it is not a stable reference. "
                    "Choose a stable baseline window, or record the cause:",
                    *_signal_lines(self.baseline_signals, fmt),
                ]
            )
        base = self.baseline_limits
        assert base is not None
        lines = [
            f"Baseline: the first {self.baseline} points, frozen at mean {f(base.mean)} with "
            f"process limits {f(base.lower)} to {f(base.upper)}."
        ]
        shift = self.rebase_signal
        if shift is None:
            improvements = [
                s for s in self.signals_since_baseline if s.effect is Effect.IMPROVEMENT
            ]
            if improvements:
                lines.append(
                    "There are signs of improvement against the baseline, but no sustained "
                    "shift yet, so the limits are not recalculated (Making Data Count advises "
                    "against redrawing on every signal):"
                )
                lines += _signal_lines(improvements, fmt)
            else:
                lines.append("No sign of improvement against the baseline yet.")
        else:
            lines.append(
                f"An improvement shift was complete at {shift.detected_name}: "
                f"{shift.count_limit} points in a row on the better side of the baseline mean. "
                f"A new phase starts at {shift.names[0]}, the first point of the shift."
            )
        concerns = [s for s in self.signals_since_baseline if s.effect is Effect.CONCERN]
        if concerns and shift is None:
            lines.append("Concern signals against the baseline:")
            lines += _signal_lines(concerns, fmt)
        phase = self.phase_limits
        limits = (
            ""
            if phase is None
            else (f" (mean {f(phase.mean)}, process limits {f(phase.lower)} to {f(phase.upper)})")
        )
        if state in (ClosureState.REBASED, ClosureState.IMPROVING_UNCONFIRMED):
            lines.append(
                f"The new phase has {plural(self.phase_points, 'point')}; its limits are "
                f"trial limits{limits} until it has {self.min_phase}, when they are locked "
                "and the improvement can be confirmed as sustained."
            )
        elif state is ClosureState.UNSTABLE_NEW_PHASE:
            lines.append(
                f"The new phase has {self.phase_points} points, with limits locked on its "
                f"first {self.min_phase}{limits}. It shows concern, so the improvement is not "
                "sustained:"
            )
            lines += _signal_lines(self.phase_concerns, fmt)
        elif shift is not None:
            lines.append(
                f"Improvement sustained: the new phase has {self.phase_points} points, with "
                f"limits locked on its first {self.min_phase}{limits}, and no concern signal."
            )
            if self.assurance is not None:
                lines.append(self.assurance.explain(fmt))
            lines.append(_SUSTAINED_OUTCOME[state])
        return "\n".join(lines)


@exact
def assess_closure(
    values: Sequence[Number],
    *,
    direction: Direction | str,
    baseline: int,
    target: Number | None = None,
    min_phase: int = MIN_PHASE,
    baseline_min: int = BASELINE_MIN,
    ghosts: Collection[int] = (),
    labels: Sequence[str] | None = None,
    shift: int = 7,
    trend: int = 7,
    two_of_three: TwoOfThree | str = TwoOfThree.MDC2023,
    conflict: ConflictRule | str = ConflictRule.CONCERN,
) -> ClosureAssessment:
    """Has the improvement been sustained? (SPC.md §6.1)

    Freeze the first `baseline` points; wait for an improvement shift against them; start
    a new phase at the first point of that shift; once the phase has `min_phase` points,
    lock its limits on them, and call the improvement sustained if the phase shows no
    concern signal. The target is then judged against the locked limits.
    """
    x = to_decimals(values, "values")
    count = len(x)
    way = _improvement_direction(direction)
    check_length(baseline, "baseline", 2)
    check_length(baseline_min, "baseline_min", 2)
    check_length(min_phase, "min_phase", 2)
    ghosted = check_indices(ghosts, count, "ghosts")
    names = point_names(count, check_labels(labels, count))
    settings = RuleSettings.build(shift, trend, two_of_three, conflict)
    goal = None if target is None else to_decimal(target, "target")
    verdict = ClosureAssessment(ClosureState.INSUFFICIENT_DATA, count, baseline, min_phase)

    def chart(first: int, last: int, frozen: int | None) -> ChartResult:
        """XmR chart of points first..last-1, the first `frozen` of them as baseline."""
        return xmr_chart(
            x[first:last],
            names=names[first:last],
            direction=way,
            target=goal,
            baseline=frozen,
            recalc_at=frozenset(),
            ghosts=frozenset(i - first for i in ghosted if first <= i < last),
            settings=settings,
        )

    in_baseline = sum(1 for i in range(min(baseline, count)) if i not in ghosted)
    if count < baseline or in_baseline < baseline_min:
        return verdict
    own = chart(0, baseline, None)
    verdict = replace(verdict, baseline_limits=own.partitions[0].limits)
    if own.signals:
        return replace(verdict, state=ClosureState.BASELINE_UNSTABLE, baseline_signals=own.signals)

    since = tuple(s for s in chart(0, count, baseline).signals if s.points[-1] >= baseline)
    verdict = replace(verdict, state=ClosureState.WATCHING, signals_since_baseline=since)
    rebase = next(
        (s for s in since if s.rule is Rule.SHIFT and s.effect is Effect.IMPROVEMENT), None
    )
    if rebase is None:
        if any(s.effect is Effect.IMPROVEMENT for s in since):
            return replace(verdict, state=ClosureState.IMPROVEMENT_SIGNAL)
        return verdict

    start = rebase.points[0]
    phase = [i for i in range(start, count) if i not in ghosted]
    verdict = replace(verdict, rebase_signal=rebase, phase_points=len(phase))
    if phase[-1] == rebase.detected_at or len(phase) < min_phase:
        trial = xmr_lines([x[i] for i in phase])
        return replace(
            verdict,
            state=ClosureState.REBASED
            if phase[-1] == rebase.detected_at
            else ClosureState.IMPROVING_UNCONFIRMED,
            phase_limits=None if trial is None else trial[0].public(),
        )

    # Lock on the first min_phase points and extend, exactly as monitoring will later
    # treat this phase as its frozen reference (SPC.md §6.1 remark 3, §6.2).
    locked = chart(start, count, phase[min_phase - 1] - start + 1)
    concerns = tuple(_moved(s, start) for s in locked.signals if s.effect is Effect.CONCERN)
    if concerns:
        outcome = ClosureState.UNSTABLE_NEW_PHASE
    elif locked.assurance is None:
        outcome = ClosureState.SUSTAINED_NO_TARGET
    else:
        outcome = _SUSTAINED[locked.assurance.icon]
    return replace(
        verdict,
        state=outcome,
        phase_limits=locked.partitions[0].limits,
        limits_locked=True,
        phase_concerns=concerns,
        assurance=locked.assurance,
    )


class Severity(StrEnum):
    """How urgent a deterioration is (SPC.md §6.2), in rising order."""

    NONE = "none"
    EARLY_WARNING = "early_warning"  # two of three beyond 2 sigma, or a trend
    INVESTIGATE = "investigate"  # a point beyond the concern-side limit: possibly one-off
    SUSTAINED_DETERIORATION = "sustained_deterioration"  # a shift: recommend re-opening

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


_SEVERITY = {
    Rule.TWO_OF_THREE: Severity.EARLY_WARNING,
    Rule.TREND: Severity.EARLY_WARNING,
    Rule.ASTRONOMICAL: Severity.INVESTIGATE,
    Rule.SHIFT: Severity.SUSTAINED_DETERIORATION,
}
_SEVERITY_TEXT = {
    Severity.EARLY_WARNING: "Early warning",
    Severity.INVESTIGATE: "Investigate",
    Severity.SUSTAINED_DETERIORATION: "Sustained deterioration (recommend re-opening the plan)",
}


@dataclass(frozen=True, slots=True)
class Deterioration:
    """A concern signal on monitoring points, and when it first became visible."""

    signal: Signal
    detected_at: int  # index in reference + monitoring
    detected_name: str
    severity: Severity

    def explain(self, fmt: Formatter | None = None) -> str:
        return (
            f"{_SEVERITY_TEXT[self.severity]}, detected at {self.detected_name}. "
            f"{self.signal.explain(fmt)}"
        )


@dataclass(frozen=True, slots=True)
class MonitoringAssessment:
    """Deterioration after step-down, judged against the frozen reference limits.
    Indices count the reference and monitoring points as one series."""

    reference_limits: Limits
    monitoring_start: int  # index of the first monitoring point
    n_monitoring: int
    deteriorations: tuple[Deterioration, ...]  # ordered by detection
    severity: Severity
    last_point_concern: bool
    variation: VariationIcon
    assurance: Assurance | None
    rebaseline_suggested: bool  # 24+ monitoring points and no signal

    @property
    def is_deteriorating(self) -> bool:
        return bool(self.deteriorations)

    @property
    def first_detected_at(self) -> int | None:
        return self.deteriorations[0].detected_at if self.deteriorations else None

    @property
    def first_rules(self) -> tuple[str, ...]:
        """Codes of the concern rules complete at the first detection."""
        first = self.first_detected_at
        return _codes([d.signal for d in self.deteriorations if d.detected_at == first])

    @property
    def concern_rules(self) -> tuple[str, ...]:
        return _codes([d.signal for d in self.deteriorations])

    def explain(self, fmt: Formatter | None = None) -> str:
        f = fmt or format_number
        ref = self.reference_limits
        lines = [
            f"Monitoring {plural(self.n_monitoring, 'point')} against the frozen limits of the "
            f"sustained phase: mean {f(ref.mean)}, process limits {f(ref.lower)} to "
            f"{f(ref.upper)}."
        ]
        if self.deteriorations:
            lines.append(
                f"Deterioration: {_SEVERITY_TEXT[self.severity].lower()}. Concern signals:"
            )
            lines += [f"- {d.explain(fmt)}" for d in self.deteriorations]
        else:
            lines.append("No concern signal: the improvement is holding.")
            if self.rebaseline_suggested:
                lines.append(
                    f"After {self.n_monitoring} points without a signal, consider re-baselining "
                    "the monitoring chart (Making Data Count: chunk into 2 to 3 years)."
                )
        if self.assurance is not None:
            lines.append(self.assurance.explain(fmt))
        return "\n".join(lines)


@exact
def assess_monitoring(
    reference: Sequence[Number],
    monitoring: Sequence[Number],
    *,
    direction: Direction | str,
    target: Number | None = None,
    ghosts: Collection[int] = (),
    labels: Sequence[str] | None = None,
    shift: int = 7,
    trend: int = 7,
    two_of_three: TwoOfThree | str = TwoOfThree.MDC2023,
) -> MonitoringAssessment:
    """Has the measure deteriorated since step-down? (SPC.md §6.2)

    `reference` is the locked phase that closure judged sustained; its limits are never
    recalculated from monitoring data. As in MDC, the reference is a baseline partition
    and the monitoring points extend it, so shift and two-of-three counting starts at the
    first monitoring point while a trend may reach back into the reference. Only the
    concern side counts. `ghosts` and `labels` cover reference + monitoring as one series.
    """
    ref = to_decimals(reference, "reference")
    later = [] if not monitoring else to_decimals(monitoring, "monitoring")
    x = ref + later
    start = len(ref)
    way = _improvement_direction(direction)
    ghosted = check_indices(ghosts, len(x), "ghosts")
    if sum(1 for i in range(start) if i not in ghosted) < 2:
        raise ValueError("the reference needs at least two non-ghosted points to set limits")
    given = check_labels(labels, len(x))
    names = [
        *point_names(start, None if given is None else given[:start], "reference point"),
        *point_names(len(later), None if given is None else given[start:], "monitoring point"),
    ]
    chart = xmr_chart(
        x,
        names=names,
        direction=way,
        target=None if target is None else to_decimal(target, "target"),
        baseline=start,
        recalc_at=frozenset(),
        ghosts=ghosted,
        settings=RuleSettings.build(shift, trend, two_of_three, ConflictRule.CONCERN),
    )
    concern_side = Side.LOW if effect_of(Side.LOW, way) is Effect.CONCERN else Side.HIGH
    found = []
    for signal in chart.signals:
        watched = [i for i in signal.points if i >= start]
        if signal.side is not concern_side or not watched:
            continue
        # A trend reaching back into the reference shows only once it has a monitoring point.
        at = max(signal.detected_at, watched[0])
        found.append(Deterioration(signal, at, names[at], _SEVERITY[signal.rule]))
    found.sort(key=lambda d: (d.detected_at, d.signal.sort_key))
    latest = chart.latest
    n_monitoring = sum(1 for i in range(start, len(x)) if i not in ghosted)
    limits = chart.partitions[0].limits
    assert limits is not None
    return MonitoringAssessment(
        reference_limits=limits,
        monitoring_start=start,
        n_monitoring=n_monitoring,
        deteriorations=tuple(found),
        severity=max((d.severity for d in found), key=lambda s: s.rank, default=Severity.NONE),
        last_point_concern=latest.index >= start and latest.classification is Effect.CONCERN,
        variation=chart.variation,
        assurance=chart.assurance,
        rebaseline_suggested=not found and n_monitoring >= REBASELINE_AFTER,
    )
