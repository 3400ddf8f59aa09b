from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        from governance import panels, services
        from plans.lifecycle import register_guard
        from plans.panels import Panel, register_panel

        register_guard("closure_report", services.closure_report_guard)
        register_guard("governance_decision", services.governance_decision_guard)
        register_panel(
            Panel(
                name="governance",
                template="governance/_plan_panel.html",
                context=panels.plan_panel_context,
                order=50,
            )
        )
