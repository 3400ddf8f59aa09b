"""Building audit tools and audits in tests, through the services."""

from __future__ import annotations

import datetime

from django.utils import timezone

from audits.tools import services
from audits.tools.demo import install_demo_tools
from audits.tools.models import Audit, AuditTool


def safeguarding_tool(by) -> AuditTool:
    return next(t for t in install_demo_tools(by=by) if t.name == "Safeguarding records")


def conduct(
    tool: AuditTool,
    *,
    location,
    by,
    answers: list[dict[str, str]],
    on: datetime.date | None = None,
    plan=None,
    submit: bool = True,
) -> Audit:
    """An audit with one record per item of ``answers`` ({question key: value}; a
    yes/no question not named is answered "yes"), identified R1, R2..."""
    audit = services.start_audit(
        tool=tool,
        location=location,
        by=by,
        audited_on=on or timezone.localdate(),
        sample_size=len(answers),
        plan=plan,
    )
    questions = list(audit.version.questions.all())
    for record, given in zip(audit.records.all(), answers, strict=True):
        values = {q.pk: "yes" for q in questions if q.is_scored}
        for q in questions:
            if q.key in given:
                values[q.pk] = given[q.key]
        services.save_answers(
            audit=audit, record=record, by=by, values=values, identifier=f"R{record.position}"
        )
    if submit:
        services.submit_audit(audit=audit, by=by)
        audit.refresh_from_db()
    return audit
