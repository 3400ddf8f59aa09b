"""Reference data (groups, memberships) is editable here; submitted reports and signed
decisions are shown read-only: no one changes a signed record, not even an admin."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from governance.models import (
    AgendaItem,
    ClosureReport,
    Decision,
    GovernanceGroup,
    Meeting,
    Membership,
    ResidualRisk,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(GovernanceGroup)
class GovernanceGroupAdmin(SimpleHistoryAdmin):
    list_display = ["name", "authority_level", "is_active"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(SimpleHistoryAdmin):
    list_display = ["user", "group", "role"]
    list_filter = ["group", "role"]


class AgendaItemInline(admin.TabularInline):
    model = AgendaItem
    extra = 0
    readonly_fields = ["report", "added_by"]
    can_delete = False


@admin.register(Meeting)
class MeetingAdmin(SimpleHistoryAdmin):
    list_display = ["group", "held_on"]
    list_filter = ["group"]
    filter_horizontal = ["attendees"]
    readonly_fields = ["created_by", "created_at"]
    inlines = [AgendaItemInline]


@admin.register(ResidualRisk)
class ResidualRiskAdmin(SimpleHistoryAdmin):
    list_display = ["plan", "description", "recorded_by", "recorded_at"]
    readonly_fields = ["plan", "recorded_by", "recorded_at"]


class ReadOnlyAdmin(SimpleHistoryAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ClosureReport)
class ClosureReportAdmin(ReadOnlyAdmin):
    list_display = ["plan", "group", "status", "submitted_by", "submitted_at", "sha256"]
    list_filter = ["status", "group"]
    exclude = ["content_html", "content_json"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["report", "outcome", "signed_by", "signed_at", "snapshot_sha256"]
    list_filter = ["outcome"]
