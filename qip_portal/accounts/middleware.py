from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django_otp import user_has_device

# Pages a signed-in user can reach before completing two-step verification.
_OPEN_BEFORE_MFA = {
    "login",
    "logout",
    "sign_in_unlock_request",
    "sign_in_unlock",
    "mfa_verify",
    "mfa_setup",
    "mfa_setup_confirm",
    "healthz",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}


ENROLLED_KEY = "qip_mfa_enrolled"
REQUIRED_KEY = "qip_mfa_required"


def mfa_required(user) -> bool:
    """Administrators (and other roles listed in MFA_REQUIRED_ROLES) must use two-step
    verification; so must anyone who chairs a governance group, because they sign."""
    if user.role in settings.MFA_REQUIRED_ROLES:
        return True
    from governance.access import chairs_a_group  # qip_portal composes every app

    return chairs_a_group(user)


class MultiFactorMiddleware:
    """A user with an authenticator must enter a code after their password; a user whose
    role requires one is sent to set it up before anything else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        match = request.resolver_match
        if match is not None and match.url_name in _OPEN_BEFORE_MFA:
            return None
        query = urlencode({"next": request.get_full_path()})
        # Looked up once per session: enrolling happens inside a session (and verifies
        # it), so the answer cannot go stale in a way that skips the check.
        enrolled = request.session.get(ENROLLED_KEY)
        if enrolled is None:
            enrolled = request.session[ENROLLED_KEY] = user_has_device(user, confirmed=True)
        if enrolled:
            return redirect(f"/accounts/mfa/verify/?{query}")
        # Also once per session: someone made a chair (or given a role that needs it) has
        # their sessions ended by the change (qip_portal/accounts/sessions.py), so the next
        # one asks.
        required = request.session.get(REQUIRED_KEY)
        if required is None:
            required = request.session[REQUIRED_KEY] = mfa_required(user)
        if required:
            messages.warning(
                request, "Your role requires two-step verification. Please set it up now."
            )
            return redirect(f"/accounts/mfa/setup/?{query}")
        return None
