"""Creating and editing a tool in the browser (the tool editor), on top of
``services.create_tool`` and ``services.revise_tool``.

Those services decide what an edit does to the versions: a version no audit has used
is rewritten in place; a used one is kept as it is for its audits and the edit becomes
the next version. They number keys by position ("S2.Q3" is the third question of the
second section). The editor lets people add, remove and reorder, so it keeps each
existing question's and section's key instead (``_settle_keys``): an indicator fed by
"question S1.Q2", the compliance page and the plan suggestions line versions up by
key, and would otherwise follow whatever question moved into that position. A new
question or section gets a key never used in any version of the tool.

Every check is made here, before anything is written, and the whole save is one
transaction: a refusal leaves nothing half-saved."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from audits.tools import services
from audits.tools.models import AuditTool, IndicatorFeed, ToolQuestion, ToolSection, ToolVersion
from audits.tools.services import AuditRefused, QuestionSpec, SectionSpec
from core.history import save_with_history as _save
from plans.models import Plan, User

# Bounds of one tool, as for a tool spreadsheet (``xlsx.MAX_QUESTIONS``).
MAX_SECTIONS = 50
MAX_QUESTIONS = 500
MAX_CHOICES = 30
LIMITS = {
    "name": 120,
    "title": 200,
    "text": 500,
    "guidance": 2000,
    "evidence_hint": 300,
    "choice": 100,
}
DETAIL_FIELDS = ("theme", "quality_statement", "regulation", "description", "suggest_plan_below")

_SECTION_KEY = re.compile(r"S(\d{1,6})")
_QUESTION_KEY = re.compile(r"(S\d{1,6})\.Q(\d{1,6})")


@dataclass
class QuestionEdit:
    text: str
    kind: str = ToolQuestion.Kind.YES_NO
    guidance: str = ""
    evidence_hint: str = ""
    choices: tuple[str, ...] = ()
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    key: str = ""  # the key of the question edited; blank for a new question


@dataclass
class SectionEdit:
    title: str
    questions: list[QuestionEdit] = field(default_factory=list)
    key: str = ""  # blank for a new section


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where: section and question numbers from 1 (``question``
    None: the section itself; ``section`` None: the tool), and the field."""

    message: str
    section: int | None = None
    question: int | None = None
    field: str = ""


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def check_sections(sections: list[SectionEdit]) -> list[Problem]:
    """Every problem with the questions as given, in page order (empty: they may be
    saved). Needs no database."""
    problems: list[Problem] = []
    if not sections:
        problems.append(Problem("A tool needs at least one section of questions."))
    if len(sections) > MAX_SECTIONS:
        problems.append(Problem(f"A tool has at most {MAX_SECTIONS} sections."))
    if sum(len(s.questions) for s in sections) > MAX_QUESTIONS:
        problems.append(Problem(f"A tool has at most {MAX_QUESTIONS} questions."))
    titles: dict[str, int] = {}
    texts: dict[str, tuple[int, int]] = {}
    for s_no, section in enumerate(sections, start=1):
        title = _norm(section.title)
        if not title:
            problems.append(Problem("Give the section a title.", s_no, None, "title"))
        elif len(section.title) > LIMITS["title"]:
            problems.append(Problem(f"At most {LIMITS['title']} characters.", s_no, None, "title"))
        elif title in titles:
            problems.append(
                Problem(
                    f"Section {titles[title]} has the same title: each section needs its own.",
                    s_no,
                    None,
                    "title",
                )
            )
        else:
            titles[title] = s_no
        if not section.questions:
            problems.append(
                Problem(
                    "This section has no questions: add one or remove the section.",
                    s_no,
                    None,
                    "questions",
                )
            )
        for q_no, q in enumerate(section.questions, start=1):
            problems += _check_question(q, s_no, q_no, texts)
    return problems


def _check_question(
    q: QuestionEdit, s_no: int, q_no: int, texts: dict[str, tuple[int, int]]
) -> list[Problem]:
    found = []

    def add(message: str, name: str) -> None:
        found.append(Problem(message, s_no, q_no, name))

    text = _norm(q.text)
    if not text:
        add("Write the question.", "text")
    elif len(q.text) > LIMITS["text"]:
        add(f"At most {LIMITS['text']} characters.", "text")
    elif text in texts:
        other_s, other_q = texts[text]
        add(
            f"The same question is already asked (section {other_s}, question {other_q}): "
            "each question is asked once in a tool.",
            "text",
        )
    else:
        texts[text] = (s_no, q_no)
    if q.kind not in ToolQuestion.Kind.values:
        add("Choose the type of answer.", "kind")
    for name in ("guidance", "evidence_hint"):
        if len(getattr(q, name)) > LIMITS[name]:
            add(f"At most {LIMITS[name]} characters.", name)
    if q.kind == ToolQuestion.Kind.CHOICE:
        options = [_norm(c) for c in q.choices]
        if len(options) < 2:
            add("A choice question needs at least two options, one per line.", "choices")
        elif len(options) > MAX_CHOICES:
            add(f"At most {MAX_CHOICES} options.", "choices")
        elif len(set(options)) != len(options):
            add("Each option must be different.", "choices")
        elif any(len(c) > LIMITS["choice"] for c in q.choices):
            add(f"Each option is at most {LIMITS['choice']} characters.", "choices")
    if (
        q.kind == ToolQuestion.Kind.NUMBER
        and q.min_value is not None
        and q.max_value is not None
        and q.min_value > q.max_value
    ):
        add("The lowest answer allowed is above the highest.", "max_value")
    return found


def _ever_used_keys(tool: AuditTool) -> tuple[set[int], dict[str, int]]:
    """Section numbers and, per section key, the highest question number ever used in
    any version of ``tool``."""
    sections: set[int] = set()
    questions: dict[str, int] = {}
    for key in ToolSection.objects.filter(version__tool=tool).values_list("key", flat=True):
        if match := _SECTION_KEY.fullmatch(key):
            sections.add(int(match[1]))
    for key in ToolQuestion.objects.filter(version__tool=tool).values_list("key", flat=True):
        if match := _QUESTION_KEY.fullmatch(key):
            questions[match[1]] = max(questions.get(match[1], 0), int(match[2]))
            sections.add(int(match[1][1:]))
    return sections, questions


def _assign_keys(tool: AuditTool, version: ToolVersion, sections: list[SectionEdit]) -> None:
    """Check the keys sent back by the editor against ``version`` and give new sections
    and questions fresh keys. A key names the same question in every version, so a
    question keeps its key only within its own section."""
    known_sections = set(version.sections.values_list("key", flat=True))
    known_questions = set(version.questions.values_list("key", flat=True))
    seen: set[str] = set()
    stale = AuditRefused(
        [
            "The form no longer matches the tool's questions. Open the editor again and "
            "make your changes there."
        ]
    )
    for section in sections:
        if section.key:
            if section.key not in known_sections or section.key in seen:
                raise stale
            seen.add(section.key)
        for q in section.questions:
            if q.key:
                if (
                    q.key not in known_questions
                    or q.key in seen
                    or q.key.split(".")[0] != section.key
                ):
                    raise stale
                seen.add(q.key)
    used_sections, used_questions = _ever_used_keys(tool)
    next_section = max(used_sections, default=0) + 1
    for section in sections:
        if not section.key:
            section.key = f"S{next_section}"
            next_section += 1
        number = used_questions.get(section.key, 0)
        for q in section.questions:
            if not q.key:
                number += 1
                q.key = f"{section.key}.Q{number}"


def _check_feeds(tool: AuditTool, sections: list[SectionEdit]) -> list[str]:
    """An indicator of an open plan fed by a question or section of the tool must find
    it in the new version, by its key (a fed question stays yes/no)."""
    yes_no = {q.key for s in sections for q in s.questions if q.kind == ToolQuestion.Kind.YES_NO}
    section_keys = {s.key for s in sections}
    problems = []
    feeds = (
        IndicatorFeed.objects.filter(tool=tool)
        .exclude(scope=IndicatorFeed.Scope.OVERALL)
        .exclude(indicator__plan__status__in=Plan.FINAL_STATUSES)
        .select_related("indicator__plan")
        .order_by("indicator__plan__reference", "indicator__position", "indicator_id")
    )
    for feed in feeds:
        where = f"the indicator “{feed.indicator.name}” of {feed.indicator.plan.reference}"
        if feed.scope == IndicatorFeed.Scope.QUESTION and feed.key not in yes_no:
            problems.append(
                f"Question {feed.key} feeds {where}: keep it, as a yes/no question, or "
                "feed that indicator from another question first."
            )
        elif feed.scope == IndicatorFeed.Scope.SECTION and feed.key not in section_keys:
            problems.append(
                f"Section {feed.key} feeds {where}: keep it, or feed that indicator from "
                "another section first."
            )
    return problems


def _name_problems(name: str, *, tool: AuditTool | None = None) -> list[str]:
    name = name.strip()
    if not name:
        return ["Give the tool a name."]
    if len(name) > LIMITS["name"]:
        return [f"A tool's name is at most {LIMITS['name']} characters."]
    clash = AuditTool.objects.filter(name__iexact=name)
    if tool is not None:
        clash = clash.exclude(pk=tool.pk)
    if clash.exists():
        return [f"There is already a tool called “{name}”."]
    return []


def _specs(sections: list[SectionEdit]) -> list[SectionSpec]:
    return [
        SectionSpec(
            " ".join(s.title.split()),
            [
                QuestionSpec(
                    text=" ".join(q.text.split()),
                    kind=q.kind,
                    guidance=q.guidance.strip(),
                    evidence_hint=q.evidence_hint.strip(),
                    choices=tuple(c.strip() for c in q.choices)
                    if q.kind == ToolQuestion.Kind.CHOICE
                    else (),
                    min_value=q.min_value if q.kind == ToolQuestion.Kind.NUMBER else None,
                    max_value=q.max_value if q.kind == ToolQuestion.Kind.NUMBER else None,
                )
                for q in s.questions
            ],
        )
        for s in sections
    ]


def _refuse_if(problems: list[str], checked: list[Problem]) -> None:
    reasons = problems + [p.message for p in checked]
    if reasons:
        raise AuditRefused(reasons)


@transaction.atomic
def create_tool(*, by: User, name: str, sections: list[SectionEdit], **details) -> AuditTool:
    """A new tool from the editor: its first version, keyed by position."""
    _refuse_if(_name_problems(name), check_sections(sections))
    if any(s.key or any(q.key for q in s.questions) for s in sections):
        raise AuditRefused(["A new tool's questions have no keys yet."])
    return services.create_tool(by=by, name=name.strip(), sections=_specs(sections), **details)


@dataclass
class EditOutcome:
    version: ToolVersion
    kind: str  # "new_version", "rewritten" or "details" (questions unchanged)
    previous: ToolVersion


def _shape(version: ToolVersion) -> list:
    """What the editor can change of a version's questions, to compare."""
    rows = []
    for section in version.sections.all():
        rows.append(("S", section.key, " ".join(section.title.split())))
    for q in version.questions.all():
        rows.append(
            (
                "Q",
                q.key,
                " ".join(q.text.split()),
                q.kind,
                q.guidance.strip(),
                q.evidence_hint.strip(),
                list(q.choices),
                q.min_value,
                q.max_value,
            )
        )
    return rows


def fingerprint(version: ToolVersion) -> str:
    """Names a version's questions as they are now: its number and a digest of them,
    which changes when an unused version is rewritten in place."""
    digest = hashlib.sha256(repr(_shape(version)).encode()).hexdigest()[:16]
    return f"{version.number}-{digest}"


def _shape_of(sections: list[SectionSpec], keyed: list[SectionEdit]) -> list:
    rows = [("S", k.key, s.title) for s, k in zip(sections, keyed, strict=True)]
    for s, k in zip(sections, keyed, strict=True):
        for q, kq in zip(s.questions, k.questions, strict=True):
            rows.append(
                (
                    "Q",
                    kq.key,
                    q.text,
                    q.kind,
                    q.guidance,
                    q.evidence_hint,
                    list(q.choices),
                    q.min_value,
                    q.max_value,
                )
            )
    return rows


@transaction.atomic
def edit_tool(
    *,
    tool: AuditTool,
    by: User,
    based_on: str,
    name: str,
    sections: list[SectionEdit],
    change_note: str = "",
    **details,
) -> EditOutcome:
    """Save the editor's version of ``tool``. ``based_on``: the ``fingerprint`` of the
    version the editor was opened on; if the questions have changed since (a new
    version, or an unused one rewritten), nothing is saved.

    Questions unchanged: only the details are saved, and the version stays. Otherwise
    ``services.revise_tool`` rewrites an unused version or makes the next one, and each
    existing question keeps its key."""
    tool = AuditTool.objects.select_for_update().get(pk=tool.pk)
    current = services.current_version(tool)
    if fingerprint(current) != based_on:
        raise AuditRefused(
            [
                f"Someone changed this tool's questions (now version {current.number}) "
                "while you were editing it. Nothing was saved: open the editor again to "
                "see their changes, then make yours."
            ]
        )
    _refuse_if(_name_problems(name, tool=tool), check_sections(sections))
    _assign_keys(tool, current, sections)
    _refuse_if(_check_feeds(tool, sections), [])
    specs = _specs(sections)
    details = {k: v for k, v in details.items() if k in DETAIL_FIELDS}
    details["name"] = name.strip()
    changed = {k: v for k, v in details.items() if getattr(tool, k) != v}
    if _shape(current) == _shape_of(specs, sections):
        if changed:
            for key, value in changed.items():
                setattr(tool, key, value)
            _save(tool, by=by, reason="Tool details changed")
        return EditOutcome(current, "details", current)
    used = current.audits.exists()
    version = services.revise_tool(
        tool=tool, by=by, sections=specs, change_note=change_note.strip(), **changed
    )
    _settle_keys(version, sections, by=by)
    return EditOutcome(version, "new_version" if used else "rewritten", current)


def _settle_keys(version: ToolVersion, sections: list[SectionEdit], *, by: User) -> None:
    """Give the rows ``revise_tool`` wrote (keyed by position) the keys of the editor's
    sections and questions, in the same order. Keys are unique within a version, so
    the rows to rename first take a placeholder (not recorded: it never leaves this
    transaction), then their key, with a history row saying why."""
    written_sections = list(version.sections.order_by("position"))
    renames = []
    for row, edit in zip(written_sections, sections, strict=True):
        questions = list(row.questions.order_by("position"))
        if row.key != edit.key:
            renames.append(row)
            row.key = edit.key
        for q_row, q_edit in zip(questions, edit.questions, strict=True):
            if q_row.key != q_edit.key:
                renames.append(q_row)
                q_row.key = q_edit.key
    for row in renames:
        # history-safe: a placeholder, saved with history just below
        type(row).objects.filter(pk=row.pk).update(key=f"~{row.pk}"[:20])  # history-safe
    for row in renames:
        _save(row, by=by, reason="Key set by the tool editor (kept across versions)")
