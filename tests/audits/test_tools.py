"""Audit tools: the compliance arithmetic, versioning, conducting and submitting."""

import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from audits.tools import scoring, services
from audits.tools.models import Answer, Audit, AuditTool, ToolQuestion
from audits.tools.services import AuditRefused, QuestionSpec, SectionSpec
from tests.audits.tool_helpers import conduct, safeguarding_tool

pytestmark = pytest.mark.django_db


def _q(pk, key, scored=True):
    return SimpleNamespace(pk=pk, key=key, text=key, is_scored=scored)


def test_compliance_per_question_section_and_total_leaves_out_not_applicable():
    sections = [SimpleNamespace(key="S1", title="A"), SimpleNamespace(key="S2", title="B")]
    questions = [_q(1, "S1.Q1"), _q(2, "S1.Q2"), _q(3, "S2.Q1"), _q(4, "S2.Q2", scored=False)]
    answers = [
        (1, "yes"),
        (1, "yes"),
        (1, "no"),
        (1, "na"),  # 2 of 3
        (2, "na"),
        (2, "na"),
        (2, "na"),
        (2, "na"),  # nothing counted
        (3, "no"),
        (3, "no"),
        (3, "yes"),
        (3, ""),  # 1 of 3, one unanswered
        (4, "12"),
    ]
    scores = scoring.score(sections, questions, answers)
    q1, q2 = scores.sections[0].questions
    assert (q1.tally.yes, q1.tally.no, q1.tally.na, q1.tally.percent) == (2, 1, 1, Decimal("66.7"))
    assert q2.tally.counted == 0 and q2.tally.percent is None
    assert scores.sections[0].tally.percent == Decimal("66.7")  # N/A left out of the pool
    assert [q.key for q in scores.sections[1].questions] == ["S2.Q1"]  # number not scored
    assert scores.sections[1].tally.percent == Decimal("33.3")
    assert (scores.total.yes, scores.total.counted, scores.total.percent) == (3, 6, Decimal("50.0"))
    assert scores.for_scope("question", "S1.Q1") is q1.tally
    assert scores.for_scope("section", "S2") is scores.sections[1].tally
    assert scores.for_scope("question", "S9.Q9") is None


def test_editing_an_unused_tool_rewrites_its_version(quality_lead):
    tool = safeguarding_tool(quality_lead)
    version = services.revise_tool(
        tool=tool, by=quality_lead, sections=[SectionSpec("Only", [QuestionSpec("New?")])]
    )
    assert version.number == 1 and tool.versions.count() == 1
    assert list(version.questions.values_list("key", "text")) == [("S1.Q1", "New?")]


def test_editing_a_used_tool_makes_a_new_version_and_past_audits_keep_theirs(
    quality_lead, manager, oakfield
):
    tool = safeguarding_tool(quality_lead)
    done = conduct(tool, location=oakfield, by=manager, answers=[{"S1.Q1": "no"}])
    in_progress = conduct(tool, location=oakfield, by=manager, answers=[{}], submit=False)
    old_questions = list(done.version.questions.values_list("pk", "text"))
    version = services.revise_tool(
        tool=tool,
        by=quality_lead,
        sections=[SectionSpec("Escalation", [QuestionSpec("Escalated the same day?")])],
        change_note="Same day, not 24 hours",
    )
    assert version.number == 2 and tool.versions.count() == 2
    done.refresh_from_db()
    in_progress.refresh_from_db()
    assert done.version.number == 1 and in_progress.version.number == 1
    assert list(done.version.questions.values_list("pk", "text")) == old_questions
    # The audit in progress goes on with its own version's questions, and submits.
    services.submit_audit(audit=in_progress, by=manager)
    new = services.start_audit(
        tool=tool, location=oakfield, by=manager, audited_on=timezone.localdate(), sample_size=1
    )
    assert new.version == version
    assert tool.history.count() >= 1 and version.history.count() == 1


def test_a_tool_name_is_unique_and_needs_a_question(quality_lead):
    safeguarding_tool(quality_lead)
    with pytest.raises(AuditRefused, match="already a tool"):
        services.create_tool(
            by=quality_lead,
            name="safeguarding records",
            sections=[SectionSpec("A", [QuestionSpec("Q")])],
        )
    with pytest.raises(AuditRefused, match="at least one question"):
        services.create_tool(by=quality_lead, name="Empty", sections=[SectionSpec("A", [])])


@pytest.mark.parametrize("size", [0, 201, -1])
def test_a_sample_of_0_or_over_200_is_refused(manager, oakfield, quality_lead, size):
    tool = safeguarding_tool(quality_lead)
    with pytest.raises(AuditRefused, match="between 1 and 200"):
        services.start_audit(
            tool=tool,
            location=oakfield,
            by=manager,
            audited_on=timezone.localdate(),
            sample_size=size,
        )
    assert not Audit.objects.exists()


def test_answers_out_of_range_are_refused_and_nothing_is_half_saved(
    manager, oakfield, quality_lead
):
    tool = safeguarding_tool(quality_lead)
    audit = conduct(tool, location=oakfield, by=manager, answers=[{}, {}], submit=False)
    record = audit.records.first()
    qs = {q.key: q for q in audit.version.questions.all()}
    Answer.objects.filter(record=record).delete()
    bad = [
        {qs["S1.Q1"].pk: "maybe"},
        {qs["S2.Q3"].pk: "-1"},  # hours: at least 0
        {qs["S2.Q3"].pk: "lots"},
        {qs["S2.Q3"].pk: "NaN"},
        {qs["S2.Q1"].pk: "yes", qs["S1.Q1"].pk: "perhaps"},
        {999999: "yes"},
    ]
    for values in bad:
        with pytest.raises(AuditRefused):
            services.save_answers(audit=audit, record=record, by=manager, values=values)
    assert not Answer.objects.filter(record=record).exists()


def test_a_duplicate_record_identifier_is_refused(manager, oakfield, quality_lead):
    tool = safeguarding_tool(quality_lead)
    audit = conduct(tool, location=oakfield, by=manager, answers=[{}, {}], submit=False)
    second = audit.records.get(position=2)
    with pytest.raises(AuditRefused, match="already called “R1”"):
        services.save_answers(audit=audit, record=second, by=manager, values={}, identifier="R1")
    second.refresh_from_db()
    assert second.identifier == "R2"


def test_submitting_needs_every_identifier_and_yes_no_answer(manager, oakfield, quality_lead):
    tool = safeguarding_tool(quality_lead)
    audit = services.start_audit(
        tool=tool, location=oakfield, by=manager, audited_on=timezone.localdate(), sample_size=3
    )
    with pytest.raises(AuditRefused) as refused:
        services.submit_audit(audit=audit, by=manager)
    assert "3 records have no identifier" in refused.value.reasons[0]
    assert "Records 1, 2, 3 still have yes/no questions unanswered" in refused.value.reasons[1]
    audit.refresh_from_db()
    assert audit.status == Audit.Status.IN_PROGRESS


def test_a_submitted_audit_is_read_only_and_cannot_be_submitted_twice(
    manager, oakfield, quality_lead
):
    tool = safeguarding_tool(quality_lead)
    audit = conduct(tool, location=oakfield, by=manager, answers=[{}])
    with pytest.raises(AuditRefused, match="already been submitted"):
        services.submit_audit(audit=audit, by=manager)
    question = audit.version.questions.first()
    with pytest.raises(AuditRefused, match="only by a correction"):
        services.save_answers(
            audit=audit, record=audit.records.first(), by=manager, values={question.pk: "no"}
        )
    assert audit.history.filter(history_change_reason="Audit submitted").count() == 1


def test_an_audit_cannot_be_dated_in_the_future(manager, oakfield, quality_lead):
    tool = safeguarding_tool(quality_lead)
    with pytest.raises(AuditRefused, match="future"):
        services.start_audit(
            tool=tool,
            location=oakfield,
            by=manager,
            audited_on=timezone.localdate() + datetime.timedelta(days=1),
            sample_size=1,
        )


def test_demo_tools_install_once(quality_lead):
    from audits.tools.demo import install_demo_tools

    install_demo_tools(by=quality_lead)
    install_demo_tools(by=quality_lead)
    assert sorted(AuditTool.objects.values_list("name", flat=True)) == [
        "Care plan quality",
        "Medication administration records",
        "Safeguarding records",
    ]
    kinds = set(ToolQuestion.objects.values_list("kind", flat=True))
    assert kinds == {"yes_no", "number", "choice", "text"}
