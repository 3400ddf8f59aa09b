from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from qip_portal import accounts, alerts, pack_views, views

# Inspection evidence packs (qip_portal/evidence_pack.py).
pack_patterns = (
    [
        path("plans/<str:reference>/", pack_views.plan_pack, name="plan"),
        path("plans/<str:reference>/evidence.zip", pack_views.plan_zip, name="plan_zip"),
        path("register/", pack_views.register_pack, name="register"),
        path("<int:pk>/status/", pack_views.pack_status, name="status"),
        path("<int:pk>/pdf/", pack_views.pack_pdf, name="pdf"),
    ],
    "packs",
)

# Emails that could not be sent (administrators only; qip_portal/alerts.py).
alert_patterns = (
    [
        path("failed/", alerts.failed_list, name="failed"),
        path("failed/<int:pk>/retry/", alerts.retry, name="retry"),
        path("failed/retry-all/", alerts.retry_all, name="retry_all"),
    ],
    "alerts",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("accounts/security/", accounts.settings_page, name="mfa_settings"),
    path("accounts/mfa/setup/", accounts.setup, name="mfa_setup"),
    path("accounts/mfa/verify/", accounts.verify, name="mfa_verify"),
    path("accounts/mfa/recovery-codes/", accounts.regenerate_codes, name="mfa_recovery_codes"),
    path("accounts/mfa/disable/", accounts.disable, name="mfa_disable"),
    path("accounts/digest/", accounts.digest_preference, name="digest_preference"),
    path("plans/", include("plans.urls")),
    path("audits/", include("audits.urls")),
    path("governance/", include("governance.urls")),
    path("learning/", include("learning.urls")),
    path("packs/", include(pack_patterns)),
    path("alerts/", include(alert_patterns)),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "QIP Portal administration"
admin.site.site_title = "QIP Portal admin"
