"""Notes on charts, and recalculating an indicator's process limits ("rebasing") after
a documented change, only where Making Data Count's rules allow it (SPC.md §3.3, §6.1).
"""

from __future__ import annotations

import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from audits import spc
from audits.models import Annotation
from audits.services.measurements import MeasurementRefused
from audits.verdicts import baseline_points, plan_verdicts
from core.dates import day
from core.history import save_with_history as _save
from core.thresholds import MIN_PARTITION_POINTS, MIN_SPC_POINTS
from plans.models import Indicator, Plan, User
from plans.services import refuse_if_final, touch_plan

# The fewest results a new phase needs before limits may be set from it: Making Data
# Count's partition minimum (MDC SQL @SettingMinimumPointsPartition).
MIN_NEW_PHASE = MIN_PARTITION_POINTS
# Plans whose limits may still be recalculated: the improvement phase. A report in
# closure review is frozen, and in monitoring the limits are the frozen reference the
# governance group agreed at step-down.
REBASE_STATUSES = (Plan.Status.DRAFT, Plan.Status.LIVE)


class AnnotationRefused(MeasurementRefused):
    """A note or a recalculation was not recorded; ``reasons`` say why."""


def _locked_plan(indicator: Indicator, what: str) -> Plan:
    plan = Plan.objects.select_for_update().get(pk=indicator.plan_id)
    refuse_if_final(plan, what)
    return plan


@transaction.atomic
def add_annotation(
    *, indicator: Indicator, by: User, noted_on: datetime.date, kind: str, text: str
) -> Annotation:
    """Record a dated note on ``indicator``'s chart (a PDSA cycle, a process change...).
    Refused on a closed or withdrawn plan (``TransitionRefused``), for a date in the
    future, without text, or for the kind only ``recalculate_limits`` may write."""
    _locked_plan(indicator, "chart notes")
    text = (text or "").strip()
    if kind not in Annotation.NOTE_KINDS:
        raise AnnotationRefused(["Choose what kind of note this is."])
    if not text:
        raise AnnotationRefused(["Write the note."])
    if noted_on > timezone.localdate():
        raise AnnotationRefused(["A note cannot be dated in the future."])
    note = Annotation(indicator=indicator, noted_on=noted_on, kind=kind, text=text, created_by=by)
    _save(note, by=by, reason=f"Chart note added: {text}")
    touch_plan(indicator.plan_id)
    return note


def rebase_problems(indicator: Indicator, starts_on: datetime.date) -> list[str]:
    """Why the limits of ``indicator`` may not be recalculated from its result of
    ``starts_on``, in words a quality lead understands; empty when Making Data Count's
    rules allow it:

    - the plan is still in its improvement phase (draft or live);
    - ``starts_on`` is one of its results, after the first and after any baseline or
      earlier recalculation;
    - the new phase holds at least 12 results (MDC's partition minimum), and the chart
      has the 15 results control limits need;
    - the chart as it stands shows a completed improvement shift (7 results in a row on
      the better side of the mean), and ``starts_on`` lies within it. A single point
      beyond a limit, a trend or two of three is not enough: MDC advises against
      redrawing on every signal, and a shift is what shows the level has changed. A
      concern shift is refused: it is a warning to act on, not a new normal.
    """
    plan = indicator.plan
    if plan.status not in REBASE_STATUSES:
        if plan.status == Plan.Status.MONITORING:
            return [
                "In monitoring, the limits are the frozen reference the governance group "
                "agreed at step-down: they are not recalculated."
            ]
        return [
            f"The plan is {plan.get_status_display().lower()}: its limits can be "
            "recalculated only while it is live."
        ]
    verdict = next(
        (v for v in plan_verdicts(plan).indicators if v.indicator.pk == indicator.pk), None
    )
    if verdict is None:
        return ["That indicator is not on this plan."]
    results = verdict.measurements
    index = next((i for i, m in enumerate(results) if m.measured_on == starts_on), None)
    if index is None:
        return [
            f"“{indicator.name}” has no result dated {day(starts_on)}: choose one of its results."
        ]
    if index == 0:
        return ["The first result already starts the chart: choose a later result."]
    baseline = baseline_points(results, plan.opened_on)
    if baseline is not None and index < baseline:
        return [
            f"{day(starts_on)} is inside the baseline (the {baseline} results from before the "
            "plan opened): Making Data Count does not recalculate limits within a baseline."
        ]
    later = [r for r in verdict.rebases if r.noted_on >= starts_on]
    if later:
        return [
            f"The limits were already recalculated from {day(later[-1].noted_on)}: a new "
            "phase must start after the latest one."
        ]
    problems = []
    phase = len(results) - index
    if phase < MIN_NEW_PHASE:
        more = MIN_NEW_PHASE - phase
        problems.append(
            f"The new phase from {day(starts_on)} has {phase} result{'s' if phase != 1 else ''}; "
            f"Making Data Count needs at least {MIN_NEW_PHASE} before limits are set from it "
            f"({more} more)."
        )
    result = verdict.assurance.assessment.result
    if not isinstance(result, spc.ChartResult):
        problems.append(
            f"Control limits need at least {MIN_SPC_POINTS} results and there are "
            f"{len(results)}, so there are no limits to recalculate yet."
        )
        return problems
    shifts = [s for s in result.signals if s.rule is spc.Rule.SHIFT]
    covering = [s for s in shifts if s.points[0] <= index <= s.points[-1]]
    improving = [s for s in covering if s.effect is spc.Effect.IMPROVEMENT]
    if not improving:
        if covering:
            problems.append(
                f"The shift around {day(starts_on)} is on the concern side: it is a warning "
                "to act on, not a new level to draw limits around."
            )
        else:
            after = [
                s for s in shifts if s.effect is spc.Effect.IMPROVEMENT and s.points[0] > index
            ]
            hint = (
                f" The improvement shift starts at {day(results[after[0].points[0]].measured_on)}:"
                " recalculate from there."
                if after
                else ""
            )
            problems.append(
                f"There is no sustained shift at {day(starts_on)}. Making Data Count "
                f"recalculates limits only after a shift (at least {result.settings.shift} "
                "results in a row on the better side of the mean), not after a single point, "
                f"a trend or two of three.{hint}"
            )
    return problems


@transaction.atomic
def recalculate_limits(
    *, indicator: Indicator, by: User, starts_on: datetime.date, reason: str
) -> Annotation:
    """Recalculate ``indicator``'s process limits from its result of ``starts_on``,
    after a documented change of process (``reason``, kept in full on the chart and in
    history). Refused, with every reason, unless ``rebase_problems`` finds none. Every
    verdict and chart of the indicator then uses the new phase's own limits."""
    plan = _locked_plan(indicator, "limits")
    reason = (reason or "").strip()
    if not reason:
        raise AnnotationRefused(
            ["Say what changed in the process: the reason is kept with the chart."]
        )
    indicator = Indicator.objects.select_related("plan").get(pk=indicator.pk, plan=plan)
    if problems := rebase_problems(indicator, starts_on):
        raise AnnotationRefused(problems)
    note = Annotation(
        indicator=indicator,
        noted_on=starts_on,
        kind=Annotation.Kind.REBASE,
        text=reason,
        created_by=by,
    )
    try:
        with transaction.atomic():
            _save(note, by=by, reason=f"Limits recalculated from {day(starts_on)}: {reason}")
    except IntegrityError:
        raise AnnotationRefused(
            [f"The limits were already recalculated from {day(starts_on)}."]
        ) from None
    touch_plan(plan.pk)
    return note
