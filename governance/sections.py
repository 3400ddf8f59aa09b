"""Sections that higher apps add to the closure report (``learning`` adds "Where
learning is embedded"). ``governance`` never imports upwards: an app registers a
section from its ``AppConfig.ready()``.

A section's ``compile`` returns plain text only (it is frozen into the submitted
snapshot as JSON and escaped when rendered)::

    {"title": "Where learning is embedded", "items": ["Induction: ...", ...],
     "empty": "No embedding recorded yet."}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plans.models import Plan


@dataclass(frozen=True)
class ReportSection:
    name: str
    compile: Callable[[Plan], dict]
    order: int = 100


_SECTIONS: dict[str, ReportSection] = {}


def register_section(section: ReportSection) -> None:
    _SECTIONS[section.name] = section


def unregister_section(name: str) -> None:
    _SECTIONS.pop(name, None)


def compile_sections(plan: Plan) -> dict[str, dict]:
    ordered = sorted(_SECTIONS.values(), key=lambda s: (s.order, s.name))
    result = {}
    for section in ordered:
        data = section.compile(plan)
        result[section.name] = {
            "title": str(data.get("title", section.name)),
            "items": [str(item) for item in data.get("items", [])],
            "empty": str(data.get("empty", "Nothing recorded.")),
        }
    return result
