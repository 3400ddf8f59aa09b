"""Governance fixtures: a Safeguarding Governance Group with a chair, a delegate chair
and a member; a live plan ready for closure; a submitted report."""

import dataclasses
import datetime

import pytest
from django.utils import timezone

from governance import services
from governance.models import Meeting, Membership
from plans import lifecycle
from plans import services as plan_services
from plans.models import SignOffLevel
from tests import factories

GOVERNANCE_STEPS = ("sign_off_closure", "step_down", "return_to_live")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Signing checks passwords; PBKDF2 would make every persona cost a third of a second.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def lifecycle_ready_for_governance(monkeypatch):
    """Governance members may perform the three decision steps (until the lead applies
    the lifecycle diff in the governance report, where this changes nothing). Guards
    owned by other apps (readiness, learning summary...) are those apps' to test: here
    they hold, so these tests exercise governance's own guards."""
    transitions = dict(lifecycle.TRANSITIONS)
    for name in GOVERNANCE_STEPS:
        step = transitions[name]
        if "governance_member" not in step.roles:
            transitions[name] = dataclasses.replace(step, roles=(*step.roles, "governance_member"))
    monkeypatch.setattr(lifecycle, "TRANSITIONS", transitions)
    guards = dict(lifecycle._GUARDS)
    for name in ("readiness", "learning_summary", "monitoring_complete", "deterioration"):
        guards[name] = lambda plan: []
    monkeypatch.setattr(lifecycle, "_GUARDS", guards)


@pytest.fixture
def chair(db):
    return factories.UserFactory(username="chair", role="governance_member")


@pytest.fixture
def delegate(db):
    return factories.UserFactory(username="delegate", role="governance_member")


@pytest.fixture
def group(quality_lead, chair, delegate, governance_member):
    group = services.create_group(
        by=quality_lead,
        name="Safeguarding Governance Group",
        authority_level=SignOffLevel.GOVERNANCE_GROUP,
    )
    services.set_membership(group=group, user=chair, role=Membership.Role.CHAIR, by=quality_lead)
    services.set_membership(
        group=group, user=delegate, role=Membership.Role.DELEGATE_CHAIR, by=quality_lead
    )
    services.set_membership(
        group=group, user=governance_member, role=Membership.Role.MEMBER, by=quality_lead
    )
    return group


@pytest.fixture
def weak_group(quality_lead, chair):
    group = services.create_group(
        by=quality_lead, name="Home Managers' Forum", authority_level=SignOffLevel.QUALITY_LEAD
    )
    services.set_membership(group=group, user=chair, role=Membership.Role.CHAIR, by=quality_lead)
    return group


@pytest.fixture
def meeting(group, quality_lead) -> Meeting:
    return services.schedule_meeting(
        group=group, held_on=timezone.localdate() + datetime.timedelta(days=7), by=quality_lead
    )


def make_ready(plan, by):
    """Complete and verify every action and record a residual risk."""
    for action in plan.actions.all():
        plan_services.save_action(
            plan=plan,
            by=by,
            action=action,
            fields={"status": "completed", "completion_note": "Training delivered to all staff"},
        )
        action.refresh_from_db()
        plan_services.verify_action_effective(action=action, by=by, note="Re-audit at 98%")
    services.record_residual_risk(
        plan=plan,
        by=by,
        description="Agency staff unfamiliar with the escalation route.",
        monitoring="Monthly spot check of agency induction records.",
    )
    return plan


@pytest.fixture
def ready_plan(plan, quality_lead):
    return make_ready(plan, quality_lead)


@pytest.fixture
def report(ready_plan, quality_lead, group):
    return services.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)


@pytest.fixture
def report_with_pdf(ready_plan, quality_lead, group, django_capture_on_commit_callbacks):
    """A submitted report whose after-commit work (PDF, email) has run."""
    with django_capture_on_commit_callbacks(execute=True):
        report = services.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)
    report.refresh_from_db()
    return report


@pytest.fixture(autouse=True)
def chairs_signed_in_with_two_steps(monkeypatch):
    """Chairs must use two-step verification (tested in tests/qip_portal/test_security.py);
    here the client's force_login stands for a completed two-step sign-in."""
    monkeypatch.setattr("qip_portal.middleware.mfa_required", lambda user: False)
