"""URLs of audit tools and audits, included in ``audits/urls.py`` (namespace ``audits``)."""

from django.urls import path

from audits.tools import editor_views, views, xlsx_views
from plans import converters  # noqa: F401 - registers <plan_ref:...>

urlpatterns = [
    path("tools/", views.tool_list, name="tool_list"),
    path("tools/new/", editor_views.tool_new, name="tool_new"),
    path("tools/<int:pk>/", views.tool_detail, name="tool_detail"),
    path("tools/<int:pk>/edit/", editor_views.tool_edit, name="tool_edit"),
    path("tools/<int:pk>/export.xlsx", xlsx_views.tool_export, name="tool_export"),
    path("tools/<int:pk>/compliance/", xlsx_views.compliance, name="compliance"),
    path(
        "tools/<int:pk>/compliance.<str:kind>",
        xlsx_views.compliance_export,
        name="compliance_export",
    ),
    path("tools/import/", xlsx_views.tool_import, name="tool_import"),
    path("tools/import/<int:pk>/", xlsx_views.tool_import_detail, name="tool_import_detail"),
    path("conduct/", views.audit_list, name="audit_list"),
    path("conduct/new/", views.audit_start, name="audit_start"),
    path("conduct/<int:pk>/", views.audit_detail, name="audit_detail"),
    path("conduct/<int:pk>/records/<int:position>/", views.audit_record, name="audit_record"),
    path(
        "conduct/<int:pk>/records/<int:position>/answer/",
        views.audit_answer,
        name="audit_answer",
    ),
    path(
        "conduct/<int:pk>/records/<int:position>/correct/",
        views.audit_correct,
        name="audit_correct",
    ),
    path("conduct/<int:pk>/review/", views.audit_review, name="audit_review"),
    path("conduct/<int:pk>/submit/", views.audit_submit, name="audit_submit"),
    path(
        "conduct/<int:pk>/findings/<int:answer_id>/action/",
        views.raise_action,
        name="raise_action",
    ),
    path("conduct/<int:pk>/pdf/", views.audit_pdf, name="audit_pdf"),
    path("conduct/<int:pk>/pdf/request/", views.audit_pdf_request, name="audit_pdf_request"),
    path("conduct/<int:pk>/pdf/status/", views.audit_pdf_status, name="audit_pdf_status"),
    path("plans/<plan_ref:reference>/feed/", views.feed_indicator, name="feed_indicator"),
]
