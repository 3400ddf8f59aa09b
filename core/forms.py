"""Form fields shared by every app.

Choices of rows are sent as ids. Only ASCII digits name an id: Python's ``int()`` also
reads "١٢" (Arabic-Indic digits) as 12, and ``"²".isdigit()`` is true although ``int()``
refuses it, so anything else is the field's usual "not one of the choices", never a
query and never a server error.
"""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

# Largest value of a 64-bit primary key: anything bigger cannot name a row, and SQLite
# raises OverflowError if asked (Django guards exact lookups, not ``__in``).
_MAX_PK = 2**63 - 1
_ASCII_ID = re.compile(r"[0-9]{1,19}")


def is_row_id(value: object) -> bool:
    """Whether ``value`` (as sent by a browser) can name a row: ASCII digits only, within
    a 64-bit key. Surrounding spaces are allowed, as Django's own fields allow them."""
    if isinstance(value, int) and not isinstance(value, bool):
        return 0 <= value <= _MAX_PK
    text = str(value).strip()
    return _ASCII_ID.fullmatch(text) is not None and int(text) <= _MAX_PK


def _invalid_choice(field: forms.Field, value: object) -> ValidationError:
    return ValidationError(
        field.error_messages["invalid_choice"],
        code="invalid_choice",
        params={"value": str(value).strip()[:30]},
    )


class ModelChoiceField(forms.ModelChoiceField):
    """A row chosen by id; anything but an ASCII id is "not one of the choices"."""

    def to_python(self, value):
        if (
            value not in self.empty_values
            and not isinstance(value, self.queryset.model)
            and self.to_field_name is None
            and not is_row_id(value)
        ):
            raise _invalid_choice(self, value)
        return super().to_python(value)


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Rows chosen by id; anything but ASCII ids is "not one of the choices"."""

    def _check_values(self, value):
        if self.to_field_name is None:
            for item in value:
                if not isinstance(item, self.queryset.model) and not is_row_id(item):
                    raise _invalid_choice(self, item)
        return super()._check_values(value)
