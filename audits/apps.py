from django.apps import AppConfig


class AuditsConfig(AppConfig):
    name = "audits"
    verbose_name = "Audits"

    def ready(self) -> None:
        from audits import sweeps  # noqa: F401  (registers the scheduled jobs)
        from audits.monitoring import (
            deteriorating_plans,
            deterioration_guard,
            monitoring_complete_guard,
        )
        from audits.verdicts import readiness_guard, ready_plans
        from audits.views import plan_panel_context
        from plans.flags import Flag, register_flag
        from plans.lifecycle import register_guard
        from plans.panels import Panel, register_panel

        register_panel(
            Panel(
                name="audits",
                template="audits/_plan_panel.html",
                context=plan_panel_context,
                order=10,
            )
        )
        register_guard("readiness", readiness_guard)
        register_guard("deterioration", deterioration_guard)
        register_guard("monitoring_complete", monitoring_complete_guard)
        register_flag(Flag("ready", "ready for closure review", ready_plans))
        register_flag(Flag("deteriorating", "deteriorating in monitoring", deteriorating_plans))
