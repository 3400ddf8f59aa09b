"""Share links: a plan's evidence pack for an inspector or commissioner who has no login.

A quality lead creates a link for a named recipient, valid for ``SHARE_LINK_DEFAULT_DAYS``
(at most ``SHARE_LINK_MAX_DAYS``). Creating it asks for a pack rendered for that
recipient (their name and the expiry in every page's footer), in the background like
any pack. The link serves that PDF and the plan's evidence ZIP, and nothing else.

The token is a 12-character selector and a 43-character secret (256 random bits).
The database keeps the selector and the SHA-256 of the secret: the selector finds the
row, the secret's hash is compared in constant time. The token is shown once, to the
person who made it. Every request made with a link is logged (time, address, what,
outcome) and shown to quality leads; each address may make
``SHARE_LINK_REQUESTS_PER_MINUTE`` such requests a minute, valid or not.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from core import security
from core.history import save_with_history as _save
from core.thresholds import SHARE_LINK_DEFAULT_DAYS, SHARE_LINK_MAX_DAYS
from plans.models import Plan, User
from qip_portal.packs import evidence_pack
from qip_portal.packs.models import PackShare, PackShareAccess

SECRET_BYTES = 32  # 43 characters of URL-safe base64
TOKEN_CHARS = PackShare.SELECTOR_CHARS + 43


class ShareRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class NewShare:
    share: PackShare
    token: str  # shown once; never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii", "replace")).hexdigest()


def can_share(user: User) -> bool:
    """Quality leads and administrators decide what leaves the organisation."""
    return user.is_authenticated and user.is_active and user.is_organisation_lead


@transaction.atomic
def share_plan_pack(
    *,
    plan: Plan,
    by: User,
    recipient: str,
    organisation: str = "",
    days: int = SHARE_LINK_DEFAULT_DAYS,
) -> NewShare:
    """Create a share link to ``plan``'s evidence pack for ``recipient``, valid for
    ``days`` (1 to ``SHARE_LINK_MAX_DAYS``), and ask for the recipient's copy of the
    pack (rendered after commit). Returns the share and its token, which is not stored
    and cannot be shown again. Raises ``ShareRefused`` (a bad recipient or length) or
    ``stuck.TooMuchWaiting`` (``by`` has as many packs waiting as one person may),
    creating nothing. The caller has checked ``can_share(by)`` and that ``by`` reads
    ``plan``."""
    recipient = " ".join((recipient or "").split())
    organisation = " ".join((organisation or "").split())
    if not recipient:
        raise ShareRefused("Name the person the link is for.")
    if not 1 <= days <= SHARE_LINK_MAX_DAYS:
        raise ShareRefused(f"A link lasts from 1 to {SHARE_LINK_MAX_DAYS} days.")
    now = timezone.now()
    pack = evidence_pack.request_plan_pack(plan=plan, by=by)
    selector = secrets.token_urlsafe(9)  # 12 characters
    secret = secrets.token_urlsafe(SECRET_BYTES)
    share = PackShare(
        plan=plan,
        pack=pack,
        recipient=recipient,
        organisation=organisation,
        selector=selector,
        verifier_sha256=_digest(secret),
        created_by=by,
        created_at=now,
        expires_at=now + datetime.timedelta(days=days),
    )
    _save(share, by=by, reason=f"Shared with {share.recipient_label}"[:100])
    return NewShare(share=share, token=selector + secret)


@transaction.atomic
def revoke_share(*, share: PackShare, by: User) -> bool:
    """Withdraw a link at once. Returns False, changing nothing, if it was already
    withdrawn. An expired link may still be withdrawn (the record says so)."""
    locked = PackShare.objects.select_for_update().get(pk=share.pk)
    if locked.is_revoked:
        return False
    locked.revoked_at = timezone.now()
    locked.revoked_by = by
    _save(locked, by=by, reason="Share link withdrawn")
    share.revoked_at, share.revoked_by = locked.revoked_at, by
    return True


# The secret of a link that does not exist is compared with this, so an unknown
# selector costs the same work as a known one.
_NO_SHARE_DIGEST = _digest("no such share")


def find_share(token: str) -> PackShare | None:
    """The share a token names, whatever its state (expired and withdrawn links get
    their own page), or None. The secret is compared in constant time."""
    token = token or ""
    if len(token) != TOKEN_CHARS or not token.isascii():
        return None
    selector, secret = token[: PackShare.SELECTOR_CHARS], token[PackShare.SELECTOR_CHARS :]
    share = (
        PackShare.objects.select_related("plan", "pack__plan", "created_by")
        .filter(selector=selector)
        .first()
    )
    expected = share.verifier_sha256 if share is not None else _NO_SHARE_DIGEST
    matches = hmac.compare_digest(_digest(secret), expected)
    return share if share is not None and matches else None


def is_throttled(request: HttpRequest) -> bool:
    """Count this request against its address's allowance for the current minute; True
    when the allowance is used up. A cache outage lets the request through (logged by
    the cache's caller): the token's length, not the throttle, is what stops guessing."""
    address = security.client_ip(request) or "unknown"
    minute = int(timezone.now().timestamp() // 60)
    key = f"share-link:{address}:{minute}"
    try:
        added = cache.add(key, 1, timeout=90)
        count = 1 if added else cache.incr(key)
    except Exception:  # noqa: BLE001 - a throttle must not take the page down
        return False
    return count > settings.SHARE_LINK_REQUESTS_PER_MINUTE


def record_access(
    share: PackShare, request: HttpRequest, *, what: str, outcome: str
) -> PackShareAccess:
    """Log one request made with ``share``'s link."""
    return PackShareAccess.objects.create(
        share=share,
        what=what,
        outcome=outcome,
        address=security.client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:200],
    )


def refusal(share: PackShare) -> str | None:
    """The access-log outcome of a link that may not be used now, or None."""
    if share.is_revoked:
        return PackShareAccess.Outcome.REVOKED
    if share.is_expired():
        return PackShareAccess.Outcome.EXPIRED
    return None


def shares_for_plan(plan: Plan) -> list[PackShare]:
    """Every link made for ``plan``, newest first, with its pack and access log: three
    queries however many links and accesses."""
    return list(
        PackShare.objects.filter(plan=plan)
        .select_related("pack__requested_by", "pack__plan", "created_by", "revoked_by")
        .prefetch_related("accesses")
        .order_by("-created_at", "-pk")
    )
