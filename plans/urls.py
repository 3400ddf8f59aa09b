from django.urls import path

from plans import converters, views  # noqa: F401 - converters registers <plan_ref:...>

app_name = "plans"

urlpatterns = [
    path("new/", views.create, name="create"),
    path("<plan_ref:reference>/edit/", views.edit, name="edit"),
    path("<plan_ref:reference>/criteria/", views.edit_criteria, name="edit_criteria"),
    path("<plan_ref:reference>/indicators/new/", views.add_indicator, name="add_indicator"),
    path("<plan_ref:reference>/triggers/new/", views.add_trigger, name="add_trigger"),
    path("<plan_ref:reference>/actions/new/", views.action_form, name="add_action"),
    path("<plan_ref:reference>/actions/<int:action_id>/", views.action_form, name="edit_action"),
    path(
        "<plan_ref:reference>/actions/<int:action_id>/verify/",
        views.verify_action,
        name="verify_action",
    ),
    path("<plan_ref:reference>/<str:name>/", views.transition, name="transition"),
]
