"""Forms for conducting audits: starting one, raising an action from a finding,
feeding an indicator from a tool."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from audits.tools.models import MAX_SAMPLE, MIN_SAMPLE, AuditTool, IndicatorFeed
from core.forms import DateInput, ModelChoiceField
from plans.models import Indicator, Plan


class StartAuditForm(forms.Form):
    tool = ModelChoiceField(queryset=AuditTool.objects.all(), label="Audit tool")
    location = ModelChoiceField(queryset=None, label="Location")
    audited_on = forms.DateField(label="Audit date", widget=DateInput())
    sample_size = forms.IntegerField(
        label="How many records will you audit?",
        min_value=MIN_SAMPLE,
        max_value=MAX_SAMPLE,
        error_messages={
            "min_value": f"The sample must be between {MIN_SAMPLE} and {MAX_SAMPLE} records.",
            "max_value": f"The sample must be between {MIN_SAMPLE} and {MAX_SAMPLE} records.",
        },
        help_text=(
            f"{MIN_SAMPLE} to {MAX_SAMPLE}. You will give each record an anonymised "
            "identifier as you go (a room or care-record number): never a resident's name."
        ),
    )

    def __init__(self, *args, locations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = locations

    def clean_audited_on(self):
        day = self.cleaned_data["audited_on"]
        if day > timezone.localdate():
            raise forms.ValidationError("An audit cannot be dated in the future.")
        return day


class RaiseActionForm(forms.Form):
    plan = ModelChoiceField(queryset=Plan.objects.none(), label="Plan")
    owner = ModelChoiceField(queryset=None, label="Owner")
    due_date = forms.DateField(label="Due date", widget=DateInput())

    def __init__(self, *args, plans, owners, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = plans
        self.fields["owner"].queryset = owners


class FeedForm(forms.Form):
    indicator = ModelChoiceField(queryset=Indicator.objects.none(), label="Indicator")
    tool = ModelChoiceField(queryset=AuditTool.objects.all(), label="Audit tool")
    scope = forms.ChoiceField(choices=IndicatorFeed.Scope.choices, label="Fed by")
    key = forms.CharField(
        label="Question or section",
        required=False,
        max_length=20,
        help_text='The key shown on the tool\'s page, e.g. "S1.Q2" for a question or "S1" '
        "for a section. Leave blank for the overall score.",
    )

    def __init__(self, *args, plan: Plan, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["indicator"].queryset = plan.indicators.all()
