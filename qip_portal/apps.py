from django.apps import AppConfig


class QipPortalConfig(AppConfig):
    name = "qip_portal"
    verbose_name = "QIP Portal"

    def ready(self) -> None:
        from qip_portal import (  # noqa: F401 - each registers its scheduled jobs and tasks
            alerts,
            closure,
            digest,
            pack_tasks,
            recovery,
            sessions,
        )

        sessions.connect()
