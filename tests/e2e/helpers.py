"""Shared set-up for the three walkthroughs (PRODUCT.md): people, groups, plans and
results built through the real services (never by setting fields directly), the
passage of time, the scheduled jobs, and small browser helpers.

Only set-up happens here. Every step a user sees is driven in the browser by the
walkthrough tests themselves."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.management import call_command
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from audits import services as audit_services
from audits.models import Measurement
from governance import services as governance_services
from governance.models import GovernanceGroup, Membership
from plans import services as plan_services
from plans.models import Plan, SignOffLevel, User
from qip_portal import closure
from tests import factories
from tests.e2e.conftest import axe_violations, sign_in, sign_out

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Every walkthrough signs in several people and signs decisions with the password:
    PBKDF2 would cost a third of a second each. The live server runs in this process,
    so it uses the same hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def moment(year: int, month: int, day: int, hour: int = 10) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, 0, tzinfo=LONDON)


# --- People and groups ------------------------------------------------------------------


def person(username: str, role: str, *, first: str, last: str, locations=()) -> User:
    return factories.UserFactory(
        username=username,
        role=role,
        first_name=first,
        last_name=last,
        locations=list(locations) or None,
    )


def totp_device(user: User) -> TOTPDevice:
    """A confirmed authenticator for someone who must use two-step verification."""
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def totp_code(device: TOTPDevice) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():06d}"


def governance_group(
    *,
    name: str,
    by: User,
    chair: User | None = None,
    members=(),
    level=SignOffLevel.GOVERNANCE_GROUP,
) -> GovernanceGroup:
    group = governance_services.create_group(by=by, name=name, authority_level=level)
    if chair is not None:
        governance_services.set_membership(
            group=group, user=chair, role=Membership.Role.CHAIR, by=by
        )
    for member in members:
        governance_services.set_membership(
            group=group, user=member, role=Membership.Role.MEMBER, by=by
        )
    return group


# --- Plans and results ------------------------------------------------------------------


def log_result(
    plan: Plan,
    indicator,
    *,
    by: User,
    on: datetime.date,
    numerator: int | None = None,
    denominator: int | None = None,
    value: Decimal | None = None,
    source: str = Measurement.Source.RE_AUDIT,
) -> Measurement:
    return audit_services.record_measurement(
        plan=plan,
        by=by,
        fields={
            "indicator": indicator,
            "measured_on": on,
            "numerator": numerator,
            "denominator": denominator,
            "value": value,
            "location": plan.locations.first(),
            "source": source,
            "notes": "",
        },
    )


def complete_actions(plan: Plan, *, by: User) -> None:
    for action in plan.actions.all():
        plan_services.save_action(
            plan=plan,
            by=by,
            action=action,
            fields={"status": "completed", "completion_note": "Delivered to every member of staff"},
        )


def close_through_governance(
    plan: Plan, *, lead: User, chair: User, group: GovernanceGroup, on: datetime.date
) -> None:
    """Close ``plan`` the way the product does (report frozen and submitted by the
    quality lead, decision signed by the chair at a meeting): used where closure is
    set-up for another walkthrough, not the subject of the test."""
    governance_services.record_residual_risk(
        plan=plan,
        by=lead,
        description="New starters may not know the escalation route.",
        monitoring="Induction checklist audited quarterly.",
    )
    report = closure.submit_for_closure(plan=plan, by=lead, group=group)
    meeting = factories.meeting_of(group, on=on, by=lead, attendees=[chair])
    closure.sign_decision(
        report=report,
        meeting=meeting,
        by=chair,
        otp_token=factories.signing_code(chair),
        password=factories.PASSWORD,
        outcome="close",
    )


# --- Time, jobs and email ---------------------------------------------------------------


def run_job(name: str) -> None:
    """One scheduled job, as ``make jobs`` / Celery beat would run it."""
    call_command("run_scheduled_jobs", only=[name], stdout=io.StringIO())


def emails_to(address: str, subject_contains: str = "") -> list:
    return [
        m for m in mail.outbox if address in m.to and subject_contains.lower() in m.subject.lower()
    ]


# --- Browser ------------------------------------------------------------------------------


def as_user(page, username: str, device: TOTPDevice | None = None) -> None:
    """Sign out whoever was signed in, sign ``username`` in (with their verification
    code when they must use two-step verification)."""
    sign_out(page)
    sign_in(page, username)
    if device is not None and "/accounts/mfa/verify/" in page.url:
        page.get_by_label("Verification code").fill(totp_code(device))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, f"{username} could not sign in"


def check_accessible(page, where: str, found: dict) -> None:
    """Run axe on the current page; collect serious/critical violations by page."""
    violations = axe_violations(page)
    if violations:
        found[where] = violations


def both_sizes(page, screenshots, name: str) -> None:
    """Screenshots of the current page at 1280 x 900 and at a phone's 390 x 844."""
    screenshots(page, name)
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    screenshots(page, f"{name}-phone")
    page.set_viewport_size(size)


def success_message(page, text: str) -> None:
    if not page.get_by_text(text).first.is_visible():
        shown = page.locator(".alert, .invalid-feedback").all_inner_texts()
        raise AssertionError(f"expected {text!r} on {page.url}; the page says {shown}")
