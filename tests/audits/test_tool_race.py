"""Submitting one audit from two tabs at once: exactly one submission counts (the audit
row is locked and its status read under the lock). PostgreSQL, real concurrency."""

import threading

import pytest
from django.db import connection

from audits.models import Measurement
from audits.tools import services
from audits.tools.models import Audit, AuditResult, Finding
from tests.audits.tool_helpers import conduct, safeguarding_tool


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_tabs_submitting_at_once_count_once(plan, quality_lead, manager, oakfield):
    tool = safeguarding_tool(quality_lead)
    services.feed_indicator(
        indicator=plan.indicators.first(),
        tool=tool,
        scope="question",
        key="S1.Q1",
        by=quality_lead,
    )
    audit = conduct(
        tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}, {}], submit=False
    )
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit():
        try:
            barrier.wait()
            services.submit_audit(audit=Audit.objects.get(pk=audit.pk), by=manager)
            outcomes.append("ok")
        except services.AuditRefused as refused:
            outcomes.append(" ".join(refused.reasons))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["This audit has already been submitted.", "ok"]
    assert Audit.history.filter(id=audit.pk, history_change_reason="Audit submitted").count() == 1
    assert Measurement.objects.filter(indicator__plan=plan).count() == 1
    assert AuditResult.objects.count() == 1 and Finding.objects.count() == 1
