from django.apps import AppConfig


class QipPortalConfig(AppConfig):
    name = "qip_portal"
    verbose_name = "QIP Portal"

    def ready(self) -> None:
        # Each registers its scheduled jobs and tasks with Celery.
        from qip_portal import closure, recovery  # noqa: F401
        from qip_portal.accounts import sessions
        from qip_portal.packs import tasks as pack_tasks  # noqa: F401
        from qip_portal.pages import digest, failed_emails  # noqa: F401

        sessions.connect()

        from core import freshness
        from qip_portal.pages import plans as plan_pages

        # After a commit moved a plan's version: its page rendered again for its recent
        # viewers (by a worker), so the next view is a hit.
        freshness.on_plans_committed(plan_pages.queue_rerenders)
