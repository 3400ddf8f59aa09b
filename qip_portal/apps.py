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

        from core import freshness
        from qip_portal import plan_pages

        # After a commit moved a plan's version: its page rendered again for its recent
        # viewers (by a worker), so the next view is a hit.
        freshness.on_plans_committed(plan_pages.queue_rerenders)
