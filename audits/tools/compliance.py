"""Compliance by question across locations, for one tool: every submitted audit's
yes/no answers pooled per question (by its key, so versions line up) and location.
Two queries, whatever the number of audits."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from audits.tools.models import Answer, Audit, AuditTool, ToolQuestion
from audits.tools.scoring import Tally


@dataclass
class LocationRow:
    location: str
    tally: Tally


@dataclass
class QuestionRow:
    key: str
    text: str
    tally: Tally
    locations: list[LocationRow]


def _worst_first(tally: Tally):
    # No counted answers sorts last; then lowest compliance, most answers first.
    return (tally.percent is None, tally.percent or 0, -tally.counted)


def compliance_by_question(tool: AuditTool, audits=None) -> list[QuestionRow]:
    """Rows per question, worst first; within each, locations worst first. ``audits``:
    the submitted audits to count (default: all of the tool's)."""
    if audits is None:
        audits = Audit.objects.all()
    answers = (
        Answer.objects.filter(
            record__audit__in=audits.filter(version__tool=tool, status=Audit.Status.SUBMITTED),
            question__kind=ToolQuestion.Kind.YES_NO,
        )
        .values("question__key", "record__audit__location__name")
        .annotate(
            yes=Count("pk", filter=Q(value=Answer.YES)),
            no=Count("pk", filter=Q(value=Answer.NO)),
            na=Count("pk", filter=Q(value=Answer.NA)),
        )
        .order_by()
    )
    texts = dict(
        ToolQuestion.objects.filter(version__tool=tool)
        .order_by("version__number")
        .values_list("key", "text")
    )  # the latest version's wording wins
    rows: dict[str, QuestionRow] = {}
    for a in answers:
        key = a["question__key"]
        row = rows.setdefault(key, QuestionRow(key, texts.get(key, key), Tally(), []))
        tally = Tally(a["yes"], a["no"], a["na"])
        row.tally += tally
        row.locations.append(LocationRow(a["record__audit__location__name"], tally))
    for row in rows.values():
        row.locations.sort(key=lambda r: (*_worst_first(r.tally), r.location))
    return sorted(rows.values(), key=lambda r: (*_worst_first(r.tally), r.key))
