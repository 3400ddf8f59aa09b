"""The URL converter for plan references (``<plan_ref:reference>``).

A plan's reference is handed out by ``services.allocate_reference``: ``QIP-``, the year
it was opened (a date's year, so one to four digits) and a number of at least four
digits, twenty characters at most in all (``Plan.reference``). Every URL that names a
plan matches only that, so anything else (a NUL byte, a Unicode digit, a name the
database could not even compare) is "not found" before a view or a query runs.

Registered once, when this module is first imported: each ``urls.py`` that names a
plan imports it before its patterns are built.
"""

from __future__ import annotations

import re

from django.urls import register_converter

PLAN_REFERENCE = r"QIP-[0-9]{1,4}-[0-9]{4,11}"
_WHOLE = re.compile(PLAN_REFERENCE)


def is_plan_reference(text: str) -> bool:
    """Whether ``text`` has the shape of a plan reference (ASCII digits only)."""
    return len(text) <= 20 and _WHOLE.fullmatch(text) is not None


class PlanReferenceConverter:
    regex = PLAN_REFERENCE

    def to_python(self, value: str) -> str:
        if not is_plan_reference(value):
            raise ValueError(value)  # the resolver then tries the next pattern: 404
        return value

    def to_url(self, value: str) -> str:
        value = str(value)
        if not is_plan_reference(value):
            raise ValueError(value)  # reverse() then says NoReverseMatch
        return value


register_converter(PlanReferenceConverter, "plan_ref")
