"""Security events, the client's address, and sign-in throttling.

Recording: call ``record`` wherever an event happens; it never raises into the caller's
request (a failed audit write is logged, not shown to the user).

Sign-in throttling has two parts, so that nobody can lock a chair out by guessing:

- Per username (here): after ``LOGIN_FAILURE_LIMIT`` failures in a row, the next try
  for that username must wait ``LOGIN_DELAY_SECONDS`` after the last failure, doubling
  with each further failure up to ``LOGIN_COOLOFF_MINUTES``. A try during the wait is
  refused unchecked and is not a failure, so waiting always ends. The person can also
  email themselves an unlock link: the browser that opens it may sign in as them at
  once, whatever the throttle (``unlocked_in_this_browser``). Wrong passwords typed to
  turn off two-step verification or to replace recovery codes count too
  (``check_password_counted``).
- Per address (django-axes, ``LOGIN_ADDRESS_FAILURE_LIMIT`` failures in
  ``LOGIN_COOLOFF_MINUTES``): set high, so a shared NHS address is not locked by a few
  people's typos, but a single machine cannot try thousands of usernames. A browser
  holding an unlock link for the username it signs in as is exempt.

The client's address is REMOTE_ADDR, unless ``CLIENT_IP_HEADER`` names a header that a
trusted reverse proxy sets (off by default: anyone can send any header).
"""

from __future__ import annotations

import datetime
import ipaddress
import logging

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone

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
    """The address of the client (django-axes' ``AXES_CLIENT_IP_CALLABLE`` too).
    REMOTE_ADDR, unless ``CLIENT_IP_HEADER`` is set: then the address that the
    ``CLIENT_IP_PROXY_COUNT``-th trusted proxy from us appended to that header (for
    X-Forwarded-For, counted from the right, so addresses a client put there itself
    are never used). A missing or malformed header falls back to REMOTE_ADDR."""
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR") or None
    header = getattr(settings, "CLIENT_IP_HEADER", "")
    if not header:
        return remote
    value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
    hops = [part.strip() for part in value.split(",") if part.strip()]
    count = max(1, getattr(settings, "CLIENT_IP_PROXY_COUNT", 1))
    if len(hops) < count:
        return remote
    candidate = hops[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


# --- Per-username throttling -----------------------------------------------------------

UNLOCK_COOKIE = "qip_unlock"
_UNLOCK_SALT = "qip.sign-in-unlock"
UNLOCK_LINK_MINUTES = 30
UNLOCK_COOKIE_HOURS = 12
# Sign-in history looked at: failures older than this no longer slow anyone down.
_THROTTLE_HORIZON = datetime.timedelta(hours=24)
# The detail of a sign-in from a browser holding an unlock link.
UNLOCKED_SIGN_IN = "through an emailed unlock link"


def sign_in_wait(username: str, now: datetime.datetime | None = None) -> int:
    """Seconds before ``username`` may be tried again (0: now). Counted from the
    security events: failures since the last sign-in, within a day. (An unlock link
    does not reset it, nor does signing in through one: it exempts only the browser
    that opened it, so neither a mail scanner opening the link nor the person signing
    in frees the guesser.) One query."""
    from core.models import SecurityEvent

    if not username:
        return 0
    now = now or timezone.now()
    limit = settings.LOGIN_FAILURE_LIMIT
    base = settings.LOGIN_DELAY_SECONDS
    cap = settings.AXES_COOLOFF_TIME.total_seconds()
    # Enough rows to reach the cap; more failures than that wait the cap too.
    steps = limit + max(1, int(cap / max(base, 1)).bit_length() + 1)
    recent = list(
        SecurityEvent.objects.filter(
            username=username,
            kind__in=[
                SecurityEvent.Kind.LOGIN_FAILED,
                SecurityEvent.Kind.LOGIN,
            ],
            created_at__gte=now - _THROTTLE_HORIZON,
        )
        .order_by("-created_at", "-pk")
        .values_list("kind", "created_at", "detail")[:steps]
    )
    failures = 0
    for kind, _, detail in recent:
        if kind == SecurityEvent.Kind.LOGIN and detail != UNLOCKED_SIGN_IN:
            break  # a sign-in through an unlock link frees only that browser
        if kind == SecurityEvent.Kind.LOGIN_FAILED:
            failures += 1
    if failures < limit:
        return 0
    delay = min(base * 2 ** (failures - limit), cap)
    last_failure = next(at for kind, at, _ in recent if kind == SecurityEvent.Kind.LOGIN_FAILED)
    waited = (now - last_failure).total_seconds()
    return max(0, int(delay - waited + 0.999))


def wait_words(seconds: int) -> str:
    """ "25 seconds", "3 minutes"."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def unlock_token(username: str) -> str:
    """The token of an emailed unlock link (valid ``UNLOCK_LINK_MINUTES``)."""
    return signing.dumps(username, salt=_UNLOCK_SALT, compress=True)


def username_from_unlock_token(token: str) -> str | None:
    try:
        return signing.loads(token, salt=_UNLOCK_SALT, max_age=UNLOCK_LINK_MINUTES * 60)
    except signing.BadSignature:
        return None


def unlock_cookie_value(username: str) -> str:
    return signing.dumps(username, salt=_UNLOCK_SALT + ".cookie", compress=True)


def unlocked_in_this_browser(request: HttpRequest | None, username: str | None) -> bool:
    """Whether this browser opened an unlock link for ``username`` (within
    ``UNLOCK_COOKIE_HOURS``)."""
    value = getattr(request, "COOKIES", {}).get(UNLOCK_COOKIE) if request is not None else None
    if not value or not username:
        return False
    try:
        unlocked = signing.loads(
            value, salt=_UNLOCK_SALT + ".cookie", max_age=UNLOCK_COOKIE_HOURS * 3600
        )
    except signing.BadSignature:
        return False
    return unlocked == username


def axes_exempt(request: HttpRequest, credentials: dict | None) -> bool:
    """``AXES_WHITELIST_CALLABLE``: the per-address limit does not apply to a browser
    that opened an unlock link for the username it is signing in as."""
    return unlocked_in_this_browser(request, lockout_username(request, credentials))


class SignInThrottleBackend:
    """Placed before ModelBackend: refuses, without checking the password, a username
    that must wait (``sign_in_wait``). The login form says how long. It has no
    ``get_user`` on purpose: sessions name the backend that signed the person in."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        name = lockout_username(request, {"username": username} if username else None)
        if request is None or not name or unlocked_in_this_browser(request, name):
            return None
        wait = sign_in_wait(name)
        if wait:
            request.qip_sign_in_wait = wait
            raise PermissionDenied("wait")
        return None


def check_password_counted(request: HttpRequest, user, password: str) -> bool:
    """A password confirmation inside a session (turning off two-step verification,
    new recovery codes): refused while the username must wait, and a wrong password
    counts towards the same throttle as a failed sign-in."""
    if sign_in_wait(user.get_username()):
        return False
    if password and user.check_password(password):
        return True
    record(
        "login_failed",
        request=request,
        user=user,
        detail=f"wrong password confirming {request.path}"[:500],
    )
    return False


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
