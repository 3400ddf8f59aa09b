"""Parsing and validation for measurements, evidence and imports.

``MeasurementForm`` is the single place the rules for a measurement live: the "log a
re-audit" page and every row of a spreadsheet import are validated by it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format

from audits.models import Annotation, EvidenceItem, Measurement
from core import files
from core.forms import DateInput
from plans.models import EvidenceKind, Indicator, Location, Plan

DATE_WIDGET = DateInput()


@dataclass
class MeasurementContext:
    """What validating a measurement needs to know about its plan, loaded once so that
    checking 5,000 rows costs the same few queries as checking one."""

    plan: Plan
    indicators: list[Indicator]
    locations: list[Location]
    # (indicator id, date) pairs already recorded, for the duplicate check.
    existing: set[tuple[int, datetime.date]] = field(default_factory=set)
    today: datetime.date = field(default_factory=timezone.localdate)

    @classmethod
    def for_plan(cls, plan: Plan, *, exclude: Measurement | None = None) -> MeasurementContext:
        indicators = list(plan.indicators.all())
        existing = Measurement.objects.filter(indicator__plan=plan)
        if exclude is not None:
            existing = existing.exclude(pk=exclude.pk)
        return cls(
            plan=plan,
            indicators=indicators,
            locations=list(plan.locations.all()),
            existing=set(existing.values_list("indicator_id", "measured_on")),
        )


class _LookupField(forms.ChoiceField):
    """A choice among objects already loaded, matched by id or (for imports) by name,
    ignoring case and surrounding spaces. No query per form."""

    def __init__(self, *, objects, noun: str, **kwargs):
        self.objects = list(objects)
        self.noun = noun
        super().__init__(
            choices=[("", "---------")] + [(o.pk, str(o)) for o in self.objects], **kwargs
        )

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, Indicator | Location):
            return value
        text = str(value).strip()
        for obj in self.objects:
            if str(obj.pk) == text:
                return obj
        by_name = [o for o in self.objects if str(o).strip().lower() == text.lower()]
        if len(by_name) == 1:
            return by_name[0]
        raise ValidationError(f"This plan has no {self.noun} called “{text}”.")

    def validate(self, value):
        if value is None and self.required:
            raise ValidationError(self.error_messages["required"], code="required")

    def prepare_value(self, value):
        return value.pk if isinstance(value, Indicator | Location) else value


# The largest count the database stores (a PositiveIntegerField on every backend).
_MAX_COUNT = 2_147_483_647


class _ResultFields(forms.Form):
    """The result itself: two counts for a proportion, one value otherwise."""

    numerator = forms.IntegerField(
        label="Met the standard",
        min_value=0,
        max_value=_MAX_COUNT,
        required=False,
        help_text="For proportions: how many met the standard (e.g. 18 records).",
        error_messages={"invalid": "Enter a whole number."},
    )
    denominator = forms.IntegerField(
        label="Checked",
        min_value=0,
        max_value=_MAX_COUNT,
        required=False,
        help_text="For proportions: how many were checked (e.g. 20 records).",
        error_messages={"invalid": "Enter a whole number."},
    )
    value = forms.DecimalField(
        label="Value",
        max_digits=15,
        decimal_places=3,
        required=False,
        help_text="For counts, rates and scores.",
        error_messages={"invalid": "Enter a number."},
    )

    def check_result(self, indicator: Indicator, data: dict) -> None:
        """The rules of a result for ``indicator``, as errors on this form's fields."""
        numerator, denominator = data.get("numerator"), data.get("denominator")
        value = data.get("value")
        if indicator.measure_type == Indicator.MeasureType.PROPORTION:
            if "numerator" not in self.errors and numerator is None:
                self.add_error("numerator", "Enter how many met the standard.")
            if "denominator" not in self.errors and denominator is None:
                self.add_error("denominator", "Enter how many were checked.")
            if denominator == 0:
                self.add_error("denominator", "The number checked must be more than 0.")
            elif numerator is not None and denominator is not None and numerator > denominator:
                self.add_error(
                    "numerator",
                    f"{numerator} met the standard but only {denominator} were checked: "
                    "the first cannot be larger.",
                )
            if value is not None:
                self.add_error(
                    "value", "This indicator is a proportion: give the two numbers instead."
                )
        else:
            if "value" not in self.errors and value is None:
                self.add_error("value", "Enter the value.")
            if numerator is not None or denominator is not None:
                self.add_error(
                    "value",
                    f"This indicator is a {indicator.get_measure_type_display().lower()}: "
                    "give one value, not two numbers.",
                )


def duplicate_message(
    context: MeasurementContext, indicator: Indicator, day: datetime.date | None
) -> str:
    """Why ``indicator`` cannot take another result on ``day`` (empty if it can)."""
    if day is not None and (indicator.pk, day) in context.existing:
        return (
            f"“{indicator.name}” already has a result for {date_format(day)}. "
            "Correct that one instead."
        )
    return ""


class _AuditFields(forms.Form):
    """What one audit shares across its results: the date, where, from what source."""

    measured_on = forms.DateField(
        label="Audit date", widget=DATE_WIDGET, help_text="The date the audit covered or ended."
    )
    location = forms.CharField(required=False)  # replaced in __init__
    source = forms.ChoiceField(
        label="Where the result came from",
        choices=[c for c in Measurement.Source.choices if c[0] != Measurement.Source.IMPORT],
        initial=Measurement.Source.RE_AUDIT,
    )
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False
    )

    def __init__(self, *args, context: MeasurementContext, **kwargs):
        super().__init__(*args, **kwargs)
        self.context = context
        self.fields["location"] = _LookupField(
            objects=context.locations,
            noun="location",
            label="Location",
            required=len(context.locations) > 1,
        )
        # Say which field is missing, not only "This field is required."
        self.fields["location"].error_messages["required"] = (
            "Choose the location this result is for."
        )
        self.fields["measured_on"].error_messages["required"] = "Enter the audit date."
        if len(context.locations) == 1:
            self.fields["location"].widget = forms.HiddenInput()
            self.initial.setdefault("location", context.locations[0].pk)

    def clean_measured_on(self):
        day = self.cleaned_data["measured_on"]
        if day > self.context.today:
            raise ValidationError("The audit date cannot be in the future.")
        if day < self.context.plan.opened_on:
            raise ValidationError(
                "The audit date cannot be before the plan opened "
                f"({date_format(self.context.plan.opened_on)})."
            )
        return day

    def clean(self):
        data = super().clean()
        if data.get("location") is None and len(self.context.locations) == 1:
            data["location"] = self.context.locations[0]
        return data


class MeasurementForm(_AuditFields, _ResultFields):
    """One result for one indicator: the "log a result" page, corrections, and every
    row of a spreadsheet import."""

    indicator = forms.CharField()  # replaced in __init__
    field_order = [
        "indicator",
        "measured_on",
        "numerator",
        "denominator",
        "value",
        "location",
        "source",
        "notes",
    ]

    def __init__(self, *args, context: MeasurementContext, allow_import_source=False, **kwargs):
        super().__init__(*args, context=context, **kwargs)
        self.fields["indicator"] = _LookupField(
            objects=context.indicators, noun="indicator", label="Indicator"
        )
        self.fields["indicator"].error_messages["required"] = (
            "Choose the indicator this result is for."
        )
        self.order_fields(self.field_order)
        if allow_import_source:
            self.fields["source"].choices = Measurement.Source.choices

    def clean(self):
        data = super().clean()
        indicator: Indicator | None = data.get("indicator")
        if indicator is None:
            return data
        self.check_result(indicator, data)
        if message := duplicate_message(self.context, indicator, data.get("measured_on")):
            self.add_error("measured_on", message)
        return data

    def measurement_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "indicator": data["indicator"],
            "measured_on": data["measured_on"],
            "numerator": data.get("numerator"),
            "denominator": data.get("denominator"),
            "value": data.get("value"),
            "location": data.get("location"),
            "source": data["source"],
            "notes": data.get("notes", ""),
        }


class AuditForm(_AuditFields):
    """One audit's date, location, source and notes, shared by its results
    (``AuditResultForm``, one per indicator) and its evidence (``AuditEvidenceForm``)."""


class AuditResultForm(_ResultFields):
    """One indicator's result on the audit form; left blank, the indicator was not part
    of this audit. Only the fields its kind of measure takes are shown."""

    def __init__(self, *args, indicator: Indicator, context: MeasurementContext, **kwargs):
        kwargs.setdefault("prefix", f"i{indicator.pk}")
        super().__init__(*args, **kwargs)
        self.indicator = indicator
        self.context = context
        self.audit_date: datetime.date | None = None  # set once the audit's date is valid
        if indicator.measure_type == Indicator.MeasureType.PROPORTION:
            del self.fields["value"]
        else:
            del self.fields["numerator"], self.fields["denominator"]
        for name in self.fields:  # the fieldset's legend says what the indicator takes
            self.fields[name].help_text = ""

    @property
    def is_blank(self) -> bool:
        return not any(
            str(self.data.get(self.add_prefix(name), "")).strip() for name in self.fields
        )

    def clean(self):
        data = super().clean()
        if self.is_blank:
            return data
        self.check_result(self.indicator, data)
        if message := duplicate_message(self.context, self.indicator, self.audit_date):
            self.add_error(next(iter(self.fields)), message)
        return data

    def measurement_fields(self, audit: dict) -> dict:
        data = self.cleaned_data
        return {
            "indicator": self.indicator,
            "measured_on": audit["measured_on"],
            "numerator": data.get("numerator"),
            "denominator": data.get("denominator"),
            "value": data.get("value"),
            "location": audit.get("location"),
            "source": audit["source"],
            "notes": audit.get("notes", ""),
        }


class AuditEvidenceForm(forms.Form):
    """The audit's evidence, recorded once for all its results: optional."""

    kind = forms.ChoiceField(label="Kind of evidence", choices=EvidenceKind.choices)
    title = forms.CharField(
        label="Title",
        max_length=200,
        required=False,
        help_text="For example “Safeguarding records re-audit (May)”. Leave blank if there is "
        "no evidence to add.",
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=3000, required=False
    )
    upload = forms.FileField(label="File (optional)", required=False)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "evidence")
        super().__init__(*args, **kwargs)
        self.initial.setdefault("kind", EvidenceKind.RE_AUDIT)
        self.fields["upload"].help_text = (
            f"{files.ALLOWED_TYPES_TEXT}. Up to "
            f"{settings.EVIDENCE_MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
        )
        self.file_type: files.FileType | None = None

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if upload:
            files.check_size(upload)
            self.file_type = files.detect_type(upload)
        return upload

    def clean(self):
        data = super().clean()
        if data.get("upload") and not (data.get("title") or "").strip():
            self.add_error("title", "Give the evidence a title.")
        return data

    @property
    def has_evidence(self) -> bool:
        return bool((self.cleaned_data.get("title") or "").strip())

    def evidence_fields(self, audit: dict) -> dict:
        data = self.cleaned_data
        return {
            "kind": data["kind"],
            "title": data["title"].strip(),
            "occurred_on": audit["measured_on"],
            "description": data.get("description", ""),
        }


class AnnotationForm(forms.Form):
    """A dated note on one of the plan's charts."""

    indicator = forms.CharField()  # replaced in __init__
    noted_on = forms.DateField(
        label="Date",
        widget=DATE_WIDGET,
        help_text="When it happened: the note is drawn on the chart at this date.",
        error_messages={"required": "Enter the date of the note."},
    )
    kind = forms.ChoiceField(
        label="Kind of note",
        choices=[(k.value, k.label) for k in Annotation.NOTE_KINDS],
        initial=Annotation.Kind.NOTE,
    )
    text = forms.CharField(
        label="Note",
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="For example “New escalation checklist introduced” or “PDSA cycle 2: "
        "huddle moved to 8am”.",
        error_messages={"required": "Write the note."},
    )

    def __init__(self, *args, indicators: list[Indicator], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["indicator"] = _LookupField(
            objects=indicators, noun="indicator", label="Chart (indicator)"
        )
        self.fields["indicator"].error_messages["required"] = "Choose the chart to note."
        self.order_fields(["indicator", "noted_on", "kind", "text"])

    def clean_noted_on(self):
        day = self.cleaned_data["noted_on"]
        if day > timezone.localdate():
            raise ValidationError("A note cannot be dated in the future.")
        return day


class RecalculationForm(forms.Form):
    """Recalculate one indicator's limits from one of its results, with the reason."""

    starts_on = forms.TypedChoiceField(
        label="First result of the new phase",
        coerce=datetime.date.fromisoformat,
        help_text="Limits are recalculated from this result onwards. Choose the first result "
        "after the change, or the first of the shift if that is later.",
        error_messages={"required": "Choose the result the new phase starts at."},
    )
    reason = forms.CharField(
        label="What changed in the process",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The documented change, e.g. “New escalation checklist in use on every "
        "shift from 3 March”. Kept with the chart and in the plan's history.",
        error_messages={"required": "Say what changed in the process."},
    )

    def __init__(self, *args, results: list[Measurement], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["starts_on"].choices = [("", "Choose a result")] + [
            (m.measured_on.isoformat(), f"{date_format(m.measured_on)}: {m.value_display()}")
            for m in reversed(results)
        ]


class CorrectionReasonForm(forms.Form):
    """Why a result is corrected: kept in the plan's history with the old value."""

    reason = forms.CharField(
        max_length=300, error_messages={"required": "Say why the result is being corrected."}
    )


class EvidenceForm(forms.ModelForm):
    upload = forms.FileField(
        label="File (optional)",
        required=False,
        help_text=f"{files.ALLOWED_TYPES_TEXT}.",
    )

    class Meta:
        model = EvidenceItem
        fields = ["kind", "title", "occurred_on", "description"]
        widgets = {
            "occurred_on": DATE_WIDGET,
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, plan: Plan, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound and not self.initial.get("occurred_on"):
            self.initial["occurred_on"] = timezone.localdate()
        self.plan = plan
        self.fields["kind"].choices = EvidenceKind.choices
        self.fields[
            "upload"
        ].help_text += f" Up to {settings.EVIDENCE_MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
        self.file_type: files.FileType | None = None

    def clean_occurred_on(self):
        day = self.cleaned_data["occurred_on"]
        if day > timezone.localdate():
            raise ValidationError("The date cannot be in the future.")
        return day

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if upload:
            files.check_size(upload)
            self.file_type = files.detect_type(upload)
        return upload


class ImportUploadForm(forms.Form):
    upload = forms.FileField(
        label="Spreadsheet",
        help_text="A CSV (UTF-8) or Excel (.xlsx) file laid out like the template.",
    )

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        files.check_size(upload)
        found = files.detect_type(upload)
        if found not in (files.CSV, files.TEXT, files.XLSX):
            raise ValidationError("Upload a CSV or an Excel (.xlsx) file.")
        self.kind = "xlsx" if found == files.XLSX else "csv"
        return upload


class ReopenForm(forms.Form):
    reason = forms.CharField(
        label="Why is the plan being re-opened?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="The results that triggered the deterioration are added to the history for you.",
    )
