"""When what a person may do changes (role, Django group, governance membership), every
session they had open ends; the session that made the change, if it is theirs, carries
on. Each change is a security event naming who made it."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from core.models import SecurityEvent
from governance import services as governance
from governance.models import Membership
from tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MFA_REQUIRED_ROLES = set()  # two-step has its own tests


def _signed_in(username, *, expect_home=True) -> Client:
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]
    if expect_home:
        assert client.get(reverse("home")).status_code == 200
    return client


def _signed_out(client) -> bool:
    response = client.get(reverse("home"))
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


def _admin_change(admin: Client, user, **changes):
    """Post the Django admin's change form for ``user`` with ``changes``."""
    url = reverse("admin:plans_user_change", args=[user.pk])
    form = admin.get(url).context["adminform"].form
    data = {
        key: value
        for key, value in form.initial.items()
        if value is not None
        and key not in {"groups", "user_permissions", "locations", "date_joined", "last_login"}
    }
    for flag in ["is_active", "is_staff", "is_superuser", "weekly_digest"]:
        data.pop(flag, None)
        if form.initial.get(flag):
            data[flag] = "on"
    data.update(
        {
            "locations": [loc.pk for loc in user.locations.all()],
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            **changes,
        }
    )
    response = admin.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    return response


def test_an_administrator_changing_a_role_signs_the_user_out(administrator, manager):
    users_session = _signed_in("manager")
    admin = Client()
    admin.force_login(administrator)
    _admin_change(admin, manager, role="viewer")
    manager.refresh_from_db()
    assert manager.role == "viewer"
    assert _signed_out(users_session)
    assert not _signed_out(admin)
    event = SecurityEvent.objects.get(kind="role_changed", user=manager)
    assert "role manager → viewer" in event.detail and "changed by admin" in event.detail
    # Signing in again works, under the new role.
    assert _signed_in("manager")


def test_a_saved_copy_loaded_before_the_change_does_not_bring_old_sessions_back(manager):
    stale_copy = type(manager).objects.get(pk=manager.pk)
    session = _signed_in("manager")
    manager.role = "viewer"
    manager.save()
    assert _signed_out(session)
    stale_copy.first_name = "Renamed"
    stale_copy.save()  # does not write the old session version back
    assert _signed_out(session)


def test_other_saves_leave_sessions_alone(manager):
    session = _signed_in("manager")
    manager.first_name = "Maggie"
    manager.save()
    manager.refresh_from_db()
    manager.save(update_fields=["last_login"])
    assert not _signed_out(session)
    assert not SecurityEvent.objects.filter(kind="role_changed").exists()


def test_joining_or_leaving_a_django_group_ends_the_sessions(manager):
    session = _signed_in("manager")
    auditors = Group.objects.create(name="Auditors")
    manager.groups.add(auditors)
    assert _signed_out(session)
    session = _signed_in("manager")
    auditors.user_set.remove(manager)
    assert _signed_out(session)
    details = list(
        SecurityEvent.objects.filter(kind="role_changed", user=manager).values_list(
            "detail", flat=True
        )
    )
    assert any("added to Django group Auditors" in d for d in details)
    assert any("removed from Django group Auditors" in d for d in details)


def test_being_made_chair_mid_session_ends_the_session(quality_lead, governance_member):
    group = governance.create_group(by=quality_lead, name="Quality Committee", authority_level=3)
    governance.set_membership(
        group=group, user=governance_member, role=Membership.Role.MEMBER, by=quality_lead
    )
    other_member = Client()
    other_member.force_login(quality_lead)  # someone else's session is not touched
    session = _signed_in("member")
    governance.set_membership(
        group=group, user=governance_member, role=Membership.Role.DELEGATE_CHAIR, by=quality_lead
    )
    assert _signed_out(session)
    assert not _signed_out(other_member)
    event = SecurityEvent.objects.filter(kind="role_changed", user=governance_member).latest("pk")
    assert "member → delegate chair of Quality Committee" in event.detail
    assert "changed by lead" in event.detail
    # Signing in again, the delegate chair is sent to set up two-step verification.
    session = _signed_in("member", expect_home=False)
    response = session.get(reverse("home"))
    assert response["Location"].startswith(reverse("mfa_setup"))
    # Removed from the group: that session ends too.
    membership = Membership.objects.get(group=group, user=governance_member)
    governance.remove_membership(membership=membership, by=quality_lead)
    assert _signed_out(session)
    assert _signed_in("member")  # a plain governance member again: no two-step required


def test_the_session_making_a_change_to_its_own_role_carries_on(administrator):
    """An administrator changing their own role in the admin: their other sessions end,
    the one they used does not."""
    elsewhere = _signed_in("admin")
    here = _signed_in("admin")
    _admin_change(here, administrator, role="quality_lead")
    administrator.refresh_from_db()
    assert administrator.role == "quality_lead"
    assert not _signed_out(here)
    assert _signed_out(elsewhere)
