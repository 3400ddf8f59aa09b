from django.urls import path

from governance import views

app_name = "governance"

# The live closure report, its submission and the decision form are the closure
# workflow's pages, added under this namespace by qip_portal/urls.py.

urlpatterns = [
    path("", views.home, name="home"),
    path("groups/", views.group_list, name="groups"),
    path("groups/new/", views.group_create, name="group_create"),
    path("groups/<int:pk>/", views.group_detail, name="group"),
    path("groups/<int:pk>/members/", views.member_add, name="member_add"),
    path(
        "groups/<int:pk>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path("groups/<int:pk>/meetings/", views.meeting_create, name="meeting_create"),
    path("meetings/<int:pk>/", views.meeting_detail, name="meeting"),
    path("meetings/<int:pk>/agenda/", views.agenda_add, name="agenda_add"),
    path("reports/", views.report_list, name="reports"),
    path("reports/<int:pk>/", views.report_detail, name="report"),
    path("reports/<int:pk>/pdf/", views.report_pdf, name="report_pdf"),
    path("reports/<int:pk>/snapshot.pdf", views.report_snapshot_pdf, name="report_snapshot_pdf"),
    path("reports/<int:pk>/pdf/status/", views.report_pdf_status, name="report_pdf_status"),
    path("reports/<int:pk>/pdf/retry/", views.report_pdf_retry, name="report_pdf_retry"),
]
