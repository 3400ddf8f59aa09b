"""Sign-in throttling that cannot be turned against chairs (issue #18, weakness 7e and
weakness 1's /accounts/mfa/ half): per username, failures slow further tries down
(30 s, doubling, at most the cool-off) and never lock; the person can email themselves
a link that lets their browser in at once. Per address, a high limit. The client's
address comes from a proxy header only when one is configured."""

import datetime
import re

import pytest
import time_machine
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import security
from core.models import Alert, SecurityEvent
from tests import factories
from tests.factories import PASSWORD

SHARED_NHS_ADDRESS = "10.20.30.40"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _login(client, username, password=PASSWORD, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def _browser(address=SHARED_NHS_ADDRESS, **headers) -> Client:
    return Client(REMOTE_ADDR=address, **headers)


def test_failures_slow_a_username_down_and_the_wait_ends(manager):
    attacker = _browser()
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(5):
            assert "did not match" in _login(attacker, "manager", "guess").content.decode()
        # The sixth try waits, right password or not, and says for how long.
        response = _login(attacker, "manager")
        assert response.status_code == 200
        body = response.content.decode()
        assert "Too many failed sign-ins for this username. Wait 30 seconds" in body
        assert "Email me a link to sign in now" in body
        assert "_auth_user_id" not in attacker.session
        # Refused unchecked: not a failure, so it does not lengthen the wait.
        assert SecurityEvent.objects.filter(kind="login_failed", username="manager").count() == 5
        assert SecurityEvent.objects.filter(kind="login_throttled", username="manager").count() == 1
        assert security.sign_in_wait("manager") == 30
        clock.shift(datetime.timedelta(seconds=31))
        # One more wrong guess: the next wait doubles.
        _login(attacker, "manager", "guess")
        assert security.sign_in_wait("manager") == 60
        clock.shift(datetime.timedelta(seconds=61))
        assert _login(attacker, "manager").status_code == 302  # the right password signs in
    # Signed in: the count starts again.
    assert security.sign_in_wait("manager") == 0


def test_the_wait_never_exceeds_the_cool_off(manager, settings):
    base = timezone.now() - datetime.timedelta(hours=1)
    for _ in range(40):
        SecurityEvent.objects.create(kind="login_failed", username="manager")
    SecurityEvent.objects.filter(username="manager").update(created_at=base)
    assert security.sign_in_wait("manager", now=base) == 15 * 60
    assert security.sign_in_wait("manager", now=base + datetime.timedelta(minutes=15)) == 0
    # Failures older than a day slow nobody down.
    SecurityEvent.objects.filter(username="manager").update(
        created_at=base - datetime.timedelta(days=1)
    )
    assert security.sign_in_wait("manager", now=base) == 0


def test_someone_guessing_a_chairs_username_from_a_shared_address_does_not_lock_her_out(
    governance_member, manager
):
    """Weakness 7e: five wrong guesses from a shared NHS address used to lock the chair
    out for 15 minutes. Now others at that address are not slowed at all, and the chair
    is only slowed, and can let herself in with an emailed link."""
    governance_member.username = "chair"
    governance_member.save()
    attacker = _browser()
    for _ in range(12):
        _login(attacker, "chair", "guess")
    # A colleague behind the same address signs in as usual.
    assert _login(_browser(), "manager").status_code == 302
    # The chair, behind the same address, is asked to wait, and asks for a link.
    chair_browser = _browser()
    assert "Too many failed sign-ins" in _login(chair_browser, "chair").content.decode()
    response = chair_browser.post(reverse("sign_in_unlock_request"), {"username": "chair"})
    assert response.status_code == 302
    alert = Alert.objects.get(kind="sign-in-unlock")
    assert alert.recipients == [governance_member.email]
    link = re.search(r"https?://[^/\s]+(/accounts/unlock/[^\s]+/)", alert.body_text).group(1)
    assert SecurityEvent.objects.filter(kind="unlock_link_sent", user=governance_member).exists()
    response = chair_browser.get(link)
    assert response.status_code == 302 and "username=chair" in response["Location"]
    # Her browser signs in at once; the attacker's still waits.
    assert _login(chair_browser, "chair").status_code == 302
    assert SecurityEvent.objects.filter(kind="unlocked", user=governance_member).exists()
    assert "Too many failed sign-ins" in _login(attacker, "chair").content.decode()
    # The link lets a browser in only with the right password.
    other_browser = _browser()
    other_browser.get(link)
    assert "did not match" in _login(other_browser, "chair", "guess").content.decode()


def test_an_unlock_link_is_only_for_its_username_and_does_not_last(manager, viewer):
    browser = _browser()
    for _ in range(5):
        _login(browser, "viewer", "guess")
    browser.get(reverse("sign_in_unlock", kwargs={"token": security.unlock_token("manager")}))
    assert "Too many failed sign-ins" in _login(browser, "viewer").content.decode()
    stale = security.unlock_token("viewer")
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=31)):
        response = browser.get(reverse("sign_in_unlock", kwargs={"token": stale}), follow=True)
        assert "expired" in response.content.decode()
    assert "Too many failed sign-ins" in _login(browser, "viewer").content.decode()
    forged = browser.get(reverse("sign_in_unlock", kwargs={"token": "viewer"}), follow=True)
    assert "expired" in forged.content.decode()


def test_asking_for_a_link_says_the_same_for_unknown_names_and_sends_at_most_one(manager):
    browser = _browser()
    for name in ["nobody", "manager", "manager"]:
        response = browser.post(reverse("sign_in_unlock_request"), {"username": name})
        assert response.status_code == 302 and response["Location"] == reverse("login")
    assert Alert.objects.filter(kind="sign-in-unlock").count() == 1
    assert browser.get(reverse("sign_in_unlock_request")).status_code == 200


def test_one_address_trying_many_usernames_is_paused(db, settings, manager):
    settings.AXES_FAILURE_LIMIT = 8
    scanner = _browser("203.0.113.9")
    for i in range(8):
        _login(scanner, f"user{i}", "guess")
    response = _login(scanner, "manager")
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert SecurityEvent.objects.filter(kind="locked_out").exists()
    # Other addresses are not.
    assert _login(_browser("198.51.100.7"), "manager").status_code == 302


def test_a_forwarded_for_header_is_ignored_unless_configured(db, settings):
    settings.AXES_FAILURE_LIMIT = 4
    rotating = _browser("203.0.113.9")
    for i in range(4):
        _login(rotating, f"user{i}", "guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    # The header was ignored: all four counted against the real address.
    assert _login(rotating, "user9", "guess").status_code == 429
    assert set(SecurityEvent.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}


def test_the_client_address_behind_a_configured_proxy(settings):
    factory = RequestFactory()
    spoofed = "1.2.3.4, 198.51.100.20"  # the client wrote 1.2.3.4; the proxy appended .20
    request = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=spoofed)
    assert security.client_ip(request) == "10.0.0.2"  # off by default
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"
    assert security.client_ip(request) == "198.51.100.20"
    settings.CLIENT_IP_PROXY_COUNT = 2  # two proxies, each appending
    request = factory.get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.20, 10.0.0.9"
    )
    assert security.client_ip(request) == "198.51.100.20"
    for bad in ["", "not-an-address", "10.0.0.9"]:  # missing, malformed, too few hops
        request = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=bad)
        assert security.client_ip(request) == "10.0.0.2"


@pytest.fixture
def enrolled_manager_session(manager):
    from tests.qip_portal.test_security import _totp_now

    device = TOTPDevice.objects.create(user=manager, name="phone", confirmed=True)
    client = _browser()
    _login(client, "manager")
    client.post(reverse("mfa_verify"), {"code": _totp_now(device)})
    return client


@pytest.mark.parametrize("url_name", ["mfa_disable", "mfa_recovery_codes"])
def test_wrong_passwords_confirming_two_step_changes_count_as_failed_sign_ins(
    enrolled_manager_session, manager, url_name
):
    """Weakness 1 (its /accounts/mfa/ half): these pages checked the password with no
    limit. Now each wrong one is a failed sign-in; after five, even the right one waits
    (and so does signing in)."""
    client = enrolled_manager_session
    for _ in range(4):
        response = client.post(reverse(url_name), {"password": "guess"}, follow=True)
        assert "Your password was not right" in response.content.decode()
    response = client.post(reverse(url_name), {"password": "guess"}, follow=True)
    assert "Too many wrong passwords: wait 30 seconds" in response.content.decode()
    assert SecurityEvent.objects.filter(kind="login_failed", user=manager).count() == 5
    response = client.post(reverse(url_name), {"password": PASSWORD}, follow=True)
    assert "Too many wrong passwords: wait 30 seconds" in response.content.decode()
    assert TOTPDevice.objects.filter(user=manager).exists()
    assert not manager.staticdevice_set.exists()
    assert "Too many failed sign-ins" in _login(_browser(), "manager").content.decode()


def test_a_chair_without_two_step_cannot_be_enrolled_with_the_password_alone(
    quality_lead, governance_member
):
    """Weakness 7d: whoever knew a new chair's password could put their own phone on
    the account. Enrolment now needs a link sent to the account's email address, opened
    in the session that enrols."""
    from governance import services as governance
    from governance.models import Membership
    from tests.qip_portal.test_security import _totp_now

    group = governance.create_group(by=quality_lead, name="Board", authority_level=3)
    governance.set_membership(
        group=group, user=governance_member, role=Membership.Role.CHAIR, by=quality_lead
    )
    intruder = _browser()
    _login(intruder, "member")
    response = intruder.get(reverse("home"))
    assert response["Location"].startswith(reverse("mfa_setup"))
    page = intruder.get(reverse("mfa_setup")).content.decode()
    assert "m•••@example.test" in page and "Email me the link" in page
    assert not TOTPDevice.objects.filter(user=governance_member).exists()  # no secret shown
    # Typing a code without the link enrols nothing.
    response = intruder.post(reverse("mfa_setup"), {"code": "123456"})
    assert response.status_code == 200
    assert not TOTPDevice.objects.filter(user=governance_member).exists()
    response = intruder.post(
        reverse("mfa_setup"), {"send": "1", "next": "/governance/"}, follow=True
    )
    assert "A link is on its way to m•••@example.test" in response.content.decode()
    alert = Alert.objects.get(kind="mfa-setup")
    assert alert.recipients == ["member@example.test"]
    assert SecurityEvent.objects.filter(kind="mfa_link_sent", user=governance_member).exists()
    link = re.search(r"https?://[^/\s]+(/accounts/mfa/setup/[^\s]+)", alert.body_text).group(1)
    # Someone else's link, or a forged one, does nothing.
    factories.UserFactory(username="other", role="governance_member")
    other = _browser()
    _login(other, "other")
    assert other.get(link, follow=True).request["PATH_INFO"] == reverse("mfa_setup")
    assert "Email me the link" in other.get(reverse("mfa_setup")).content.decode()
    # The chair opens the link (in her own signed-in browser) and enrols.
    chair = _browser()
    _login(chair, "member")
    response = chair.get(link)
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_setup"))
    assert "Scan this code" in chair.get(reverse("mfa_setup")).content.decode()
    device = TOTPDevice.objects.get(user=governance_member, confirmed=False)
    response = chair.post(reverse("mfa_setup"), {"code": _totp_now(device)})
    assert "Save your recovery codes" in response.content.decode()
    # The intruder's session, signed in with the password alone, never got that far.
    assert "Email me the link" in intruder.get(reverse("mfa_setup")).content.decode() or (
        intruder.get(reverse("mfa_setup"))["Location"] == reverse("mfa_settings")
    )
