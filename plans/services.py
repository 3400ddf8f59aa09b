"""Everything that changes plans: one function per change, each in a transaction,
each saving with history (who and why); emails are outbox rows written in the same
transaction, sent only after commit."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from core.history import save_with_history
from plans import lifecycle, notifications
from plans.models import (
    Action,
    ClosureCriteria,
    Indicator,
    Plan,
    PlanReferenceCounter,
    Trigger,
    User,
)


class TransitionRefused(Exception):
    """The guard did not hold; ``reasons`` say why, in words a user understands."""

    def __init__(self, reasons: list[str]):
        super().__init__(" ".join(reasons))
        self.reasons = reasons


_save = save_with_history


def refuse_if_final(plan: Plan, what: str) -> None:
    """A closed or withdrawn plan is the record an inspector relies on: nothing about it
    changes any more. Every service that changes a plan's own records calls this first
    (learning, which goes on after closure, is the exception)."""
    if plan.is_final:
        raise TransitionRefused(
            [f"{plan.reference} is {plan.get_status_display().lower()}: its {what} cannot change."]
        )


def touch_plan(plan_id: int, when: datetime.datetime | None = None) -> None:
    """Record activity on a plan (the stale flag reads it). ``last_activity_at`` is
    excluded from history, so a plain UPDATE is correct here."""
    Plan.objects.filter(pk=plan_id).update(last_activity_at=when or timezone.now())


def allocate_reference(year: int) -> str:
    """The next ``QIP-<year>-NNNN``. Must run inside a transaction: the counter row is
    locked until commit, so two plans opened at once get different numbers, and a
    number once handed out is never handed out again."""
    PlanReferenceCounter.objects.get_or_create(year=year)
    counter = PlanReferenceCounter.objects.select_for_update().get(year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return f"QIP-{year}-{counter.last_number:04d}"


@dataclass
class NewPlan:
    """Everything the guided create flow collects, already validated by forms."""

    plan_fields: dict
    locations: Iterable
    quality_statements: Iterable
    regulations: Iterable
    triggers: list[dict]
    criteria: dict
    indicators: list[dict]
    actions: list[dict]


@transaction.atomic
def create_plan(*, by: User, data: NewPlan) -> Plan:
    """Open a draft plan with its triggers, criteria, indicators and actions, all or
    nothing. An action already completed must say when (``completed_on``); raises
    ``TransitionRefused``, having saved nothing, when one does not."""
    plan = Plan(**data.plan_fields, created_by=by)
    plan.reference = allocate_reference(plan.opened_on.year)
    plan.risk_score = plan.likelihood * plan.impact
    _save(plan, by=by, reason="Plan opened")
    plan.locations.set(data.locations)
    plan.quality_statements.set(data.quality_statements)
    plan.regulations.set(data.regulations)
    for fields in data.triggers:
        _save(Trigger(plan=plan, **fields), by=by)
    _save(ClosureCriteria(plan=plan, **data.criteria), by=by)
    for position, fields in enumerate(data.indicators):
        _save(Indicator(plan=plan, position=position, **fields), by=by)
    for fields in data.actions:
        action = Action(plan=plan, **fields)
        if action.is_completed and not action.completed_on:
            # Not guessed: the opened date would tell the closure report something untrue.
            raise TransitionRefused([f"Give the date “{action.description}” was completed."])
        if not action.is_completed:
            action.completed_on = None
        _save(action, by=by)
    return plan


@transaction.atomic
def update_plan(
    *, plan: Plan, by: User, fields: dict, locations=None, quality_statements=None, regulations=None
) -> Plan:
    """Edit a plan's descriptive fields (not its status: that is the lifecycle's)."""
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    refuse_if_final(plan, "details")
    for name, value in fields.items():
        setattr(plan, name, value)
    plan.risk_score = plan.likelihood * plan.impact
    plan.last_activity_at = timezone.now()
    _save(plan, by=by, reason="Plan details edited")
    if locations is not None:
        plan.locations.set(locations)
    if quality_statements is not None:
        plan.quality_statements.set(quality_statements)
    if regulations is not None:
        plan.regulations.set(regulations)
    return plan


def criteria_gaps(plan: Plan) -> list[str]:
    """What is missing before the criteria can be agreed (the activation guard)."""
    gaps: list[str] = []
    criteria = ClosureCriteria.objects.filter(plan=plan).first()
    if criteria is None:
        return ["Closure criteria have not been written."]
    if not criteria.success_in_practice.strip():
        gaps.append("Say what success looks like in practice.")
    if not criteria.sustain_months or criteria.sustain_months < 1:
        gaps.append("Set a sustain period of at least one month.")
    if not criteria.min_reaudits or criteria.min_reaudits < 1:
        gaps.append("Set the minimum number of re-audits inside the window.")
    if not criteria.sign_off_level:
        gaps.append("Choose who signs off closure.")
    indicators = list(plan.indicators.all())
    if not indicators:
        gaps.append("Add at least one indicator with a direction and a target.")
    for indicator in indicators:
        if not indicator.direction or indicator.target is None:
            gaps.append(f"Indicator “{indicator.name}” needs a direction and a target.")
    if not plan.triggers.exists():
        gaps.append("Record at least one trigger.")
    return gaps


@transaction.atomic
def perform_transition(
    *,
    plan: Plan,
    name: str,
    by: User,
    reason: str = "",
    extra_reasons: Iterable[str] = (),
    checked_by_closure_workflow: bool = False,
    email_reason: str = "",
    also_tell: Iterable[str] = (),
    already_told: Iterable[str] = (),
) -> Plan:
    """Move ``plan`` along the lifecycle. Locks the row, re-checks the state graph and
    the role against the locked state (so two people acting at once cannot both
    succeed), saves with history and queues the email in the same transaction (the outbox sends
    it after commit). Raises
    ``TransitionRefused``, having changed nothing, when a rule does not hold.

    A ``composed`` transition (closure review, sign-off, step-down, return, re-open)
    is performed only by the closure workflow (``qip_portal/closure/workflow.py``), which checks
    what must hold across apps first and says so with ``checked_by_closure_workflow``.

    History keeps 100 characters of ``reason``; ``email_reason`` is the reason in full
    for the email (``reason`` when not given). ``also_tell`` adds recipients (e.g. the
    group that stepped a re-opened plan down); ``already_told`` leaves out people
    another email of the same cause reaches (a governance decision's)."""
    transition = lifecycle.TRANSITIONS[name]
    if transition.composed and not checked_by_closure_workflow:
        raise TransitionRefused(
            [f"{transition.label} goes through the closure workflow, which checks it first."]
        )
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    reasons = list(extra_reasons)
    if not lifecycle.may_perform(transition, by):
        reasons.append(f"Your role may not {transition.label.lower()} a plan.")
    reason = (reason or "").strip()
    reasons.extend(lifecycle.plan_refusals(transition, locked))
    if transition.needs_reason and not reason:
        reasons.append("Give a reason.")
    if reasons:
        raise TransitionRefused(reasons)
    now = timezone.now()
    locked.status = transition.target
    locked.status_changed_at = now
    locked.last_activity_at = now
    _save(locked, by=by, reason=f"{transition.label}: {reason}" if reason else transition.label)
    notifications.queue_transition(
        plan=locked,
        transition=transition,
        by=by,
        reason=(email_reason or "").strip() or reason,
        also_tell=also_tell,
        already_told=already_told,
    )
    return locked


@transaction.atomic
def activate_plan(*, plan: Plan, by: User, reason: str = "") -> Plan:
    """Draft to live. The closure criteria must be complete; they lock now. An optional
    ``reason`` is kept with the change in history."""
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    gaps = criteria_gaps(locked) if locked.status == Plan.Status.DRAFT else []
    plan = perform_transition(
        plan=locked, name="activate", by=by, reason=reason, extra_reasons=gaps
    )
    criteria = plan.criteria
    criteria.locked_at = timezone.now()
    _save(criteria, by=by, reason="Criteria agreed and locked at activation")
    return plan


@transaction.atomic
def withdraw_plan(*, plan: Plan, by: User, reason: str, merged_into: Plan | None = None) -> Plan:
    """Draft or live to withdrawn, e.g. merged into another plan (which is linked)."""
    extra: list[str] = []
    if merged_into is not None and merged_into.pk == plan.pk:
        extra.append("A plan cannot be merged into itself.")
    plan = perform_transition(plan=plan, name="withdraw", by=by, reason=reason, extra_reasons=extra)
    if merged_into is not None:
        plan.merged_into = merged_into
        _save(plan, by=by, reason=f"Merged into {merged_into.reference}")
    return plan


@transaction.atomic
def revise_criteria(
    *,
    plan: Plan,
    by: User,
    reason: str,
    criteria_fields: dict,
    indicators: list[tuple[Indicator, dict]],
) -> ClosureCriteria:
    """Change criteria. Before activation this is ordinary editing; once locked it needs
    a reason, which is kept in history and shown on the closure report."""
    locked_plan = Plan.objects.select_for_update().get(pk=plan.pk)
    criteria = ClosureCriteria.objects.select_for_update().get(plan=locked_plan)
    reason = (reason or "").strip()
    if locked_plan.is_final:
        raise TransitionRefused(["The criteria of a closed or withdrawn plan cannot change."])
    if criteria.is_locked and not reason:
        raise TransitionRefused(
            ["The criteria were agreed at activation: give a reason for revising them."]
        )
    history_reason = (
        f"Criteria revised: {reason}" if criteria.is_locked else "Criteria edited (draft)"
    )
    for name, value in criteria_fields.items():
        setattr(criteria, name, value)
    _save(criteria, by=by, reason=history_reason)
    for indicator, fields in indicators:
        for name, value in fields.items():
            setattr(indicator, name, value)
        # Never write back the derived latest-result date this instance was loaded with.
        _save(indicator, by=by, reason=history_reason, update_fields=_INDICATOR_FIELDS)
    _criteria_changed(locked_plan.pk)
    touch_plan(locked_plan.pk)
    return criteria


# What a person edits on an indicator: not ``last_measured_on`` (kept by audits).
_INDICATOR_FIELDS = [
    f.name for f in Indicator._meta.concrete_fields if f.name not in ("id", "last_measured_on")
]


def _criteria_changed(plan_id: int) -> None:
    """New criteria or indicators: the kept "criteria met since" date no longer holds.
    Cleared here (plans cannot judge results); the next result on the plan or the
    nightly readiness sweep judges it again."""
    Plan.objects.filter(pk=plan_id).update(
        criteria_met_since=None  # history-safe: derived, excluded from history
    )


@transaction.atomic
def add_indicator(*, plan: Plan, by: User, fields: dict, reason: str = "") -> Indicator:
    criteria = ClosureCriteria.objects.select_for_update().get(plan=plan)
    if plan.is_final:
        raise TransitionRefused(["A closed or withdrawn plan cannot gain indicators."])
    if criteria.is_locked and not reason.strip():
        raise TransitionRefused(
            ["The criteria were agreed at activation: give a reason for adding an indicator."]
        )
    indicator = Indicator(plan=plan, position=plan.indicators.count(), **fields)
    _save(
        indicator,
        by=by,
        reason=f"Criteria revised: {reason}" if criteria.is_locked else "Indicator added",
    )
    _criteria_changed(plan.pk)
    touch_plan(plan.pk)
    return indicator


@transaction.atomic
def add_trigger(*, plan: Plan, by: User, fields: dict) -> Trigger:
    refuse_if_final(Plan.objects.select_for_update().get(pk=plan.pk), "triggers")
    trigger = Trigger(plan=plan, **fields)
    _save(trigger, by=by, reason="Trigger added")
    touch_plan(plan.pk)
    return trigger


@transaction.atomic
def save_action(*, plan: Plan, by: User, fields: dict, action: Action | None = None) -> Action:
    """Add an action or edit one. Completing records the date; undoing completion
    clears "verified effective", which cannot outlive it."""
    if plan.is_final:
        raise TransitionRefused(["A closed or withdrawn plan's actions cannot change."])
    action = action or Action(plan=plan)
    was_completed = action.pk is not None and action.is_completed
    for name, value in fields.items():
        setattr(action, name, value)
    if action.is_completed and not action.completed_on:
        action.completed_on = timezone.localdate()
    if not action.is_completed:
        action.completed_on = None
        if was_completed:
            action.verified_effective_on = None
            action.verified_by = None
    _save(action, by=by, reason="Action added" if action.pk is None else "Action updated")
    touch_plan(plan.pk)
    return action


@transaction.atomic
def verify_action_effective(*, action: Action, by: User, note: str) -> Action:
    """Record that a completed action was shown to work, and how."""
    action = Action.objects.select_for_update().get(pk=action.pk)
    refuse_if_final(Plan.objects.get(pk=action.plan_id), "actions")
    if not action.is_completed:
        raise TransitionRefused(["Only a completed action can be verified as effective."])
    if not note.strip():
        raise TransitionRefused(["Say how effectiveness was verified."])
    action.verified_effective_on = timezone.localdate()
    action.verified_by = by
    action.effectiveness_note = note.strip()
    _save(action, by=by, reason="Verified effective")
    touch_plan(action.plan_id)
    return action
