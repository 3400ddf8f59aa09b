"""Signing in and out, password change and reset, and unlocking an account after too
many failed sign-ins."""

import time
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from core import outbox, security


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset: the same answer whether or not the address has an account
    (no user enumeration). Each request is recorded as a security event."""

    def form_valid(self, form):
        from core import security

        security.record(
            "password_reset_requested", request=self.request, detail=form.cleaned_data["email"]
        )
        return super().form_valid(form)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Changing the password ends every other session (Django checks the password hash
    on each request); this one stays signed in. Recorded as a security event."""

    def form_valid(self, form):
        from core import security

        response = super().form_valid(form)
        security.record("password_changed", request=self.request)
        return response


# --- Signing in: the per-username wait and the emailed unlock link ----------------------


class SignInForm(AuthenticationForm):
    """Django's sign-in form; when the username must wait (core/security.py), it says
    how long instead of "did not match"."""

    sign_in_wait = 0

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            self.sign_in_wait = getattr(self.request, "qip_sign_in_wait", 0)
            if self.sign_in_wait:
                raise ValidationError(
                    "Too many failed sign-ins for this username. Wait "
                    f"{security.wait_words(self.sign_in_wait)} and try again, or email yourself "
                    "a link that lets this browser sign in now.",
                    code="throttled",
                ) from None
            raise


class LoginView(auth_views.LoginView):
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def get_initial(self):
        # Filled in after an unlock link is opened.
        return {"username": self.request.GET.get("username", "")[: security.USERNAME_MAX_LENGTH]}


class UnlockRequestForm(forms.Form):
    username = forms.CharField(
        label="Username", max_length=security.USERNAME_MAX_LENGTH, strip=True
    )


@login_not_required
@require_http_methods(["GET", "POST"])
def unlock_request(request: HttpRequest) -> HttpResponse:
    """Ask for an unlock link: emailed to the account's address, at most once every ten
    minutes. The same answer whether or not the username exists."""
    form = UnlockRequestForm(
        request.POST or None,
        initial={"username": request.GET.get("username", "")[: security.USERNAME_MAX_LENGTH]},
    )
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        user = (
            get_user_model()
            .objects.filter(username=username, is_active=True)
            .exclude(email="")
            .first()
        )
        if user is not None:
            with transaction.atomic():
                alert = outbox.queue(
                    "sign-in-unlock",
                    key=f"sign-in-unlock:{user.pk}:{int(time.time() // 600)}",
                    recipients=[user.email],
                    context={
                        "user": user,
                        "token": security.unlock_token(user.get_username()),
                        "link_minutes": security.UNLOCK_LINK_MINUTES,
                        "cookie_hours": security.UNLOCK_COOKIE_HOURS,
                    },
                )
                if alert is not None:
                    security.record("unlock_link_sent", request=request, user=user)
        messages.info(
            request,
            "If that username has an email address, a link is on its way. It lets the "
            f"browser you open it in sign in straight away, for {security.UNLOCK_COOKIE_HOURS} "
            "hours.",
        )
        return redirect("login")
    return render(
        request,
        "registration/unlock_request.html",
        {"form": form, "cookie_hours": security.UNLOCK_COOKIE_HOURS},
    )


@login_not_required
def unlock(request: HttpRequest, token: str) -> HttpResponse:
    """Open an emailed unlock link: this browser may sign in as its person whatever the
    waits (for ``UNLOCK_COOKIE_HOURS``); nobody else's waits change."""
    username = security.username_from_unlock_token(token)
    if username is None:
        messages.error(
            request,
            "That unlock link has expired or is not valid. Ask for a new one below.",
        )
        return redirect("sign_in_unlock_request")
    user = get_user_model().objects.filter(username=username).first()
    security.record("unlocked", request=request, user=user, username=username)
    messages.success(request, "This browser may sign in now. Enter your password.")
    response = redirect(f"{reverse('login')}?{urlencode({'username': username})}")
    response.set_cookie(
        security.UNLOCK_COOKIE,
        security.unlock_cookie_value(username),
        max_age=security.UNLOCK_COOKIE_HOURS * 3600,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response
