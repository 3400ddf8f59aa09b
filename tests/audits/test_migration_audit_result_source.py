"""Results written before an ``AuditResult`` kept what produced it are filled in from
their indicator's feed by the migration, when it is fed by the audit's tool; otherwise
left blank (corrected from the current feed, as before)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from audits.tools import services
from audits.tools.models import AuditResult, AuditTool
from tests.audits.tool_helpers import conduct, safeguarding_tool

BEFORE = [("audits", "0009_audit_pdf_working_index")]
AFTER = [("audits", "0010_audit_result_source")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _migrate_to_the_latest():
    """Every app's latest migration: going back to BEFORE also unapplied what depends
    on it in other apps, and the rest of the suite runs in this database."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_results_written_before_are_filled_in_from_their_feed(
    plan, quality_lead, manager, oakfield
):
    from tests import factories

    tool = safeguarding_tool(quality_lead)
    services.feed_indicator(
        indicator=plan.indicators.get(), tool=tool, scope="section", key="S1", by=quality_lead
    )
    other_plan = factories.live_plan(owner=quality_lead, locations=[oakfield], title="Other")
    services.feed_indicator(
        indicator=other_plan.indicators.get(), tool=tool, scope="overall", key="", by=quality_lead
    )
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}])
    # Since submission, the other plan's indicator is fed by another tool.
    services.feed_indicator(
        indicator=other_plan.indicators.get(),
        tool=AuditTool.objects.exclude(pk=tool.pk).first(),
        scope="overall",
        key="",
        by=quality_lead,
    )
    try:
        _migrate(BEFORE)
        _migrate(AFTER)
    finally:
        _migrate_to_the_latest()
    filled = AuditResult.objects.get(measurement__indicator__plan=plan)
    assert (filled.scope, filled.key, filled.version_id) == ("section", "S1", audit.version_id)
    blank = AuditResult.objects.get(measurement__indicator__plan=other_plan)
    assert (blank.scope, blank.key, blank.version_id) == ("", "", audit.version_id)
