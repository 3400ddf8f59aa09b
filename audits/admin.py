from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from audits.models import AuditTheme, IndicatorSchedule


@admin.register(AuditTheme)
class AuditThemeAdmin(SimpleHistoryAdmin):
    list_display = ["name", "default_frequency"]
    search_fields = ["name"]


@admin.register(IndicatorSchedule)
class IndicatorScheduleAdmin(SimpleHistoryAdmin):
    list_display = ["indicator", "audit_theme"]
    list_select_related = ["indicator", "audit_theme"]
    raw_id_fields = ["indicator"]
