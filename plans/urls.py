from django.urls import path

from plans import views

app_name = "plans"

urlpatterns = [
    path("new/", views.create, name="create"),
    path("<str:reference>/edit/", views.edit, name="edit"),
    path("<str:reference>/criteria/", views.edit_criteria, name="edit_criteria"),
    path("<str:reference>/indicators/new/", views.add_indicator, name="add_indicator"),
    path("<str:reference>/triggers/new/", views.add_trigger, name="add_trigger"),
    path("<str:reference>/actions/new/", views.action_form, name="add_action"),
    path("<str:reference>/actions/<int:action_id>/", views.action_form, name="edit_action"),
    path(
        "<str:reference>/actions/<int:action_id>/verify/", views.verify_action, name="verify_action"
    ),
    path("<str:reference>/<str:name>/", views.transition, name="transition"),
]
