from django.urls import path

from audits import views
from audits.tools.urls import urlpatterns as tool_urls
from plans import converters  # noqa: F401 - registers <plan_ref:...>

app_name = "audits"

urlpatterns = [
    path("", views.due, name="due"),
    path("plans/<plan_ref:reference>/log/", views.log_measurement, name="log"),
    path("plans/<plan_ref:reference>/audit/", views.log_audit, name="log_audit"),
    path("plans/<plan_ref:reference>/notes/new/", views.add_note, name="add_note"),
    path(
        "plans/<plan_ref:reference>/indicators/<int:pk>/limits/",
        views.recalculate_limits,
        name="recalculate_limits",
    ),
    path("plans/<plan_ref:reference>/icons/", views.plan_icons, name="plan_icons"),
    path(
        "plans/<plan_ref:reference>/results/<int:pk>/correct/",
        views.edit_measurement,
        name="edit_measurement",
    ),
    path(
        "plans/<plan_ref:reference>/results/export.<str:kind>",
        views.export_measurements,
        name="export",
    ),
    path("plans/<plan_ref:reference>/evidence/new/", views.add_evidence, name="add_evidence"),
    path("evidence/<int:pk>/download/", views.download_evidence, name="download_evidence"),
    path("plans/<plan_ref:reference>/import/", views.import_upload, name="import"),
    path(
        "plans/<plan_ref:reference>/import/template.<str:kind>",
        views.import_template,
        name="import_template",
    ),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("imports/<int:pk>/commit/", views.import_commit, name="import_commit"),
    path("imports/<int:pk>/retry/", views.import_retry, name="import_retry"),
    *tool_urls,  # audit tools and audits (audits/tools/urls.py)
]
