"""The tool editor's form: the tool's details (a Django form) and its sections of
questions, read from the POST as drafts that keep exactly what was typed.

The sections are one structured form, numbered in page order:
``sections`` (how many), ``s{i}-key``, ``s{i}-title``, ``s{i}-questions`` (how many), and
``s{i}-q{j}-key|text|kind|guidance|evidence_hint|choices|min_value|max_value``. The
buttons that add, remove and move a section or question post the whole form back with
``op`` (e.g. ``up-question-1-2``); the page is rendered again with the change made and
nothing saved, so the editor needs no JavaScript. ``op=save`` saves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django import forms

from audits.tools.editing import (
    LIMITS,
    MAX_SECTIONS,
    Problem,
    QuestionEdit,
    SectionEdit,
    check_sections,
)
from audits.tools.models import AuditTool, ToolQuestion, ToolVersion
from core.forms import FormError, ModelChoiceField
from plans.models import QualityStatement, Regulation, Theme

KINDS = ToolQuestion.Kind

# The editor posts every question's eight fields; Django refuses a form of more than
# DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000) fields, so the editor stops at 100 questions.
# Larger tools (up to 500 questions) go through the spreadsheet import.
EDITOR_MAX_QUESTIONS = 100


class ToolDetailsForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=LIMITS["name"],
        error_messages={"required": "Give the tool a name."},
    )
    theme = ModelChoiceField(
        queryset=Theme.objects.all(), required=False, label="Theme (optional)", empty_label="None"
    )
    quality_statement = ModelChoiceField(
        queryset=QualityStatement.objects.all(),
        required=False,
        label="CQC quality statement (optional)",
        empty_label="None",
    )
    regulation = ModelChoiceField(
        queryset=Regulation.objects.all(),
        required=False,
        label="Regulation (optional)",
        empty_label="None",
    )
    description = forms.CharField(
        label="Description (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    suggest_plan_below = forms.DecimalField(
        label="Suggest a new plan below (%)",
        required=False,
        min_value=Decimal(0),
        max_value=Decimal(100),
        max_digits=4,
        decimal_places=1,
        help_text=(
            "When a question's compliance at a location falls below this, and no plan "
            "there covers the question, the compliance page suggests opening one. Leave "
            "blank never to suggest."
        ),
        error_messages={
            "min_value": "Give a percentage between 0 and 100.",
            "max_value": "Give a percentage between 0 and 100.",
            "invalid": "Give a percentage between 0 and 100, e.g. 80.",
            "max_digits": "Give a percentage between 0 and 100, to one decimal place.",
            "max_decimal_places": "Give the percentage to one decimal place at most.",
            "max_whole_digits": "Give a percentage between 0 and 100.",
        },
        widget=forms.NumberInput(attrs={"step": "0.1", "min": "0", "max": "100"}),
    )
    change_note = forms.CharField(
        label="What changed (optional)",
        required=False,
        max_length=300,
        help_text="Shown with the version on the tool's page.",
    )

    def __init__(self, *args, tool: AuditTool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tool = tool
        if tool is None:
            del self.fields["change_note"]

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the tool a name.")
        clash = AuditTool.objects.filter(name__iexact=name)
        if self.tool is not None:
            clash = clash.exclude(pk=self.tool.pk)
        if clash.exists():
            raise forms.ValidationError(f"There is already a tool called “{name}”.")
        return name


QUESTION_FIELDS = (
    "key",
    "text",
    "kind",
    "guidance",
    "evidence_hint",
    "choices",
    "min_value",
    "max_value",
)


@dataclass
class QuestionDraft:
    key: str = ""
    text: str = ""
    kind: str = KINDS.YES_NO
    guidance: str = ""
    evidence_hint: str = ""
    choices: str = ""  # one option per line, as typed
    min_value: str = ""
    max_value: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    focus: str = ""  # the element to focus after an add or a move

    @property
    def kind_label(self) -> str:
        return dict(KINDS.choices).get(self.kind, "")


@dataclass
class SectionDraft:
    key: str = ""
    title: str = ""
    questions: list[QuestionDraft] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    focus: str = ""


def _count(data, name: str, most: int) -> int:
    raw = str(data.get(name, "0")).strip()
    return min(int(raw), most) if raw.isascii() and raw.isdigit() and len(raw) < 5 else 0


def _text(data, name: str, most: int = 5000) -> str:
    return str(data.get(name, "")).replace("\x00", "")[:most]


def drafts_from_post(data) -> list[SectionDraft]:
    sections = []
    for i in range(_count(data, "sections", MAX_SECTIONS + 1)):
        p = f"s{i}-"
        section = SectionDraft(key=_text(data, p + "key", 20), title=_text(data, p + "title"))
        for j in range(_count(data, p + "questions", EDITOR_MAX_QUESTIONS + 1)):
            qp = f"{p}q{j}-"
            section.questions.append(
                QuestionDraft(**{name: _text(data, qp + name) for name in QUESTION_FIELDS})
            )
        sections.append(section)
    return sections


def drafts_from_version(version: ToolVersion) -> list[SectionDraft]:
    sections = []
    for section in version.sections.prefetch_related("questions"):
        sections.append(
            SectionDraft(
                key=section.key,
                title=section.title,
                questions=[
                    QuestionDraft(
                        key=q.key,
                        text=q.text,
                        kind=q.kind,
                        guidance=q.guidance,
                        evidence_hint=q.evidence_hint,
                        choices="\n".join(q.choices),
                        min_value="" if q.min_value is None else f"{q.min_value.normalize():f}",
                        max_value="" if q.max_value is None else f"{q.max_value.normalize():f}",
                    )
                    for q in section.questions.all()
                ],
            )
        )
    return sections


def blank_drafts() -> list[SectionDraft]:
    return [SectionDraft(questions=[QuestionDraft()])]


_OP = re.compile(r"(add|remove|up|down)-(section|question)(?:-(\d{1,4}))?(?:-(\d{1,4}))?")


def apply_op(sections: list[SectionDraft], op: str) -> bool:
    """Make the change a button asked for (True), marking what to focus next; False
    when ``op`` names nothing on the page (e.g. a stale button)."""
    match = _OP.fullmatch(op or "")
    if not match:
        return False
    verb, what = match[1], match[2]
    i = int(match[3]) if match[3] is not None else None
    j = int(match[4]) if match[4] is not None else None
    if what == "section":
        if verb == "add":
            if len(sections) >= MAX_SECTIONS:
                return False
            sections.append(SectionDraft(questions=[QuestionDraft()], focus="title"))
            return True
        if i is None or not 0 <= i < len(sections):
            return False
        if verb == "remove":
            sections.pop(i)
            if sections:
                sections[min(i, len(sections) - 1)].focus = "title"
            return True
        k = i - 1 if verb == "up" else i + 1
        if not 0 <= k < len(sections):
            return False
        sections[i], sections[k] = sections[k], sections[i]
        sections[k].focus = _after_move(verb, k, len(sections))
        return True
    if i is None or not 0 <= i < len(sections):
        return False
    questions = sections[i].questions
    if verb == "add":
        if sum(len(s.questions) for s in sections) >= EDITOR_MAX_QUESTIONS:
            return False
        questions.append(QuestionDraft(focus="text"))
        return True
    if j is None or not 0 <= j < len(questions):
        return False
    if verb == "remove":
        questions.pop(j)
        if questions:
            questions[min(j, len(questions) - 1)].focus = "text"
        else:
            sections[i].focus = "add"
        return True
    k = j - 1 if verb == "up" else j + 1
    if not 0 <= k < len(questions):
        return False
    questions[j], questions[k] = questions[k], questions[j]
    questions[k].focus = _after_move(verb, k, len(questions))
    return True


def _after_move(verb: str, k: int, count: int) -> str:
    """Keep the keyboard on the button just used, or on its twin once at an end."""
    if verb == "up":
        return "up" if k > 0 else "down"
    return "down" if k < count - 1 else "up"


TOO_BIG = (
    f"The editor takes at most {EDITOR_MAX_QUESTIONS} questions. Write a larger tool "
    "as a spreadsheet and import it."
)


def _decimal(raw: str) -> Decimal | None:
    raw = raw.strip()
    if not raw:
        return None
    number = Decimal(raw)  # InvalidOperation is the caller's
    if not number.is_finite() or abs(number) >= Decimal("1e9"):
        raise InvalidOperation
    return number.quantize(Decimal("0.001"))


def _question(draft: QuestionDraft) -> QuestionEdit:
    for name in ("min_value", "max_value"):
        if draft.kind != KINDS.NUMBER:
            continue
        try:
            _decimal(getattr(draft, name))
        except (InvalidOperation, ValueError):
            draft.errors.setdefault(name, []).append("Give a number, or leave it blank.")
    return QuestionEdit(
        key=draft.key.strip(),
        text=draft.text,
        kind=draft.kind,
        guidance=draft.guidance,
        evidence_hint=draft.evidence_hint,
        choices=tuple(line.strip() for line in draft.choices.splitlines() if line.strip()),
        min_value=_safe_decimal(draft.min_value) if draft.kind == KINDS.NUMBER else None,
        max_value=_safe_decimal(draft.max_value) if draft.kind == KINDS.NUMBER else None,
    )


def _safe_decimal(raw: str) -> Decimal | None:
    try:
        return _decimal(raw)
    except (InvalidOperation, ValueError):
        return None


def check_drafts(sections: list[SectionDraft]) -> tuple[list[SectionEdit] | None, list[str]]:
    """The sections to save (None if any is wrong, with each draft's ``errors`` filled
    in), and the problems of the tool as a whole ("at least one section")."""
    edits = [
        SectionEdit(key=s.key.strip(), title=s.title, questions=[_question(q) for q in s.questions])
        for s in sections
    ]
    problems: list[Problem] = check_sections(edits)
    for problem in problems:
        if problem.section is None:
            continue
        section = sections[problem.section - 1]
        if problem.question is None:
            section.errors.setdefault(problem.field, []).append(problem.message)
        else:
            question = section.questions[problem.question - 1]
            question.errors.setdefault(problem.field, []).append(problem.message)
    tool_wide = [p.message for p in problems if p.section is None]
    if sum(len(s.questions) for s in sections) > EDITOR_MAX_QUESTIONS:
        tool_wide.append(TOO_BIG)
        return None, tool_wide
    if problems or any(q.errors for s in sections for q in s.questions):
        return None, tool_wide
    return edits, tool_wide


FIELD_LABELS = {
    "title": "title",
    "questions": "questions",
    "text": "question",
    "kind": "type of answer",
    "guidance": "guidance",
    "evidence_hint": "evidence expected",
    "choices": "options",
    "min_value": "lowest answer allowed",
    "max_value": "highest answer allowed",
}


def draft_errors(sections: list[SectionDraft]) -> list[FormError]:
    """The drafts' errors for the error summary, each linked to its field."""
    found = []
    for i, section in enumerate(sections):
        for name, messages in section.errors.items():
            anchor = f"s{i}-title" if name == "title" else f"s{i}-add"
            for message in messages:
                found.append(FormError(f"Section {i + 1}, {FIELD_LABELS[name]}", message, anchor))
        for j, question in enumerate(section.questions):
            for name, messages in question.errors.items():
                for message in messages:
                    found.append(
                        FormError(
                            f"Section {i + 1}, question {j + 1}, {FIELD_LABELS[name]}",
                            message,
                            f"s{i}-q{j}-{name}",
                        )
                    )
    return found
