"""Parsing and validation for plans. Every rule that protects the data lives here or
on the model, so the create flow, the edit pages and (later) imports agree."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.dates import day
from core.forms import DateInput, ModelChoiceField, ModelMultipleChoiceField
from plans.access import assignable_owners, visible_locations
from plans.models import (
    Action,
    ClosureCriteria,
    EvidenceKind,
    Indicator,
    KeyQuestion,
    Plan,
    QualityStatement,
    Regulation,
    Theme,
    Trigger,
    User,
)

DATE_WIDGET = DateInput()
RISK_CHOICES = [(n, str(n)) for n in range(1, 6)]


class PlanForm(forms.ModelForm):
    key_questions = forms.MultipleChoiceField(
        label="CQC key questions",
        choices=KeyQuestion.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    likelihood = forms.TypedChoiceField(
        choices=RISK_CHOICES, coerce=int, help_text="1 (rare) to 5 (almost certain)"
    )
    impact = forms.TypedChoiceField(
        choices=RISK_CHOICES, coerce=int, help_text="1 (negligible) to 5 (catastrophic)"
    )

    class Meta:
        model = Plan
        fields = [
            "title",
            "summary",
            "theme",
            "locations",
            "owner",
            "likelihood",
            "impact",
            "key_questions",
            "quality_statements",
            "regulations",
            "opened_on",
            "target_date",
        ]
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 3}),
            "locations": forms.CheckboxSelectMultiple,
            "quality_statements": forms.SelectMultiple(attrs={"size": 6}),
            "regulations": forms.CheckboxSelectMultiple,
            "opened_on": DATE_WIDGET,
            "target_date": DATE_WIDGET,
        }
        labels = {"opened_on": "Opened on", "locations": "Location(s)"}
        field_classes = {
            "theme": ModelChoiceField,
            "owner": ModelChoiceField,
            "locations": ModelMultipleChoiceField,
            "quality_statements": ModelMultipleChoiceField,
            "regulations": ModelMultipleChoiceField,
        }

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["theme"].queryset = Theme.objects.all()
        self.fields["locations"].queryset = visible_locations(user).filter(is_active=True)
        self.fields["owner"].queryset = assignable_owners(user)
        self.fields["quality_statements"].queryset = QualityStatement.objects.all()
        self.fields["quality_statements"].required = False
        self.fields["regulations"].queryset = Regulation.objects.all()
        self.fields["regulations"].required = False

    def clean_opened_on(self) -> datetime.date:
        opened_on = self.cleaned_data["opened_on"]
        if opened_on > timezone.localdate():
            raise ValidationError("A plan cannot be opened in the future.")
        return opened_on

    def clean(self):
        cleaned = super().clean()
        opened_on, target_date = cleaned.get("opened_on"), cleaned.get("target_date")
        if opened_on and target_date and target_date < opened_on:
            self.add_error("target_date", "The target date cannot be before the plan was opened.")
        return cleaned


class TriggerForm(forms.ModelForm):
    class Meta:
        model = Trigger
        fields = ["kind", "reference", "occurred_on", "description"]
        widgets = {"occurred_on": DATE_WIDGET, "description": forms.Textarea(attrs={"rows": 2})}
        labels = {"reference": "Reference (e.g. incident or alert number)"}

    def clean_occurred_on(self) -> datetime.date:
        occurred_on = self.cleaned_data["occurred_on"]
        if occurred_on > timezone.localdate():
            raise ValidationError("A trigger cannot be dated in the future.")
        return occurred_on


class CriteriaForm(forms.ModelForm):
    required_evidence = forms.MultipleChoiceField(
        label="Evidence required before closure",
        choices=EvidenceKind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = ClosureCriteria
        fields = [
            "success_in_practice",
            "sustain_months",
            "min_reaudits",
            "required_evidence",
            "sign_off_level",
        ]
        widgets = {"success_in_practice": forms.Textarea(attrs={"rows": 3})}
        labels = {"sign_off_level": "Who signs off closure"}
        error_messages = {
            "sustain_months": {"min_value": "The sustain period must be at least one month."},
            "min_reaudits": {"min_value": "At least one re-audit must fall inside the window."},
        }
        help_texts = {
            "sustain_months": "How long every indicator must stay on target before closure.",
            "min_reaudits": "How many re-audits must fall inside that window.",
        }

    def clean_sustain_months(self) -> int:
        value = self.cleaned_data["sustain_months"]
        if value is None or value < 1:
            raise ValidationError("The sustain period must be at least one month.")
        return value


class IndicatorForm(forms.ModelForm):
    class Meta:
        model = Indicator
        fields = ["name", "measure_type", "direction", "target", "unit", "frequency"]
        error_messages = {"target": {"invalid": "The target must be a number, such as 90 or 2.5."}}

    def clean(self):
        cleaned = super().clean()
        target: Decimal | None = cleaned.get("target")
        is_proportion = cleaned.get("measure_type") == Indicator.MeasureType.PROPORTION
        if is_proportion and target is not None and not Decimal(0) <= target <= Decimal(100):
            self.add_error("target", "A proportion's target is a percentage between 0 and 100.")
        if target is not None and target < 0:
            self.add_error("target", "The target cannot be negative.")
        if cleaned.get("measure_type") == Indicator.MeasureType.PROPORTION and not cleaned.get(
            "unit"
        ):
            cleaned["unit"] = "%"
        return cleaned


class ActionForm(forms.ModelForm):
    class Meta:
        model = Action
        fields = ["description", "owner", "due_date", "status", "completed_on", "completion_note"]
        field_classes = {"owner": ModelChoiceField}
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "due_date": DATE_WIDGET,
            "completed_on": DATE_WIDGET,
            "completion_note": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {"completed_on": "Completed on"}
        help_texts = {"completed_on": "When the status is Completed: the day it was done."}
        error_messages = {
            "completed_on": {"invalid": "Enter the date as day/month/year, for example 14/01/2026."}
        }

    def __init__(
        self,
        *args,
        user: User,
        opened_on: datetime.date | None = None,
        earliest: datetime.date | None = None,
        **kwargs,
    ):
        """``earliest``: the first day an action on this plan can have been completed,
        the day of its earliest trigger (a plan is often written up days after the
        incident, and what was done straight away counts); the opened date without it."""
        super().__init__(*args, **kwargs)
        self.opened_on = opened_on
        self.earliest = earliest
        self.fields["owner"].queryset = assignable_owners(user)

    def clean(self):
        cleaned = super().clean()
        due = cleaned.get("due_date")
        if due and self.opened_on and due < self.opened_on:
            self.add_error("due_date", "The due date cannot be before the plan was opened.")
        completed = cleaned.get("status") == Action.Status.COMPLETED
        if completed and not (cleaned.get("completion_note") or "").strip():
            self.add_error("completion_note", "Say what was done when marking an action completed.")
        done_on = cleaned.get("completed_on")
        if not completed:
            # A date typed before the status was changed back is not a completion.
            cleaned["completed_on"] = None
        elif done_on is None:
            if "completed_on" not in self.errors:
                self.add_error("completed_on", "Give the date this action was completed.")
        elif done_on > timezone.localdate():
            self.add_error("completed_on", "An action cannot be completed in the future.")
        elif self.earliest and done_on < self.earliest:
            self.add_error(
                "completed_on",
                "An action cannot be completed before what triggered the plan "
                f"({day(self.earliest)}).",
            )
        elif self.earliest is None and self.opened_on and done_on < self.opened_on:
            self.add_error(
                "completed_on",
                "An action cannot be completed before the plan was opened "
                f"({day(self.opened_on)}).",
            )
        return cleaned


class VerifyActionForm(forms.Form):
    note = forms.CharField(
        label="How was effectiveness verified?",
        max_length=3000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
    merged_into = forms.CharField(
        label="Merged into (plan reference, optional)", max_length=20, required=False
    )

    def __init__(self, *args, plans, **kwargs):
        super().__init__(*args, **kwargs)
        self.plans = plans

    def clean_merged_into(self):
        reference = self.cleaned_data["merged_into"].strip().upper()
        if not reference:
            return None
        plan = self.plans.filter(reference=reference).first()
        if plan is None:
            raise ValidationError(f"There is no plan {reference} that you can see.")
        return plan


class CriteriaRevisionForm(CriteriaForm):
    reason = forms.CharField(
        label="Reason for revising the agreed criteria",
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, locked: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.locked = locked
        if locked:
            self.fields["reason"].required = True
            self.fields["reason"].error_messages["required"] = (
                "The criteria were agreed at activation: give a reason for revising them."
            )


def _non_empty_forms(formset) -> list:
    return [f for f in formset.forms if f.has_changed() and not f.cleaned_data.get("DELETE")]


class BaseRequiredFormSet(forms.BaseFormSet):
    """Rows of the open-plan form. The first ``min_filled`` rows are needed; the rest
    may be left blank, so their fields are not marked required until something is
    typed in the row (then they are, and are checked as usual)."""

    min_filled = 0
    what = "row"

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if i >= self.min_filled and not (form.is_bound and form.has_changed()):
            for field in form.fields.values():
                field.required = False
        return form

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        if len(_non_empty_forms(self)) < self.min_filled:
            raise ValidationError(f"Add at least {self.min_filled} {self.what}.")


class TriggerFormSetBase(BaseRequiredFormSet):
    min_filled = 1
    what = "trigger"

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        seen = set()
        for form in _non_empty_forms(self):
            reference = (form.cleaned_data.get("reference") or "").strip().lower()
            key = (form.cleaned_data.get("kind"), reference)
            if reference and key in seen:
                raise ValidationError(
                    f"Trigger reference “{form.cleaned_data['reference']}” is entered twice."
                )
            seen.add(key)


class IndicatorFormSetBase(BaseRequiredFormSet):
    min_filled = 1
    what = "indicator with a direction and a target"

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        names = [f.cleaned_data["name"].strip().lower() for f in _non_empty_forms(self)]
        if len(names) != len(set(names)):
            raise ValidationError("Two indicators have the same name.")


class ActionFormSetBase(BaseRequiredFormSet):
    def __init__(self, *args, user: User, opened_on=None, earliest=None, **kwargs):
        self.user = user
        self.opened_on = opened_on
        self.earliest = earliest
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {"user": self.user, "opened_on": self.opened_on, "earliest": self.earliest}


# The page offers two or three rows of each. A posted TOTAL_FORMS is believed only up to
# ``absolute_max`` (Django's default is 2,000 forms built and rendered for one request).
_ROWS = {"max_num": 20, "absolute_max": 20}
TriggerFormSet = forms.formset_factory(TriggerForm, formset=TriggerFormSetBase, extra=2, **_ROWS)
IndicatorFormSet = forms.formset_factory(
    IndicatorForm, formset=IndicatorFormSetBase, extra=3, **_ROWS
)
ActionFormSet = forms.formset_factory(ActionForm, formset=ActionFormSetBase, extra=3, **_ROWS)


def filled(formset) -> list[dict]:
    return [f.cleaned_data for f in _non_empty_forms(formset)]


class RegisterFilterForm(forms.Form):
    SORTS = {
        "reference": "reference",
        "-reference": "-reference",
        "target_date": "target_date",
        "-target_date": "-target_date",
        "-risk_score": "-risk_score",
        "risk_score": "risk_score",
        "opened_on": "opened_on",
        "-opened_on": "-opened_on",
        "title": "title",
        "status": "status",
    }
    SORT_CHOICES = [
        ("-opened_on", "Newest first"),
        ("opened_on", "Oldest first"),
        ("-risk_score", "Highest risk first"),
        ("target_date", "Target date, soonest first"),
        ("reference", "Reference"),
        ("title", "Title"),
    ]
    RISK_CHOICES = [
        ("", "Any risk"),
        ("low", "Low (1-3)"),
        ("moderate", "Moderate (4-6)"),
        ("high", "High (8-12)"),
        ("extreme", "Extreme (15-25)"),
    ]
    RISK_RANGES = {"low": (1, 3), "moderate": (4, 6), "high": (8, 12), "extreme": (15, 25)}

    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.ChoiceField(
        choices=[("", "Any status"), ("open", "Any open status")] + list(Plan.Status.choices),
        required=False,
    )
    # Drop-downs of rows, as (id, label) pairs set in __init__: the register lists
    # hundreds of locations and owners on every view, and a ModelChoiceField builds a
    # model instance for each (BENCHMARKS.md). The cleaned value is the row's id.
    location = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    theme = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    owner = forms.TypedChoiceField(coerce=int, empty_value=None, required=False)
    risk = forms.ChoiceField(choices=RISK_CHOICES, required=False)
    overdue = forms.BooleanField(label="Overdue actions only", required=False)
    stale = forms.BooleanField(label="Stale only", required=False)
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False)
    # Links from the home page's month table ("opened in March 2026").
    opened_month = forms.RegexField(regex=r"^\d{4}-(0[1-9]|1[0-2])$", required=False,
                                    widget=forms.HiddenInput)
    closed_month = forms.RegexField(regex=r"^\d{4}-(0[1-9]|1[0-2])$", required=False,
                                    widget=forms.HiddenInput)
    # Named filters linked from the home page's tiles; their choices are passed in by the
    # page that composes the register (qip_portal/pages/plans.py).
    flag = forms.ChoiceField(choices=[], required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user: User, flags: dict[str, str] | None = None, **kwargs):
        """``flags``: {name: label} of the named filters the register offers."""
        super().__init__(*args, **kwargs)
        self.fields["location"].choices = [("", "Any location")] + list(
            visible_locations(user).values_list("pk", "name")
        )
        self.fields["theme"].choices = [("", "Any theme")] + list(
            Theme.objects.values_list("pk", "name")
        )
        # A semi-join on the owner index: not DISTINCT over every plan's owner. Labelled
        # as User.__str__ labels a person.
        owners = User.objects.filter(Exists(Plan.objects.filter(owner=OuterRef("pk"))))
        self.fields["owner"].choices = [("", "Any owner")] + [
            (pk, f"{first} {last}".strip() or username)
            for pk, first, last, username in owners.values_list(
                "pk", "first_name", "last_name", "username"
            )
        ]
        self.fields["flag"].choices = [("", "")] + list((flags or {}).items())
        for field in self.fields.values():
            if isinstance(field.widget, forms.Select):
                field.widget.attrs["class"] = "form-select"
            elif isinstance(field.widget, forms.CheckboxInput):
                field.widget.attrs["class"] = "form-check-input"
