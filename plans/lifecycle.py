"""The plan lifecycle table (ARCHITECTURE.md, "Plan lifecycle"), in one place.

Each transition names the states it leaves and enters, who may perform it, and the
guards it needs. Guards that belong to higher apps (readiness in ``audits``, the closure
report in ``governance``, the learning summary in ``learning``) are *registered* by those
apps when they load, so ``plans`` never imports upwards. A transition whose guards are
not all registered yet is simply not offered: it is never faked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plans.models import Plan, User

# A guard returns a list of plain-English reasons the transition may not happen now
# (an empty list means it may).
Guard = Callable[["Plan"], list[str]]


@dataclass(frozen=True)
class Transition:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str
    needs_reason: bool
    required_guards: tuple[str, ...] = ()
    # Performed from another app's page (e.g. governance sign-off), not a plan button.
    offered_on_plan_page: bool = True
    roles: tuple[str, ...] = ("quality_lead", "administrator")


# Governance decisions are signed by a group's chair (who has the governance member
# role); governance itself checks the chair, the authority level and the password.
GOVERNANCE_ROLES = ("governance_member",)


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in [
        Transition("activate", "Activate", ("draft",), "live", needs_reason=False),
        Transition(
            "submit_for_closure",
            "Submit for closure",
            ("live",),
            "closure_review",
            needs_reason=False,
            required_guards=("readiness", "learning_summary", "closure_report"),
        ),
        Transition(
            "sign_off_closure",
            "Sign off closure",
            ("closure_review",),
            "closed",
            needs_reason=True,
            required_guards=("governance_decision",),
            offered_on_plan_page=False,
            roles=GOVERNANCE_ROLES,
        ),
        Transition(
            "step_down",
            "Step down into monitoring",
            ("closure_review",),
            "monitoring",
            needs_reason=True,
            required_guards=("governance_decision",),
            offered_on_plan_page=False,
            roles=GOVERNANCE_ROLES,
        ),
        Transition(
            "return_to_live",
            "Return",
            ("closure_review",),
            "live",
            needs_reason=True,
            required_guards=("governance_decision",),
            offered_on_plan_page=False,
            roles=GOVERNANCE_ROLES,
        ),
        Transition(
            "reopen",
            "Re-open",
            ("monitoring",),
            "live",
            needs_reason=True,
            required_guards=("deterioration",),
            # Re-opened from the monitoring panel, which links the triggering results.
            offered_on_plan_page=False,
        ),
        Transition(
            "submit_for_final_closure",
            "Submit for final closure",
            ("monitoring",),
            "closure_review",
            needs_reason=False,
            required_guards=("monitoring_complete", "closure_report"),
        ),
        Transition("withdraw", "Withdraw", ("draft", "live"), "withdrawn", needs_reason=True),
    ]
}

_GUARDS: dict[str, Guard] = {}


def register_guard(name: str, guard: Guard) -> None:
    """Called from a higher app's ``AppConfig.ready()``."""
    _GUARDS[name] = guard


def unregister_guard(name: str) -> None:
    _GUARDS.pop(name, None)


def is_available(transition: Transition) -> bool:
    """Every guard this transition needs has been provided by the app that owns it."""
    return all(name in _GUARDS for name in transition.required_guards)


# Guards a person may override with a written rationale (ARCHITECTURE.md: closure
# without every indicator met, "an override with a written rationale, shown prominently
# on the report"). No other guard can be overridden.
OVERRIDABLE_GUARDS = frozenset({"readiness"})


def blocking_reasons(
    transition: Transition, plan: Plan, *, overridden: frozenset[str] = frozenset()
) -> list[str]:
    """Why ``transition`` may not happen to ``plan`` now; empty when it may.
    ``overridden`` names guards (from OVERRIDABLE_GUARDS) a rationale has set aside."""
    if not is_available(transition):
        return [f"{transition.label} is not available in this version of the portal."]
    if plan.status not in transition.sources:
        return [
            f"{transition.label} is not possible while the plan is "
            f"{plan.get_status_display().lower()}."
        ]
    reasons: list[str] = []
    for name in transition.required_guards:
        if name in overridden & OVERRIDABLE_GUARDS:
            continue
        reasons.extend(_GUARDS[name](plan))
    return reasons


def may_perform(transition: Transition, user: User) -> bool:
    return user.role in transition.roles


def offered_transitions(plan: Plan, user: User) -> list[Transition]:
    """Transitions to show as buttons on the plan page for this user."""
    return [
        t
        for t in TRANSITIONS.values()
        if t.offered_on_plan_page
        and plan.status in t.sources
        and is_available(t)
        and may_perform(t, user)
    ]
