from django.urls import path

from learning import views
from plans import converters  # noqa: F401 - registers <plan_ref:...>

app_name = "learning"

urlpatterns = [
    path("", views.library, name="library"),
    path("to-read/", views.to_read, name="to_read"),
    path("acknowledgements/<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("reviews/", views.reviews, name="reviews"),
    path("reviews/<int:pk>/", views.review, name="review"),
    path("reviews/<int:pk>/agenda/", views.review_agenda, name="review_agenda"),
    path("<plan_ref:reference>/", views.detail, name="detail"),
    path("<plan_ref:reference>/summary/", views.summary_form, name="summary"),
    path("<plan_ref:reference>/share/", views.share, name="share"),
    path("<plan_ref:reference>/embedding/new/", views.embedding_form, name="add_embedding"),
    path("<plan_ref:reference>/embedding/<int:pk>/", views.embedding_form, name="edit_embedding"),
    path(
        "<plan_ref:reference>/embedding/<int:pk>/file/",
        views.embedding_file,
        name="embedding_file",
    ),
]
