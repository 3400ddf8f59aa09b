"""The plan lifecycle table (ARCHITECTURE.md, "Plan lifecycle"), in one place.

Each transition names the states it leaves and enters and who may perform it. What must
hold *across apps* before a plan may go to closure review, be signed off, stepped down,
returned or re-opened (results, evidence, the closure report, learning, monitoring) is
decided by the closure workflow at the top layer, ``qip_portal/closure/workflow.py``; those
transitions are marked ``composed`` here, and ``plans.services.perform_transition``
performs them only when that workflow says it has checked them. ``plans`` knows only
its own rules: the state graph, the roles, and the reasons a step needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plans.models import Plan, User


@dataclass(frozen=True)
class Transition:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str
    needs_reason: bool
    # Guarded by the closure workflow (qip_portal/closure/workflow.py), which checks what must
    # hold across apps and then performs it; never offered as a plain plan button.
    composed: bool = False
    roles: tuple[str, ...] = ("quality_lead", "administrator")


# Governance decisions are signed by a group's chair (who has the governance member
# role); the closure workflow checks the chair, the authority level and the signature.
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
            composed=True,
        ),
        Transition(
            "sign_off_closure",
            "Sign off closure",
            ("closure_review",),
            "closed",
            needs_reason=True,
            composed=True,
            roles=GOVERNANCE_ROLES,
        ),
        Transition(
            "step_down",
            "Step down into monitoring",
            ("closure_review",),
            "monitoring",
            needs_reason=True,
            composed=True,
            roles=GOVERNANCE_ROLES,
        ),
        Transition(
            "return_to_live",
            "Return",
            ("closure_review",),
            "live",
            needs_reason=True,
            composed=True,
            roles=GOVERNANCE_ROLES,
        ),
        Transition(
            "reopen", "Re-open", ("monitoring",), "live", needs_reason=True, composed=True
        ),
        Transition(
            "submit_for_final_closure",
            "Submit for final closure",
            ("monitoring",),
            "closure_review",
            needs_reason=False,
            composed=True,
        ),
        # After a monitoring period ended without enough monitoring data, the group
        # may close the plan with a recorded rationale (or extend the monitoring).
        Transition(
            "close_after_monitoring",
            "Close without enough monitoring data",
            ("monitoring",),
            "closed",
            needs_reason=True,
            composed=True,
            roles=GOVERNANCE_ROLES,
        ),
        Transition("withdraw", "Withdraw", ("draft", "live"), "withdrawn", needs_reason=True),
    ]
}

# The step that takes a plan in each status to closure review.
SUBMIT_TRANSITIONS = {"live": "submit_for_closure", "monitoring": "submit_for_final_closure"}


def may_perform(transition: Transition, user: User) -> bool:
    return user.role in transition.roles


def plan_refusals(transition: Transition, plan: Plan) -> list[str]:
    """The plan's own reason ``transition`` cannot happen now (its status); empty when
    the state graph allows it. Rules across apps are the closure workflow's."""
    if plan.status not in transition.sources:
        return [
            f"{transition.label} is not possible while the plan is "
            f"{plan.get_status_display().lower()}."
        ]
    return []


def plan_page_transitions(plan: Plan, user: User) -> list[Transition]:
    """The plan's own transitions (activate, withdraw) this user may perform now. The
    closure steps are offered by the closure workflow, only when they can succeed."""
    return [
        t
        for t in TRANSITIONS.values()
        if not t.composed and plan.status in t.sources and may_perform(t, user)
    ]
