import datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.models import SecurityEvent
from tests.factories import PASSWORD


def _login(client, username, password=PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password})


def _totp_now(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():06d}"


# --- Headers ------------------------------------------------------------------------


def test_response_headers_protect_every_page(client, quality_lead):
    client.force_login(quality_lead)
    response = client.get(reverse("home"))
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp and "'unsafe-inline'" not in csp
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in response.content.decode()  # our scripts carry it
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_hsts_is_sent_over_https_in_production(client, db, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = client.get(reverse("login"), secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_pages_carry_no_inline_style_or_script(client, quality_lead, plan):
    client.force_login(quality_lead)
    for url in [
        reverse("home"),
        reverse("plans:register"),
        plan.get_absolute_url(),
        reverse("plans:create"),
    ]:
        body = client.get(url).content.decode()
        assert ' style="' not in body, url
        assert "<script>" not in body, url


# --- Sign-in throttling and enumeration ----------------------------------------------


def test_failed_logins_are_throttled_with_a_clear_message(client, manager):
    for _ in range(5):
        response = _login(client, "manager", "wrong-password")
    response = _login(client, "manager", PASSWORD)  # even the right password now waits
    assert "Too many failed sign-ins for this username. Wait 30 seconds" in (
        response.content.decode()
    )
    assert SecurityEvent.objects.filter(kind="login_failed", username="manager").count() == 5
    assert SecurityEvent.objects.filter(kind="login_throttled", username="manager").count() == 1
    # Another user from the same address is not slowed by someone else's failures.
    other = Client()
    assert _login(other, "lead", "wrong").status_code == 200
    assert "did not match" in _login(other, "lead", "wrong").content.decode()
    # The rest (the doubling wait, unlock links, per-address limits, proxies) is in
    # test_sign_in_throttle.py.


def test_unknown_and_known_usernames_get_the_same_answer(client, manager):
    known = _login(client, "manager", "wrong").content.decode()
    unknown = _login(client, "nobody-here", "wrong").content.decode()
    assert "did not match" in known and "did not match" in unknown
    assert SecurityEvent.objects.filter(kind="login_failed", username="nobody-here").exists()


def test_password_reset_does_not_reveal_whether_an_account_exists(client, manager, mailoutbox):
    for email in ["manager@example.test", "stranger@example.test"]:
        response = client.post(reverse("password_reset"), {"email": email})
        assert response.status_code == 302 and response["Location"] == reverse(
            "password_reset_done"
        )
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["manager@example.test"]
    assert "/accounts/password/reset/" in mailoutbox[0].body


# --- Sessions -----------------------------------------------------------------------


def test_sessions_expire_when_idle_and_at_the_browser_close(settings):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


def test_an_active_session_lives_on_and_an_idle_one_ends_after_30_minutes(client, manager):
    with time_machine.travel(
        datetime.datetime(2026, 11, 27, 8, 0, tzinfo=datetime.UTC), tick=False
    ) as clock:
        _login(client, "manager")
        for _ in range(4):  # two hours, a page every 29 minutes: never idle for 30
            clock.shift(datetime.timedelta(minutes=29))
            assert client.get(reverse("home")).status_code == 200
        clock.shift(datetime.timedelta(minutes=31))
        response = client.get(reverse("home"))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_busy_session_is_written_at_most_once_a_minute(client, manager):
    """Not a database write per page view: the session row is saved again only when
    SESSION_REFRESH_SECONDS have passed (so idle is exact to within a minute)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with time_machine.travel(
        datetime.datetime(2026, 11, 27, 8, 0, tzinfo=datetime.UTC), tick=False
    ) as clock:
        _login(client, "manager")
        client.get(reverse("home"))
        with CaptureQueriesContext(connection) as captured:
            for _ in range(5):
                clock.shift(datetime.timedelta(seconds=10))
                client.get(reverse("home"))
        writes = [
            q for q in captured if q["sql"].startswith("UPDATE") and "django_session" in q["sql"]
        ]
        assert writes == []
        clock.shift(datetime.timedelta(seconds=20))  # 70 s since the last save
        with CaptureQueriesContext(connection) as captured:
            client.get(reverse("home"))
        writes = [
            q for q in captured if q["sql"].startswith("UPDATE") and "django_session" in q["sql"]
        ]
        assert len(writes) == 1


def test_a_session_ends_after_the_absolute_limit_however_active(client, manager):
    with time_machine.travel(
        datetime.datetime(2026, 11, 27, 8, 0, tzinfo=datetime.UTC), tick=False
    ) as clock:
        _login(client, "manager")
        assert client.get(reverse("home")).status_code == 200
        for _ in range(23):  # busy all day, never idle for 30 minutes: 9h35m
            clock.shift(datetime.timedelta(minutes=25))
            assert client.get(reverse("home")).status_code == 200
        clock.shift(datetime.timedelta(minutes=26))  # 10h01m after signing in
        response = client.get(reverse("home"))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert SecurityEvent.objects.filter(kind="session_expired", user=manager).exists()


def test_deactivating_a_user_ends_their_sessions(client, manager):
    _login(client, "manager")
    assert client.get(reverse("home")).status_code == 200
    manager.is_active = False
    manager.save()
    assert client.get(reverse("home")).status_code == 302


def test_changing_the_password_ends_every_other_session(client, manager):
    other_device = Client()
    _login(other_device, "manager")
    _login(client, "manager")
    new = "a-much-better-passphrase-2026"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200  # this session continues
    assert other_device.get(reverse("home")).status_code == 302  # the other one ended
    assert SecurityEvent.objects.filter(kind="password_changed", user=manager).exists()


# --- Two-step verification ----------------------------------------------------------


def confirm_setup_by_email(client) -> None:
    """Ask for the two-step set-up link and open it, as the person would from their
    inbox (core.models.Alert is the outbox)."""
    import re

    from core.models import Alert

    client.post(reverse("mfa_setup"), {"send": "1"})
    body = Alert.objects.filter(kind="mfa-setup").latest("pk").body_text
    client.get(re.search(r"https?://[^/\s]+(/accounts/mfa/setup/[^\s]+)", body).group(1))


def test_an_administrator_must_set_up_two_step_verification_first(client, administrator):
    _login(client, "admin")
    response = client.get(reverse("plans:register"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_setup"))
    assert "Email me the link" in client.get(reverse("mfa_setup")).content.decode()
    confirm_setup_by_email(client)
    assert client.get(reverse("mfa_setup")).status_code == 200
    device = TOTPDevice.objects.get(user=administrator, confirmed=False)
    response = client.post(
        reverse("mfa_setup"), {"code": "000000" if _totp_now(device) != "000000" else "111111"}
    )
    assert "did not match" in response.content.decode()
    response = client.post(reverse("mfa_setup"), {"code": _totp_now(device)})
    assert (
        "Wait 1 seconds" in response.content.decode()
        or "Wait 2 seconds" in response.content.decode()
    )
    device.refresh_from_db()
    device.throttle_reset()  # as if the user waited
    response = client.post(reverse("mfa_setup"), {"code": _totp_now(device)})
    assert "Save your recovery codes" in response.content.decode()
    assert len(response.context["codes"]) == 10
    assert client.get(reverse("plans:register")).status_code == 200
    assert SecurityEvent.objects.filter(kind="mfa_enabled", user=administrator).exists()


@pytest.fixture
def enrolled_manager(manager):
    device = TOTPDevice.objects.create(user=manager, name="phone", confirmed=True)
    static = manager.staticdevice_set.create(name="Recovery codes", confirmed=True)
    static.token_set.create(token="recover1")
    return manager, device


def test_a_user_with_an_authenticator_must_enter_a_code_after_the_password(
    client, enrolled_manager
):
    manager, device = enrolled_manager
    _login(client, "manager")
    response = client.get(reverse("plans:register"))
    assert response["Location"].startswith(reverse("mfa_verify"))
    response = client.post(reverse("mfa_verify"), {"code": "12345", "next": "/plans/"})
    assert "That code is not right" in response.content.decode()
    assert SecurityEvent.objects.filter(kind="mfa_failed", user=manager).count() == 1
    device.refresh_from_db()
    device.throttle_reset()  # as if the user waited
    response = client.post(reverse("mfa_verify"), {"code": _totp_now(device), "next": "/plans/"})
    assert response.status_code == 302 and response["Location"] == "/plans/"
    assert client.get(reverse("plans:register")).status_code == 200


def test_a_recovery_code_works_once(client, enrolled_manager):
    _login(client, "manager")
    response = client.post(reverse("mfa_verify"), {"code": "recover1", "next": "/"})
    assert response.status_code == 302
    assert not StaticToken.objects.filter(token="recover1").exists()
    assert SecurityEvent.objects.filter(kind="mfa_recovery_used").exists()


def test_verify_refuses_an_outside_next_address(client, enrolled_manager):
    _, device = enrolled_manager
    _login(client, "manager")
    response = client.post(
        reverse("mfa_verify"), {"code": _totp_now(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_turning_off_two_step_needs_the_password_and_is_refused_to_required_roles(
    client, enrolled_manager, administrator
):
    manager, device = enrolled_manager
    _login(client, "manager")
    client.post(reverse("mfa_verify"), {"code": _totp_now(device)})
    client.post(reverse("mfa_disable"), {"password": "wrong"})
    assert TOTPDevice.objects.filter(user=manager).exists()
    client.post(reverse("mfa_disable"), {"password": PASSWORD})
    assert not TOTPDevice.objects.filter(user=manager).exists()
    assert SecurityEvent.objects.filter(kind="mfa_disabled", user=manager).exists()

    admin_device = TOTPDevice.objects.create(user=administrator, name="phone", confirmed=True)
    admin_client = Client()
    _login(admin_client, "admin")
    admin_client.post(reverse("mfa_verify"), {"code": _totp_now(admin_device)})
    response = admin_client.post(reverse("mfa_disable"), {"password": PASSWORD}, follow=True)
    assert "cannot be turned off" in response.content.decode()
    assert TOTPDevice.objects.filter(user=administrator).exists()


# --- Security events ---------------------------------------------------------------


def test_security_events_are_recorded_and_visible_only_to_administrators(
    client, manager, outsider, plan
):
    _login(client, "outsider")
    client.get(plan.get_absolute_url())
    client.get(reverse("plans:register"), {"export": "csv"})
    kinds = set(SecurityEvent.objects.filter(user=outsider).values_list("kind", flat=True))
    assert {"login", "permission_refused", "export"} <= kinds
    assert (
        client.get("/admin/core/securityevent/").status_code == 302
    )  # not staff: sent to admin login


def test_a_governance_chair_must_set_up_two_step_verification(
    client, quality_lead, governance_member
):
    from governance import services as governance
    from governance.models import Membership

    group = governance.create_group(
        by=quality_lead, name="Quality & Safety Committee", authority_level=3
    )
    governance.set_membership(
        group=group, user=governance_member, role=Membership.Role.CHAIR, by=quality_lead
    )
    _login(client, "member")
    response = client.get(reverse("plans:register"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_setup"))


def test_verify_page_sends_a_user_without_an_authenticator_onwards(client, manager):
    _login(client, "manager")
    response = client.get(reverse("mfa_verify"), {"next": "/plans/"})
    assert response.status_code == 302 and response["Location"] == "/plans/"
