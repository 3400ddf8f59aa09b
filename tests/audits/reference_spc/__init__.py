# Frozen reference copy: see README.md in this folder. Not used by the application.
"""Statistical process control for QIP Portal: pure Python, no Django (SPC.md).

Every function takes measurements in time order and returns a frozen dataclass whose
`explain()` gives the verdict in plain UK English: which rule fired, at which points,
against which limits. Indices are 0-based; explanations count points from 1. Numbers may
be int, float or Decimal; bad input raises ValueError. `direction` is "up" (higher is
better), "down" (lower is better) or, for charts only, "neither".

    assess_series(values | numerators=, denominators=, *, direction, target=None, ...)
        -> SeriesAssessment   # < 10 points: not enough data for statistical
                              # confirmation; 10-14: run chart; 15+: XmR or p-chart
    analyse_xmr(values, *, direction, target=None, baseline=None, recalc_at=(),
                ghosts=(), labels=None, shift=7, trend=7, two_of_three="mdc2023",
                conflict="concern") -> ChartResult
    analyse_p_chart(numerators, denominators, *, <same options>) -> ChartResult
    analyse_run_chart(values, *, direction, centre=None, baseline=None, ghosts=(),
                      labels=None, ihi_shift=6, ihi_trend=5) -> RunChartResult
    assess_closure(values, *, direction, baseline, target=None, min_phase=12, ...)
        -> ClosureAssessment      # .state, .is_ready_for_closure, .explain()
    assess_monitoring(reference, monitoring, *, direction, target=None, ...)
        -> MonitoringAssessment   # .is_deteriorating, .severity, .explain()

Defaults follow NHS England's Making Data Count: limits at mean ± 2.66 × mean moving
range, shift and trend of 7, the Nov 2023 two-of-three rule, and concern shown when a
point signals improvement and concern at once.
"""

from .lifecycle import (
    ClosureAssessment,
    ClosureState,
    Deterioration,
    MonitoringAssessment,
    Severity,
    assess_closure,
    assess_monitoring,
)
from .pchart import analyse_p_chart
from .runchart import analyse_run_chart
from .series import NOT_ENOUGH_DATA, Method, SeriesAssessment, assess_series
from .text import format_number
from .types import (
    AnhoejResult,
    Assurance,
    AssuranceIcon,
    ChartKind,
    ChartResult,
    ConflictRule,
    Direction,
    Effect,
    IhiResult,
    Limits,
    Partition,
    Point,
    Rule,
    RuleSettings,
    RunChartResult,
    RunPattern,
    Side,
    Signal,
    TwoOfThree,
    VariationIcon,
)
from .xmr import analyse_xmr

__all__ = [
    "NOT_ENOUGH_DATA",
    "AnhoejResult",
    "Assurance",
    "AssuranceIcon",
    "ChartKind",
    "ChartResult",
    "ClosureAssessment",
    "ClosureState",
    "ConflictRule",
    "Deterioration",
    "Direction",
    "Effect",
    "IhiResult",
    "Limits",
    "Method",
    "MonitoringAssessment",
    "Partition",
    "Point",
    "Rule",
    "RuleSettings",
    "RunChartResult",
    "RunPattern",
    "SeriesAssessment",
    "Severity",
    "Side",
    "Signal",
    "TwoOfThree",
    "VariationIcon",
    "analyse_p_chart",
    "analyse_run_chart",
    "analyse_xmr",
    "assess_closure",
    "assess_monitoring",
    "assess_series",
    "format_number",
]
