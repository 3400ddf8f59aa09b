from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting helpers below the domain apps: email, safe exports, scheduled-job
    registry, security events."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import signals  # noqa: F401 - connects the security-event receivers
