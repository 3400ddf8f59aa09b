from django.urls import path

from governance import views

app_name = "governance"

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
    path("plans/<str:reference>/report/", views.plan_report, name="plan_report"),
    path("plans/<str:reference>/risks/", views.risk_add, name="risk_add"),
    path(
        "plans/<str:reference>/risks/<int:risk_id>/remove/",
        views.risk_remove,
        name="risk_remove",
    ),
    path("plans/<str:reference>/submit/", views.submit, name="submit"),
    path("reports/", views.report_list, name="reports"),
    path("reports/<int:pk>/", views.report_detail, name="report"),
    path("reports/<int:pk>/pdf/", views.report_pdf, name="report_pdf"),
    path("reports/<int:pk>/pdf/status/", views.report_pdf_status, name="report_pdf_status"),
    path("reports/<int:pk>/pdf/retry/", views.report_pdf_retry, name="report_pdf_retry"),
    path("reports/<int:pk>/decide/", views.decide, name="decide"),
]
