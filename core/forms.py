"""Form fields shared by every app."""

from django import forms
from django.core.exceptions import ValidationError

# Largest value of a 64-bit primary key: anything bigger cannot name a row, and SQLite
# raises OverflowError if asked (Django guards exact lookups, not ``__in``).
_MAX_PK = 2**63 - 1


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Refuses ids no database could hold with the usual "not one of the choices"."""

    def _check_values(self, value):
        for item in value:
            text = str(item).strip()
            if text.lstrip("-").isdigit() and abs(int(text)) > _MAX_PK:
                raise ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": text[:30]},
                )
        return super()._check_values(value)
