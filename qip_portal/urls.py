from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from audits import urls as audits_urls
from governance import urls as governance_urls
from plans import converters  # noqa: F401 - registers <plan_ref:...>
from plans import urls as plans_urls
from qip_portal.accounts import security_events, sign_in
from qip_portal.accounts import two_step as accounts
from qip_portal.closure import views as closure_views
from qip_portal.packs import share_views
from qip_portal.packs import views as pack_views
from qip_portal.pages import failed_emails as alerts
from qip_portal.pages import home
from qip_portal.pages import plans as plan_pages

# Inspection evidence packs (qip_portal/packs/evidence_pack.py).
pack_patterns = (
    [
        path("plans/<plan_ref:reference>/", pack_views.plan_pack, name="plan"),
        path("plans/<plan_ref:reference>/evidence.zip", pack_views.plan_zip, name="plan_zip"),
        path("register/", pack_views.register_pack, name="register"),
        path("<int:pk>/status/", pack_views.pack_status, name="status"),
        path("<int:pk>/pdf/", pack_views.pack_pdf, name="pdf"),
        path("<int:pk>/retry/", pack_views.pack_retry, name="retry"),
        # Share links for inspectors (qip_portal/packs/sharing.py).
        path("plans/<plan_ref:reference>/shares/", share_views.plan_shares, name="shares"),
        path("shares/<int:pk>/revoke/", share_views.share_revoke, name="share_revoke"),
    ],
    "packs",
)
# What a share link opens, with no login: its page, the PDF and the evidence ZIP.
shared_patterns = (
    [
        path("<str:token>/", share_views.shared_page, name="page"),
        path("<str:token>/pdf/", share_views.shared_pdf, name="pdf"),
        path("<str:token>/evidence.zip", share_views.shared_zip, name="zip"),
    ],
    "shared",
)

# The plan page and the register are composed from every app (qip_portal/pages/plans.py);
# the closure workflow's pages (qip_portal/closure/views.py) keep the names of the
# records they show. "new/" is matched before a plan's reference.
plan_patterns = (
    [
        path("", plan_pages.register, name="register"),
        *plans_urls.urlpatterns,
        path("<plan_ref:reference>/", plan_pages.detail, name="detail"),
    ],
    "plans",
)
audit_patterns = (
    [
        # Saving a result or evidence may make a plan ready: announced at once (closure workflow).
        path("plans/<plan_ref:reference>/log/", closure_views.log_measurement, name="log"),
        path(
            "plans/<plan_ref:reference>/results/<int:pk>/correct/",
            closure_views.edit_measurement,
            name="edit_measurement",
        ),
        path(
            "plans/<plan_ref:reference>/evidence/new/",
            closure_views.add_evidence,
            name="add_evidence",
        ),
        path("plans/<plan_ref:reference>/audit/", closure_views.log_audit, name="log_audit"),
        path("conduct/<int:pk>/submit/", closure_views.audit_submit, name="audit_submit"),
        path(
            "conduct/<int:pk>/records/<int:position>/correct/",
            closure_views.audit_correct,
            name="audit_correct",
        ),
        *audits_urls.urlpatterns,
        path("plans/<plan_ref:reference>/reopen/", closure_views.reopen, name="reopen"),
    ],
    "audits",
)
governance_patterns = (
    [
        *governance_urls.urlpatterns,
        path("plans/<plan_ref:reference>/report/", closure_views.plan_report, name="plan_report"),
        path("plans/<plan_ref:reference>/risks/", closure_views.risk_add, name="risk_add"),
        path(
            "plans/<plan_ref:reference>/risks/<int:risk_id>/remove/",
            closure_views.risk_remove,
            name="risk_remove",
        ),
        path("plans/<plan_ref:reference>/submit/", closure_views.submit, name="submit"),
        path("reports/<int:pk>/decide/", closure_views.decide, name="decide"),
        path(
            "plans/<plan_ref:reference>/monitoring-decision/",
            closure_views.monitoring_decision,
            name="monitoring_decision",
        ),
    ],
    "governance",
)
# Emails that could not be sent (administrators only; qip_portal/pages/failed_emails.py).
alert_patterns = (
    [
        path("failed/", alerts.failed_list, name="failed"),
        path("failed/<int:pk>/retry/", alerts.retry, name="retry"),
        path("failed/retry-all/", alerts.retry_all, name="retry_all"),
    ],
    "alerts",
)

urlpatterns = [
    path("", home.home, name="home"),
    path("healthz", home.healthz, name="healthz"),
    path("accounts/login/", sign_in.LoginView.as_view(), name="login"),
    path("accounts/unlock/", sign_in.unlock_request, name="sign_in_unlock_request"),
    path("accounts/unlock/<str:token>/", sign_in.unlock, name="sign_in_unlock"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", sign_in.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password/reset/", sign_in.PasswordResetView.as_view(), name="password_reset"),
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
    path("accounts/mfa/setup/<str:token>/", accounts.setup_confirm, name="mfa_setup_confirm"),
    path("accounts/mfa/verify/", accounts.verify, name="mfa_verify"),
    path("accounts/mfa/recovery-codes/", accounts.regenerate_codes, name="mfa_recovery_codes"),
    path("accounts/mfa/disable/", accounts.disable, name="mfa_disable"),
    path("accounts/digest/", accounts.digest_preference, name="digest_preference"),
    path("security-events/", security_events.security_events, name="security_events"),
    path("plans/", include(plan_patterns)),
    path("audits/", include(audit_patterns)),
    path("governance/", include(governance_patterns)),
    path("learning/", include("learning.urls")),
    path("packs/", include(pack_patterns)),
    path("share/", include(shared_patterns)),
    path("alerts/", include(alert_patterns)),
    path("admin/", admin.site.urls),
]

admin.site.site_header = "QIP Portal administration"
admin.site.site_title = "QIP Portal admin"
