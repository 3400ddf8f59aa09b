"""Security events for sign-in and lockout. These receivers only *record*; no domain
rule lives here."""

import time

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from core import security
from core.middleware import SESSION_STARTED


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_STARTED] = time.time()
    unlocked = security.unlocked_in_this_browser(request, user.get_username())
    security.record(
        "login", request=request, user=user, detail=security.UNLOCKED_SIGN_IN if unlocked else ""
    )


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        security.record("logout", request=request, user=user)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    username = security.lockout_username(request, credentials) or ""
    wait = getattr(request, "qip_sign_in_wait", 0)
    if wait:
        # Refused unchecked while the username waits: not a failure, so waiting ends.
        security.record(
            "login_throttled", request=request, username=username, detail=f"wait {wait} s"
        )
        return
    security.record("login_failed", request=request, username=username)


@receiver(user_locked_out)
def _locked_out(sender, request, username=None, ip_address=None, **kwargs):
    security.record("locked_out", request=request, username=username or "")
