from django.apps import AppConfig


class AuditsConfig(AppConfig):
    name = "audits"
    verbose_name = "Audits"

    def ready(self) -> None:
        from audits.views import plan_panel_context
        from plans.panels import Panel, register_panel

        register_panel(
            Panel(
                name="audits",
                template="audits/_plan_panel.html",
                context=plan_panel_context,
                order=10,
            )
        )
