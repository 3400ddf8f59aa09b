from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from simple_history.admin import SimpleHistoryAdmin

from plans.models import Location, QualityStatement, Regulation, Theme, User


@admin.register(User)
class PortalUserAdmin(UserAdmin, SimpleHistoryAdmin):
    list_display = ["username", "first_name", "last_name", "email", "role", "is_active"]
    list_filter = ["role", "is_active", "locations"]
    fieldsets = UserAdmin.fieldsets + (
        ("Role in the portal", {"fields": ["role", "job_title", "locations"]}),
    )
    add_fieldsets = UserAdmin.add_fieldsets + (
        (
            "Role in the portal",
            {"fields": ["email", "first_name", "last_name", "role", "locations"]},
        ),
    )
    filter_horizontal = ["groups", "user_permissions", "locations"]


@admin.register(Location)
class LocationAdmin(SimpleHistoryAdmin):
    list_display = ["name", "cqc_location_id", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "cqc_location_id"]


@admin.register(Theme)
class ThemeAdmin(SimpleHistoryAdmin):
    search_fields = ["name"]


@admin.register(QualityStatement)
class QualityStatementAdmin(SimpleHistoryAdmin):
    list_display = ["name", "key_question"]
    list_filter = ["key_question"]


@admin.register(Regulation)
class RegulationAdmin(SimpleHistoryAdmin):
    list_display = ["number", "title"]
