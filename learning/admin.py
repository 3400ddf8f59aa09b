from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from learning.models import Acknowledgement, Embedding, LearningReview, LearningSummary


@admin.register(LearningSummary)
class LearningSummaryAdmin(SimpleHistoryAdmin):
    list_display = ["plan", "status", "updated_at"]
    list_filter = ["status"]
    search_fields = ["plan__reference", "plan__title"]
    raw_id_fields = ["plan", "created_by"]


@admin.register(Embedding)
class EmbeddingAdmin(SimpleHistoryAdmin):
    list_display = ["summary", "kind", "status", "embedded_on"]
    list_filter = ["kind", "status"]
    raw_id_fields = ["summary", "raised_by_review", "recorded_by"]


@admin.register(Acknowledgement)
class AcknowledgementAdmin(SimpleHistoryAdmin):
    list_display = ["summary", "manager", "location", "shared_at", "acknowledged_at"]
    raw_id_fields = ["summary", "manager", "shared_by"]


@admin.register(LearningReview)
class LearningReviewAdmin(SimpleHistoryAdmin):
    list_display = ["summary", "months_after_closure", "due_on", "outcome"]
    list_filter = ["outcome"]
    raw_id_fields = ["summary", "reviewed_by"]
