from django.apps import AppConfig


class QipPortalConfig(AppConfig):
    name = "qip_portal"
    verbose_name = "QIP Portal"

    def ready(self) -> None:
        from qip_portal import (
            digest,  # noqa: F401 - registers the weekly digest job and task
            pack_views,
            recovery,  # noqa: F401 - registers the recovery job and task
        )

        pack_views.register_plan_panel()
