from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from qip_portal import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("plans/", include("plans.urls")),
    path("audits/", include("audits.urls")),
    path("governance/", include("governance.urls")),
    path("learning/", include("learning.urls")),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "QIP Portal administration"
admin.site.site_title = "QIP Portal admin"
