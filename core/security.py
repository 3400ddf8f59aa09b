"""Recording security events. Call ``record`` wherever one happens; it never raises
into the caller's request (a failed audit write is logged, not shown to the user)."""

from __future__ import annotations

import logging

from django.http import HttpRequest

logger = logging.getLogger(__name__)

# The longest username an account can have (Django's ``AbstractUser``): a longer one names
# nobody. django-axes stores what it is given in a 255-character column, so a 300-character
# attempt used to fail the sign-in page with a database error instead of "did not match".
USERNAME_MAX_LENGTH = 150


def lockout_username(request: HttpRequest | None, credentials: dict | None = None) -> str | None:
    """The username django-axes counts failed sign-ins against (``AXES_USERNAME_CALLABLE``):
    as typed, without surrounding spaces, cut to the longest an account can have. Every
    attempt at one over-long name is then counted under the same cut name, so the lockout
    still applies to it."""
    if credentials:
        username = credentials.get("username")
    else:
        data = getattr(request, "data", None) or getattr(request, "POST", None) or {}
        username = data.get("username")
    if username is None:
        return None
    return str(username).strip()[:USERNAME_MAX_LENGTH]


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # The same address django-axes throttles on (REMOTE_ADDR unless a proxy is configured).
    from axes.helpers import get_client_ip_address

    return get_client_ip_address(request)


def record(
    kind: str,
    *,
    request: HttpRequest | None = None,
    user=None,
    username: str = "",
    detail: str = "",
) -> None:
    from core.models import SecurityEvent

    if user is None and request is not None and getattr(request, "user", None) is not None:
        user = request.user if request.user.is_authenticated else None
    try:
        SecurityEvent.objects.create(
            kind=kind,
            user=user,
            username=(username or (user.get_username() if user else ""))[:150],
            ip_address=client_ip(request),
            path=(request.get_full_path() if request is not None else "")[:300],
            detail=detail[:500],
        )
    except Exception:  # noqa: BLE001 - auditing must not break the request
        logger.exception("Could not record security event %s", kind)
