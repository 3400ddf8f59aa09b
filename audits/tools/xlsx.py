"""Audit tools to and from XLSX, in one documented layout (README, "Audit tools").

One worksheet, header in row 1, one question per row:

    tool | section | question | type | guidance | evidence expected | choices | min | max

``tool`` is the tool's name (the same on every row; blank rows after the first take
it); ``section`` groups questions in the order they first appear; ``type`` is
"yes/no", "number", "choice" or "text"; ``choices`` are separated by "|". The file is
checked as result imports are (size, type by content, zip checks, no formulas, known
columns) and refused as a whole when any row is wrong. No database access here."""

from __future__ import annotations

import io
from decimal import Decimal, InvalidOperation
from typing import IO

from django.core.exceptions import ValidationError

from audits.spreadsheets import ImportFileError, _cell_text
from audits.tools.models import ToolQuestion
from audits.tools.services import QuestionSpec, SectionSpec
from core import files

COLUMNS = [
    "tool",
    "section",
    "question",
    "type",
    "guidance",
    "evidence expected",
    "choices",
    "min",
    "max",
]
REQUIRED = {"tool", "section", "question", "type"}
MAX_QUESTIONS = 500
TYPES = {
    "yes/no": ToolQuestion.Kind.YES_NO,
    "yes/no/n/a": ToolQuestion.Kind.YES_NO,
    "number": ToolQuestion.Kind.NUMBER,
    "choice": ToolQuestion.Kind.CHOICE,
    "text": ToolQuestion.Kind.TEXT,
}
TYPE_NAMES = {
    ToolQuestion.Kind.YES_NO: "yes/no",
    ToolQuestion.Kind.NUMBER: "number",
    ToolQuestion.Kind.CHOICE: "choice",
    ToolQuestion.Kind.TEXT: "text",
}
LIMITS = {"tool": 120, "section": 200, "question": 500, "guidance": 2000, "evidence expected": 300}


def _header(cells) -> list[str]:
    names = [str(c).strip().lower() if c is not None else "" for c in cells]
    while names and not names[-1]:
        names.pop()
    unknown = [n for n in names if n not in COLUMNS]
    missing = sorted(REQUIRED - set(names))
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    problems = []
    if unknown:
        problems.append("unknown columns " + ", ".join(f"“{n or '(blank)'}”" for n in unknown))
    if missing:
        problems.append("missing columns " + ", ".join(f"“{n}”" for n in missing))
    if repeated:
        problems.append("repeated columns " + ", ".join(f"“{n}”" for n in repeated))
    if problems:
        raise ImportFileError(
            "Row 1 (the header) has "
            + "; ".join(problems)
            + ". The columns must be: "
            + ", ".join(COLUMNS)
            + "."
        )
    return names


def _decimal(text: str, row: int, column: str, errors: list[str]) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        errors.append(f"Row {row}: “{column}” must be a number.")
        return None
    if not value.is_finite() or abs(value) >= Decimal("1e9"):
        errors.append(f"Row {row}: “{column}” must be a number.")
        return None
    return value


def read_tool(fileobj: IO[bytes]) -> tuple[str, list[SectionSpec], list[str]]:
    """The tool's name, its sections and every problem found (row by row). Raises
    ``ImportFileError`` when the file as a whole cannot be read."""
    from openpyxl import load_workbook

    fileobj.seek(0)
    try:
        files.check_zip(fileobj)
    except ValidationError as exc:
        raise ImportFileError(" ".join(exc.messages)) from exc
    fileobj.seek(0)
    try:
        workbook = load_workbook(fileobj, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for a malformed workbook
        raise ImportFileError(f"The file could not be read as an Excel workbook ({exc}).") from exc
    errors: list[str] = []
    name = ""
    sections: dict[str, SectionSpec] = {}
    try:
        raw = workbook.worksheets[0].iter_rows(values_only=True)
        try:
            names = _header(list(next(raw)))
        except StopIteration:
            raise ImportFileError("The workbook's first sheet is empty.") from None
        count = 0
        for number, cells in enumerate(raw, start=2):
            texts = [_cell_text(c) for c in cells]
            if not any(texts):
                continue
            count += 1
            if count > MAX_QUESTIONS:
                raise ImportFileError(f"A tool has at most {MAX_QUESTIONS} questions.")
            if any(t for t in texts[len(names) :]):
                errors.append(f"Row {number} has more cells than the header has columns.")
                continue
            row = {n: (texts[i] if i < len(texts) else "") for i, n in enumerate(names)}
            formulas = [n for n, t in row.items() if t.startswith("=")]
            if formulas:
                errors.append(
                    f"Row {number}: “{formulas[0]}” is a formula; type the value instead."
                )
                continue
            for column, limit in LIMITS.items():
                if len(row.get(column, "")) > limit or "\x00" in row.get(column, ""):
                    errors.append(f"Row {number}: “{column}” is longer than {limit} characters.")
            row_name = row.get("tool", "")
            if row_name:
                if not name:
                    name = row_name
                elif row_name != name:
                    errors.append(
                        f"Row {number}: one tool per file (“{row_name}” is not “{name}”)."
                    )
            for column in ("section", "question"):
                if not row.get(column):
                    errors.append(f"Row {number}: “{column}” is required.")
            kind = TYPES.get(row.get("type", "").lower())
            if kind is None:
                errors.append(
                    f"Row {number}: type must be one of yes/no, number, choice, text "
                    f"(not “{row.get('type', '')}”)."
                )
                continue
            choices = tuple(c.strip() for c in row.get("choices", "").split("|") if c.strip())
            if kind == ToolQuestion.Kind.CHOICE and len(choices) < 2:
                errors.append(f"Row {number}: a choice question needs at least two choices.")
            low = _decimal(row.get("min", ""), number, "min", errors)
            high = _decimal(row.get("max", ""), number, "max", errors)
            if low is not None and high is not None and low > high:
                errors.append(f"Row {number}: “min” is above “max”.")
            title = row.get("section", "")
            sections.setdefault(title, SectionSpec(title, [])).questions.append(
                QuestionSpec(
                    text=row.get("question", ""),
                    kind=kind,
                    guidance=row.get("guidance", ""),
                    evidence_hint=row.get("evidence expected", ""),
                    choices=choices if kind == ToolQuestion.Kind.CHOICE else (),
                    min_value=low if kind == ToolQuestion.Kind.NUMBER else None,
                    max_value=high if kind == ToolQuestion.Kind.NUMBER else None,
                )
            )
    finally:
        workbook.close()
    if not name:
        errors.append("No row names the tool (the “tool” column).")
    if not sections and not errors:
        errors.append("The file has no questions.")
    return name, list(sections.values()), errors


def spec_to_json(name: str, sections: list[SectionSpec]) -> dict:
    return {
        "name": name,
        "sections": [
            {
                "title": s.title,
                "questions": [
                    {
                        "text": q.text,
                        "kind": str(q.kind),
                        "guidance": q.guidance,
                        "evidence_hint": q.evidence_hint,
                        "choices": list(q.choices),
                        "min_value": None if q.min_value is None else str(q.min_value),
                        "max_value": None if q.max_value is None else str(q.max_value),
                    }
                    for q in s.questions
                ],
            }
            for s in sections
        ],
    }


def spec_from_json(data: dict) -> list[SectionSpec]:
    return [
        SectionSpec(
            s["title"],
            [
                QuestionSpec(
                    text=q["text"],
                    kind=q["kind"],
                    guidance=q["guidance"],
                    evidence_hint=q["evidence_hint"],
                    choices=tuple(q["choices"]),
                    min_value=None if q["min_value"] is None else Decimal(q["min_value"]),
                    max_value=None if q["max_value"] is None else Decimal(q["max_value"]),
                )
                for q in s["questions"]
            ],
        )
        for s in data["sections"]
    ]


def _number(value):
    # A number cell, not text: "-1" as text would be neutralised to "'-1".
    return None if value is None else float(value)


def tool_rows(tool, version) -> list[list[str]]:
    """A version's questions as rows of the layout above (the export)."""
    rows = []
    for q in version.questions.select_related("section").order_by("section__position", "position"):
        rows.append(
            [
                tool.name,
                q.section.title,
                q.text,
                TYPE_NAMES[q.kind],
                q.guidance,
                q.evidence_hint,
                "|".join(q.choices),
                _number(q.min_value),
                _number(q.max_value),
            ]
        )
    return rows


def workbook_bytes(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    from core.exports import neutralise

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Tool")
    sheet.append(COLUMNS)
    for row in rows:
        sheet.append([neutralise(v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
