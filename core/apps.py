from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting helpers below the four domain apps: email, safe exports."""

    name = "core"
    verbose_name = "Core"
