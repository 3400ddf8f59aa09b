"""Compliance arithmetic for an audit: per question, per section and overall.

A question's compliance is yes / (yes + no): "not applicable" and unanswered records
are left out of both numbers. A section's score and the overall score pool the answers
of their scored questions (the sum of yeses over the sum of yeses and noes), so a
question asked of every record weighs as much as the records it was asked of. Number,
choice and free-text questions are recorded but not scored. No Django import here."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal


@dataclass
class Tally:
    yes: int = 0
    no: int = 0
    na: int = 0

    @property
    def counted(self) -> int:
        return self.yes + self.no

    @property
    def percent(self) -> Decimal | None:
        """Compliance as a percentage to one decimal place; None when nothing counted."""
        if not self.counted:
            return None
        raw = Decimal(self.yes) * 100 / Decimal(self.counted)
        return raw.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    def add(self, value: str) -> None:
        if value == "yes":
            self.yes += 1
        elif value == "no":
            self.no += 1
        elif value == "na":
            self.na += 1

    def __iadd__(self, other: Tally) -> Tally:
        self.yes += other.yes
        self.no += other.no
        self.na += other.na
        return self


@dataclass
class QuestionScore:
    key: str
    text: str
    section_key: str
    tally: Tally


@dataclass
class SectionScore:
    key: str
    title: str
    tally: Tally
    questions: list[QuestionScore] = field(default_factory=list)


@dataclass
class Scores:
    sections: list[SectionScore]
    total: Tally

    def for_scope(self, scope: str, key: str = "") -> Tally | None:
        """The tally an indicator fed at ``scope`` ("question", "section", "overall")
        reads, or None when the key is not in this version."""
        if scope == "overall":
            return self.total
        for section in self.sections:
            if scope == "section" and section.key == key:
                return section.tally
            for q in section.questions:
                if scope == "question" and q.key == key:
                    return q.tally
        return None


def score(sections, questions, answers) -> Scores:
    """``sections``: objects with ``key``, ``title``; ``questions``: with ``pk``,
    ``key``, ``text``, ``section_id`` (or ``section_key``), ``is_scored``; ``answers``:
    (question id, value) pairs. Sections and questions in display order."""
    by_question: dict[int, Tally] = {}
    for question_id, value in answers:
        by_question.setdefault(question_id, Tally()).add(value)
    section_rows: dict[str, SectionScore] = {
        s.key: SectionScore(key=s.key, title=s.title, tally=Tally()) for s in sections
    }
    total = Tally()
    for q in questions:
        if not q.is_scored:
            continue
        section_key = q.key.split(".")[0]
        tally = by_question.get(q.pk, Tally())
        row = section_rows.get(section_key)
        if row is None:
            continue
        row.questions.append(QuestionScore(q.key, q.text, section_key, tally))
        row.tally += tally
        total += tally
    return Scores(sections=[s for s in section_rows.values() if s.questions], total=total)
