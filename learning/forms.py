"""Parsing and validation for learning."""

from __future__ import annotations

import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from core import files
from core.forms import DateInput, ModelChoiceField, ModelMultipleChoiceField
from learning.models import Embedding, LearningReview, LearningSummary
from plans.access import visible_locations
from plans.models import Location, QualityStatement, Theme, User

DATE_WIDGET = DateInput()


class SummaryForm(forms.ModelForm):
    class Meta:
        model = LearningSummary
        fields = ["what_happened", "what_changed", "key_messages"]
        widgets = {
            "what_happened": forms.Textarea(attrs={"rows": 4}),
            "what_changed": forms.Textarea(attrs={"rows": 4}),
            "key_messages": forms.Textarea(attrs={"rows": 4}),
        }
        help_texts = {
            "what_happened": "In a few sentences: what went wrong, and how it was found.",
            "what_changed": "What is now done differently, and how you know it worked.",
            "key_messages": "What every member of staff should take away. Short and plain.",
        }

    def clean(self):
        data = super().clean()
        for name in self.Meta.fields:
            value = data.get(name)
            if value is not None and not value.strip():
                self.add_error(name, "This field is required.")
        return data


class ShareForm(forms.Form):
    locations = ModelMultipleChoiceField(
        queryset=Location.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label="Share with the managers of",
        help_text="Every active manager of the chosen locations is asked to acknowledge it.",
        error_messages={"required": "Choose at least one location."},
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["locations"].queryset = visible_locations(user).filter(is_active=True)


class EmbeddingForm(forms.ModelForm):
    evidence = forms.FileField(
        label="Evidence file (optional)",
        required=False,
        help_text=f"{files.ALLOWED_TYPES_TEXT}. Stored privately.",
    )

    class Meta:
        model = Embedding
        fields = ["kind", "embedded_on", "who", "note"]
        widgets = {
            "kind": forms.RadioSelect,
            "embedded_on": DATE_WIDGET,
            "note": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"note": "Note (optional)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["embedded_on"].required = True
        self.fields["who"].required = True
        self.fields["kind"].choices = Embedding.Kind.choices
        self.detected: files.FileType | None = None

    def clean_embedded_on(self) -> datetime.date:
        day = self.cleaned_data["embedded_on"]
        if day > timezone.localdate():
            raise ValidationError("The date cannot be in the future.")
        return day

    def clean_evidence(self):
        upload = self.cleaned_data.get("evidence")
        if upload:
            # The same checks as audits' evidence: size, then type by content.
            files.check_size(upload)
            self.detected = files.detect_type(upload)
        return upload


class ReviewForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=LearningReview.Outcome.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose an outcome."},
    )
    note = forms.CharField(
        label="Notes or reason",
        required=False,
        max_length=3000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when retiring the learning: say why it no longer applies.",
    )
    what_happened = forms.CharField(
        label="What happened (updated)", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    what_changed = forms.CharField(
        label="What changed (updated)", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    key_messages = forms.CharField(
        label="Key messages for staff (updated)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    reembed_kind = forms.ChoiceField(
        label="Where it needs embedding again",
        choices=[("", "Choose…")] + list(Embedding.Kind.choices),
        required=False,
    )
    reembed_due_on = forms.DateField(label="To be done by", required=False, widget=DATE_WIDGET)

    TEXT_FIELDS = ("what_happened", "what_changed", "key_messages")

    def __init__(self, *args, meetings=None, **kwargs):
        super().__init__(*args, **kwargs)
        if meetings is not None:
            self.fields["meeting"] = ModelChoiceField(
                queryset=meetings,
                required=False,
                label="Reviewed at meeting",
                empty_label="Not at a meeting",
            )

    def clean(self):
        data = super().clean()
        outcome = data.get("outcome")
        Outcome = LearningReview.Outcome
        if outcome == Outcome.RETIRED and not data.get("note", "").strip():
            self.add_error("note", "Give the reason for retiring this learning.")
        if outcome == Outcome.UPDATED:
            for name in self.TEXT_FIELDS:
                if not data.get(name, "").strip():
                    self.add_error(name, "Write the updated text (or keep the current one).")
        if outcome == Outcome.REEMBED and not data.get("reembed_kind"):
            self.add_error("reembed_kind", "Say where the learning needs embedding again.")
        return data


class AgendaForm(forms.Form):
    meeting = ModelChoiceField(
        queryset=None,
        required=False,
        label="Meeting",
        empty_label="Not on a meeting agenda",
    )

    def __init__(self, *args, meetings, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["meeting"].queryset = meetings


class LibraryFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    theme = ModelChoiceField(queryset=Theme.objects.all(), required=False, empty_label="Any theme")
    location = ModelChoiceField(
        queryset=Location.objects.none(), required=False, empty_label="Any location"
    )
    statement = ModelChoiceField(
        label="CQC quality statement",
        queryset=QualityStatement.objects.all(),
        required=False,
        empty_label="Any quality statement",
    )
    date_from = forms.DateField(label="Written from", required=False, widget=DATE_WIDGET)
    date_to = forms.DateField(label="Written to", required=False, widget=DATE_WIDGET)
    include_retired = forms.BooleanField(label="Include retired learning", required=False)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = visible_locations(user)
        for field in self.fields.values():
            if isinstance(field.widget, forms.Select):
                field.widget.attrs["class"] = "form-select"
            elif isinstance(field.widget, forms.CheckboxInput):
                field.widget.attrs["class"] = "form-check-input"
            else:
                field.widget.attrs["class"] = "form-control"
