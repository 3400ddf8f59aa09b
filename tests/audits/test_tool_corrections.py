"""Findings follow a correction exactly as they follow a submission: a new "No" takes
the submission's path (a repeat finding on the plan covering its question, escalated
once in monitoring), and a "No" corrected away has its finding withdrawn, with the
correction's reason, its history, and any action it raised left on its plan."""

import pytest
from django.urls import reverse
from django.utils import timezone

from audits.models import Deterioration
from audits.tools import services
from audits.tools.models import Answer, Finding
from core.models import Alert
from plans.models import Action
from tests.audits.test_monitoring import TODAY
from tests.audits.tool_helpers import conduct, safeguarding_tool

pytestmark = pytest.mark.django_db


def _feed(plan, tool, lead, key="S1.Q1"):
    return services.feed_indicator(
        indicator=plan.indicators.first(), tool=tool, scope="question", key=key, by=lead
    )


def _correct(audit, position, key, value, by, reason="Checked the care record again"):
    question = audit.version.questions.get(key=key)
    return services.correct_audit(
        audit=audit,
        record=audit.records.get(position=position),
        by=by,
        values={question.pk: value},
        reason=reason,
    )


def test_a_no_corrected_to_yes_withdraws_its_repeat_finding_with_the_reason(
    client, plan, quality_lead, manager, oakfield
):
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead)
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}, {}])
    finding = Finding.objects.get(audit=audit)
    assert finding.kind == Finding.Kind.REPEAT and not finding.is_withdrawn
    _correct(audit, 1, "S1.Q1", "yes", manager, reason="Escalation was in the handover book")
    finding.refresh_from_db()  # kept, not deleted
    assert finding.status == Finding.Status.WITHDRAWN
    assert finding.withdrawn_by == manager and finding.withdrawn_at is not None
    assert finding.withdrawn_reason == "Escalation was in the handover book"
    latest = finding.history.first()
    assert latest.status == "withdrawn"
    assert latest.history_change_reason == (
        "Withdrawn by a correction: Escalation was in the handover book"
    )
    assert finding.history.last().status == "open"
    client.force_login(manager)
    page = client.get(reverse("audits:audit_detail", args=[audit.pk])).content.decode()
    assert "Findings withdrawn by a correction" in page and "Finding corrected" in page
    assert "Escalation was in the handover book" in page
    assert "No “No” answers." in page
    plan_page = client.get(plan.get_absolute_url()).content.decode()
    assert "Withdrawn by a correction" in plan_page


def test_a_no_corrected_away_keeps_the_action_it_raised_and_says_so(
    client, plan, quality_lead, manager, oakfield
):
    tool = safeguarding_tool(quality_lead)  # nothing fed: the "No" raises an action
    audit = conduct(tool, location=oakfield, by=manager, answers=[{"S2.Q1": "no"}])
    answer = Answer.objects.get(record__audit=audit, value="no")
    finding = services.raise_action(
        answer=answer, plan=plan, by=manager, owner=manager, due_date=timezone.localdate()
    )
    _correct(audit, 1, "S2.Q1", "na", manager, reason="Not applicable to this resident")
    finding.refresh_from_db()
    assert finding.is_withdrawn and finding.kind == Finding.Kind.ACTION
    assert Action.objects.filter(pk=finding.action_id).exists()  # not deleted
    client.force_login(manager)
    page = client.get(reverse("audits:audit_detail", args=[audit.pk])).content.decode()
    assert "its finding was corrected" in page and "Not applicable to this resident" in page
    assert "corrected to “Not applicable”" in page
    # A "No" again opens the same finding again: one finding per answer, never two.
    _correct(audit, 1, "S2.Q1", "no", manager, reason="It was applicable after all")
    finding.refresh_from_db()
    assert not finding.is_withdrawn and finding.withdrawn_reason == ""
    assert Finding.objects.filter(answer=answer).count() == 1
    assert "It was applicable after all" in finding.history.first().history_change_reason


def test_a_yes_corrected_to_no_becomes_a_repeat_finding_as_at_submission(
    plan, quality_lead, manager, oakfield
):
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead)
    audit = conduct(tool, location=oakfield, by=manager, answers=[{}, {}])
    assert not Finding.objects.exists()
    _correct(audit, 2, "S1.Q1", "no", manager, reason="No escalation record found")
    finding = Finding.objects.get(audit=audit)
    assert (finding.kind, finding.plan, finding.answer.question.key) == ("repeat", plan, "S1.Q1")
    assert finding.answer.record.position == 2 and finding.created_by == manager
    assert "No escalation record found" in finding.history.get().history_change_reason


def test_a_yes_corrected_to_no_on_an_uncovered_question_waits_for_an_action(
    client, plan, quality_lead, manager, oakfield
):
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead)  # covers S1.Q1 only
    audit = conduct(tool, location=oakfield, by=manager, answers=[{}])
    _correct(audit, 1, "S2.Q1", "no", manager)
    assert not Finding.objects.exists()
    answer = Answer.objects.get(record__audit=audit, value="no")
    client.force_login(manager)
    page = client.get(reverse("audits:audit_detail", args=[audit.pk])).content.decode()
    assert reverse("audits:raise_action", args=[audit.pk, answer.pk]) in page


def test_a_no_by_correction_in_monitoring_escalates_once(
    stepped_down, quality_lead, manager, oakfield, run
):
    plan = stepped_down.plan
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead)
    # 20 of 20 at submission: nothing to escalate.
    audit = run(conduct, tool, location=oakfield, by=manager, answers=[{}] * 20, on=TODAY)
    assert not Deterioration.objects.exists()
    assert not Alert.objects.filter(kind="audits-deterioration").exists()
    # A "No" by correction (19 of 20: above the floor, inside the limits) is a repeat
    # finding on a monitored indicator: escalated as at submission.
    run(_correct, audit, 1, "S1.Q1", "no", manager)
    rows = list(Deterioration.objects.filter(period=stepped_down))
    assert [(d.kind, d.rule) for d in rows] == [("repeat", "repeat_finding")]
    assert "R1" in rows[0].explanation and rows[0].measurement.audit_result.audit == audit
    (alert,) = Alert.objects.filter(kind="audits-deterioration")
    assert alert.key == f"audits-deterioration:{stepped_down.pk}:{rows[0].measurement_id}"
    # A second "No", and the first corrected away and back: no second email.
    run(_correct, audit, 2, "S1.Q1", "no", manager)
    run(_correct, audit, 1, "S1.Q1", "yes", manager)
    run(_correct, audit, 1, "S1.Q1", "no", manager)
    assert Alert.objects.filter(kind="audits-deterioration").count() == 1
    assert Deterioration.objects.filter(rule="repeat_finding").count() == 1
    assert Finding.objects.filter(audit=audit, status="open").count() == 2


def test_a_no_at_submission_then_another_by_correction_escalates_once(
    stepped_down, quality_lead, manager, oakfield, run
):
    plan = stepped_down.plan
    tool = safeguarding_tool(quality_lead)
    _feed(plan, tool, quality_lead)
    answers = [{"S1.Q1": "no"}] + [{}] * 19
    audit = run(conduct, tool, location=oakfield, by=manager, answers=answers, on=TODAY)
    assert Alert.objects.filter(kind="audits-deterioration").count() == 1
    run(_correct, audit, 2, "S1.Q1", "no", manager)
    assert Alert.objects.filter(kind="audits-deterioration").count() == 1
    assert Deterioration.objects.count() == 1
    assert Finding.objects.filter(audit=audit, kind="repeat").count() == 2
