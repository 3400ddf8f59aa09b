"""Form fields shared by every app.

Choices of rows are sent as ids. Only ASCII digits name an id: Python's ``int()`` also
reads "١٢" (Arabic-Indic digits) as 12, and ``"²".isdigit()`` is true although ``int()``
refuses it, so anything else is the field's usual "not one of the choices", never a
query and never a server error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

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


class DateInput(forms.DateInput):
    """A date typed as day/month/year, whatever the browser's language: a browser's own
    date picker (``type="date"``) orders the parts by its locale, which cannot be set
    to en-GB from the page. Read by ``DATE_INPUT_FORMATS`` (qip_portal/formats), which
    also takes 2026-01-14 and "14 Jan 2026"."""

    input_type = "text"

    def __init__(self, attrs: dict | None = None):
        super().__init__(
            attrs={
                "placeholder": "dd/mm/yyyy",
                "inputmode": "numeric",
                "autocomplete": "off",
                "pattern": r"\d{1,2}/\d{1,2}/\d{2,4}|\d{4}-\d{1,2}-\d{1,2}",
                "title": "Day/month/year, for example 14/01/2026",
                **(attrs or {}),
            },
            format="%d/%m/%Y",
        )


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Rows chosen by id; anything but ASCII ids is "not one of the choices"."""

    def _check_values(self, value):
        if self.to_field_name is None:
            for item in value:
                if not isinstance(item, self.queryset.model) and not is_row_id(item):
                    raise _invalid_choice(self, item)
        return super()._check_values(value)


# --- The error summary at the top of a form that was not saved --------------------------


@dataclass(frozen=True)
class FormError:
    """One problem, as the error summary lists it: linked to the field (or section)."""

    label: str
    message: str
    anchor: str


def _field_anchor(bound) -> str:
    # A group of checkboxes or radio buttons has no element of its own id: its first
    # option is where the link should take the keyboard.
    if isinstance(bound.field.widget, forms.RadioSelect | forms.CheckboxSelectMultiple):
        return f"{bound.auto_id}_0"
    return bound.auto_id


def _form_errors(form, *, row: str = "", anchor: str = "") -> list[FormError]:
    found = []
    for message in form.non_field_errors():
        found.append(FormError(row, message, anchor))
    for name in form.errors:
        if name == NON_FIELD_ERRORS or name not in form.fields:
            continue
        bound = form[name]
        label = str(bound.label)
        if row:
            label = f"{row}, {label[:1].lower()}{label[1:]}"
        for message in bound.errors:
            found.append(FormError(label, message, _field_anchor(bound)))
    return found


def error_summary(*parts) -> list[FormError]:
    """Every error of a page's forms, in page order. A part is a form; a
    ``(form, name)`` pair, whose errors are labelled with its name ("Indicator “Falls”,
    target"); or a ``(formset, noun, section_id)`` triple: its rows are named "Action 2"
    and its own errors ("Add at least 1 trigger") link to its section."""
    found: list[FormError] = []
    for part in parts:
        if isinstance(part, tuple) and len(part) == 2:
            form, name = part
            if form.is_bound:
                found += _form_errors(form, row=name)
        elif isinstance(part, tuple):
            formset, noun, section = part
            if not formset.is_bound:
                continue
            for message in formset.non_form_errors():
                found.append(FormError(f"{noun}s", message, section))
            for number, form in enumerate(formset.forms, start=1):
                found += _form_errors(form, row=f"{noun} {number}", anchor=section)
        elif part is not None and part.is_bound:
            found += _form_errors(part)
    return found
