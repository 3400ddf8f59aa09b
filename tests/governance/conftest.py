"""Governance fixtures: a Safeguarding Governance Group with a chair, a delegate chair
and a member; a live plan ready for closure; a submitted report."""


import pytest
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance import services
from governance.models import Meeting, Membership
from plans.models import SignOffLevel
from qip_portal import closure
from tests import factories


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Signing checks passwords; PBKDF2 would make every persona cost a third of a second.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
def meeting(group, quality_lead, chair, delegate, governance_member) -> Meeting:
    """Held today, with the group's chair, delegate and member recorded as attending."""
    return services.schedule_meeting(
        group=group,
        held_on=timezone.localdate(),
        by=quality_lead,
        attendees=[chair, delegate, governance_member],
    )


def make_ready(plan, by):
    """Everything the closure workflow asks of a live plan, built through the services:
    results meeting the criteria, actions completed and verified, the required evidence,
    a learning summary and a residual risk (tests/factories.py)."""
    return factories.make_ready(plan, by=by)


@pytest.fixture
def ready_plan(plan, quality_lead):
    return make_ready(plan, quality_lead)


@pytest.fixture
def report(ready_plan, quality_lead, group):
    return closure.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)


@pytest.fixture
def report_with_pdf(ready_plan, quality_lead, group, django_capture_on_commit_callbacks):
    """A submitted report whose after-commit work (PDF, email) has run."""
    with django_capture_on_commit_callbacks(execute=True):
        report = closure.submit_for_closure(plan=ready_plan, by=quality_lead, group=group)
    report.refresh_from_db()
    return report


class TwoStepClient(Client):
    """A test client whose ``force_login`` stands for a completed sign-in with two-step
    verification, as chairs must (enforcement is tested in
    tests/qip_portal/test_security.py): the user gets a confirmed authenticator and the
    session is verified with it, as django-otp's own login does."""

    def force_login(self, user, backend=None):
        super().force_login(user, backend)
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
        session = self.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()


@pytest.fixture
def client():
    return TwoStepClient()
