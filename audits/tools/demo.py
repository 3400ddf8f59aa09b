"""The three demo tools that ``seed_demo`` installs (and the tests and walkthroughs use).
Their wording follows common care-sector audit practice; adapt them to local policy."""

from __future__ import annotations

from decimal import Decimal

from audits.tools.models import AuditTool, ToolQuestion
from audits.tools.services import QuestionSpec, SectionSpec, create_tool
from plans.models import Theme

Q = QuestionSpec
NUMBER, CHOICE, TEXT = ToolQuestion.Kind.NUMBER, ToolQuestion.Kind.CHOICE, ToolQuestion.Kind.TEXT

DEMO_TOOLS = {
    "Safeguarding records": {
        "theme": "Safeguarding",
        "description": "Records of safeguarding concerns: escalation, recording and follow-up.",
        "suggest_plan_below": Decimal("80"),
        "sections": [
            SectionSpec(
                "Escalation",
                [
                    Q(
                        "Was the concern escalated to the safeguarding lead within 24 hours?",
                        guidance="Compare the time the concern was raised with the time of "
                        "the referral or the lead's note.",
                        evidence_hint="Referral record or safeguarding log entry",
                    ),
                    Q(
                        "Was the local authority informed where the threshold was met?",
                        guidance="Answer not applicable when the threshold was not met.",
                    ),
                ],
            ),
            SectionSpec(
                "Recording",
                [
                    Q(
                        "Is the record factual, dated, timed and signed?",
                        evidence_hint="The record itself",
                    ),
                    Q("Does the record say what the person said, in their own words?"),
                    Q("Hours from concern to escalation", kind=NUMBER, min_value=Decimal(0)),
                ],
            ),
            SectionSpec(
                "Follow-up",
                [
                    Q("Is the outcome recorded and shared with the person or their family?"),
                    Q("Notes", kind=TEXT),
                ],
            ),
        ],
    },
    "Care plan quality": {
        "theme": "Care planning",
        "description": "Care plans: person-centred, current and reviewed.",
        "sections": [
            SectionSpec(
                "Person-centred",
                [
                    Q("Does the care plan record the person's own wishes and preferences?"),
                    Q("Has the person, or their representative, been involved in writing it?"),
                ],
            ),
            SectionSpec(
                "Current",
                [
                    Q("Has the care plan been reviewed in the last month?"),
                    Q("Are risk assessments in date and linked to the plan?"),
                    Q(
                        "Overall quality of the plan",
                        kind=CHOICE,
                        choices=("Good", "Requires improvement", "Inadequate"),
                    ),
                ],
            ),
        ],
    },
    "Medication administration records": {
        "theme": "Medicines",
        "description": "MAR charts: complete, legible and with gaps explained.",
        "sections": [
            SectionSpec(
                "Administration",
                [
                    Q("Is every dose in the period signed for or coded?"),
                    Q("Is every omitted dose explained with a code and a note?"),
                    Q("Number of unexplained gaps", kind=NUMBER, min_value=Decimal(0)),
                ],
            ),
            SectionSpec(
                "Records",
                [
                    Q("Does the MAR chart show the person's photograph and allergies?"),
                    Q("Are handwritten entries signed by two people?"),
                ],
            ),
        ],
    },
}


def install_demo_tools(*, by) -> list[AuditTool]:
    """Create the demo tools that do not exist yet. Safe to run any number of times."""
    tools = []
    for name, spec in DEMO_TOOLS.items():
        tool = AuditTool.objects.filter(name=name).first()
        if tool is None:
            details = {k: v for k, v in spec.items() if k not in ("sections", "theme")}
            # The plan theme of the same name, where the portal has it (seed_demo does).
            details["theme"] = Theme.objects.filter(name=spec["theme"]).first()
            tool = create_tool(by=by, name=name, sections=spec["sections"], **details)
        tools.append(tool)
    return tools
