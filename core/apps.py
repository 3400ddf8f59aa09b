from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting helpers below the domain apps: email and the alert outbox, safe
    exports, scheduled-job registry, security events."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import freshness, outbox, signals  # noqa: F401 - security receivers; outbox jobs

        freshness.connect()
