"""Indicators fed by an audit tool: a submitted audit writes the result through the same
service as a typed one, corrections flow through with their reason, failed questions
become repeat findings (escalated once in monitoring) or actions."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from audits import sweeps
from audits.models import Deterioration, Measurement, next_due_on
from audits.tools import services
from audits.tools.models import Answer, AuditResult, Finding
from audits.tools.services import AuditRefused
from plans.models import Action, Indicator
from tests import factories
from tests.audits.factories import measure
from tests.audits.test_monitoring import TODAY
from tests.audits.tool_helpers import conduct, safeguarding_tool

pytestmark = pytest.mark.django_db


def _feed(plan, tool, lead, scope="overall", key=""):
    return services.feed_indicator(
        indicator=plan.indicators.first(), tool=tool, scope=scope, key=key, by=lead
    )


def test_a_submitted_audit_writes_the_fed_indicators_result(plan, quality_lead, manager, oakfield):
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead, scope="question", key="S1.Q1")
    answers = [{"S1.Q1": "no"}, {"S1.Q1": "na"}] + [{}] * 8  # 8 of 9 counted
    audit = conduct(tool, location=oakfield, by=manager, answers=answers)
    m = Measurement.objects.get(indicator__plan=plan)
    assert (m.numerator, m.denominator, m.value) == (8, 9, Decimal("88.889"))
    assert m.measured_on == audit.audited_on and m.location == oakfield
    assert m.source == Measurement.Source.RE_AUDIT and f"Audit #{audit.pk}" in m.notes
    assert AuditResult.objects.get(measurement=m).audit == audit
    indicator = Indicator.objects.get(pk=m.indicator_id)
    assert indicator.last_measured_on == audit.audited_on  # the next due date follows
    assert next_due_on(
        frequency=indicator.frequency,
        last_measured_on=indicator.last_measured_on,
        start=plan.opened_on,
    ) == audit.audited_on + datetime.timedelta(days=31)


def test_a_section_or_overall_score_feeds_a_non_proportion_as_a_percentage(
    quality_lead, manager, oakfield
):
    tool = safeguarding_tool(quality_lead)
    plan = factories.live_plan(
        owner=quality_lead,
        locations=[oakfield],
        indicators=[
            {
                "name": "Escalation score",
                "measure_type": "score",
                "direction": "higher",
                "target": Decimal("90"),
                "unit": "",
                "frequency": "monthly",
            },
        ],
    )
    _feed(plan, tool, quality_lead, scope="section", key="S1")
    conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no", "S1.Q2": "na"}, {}])
    m = Measurement.objects.get(indicator__plan=plan)  # S1: 2 yes of 3 counted
    assert (m.numerator, m.denominator, m.value) == (None, None, Decimal("66.700"))


def test_an_audit_at_another_location_writes_nothing(
    plan, quality_lead, manager, riverside, outsider
):
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead)
    conduct(tool, location=riverside, by=outsider, answers=[{}])
    assert not Measurement.objects.exists()


def test_a_date_clash_refuses_the_submission_and_leaves_nothing_half_saved(
    plan, quality_lead, manager, oakfield
):
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead)
    measure(plan, by=manager, on=timezone.localdate())
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}], submit=False)
    with pytest.raises(AuditRefused, match="already has a result"):
        services.submit_audit(audit=audit, by=manager)
    audit.refresh_from_db()
    assert not audit.is_submitted
    assert Measurement.objects.count() == 1 and not Finding.objects.exists()


def test_a_correction_flows_to_the_result_with_its_reason(plan, quality_lead, manager, oakfield):
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead, scope="question", key="S1.Q1")
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}, {}])
    question = audit.version.questions.get(key="S1.Q1")
    record = audit.records.get(position=1)
    with pytest.raises(AuditRefused, match="Say why"):
        services.correct_audit(
            audit=audit, record=record, by=manager, values={question.pk: "yes"}, reason=" "
        )
    changes = services.correct_audit(
        audit=audit,
        record=record,
        by=manager,
        values={question.pk: "yes"},
        reason="Escalation found in the handover book",
    )
    assert changes == ["S1.Q1: no → yes"]
    m = Measurement.objects.get(indicator__plan=plan)
    assert (m.numerator, m.denominator) == (2, 2)
    reasons = list(m.history.values_list("history_change_reason", flat=True))
    assert any("Escalation found in the handover book" in (r or "") for r in reasons)
    answer = Answer.objects.get(record=record, question=question)
    assert answer.history.first().history_change_reason.startswith("Corrected: Escalation")
    assert answer.history.last().value == "no"


def test_a_no_raises_an_action_with_the_question_and_record(plan, quality_lead, manager, oakfield):
    tool = safeguarding_tool(quality_lead)  # no plan fed by it: nothing covers the question
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S2.Q1": "no"}])
    answer = Answer.objects.get(record__audit=audit, value="no")
    finding = services.raise_action(
        answer=answer, plan=plan, by=manager, owner=manager, due_date=timezone.localdate()
    )
    action = Action.objects.get(pk=finding.action_id)
    assert "S2.Q1" in action.description and "record R1" in action.description
    assert "Is the record factual" in action.description
    with pytest.raises(AuditRefused, match="already raised"):
        services.raise_action(
            answer=answer, plan=plan, by=manager, owner=manager, due_date=timezone.localdate()
        )


def test_a_no_on_a_covered_question_is_linked_not_duplicated(plan, quality_lead, manager, oakfield):
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead, scope="question", key="S1.Q1")
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no", "S2.Q1": "no"}])
    finding = Finding.objects.get(audit=audit)
    assert finding.kind == Finding.Kind.REPEAT and finding.plan == plan
    assert finding.answer.question.key == "S1.Q1"
    assert plan.actions.count() == 1  # the factory's; no new action


def test_a_repeat_finding_in_monitoring_escalates_once(
    stepped_down, quality_lead, manager, oakfield, run, mailoutbox
):
    plan = stepped_down.plan
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead, scope="question", key="S1.Q1")
    mailoutbox.clear()
    # 9 of 10: above the floor (85%) and inside the frozen limits: only the finding fires.
    answers = [{"S1.Q1": "no"}] + [{}] * 9
    audit = run(conduct, tool, location=oakfield, by=manager, answers=answers, on=TODAY)
    rows = list(Deterioration.objects.filter(period=stepped_down))
    assert [(d.kind, d.rule) for d in rows] == [("repeat", "repeat_finding")]
    assert "R1" in rows[0].explanation and "S1.Q1" in rows[0].explanation
    assert rows[0].measurement.audit_result.audit == audit
    assert len(mailoutbox) == 1 and mailoutbox[0].subject.startswith("Deterioration")
    assert Finding.objects.get(audit=audit).kind == Finding.Kind.REPEAT
    run(sweeps.deterioration)
    assert len(mailoutbox) == 1 and Deterioration.objects.count() == 1


def test_the_closure_report_and_evidence_pack_list_the_audits_behind_results(
    plan, quality_lead, manager, oakfield
):
    from qip_portal import closure
    from qip_portal.packs.evidence_pack import compile_plan_pack, render_plan_pack_html

    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead)
    audit = conduct(tool, location=oakfield, by=manager, answers=[{}, {}])
    report = closure.compile_report(plan)
    (audits,) = [i["audits"] for i in report["indicators"]]
    assert len(audits) == 1 and audits[0].startswith(f"Audit #{audit.pk}: Safeguarding records v1")
    html = render_plan_pack_html(compile_plan_pack(plan))
    assert f"Audit #{audit.pk}: Safeguarding records v1, 2 records" in html


def test_an_audit_whose_plan_has_closed_is_not_corrected(plan, quality_lead, manager, oakfield):
    from tests.learning.helpers import close_plan

    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead)
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}])
    close_plan(plan, by=quality_lead)
    question = audit.version.questions.get(key="S1.Q1")
    with pytest.raises(AuditRefused, match="Nothing was corrected"):
        services.correct_audit(
            audit=audit,
            record=audit.records.get(),
            by=manager,
            values={question.pk: "yes"},
            reason="Found later",
        )
    assert Answer.objects.get(record__audit=audit, question=question).value == "no"


@pytest.mark.parametrize("scope,key", [("question", "S1.Q2"), ("section", "S1"), ("overall", "")])
def test_a_correction_recomputes_the_result_as_it_was_computed_at_submission(
    plan, quality_lead, manager, oakfield, scope, key
):
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead, scope="question", key="S1.Q1")
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}, {"S1.Q2": "no"}])
    result = AuditResult.objects.get(audit=audit)
    assert (result.scope, result.key, result.version) == ("question", "S1.Q1", audit.version)
    assert result.history.get().scope == "question"  # kept in its history too
    m = Measurement.objects.get(indicator__plan=plan)
    assert (m.numerator, m.denominator) == (1, 2)
    # The indicator's feed changes within the same tool after submission...
    _feed(plan, tool, quality_lead, scope=scope, key=key)
    question = audit.version.questions.get(key="S1.Q1")
    services.correct_audit(
        audit=audit,
        record=audit.records.get(position=1),
        by=manager,
        values={question.pk: "yes"},
        reason="Escalation found in the handover book",
    )
    # ...and the correction still counts S1.Q1, as the result was written: 2 of 2.
    m.refresh_from_db()
    assert (m.numerator, m.denominator) == (2, 2)
    result.refresh_from_db()
    assert (result.scope, result.key) == ("question", "S1.Q1")


def test_a_result_is_corrected_as_written_even_once_the_indicator_is_fed_by_another_tool(
    plan, quality_lead, manager, oakfield
):
    from audits.tools.models import AuditTool

    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead, scope="question", key="S1.Q1")
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}, {}])
    other = AuditTool.objects.exclude(pk=tool.pk).first()
    _feed(plan, other, quality_lead)
    question = audit.version.questions.get(key="S1.Q1")
    services.correct_audit(
        audit=audit,
        record=audit.records.get(position=1),
        by=manager,
        values={question.pk: "yes"},
        reason="Found later",
    )
    m = Measurement.objects.get(indicator__plan=plan)
    assert (m.numerator, m.denominator) == (2, 2)  # the audit's own result follows it
