from django.apps import AppConfig


class QipPortalConfig(AppConfig):
    name = "qip_portal"
    verbose_name = "QIP Portal"

    def ready(self) -> None:
        from qip_portal import (
            alerts,  # noqa: F401 - registers the daily failed-emails job and task
            digest,  # noqa: F401 - registers the weekly digest job and task
            pack_views,
        )

        pack_views.register_plan_panel()
