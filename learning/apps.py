from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "learning"
    verbose_name = "Learning"

    def ready(self) -> None:
        from governance.sections import ReportSection, register_section
        from learning import panels, services, sweeps  # noqa: F401 - sweeps register jobs
        from plans.lifecycle import register_guard
        from plans.panels import Panel, register_panel

        register_guard("learning_summary", services.learning_summary_gaps)
        register_section(ReportSection(name="learning", compile=panels.report_section, order=200))
        register_panel(
            Panel(
                name="learning",
                template="learning/_panel.html",
                context=panels.panel_context,
                order=300,
            )
        )
