from django.conf import settings
from django.db import models
from django.utils import timezone


class SecurityEvent(models.Model):
    """What an information-governance review asks to see: sign-ins, failures, MFA
    changes, refusals, exports, downloads and sign-offs. Append-only: written by
    ``core.security.record`` and never edited (the admin is read-only)."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Signed in"
        LOGOUT = "logout", "Signed out"
        LOGIN_FAILED = "login_failed", "Failed sign-in"
        LOCKED_OUT = "locked_out", "Locked out after failed sign-ins"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        PASSWORD_RESET_REQUESTED = "password_reset_requested", "Password reset requested"
        MFA_ENABLED = "mfa_enabled", "Two-step verification turned on"
        MFA_DISABLED = "mfa_disabled", "Two-step verification turned off"
        MFA_FAILED = "mfa_failed", "Wrong verification code"
        MFA_RECOVERY_USED = "mfa_recovery_used", "Recovery code used"
        SESSION_EXPIRED = "session_expired", "Session ended by the time limit"
        PERMISSION_REFUSED = "permission_refused", "Access refused"
        EXPORT = "export", "Data exported"
        FILE_DOWNLOAD = "file_download", "File downloaded"
        SIGN_OFF = "sign_off", "Governance sign-off"
        SIGN_FAILED = "sign_failed", "Wrong password or code when signing"
        SIGN_LOCKED = "sign_locked", "Signing locked after failed attempts"
        ROLE_CHANGED = "role_changed", "Role or group membership changed"
        LOGIN_THROTTLED = "login_throttled", "Sign-in refused: wait after failures"
        UNLOCK_LINK_SENT = "unlock_link_sent", "Sign-in unlock link emailed"
        UNLOCKED = "unlocked", "Sign-in unlocked by emailed link"
        MFA_LINK_SENT = "mfa_link_sent", "Two-step set-up link emailed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as typed, so failed sign-ins for unknown names are recorded too.
    username = models.CharField(max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["kind", "created_at"]),
            # Sign-in throttling counts one username's recent failures (core/security.py).
            models.Index(fields=["username", "created_at"], name="security_event_username"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.username} {self.created_at:%Y-%m-%d %H:%M}"


class Alert(models.Model):
    """One email the portal owes someone (the outbox; see ``core/outbox.py``).

    The row is created, with a unique key naming the kind, the object and the period,
    *before* anything is sent, so the same alert can never be queued twice. A sender
    claims it with a conditional UPDATE (pending -> sending) so only one worker sends
    it, then records ``sent_at`` or the error. Subject and bodies are rendered when the
    alert is queued, so a retry sends exactly what was first meant and an administrator
    can read it. Not history-tracked: it is delivery bookkeeping, not a domain record."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=64)
    key = models.CharField(max_length=255, unique=True)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["status", "claimed_at"]),
            models.Index(fields=["kind", "created_at"]),
        ]

    def __str__(self) -> str:
        return self.key
