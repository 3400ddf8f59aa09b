from django.contrib import admin

from core.models import SecurityEvent


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
