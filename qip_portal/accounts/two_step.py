"""Two-step verification (TOTP with recovery codes) on top of Django's sign-in."""

from __future__ import annotations

import base64
import io
import time
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import outbox, security
from qip_portal.accounts.middleware import mfa_required
from qip_portal.pages import digest

RECOVERY_CODES = 10


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Verification code",
        max_length=16,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
    )


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    # A path on this site only: ``redirect()`` would take anything else without a "/"
    # for the name of a URL pattern, and fail on one that names none.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


THROTTLED = "Too many wrong codes in a row. Wait {seconds} seconds, then try the newest code."


def _throttle_message(device) -> str | None:
    """django-otp doubles the wait after each wrong code; say how long is left."""
    allowed, data = device.verify_is_allowed()
    if allowed:
        return None
    until = (data or {}).get("locked_until")
    seconds = max(1, int((until - timezone.now()).total_seconds()) + 1) if until else 1
    return THROTTLED.format(seconds=seconds)


def _verify(user, code: str):
    """The device that accepts ``code`` (TOTP first, then a single-use recovery code)."""
    code = code.strip().replace(" ", "")
    for device in devices_for_user(user, confirmed=True):
        if isinstance(device, TOTPDevice) and code.isdigit() and device.verify_token(code):
            return device
    for device in devices_for_user(user, confirmed=True):
        if isinstance(device, StaticDevice) and device.verify_token(code.lower()):
            return device
    return None


def verify(request: HttpRequest) -> HttpResponse:
    """Second step of sign-in."""
    user = request.user
    if user.is_verified() or not user_has_device(user, confirmed=True):
        return redirect(_next(request))
    form = CodeForm(request.POST or None)
    totp = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    throttled = _throttle_message(totp) if totp else None
    if request.method == "POST" and throttled:
        form.is_valid()
        form.add_error("code", throttled)
    elif request.method == "POST" and form.is_valid():
        device = _verify(user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                security.record("mfa_recovery_used", request=request)
                left = device.token_set.count()
                messages.warning(
                    request,
                    f"You used a recovery code; {left} left. "
                    "Make new ones from your security settings.",
                )
            return redirect(_next(request))
        security.record("mfa_failed", request=request)
        form.add_error(
            "code", "That code is not right, or has expired. Try the newest code from your app."
        )
    return render(request, "registration/mfa_verify.html", {"form": form, "next": _next(request)})


def _qr_data_uri(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=12)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


# Enrolment needs more than the password: whoever knows a chair's password must not be
# able to put their own phone on the account. The person first opens a link emailed to
# the account's address, in the session that will enrol; the session remembers it.
SETUP_CONFIRMED_KEY = "qip_mfa_setup_confirmed"
_SETUP_SALT = "qip.mfa-setup"
SETUP_LINK_MINUTES = 60


def _masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def _setup_email_step(request: HttpRequest) -> HttpResponse:
    """Before enrolling: email a link to the account's address (POST "send")."""
    user = request.user
    if request.method == "POST" and request.POST.get("send") and user.email:
        with transaction.atomic():
            alert = outbox.queue(
                "mfa-setup",
                # At most one every ten minutes.
                key=f"mfa-setup:{user.pk}:{int(time.time() // 600)}",
                recipients=[user.email],
                context={
                    "user": user,
                    "token": signing.dumps(user.pk, salt=_SETUP_SALT),
                    "next": _next(request),
                    "link_minutes": SETUP_LINK_MINUTES,
                },
            )
            if alert is not None:
                security.record("mfa_link_sent", request=request)
        messages.success(
            request,
            f"A link is on its way to {_masked(user.email)}, unless one was sent in the last "
            f"ten minutes. Open it in this browser, while you are signed in, within "
            f"{SETUP_LINK_MINUTES} minutes.",
        )
        return redirect(f"{reverse('mfa_setup')}?{urlencode({'next': _next(request)})}")
    return render(
        request,
        "registration/mfa_setup_email.html",
        {
            "email": _masked(user.email) if user.email else "",
            "next": _next(request),
            "required": mfa_required(user),
            "link_minutes": SETUP_LINK_MINUTES,
        },
    )


def setup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: lets this session go on to enrol an authenticator."""
    try:
        user_pk = signing.loads(token, salt=_SETUP_SALT, max_age=SETUP_LINK_MINUTES * 60)
    except signing.BadSignature:
        user_pk = None
    if user_pk != request.user.pk:
        messages.error(
            request,
            "That link has expired, or is for another account. Ask for a new one below.",
        )
        return redirect("mfa_setup")
    request.session[SETUP_CONFIRMED_KEY] = request.user.pk
    return redirect(f"{reverse('mfa_setup')}?{urlencode({'next': _next(request)})}")


def setup(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app: confirm by email link first, then scan, type a code
    to prove it works, get recovery codes."""
    user = request.user
    if user_has_device(user, confirmed=True):
        messages.info(request, "Two-step verification is already on.")
        return redirect("mfa_settings")
    if request.session.get(SETUP_CONFIRMED_KEY) != user.pk:
        return _setup_email_step(request)
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, confirmed=False, defaults={"name": "Authenticator app"}
    )
    form = CodeForm(request.POST or None)
    throttled = _throttle_message(device)
    if request.method == "POST" and throttled:
        form.is_valid()
        form.add_error("code", throttled)
    elif request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].strip()):
            with transaction.atomic():
                device.confirmed = True
                device.save()
                codes = _new_recovery_codes(user)
            otp_login(request, device)
            request.session.pop(SETUP_CONFIRMED_KEY, None)
            security.record("mfa_enabled", request=request)
            return render(
                request,
                "registration/mfa_recovery_codes.html",
                {"codes": codes, "next": _next(request)},
            )
        form.add_error(
            "code",
            "That code did not match. "
            "Check the time on your phone is right and try the newest code.",
        )
    secret = base64.b32encode(device.bin_key).decode()
    return render(
        request,
        "registration/mfa_setup.html",
        {
            "form": form,
            "qr": _qr_data_uri(device.config_url),
            "secret": secret,
            "next": _next(request),
            "required": mfa_required(user),
        },
    )


def _new_recovery_codes(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    has_mfa = user_has_device(user, confirmed=True)
    recovery_left = StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
    return render(
        request,
        "registration/mfa_settings.html",
        {
            "has_mfa": has_mfa,
            "recovery_left": recovery_left,
            "required": mfa_required(user),
            "form": PasswordConfirmForm(),
        },
    )


def _wrong_password(user, outcome: str) -> str:
    wait = security.sign_in_wait(user.get_username())
    if wait:
        words = security.wait_words(wait)
        return f"Too many wrong passwords: wait {words} before trying again; {outcome}."
    return f"Your password was not right; {outcome}."


@require_POST
def regenerate_codes(request: HttpRequest) -> HttpResponse:
    form = PasswordConfirmForm(request.POST)
    if not (
        form.is_valid()
        and security.check_password_counted(request, request.user, form.cleaned_data["password"])
    ):
        messages.error(request, _wrong_password(request.user, "nothing was changed"))
        return redirect("mfa_settings")
    if not user_has_device(request.user, confirmed=True):
        return redirect("mfa_setup")
    codes = _new_recovery_codes(request.user)
    security.record("mfa_enabled", request=request, detail="recovery codes replaced")
    return render(request, "registration/mfa_recovery_codes.html", {"codes": codes, "next": "/"})


@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    user = request.user
    if mfa_required(user):
        messages.error(
            request, "Your role requires two-step verification, so it cannot be turned off."
        )
        return redirect("mfa_settings")
    form = PasswordConfirmForm(request.POST)
    if not (
        form.is_valid()
        and security.check_password_counted(request, user, form.cleaned_data["password"])
    ):
        messages.error(request, _wrong_password(user, "two-step verification is still on"))
        return redirect("mfa_settings")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
    security.record("mfa_disabled", request=request)
    messages.success(request, "Two-step verification is off.")
    return redirect("mfa_settings")


@require_POST
def digest_preference(request: HttpRequest) -> HttpResponse:
    """Turn one's own weekly digest on or off (escalations cannot be turned off)."""
    enabled = request.POST.get("weekly_digest") == "on"
    digest.set_weekly_digest(user=request.user, enabled=enabled)
    messages.success(
        request, "Weekly digest turned on." if enabled else "Weekly digest turned off."
    )
    return redirect("mfa_settings")
