"""Named register filters that higher apps contribute ("ready for closure review" and
"deteriorating in monitoring" come from ``audits``), so the home page can link every
number to the filtered register. As with ``panels.py``, ``plans`` never imports
upwards: an app registers a flag from its ``AppConfig.ready()``. A flag's ``apply``
must add a fixed number of queries (a filter or a subquery, never a loop)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from plans.models import Plan


@dataclass(frozen=True)
class Flag:
    name: str
    label: str  # completes "Showing plans …", e.g. "ready for closure review"
    apply: Callable[[QuerySet[Plan]], QuerySet[Plan]]


_FLAGS: dict[str, Flag] = {}


def register_flag(flag: Flag) -> None:
    _FLAGS[flag.name] = flag


def flag_choices() -> list[tuple[str, str]]:
    return [("", "")] + [(f.name, f.label) for f in _FLAGS.values()]


def get_flag(name: str) -> Flag | None:
    return _FLAGS.get(name)
