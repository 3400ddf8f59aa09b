from django.apps import AppConfig


class PlansConfig(AppConfig):
    name = "plans"
    verbose_name = "Plans"

    def ready(self) -> None:
        from plans import sweeps  # noqa: F401 - registers the scheduled jobs
