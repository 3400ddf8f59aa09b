from django.contrib import admin

from core import outbox
from core.models import Alert, SecurityEvent


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    """Read-only: security events are evidence and are never edited or deleted here."""

    list_display = ["created_at", "kind", "username", "ip_address", "path", "detail"]
    list_filter = ["kind"]
    search_fields = ["username", "ip_address", "path", "detail"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Recent alerts and failures, read-only: what was sent to whom, when, and why a
    failure failed. The one action puts failed alerts back in the queue (for after the
    mail server is fixed); the claim in ``core.outbox.deliver`` still sends each once."""

    list_display = [
        "created_at",
        "kind",
        "subject",
        "status",
        "attempts",
        "sent_at",
        "next_attempt_at",
        "short_error",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["key", "subject"]
    date_hierarchy = "created_at"
    actions = ["send_again"]
    fields = [
        "kind",
        "key",
        "recipients",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "error",
        "subject",
        "body_text",
    ]
    readonly_fields = fields

    @admin.display(description="error")
    def short_error(self, obj: Alert) -> str:
        return obj.error[:120]

    @admin.action(description="Send the selected failed alerts again", permissions=["resend"])
    def send_again(self, request, queryset):
        count = outbox.retry_failed(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} failed alert(s) will be sent within a minute.")

    def has_resend_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
