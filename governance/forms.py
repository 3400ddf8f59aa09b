from __future__ import annotations

import datetime

from dateutil.relativedelta import relativedelta
from django import forms
from django.utils import timezone

from core.forms import DateInput, ModelChoiceField, ModelMultipleChoiceField
from core.thresholds import DEFAULT_MONITORING_MONTHS
from governance.models import Decision, GovernanceGroup, Meeting, Membership
from plans.models import Plan, SignOffLevel, User


class GroupForm(forms.Form):
    name = forms.CharField(max_length=120)
    authority_level = forms.TypedChoiceField(
        choices=SignOffLevel.choices,
        coerce=int,
        initial=SignOffLevel.GOVERNANCE_GROUP,
        help_text="The highest sign-off level this group may decide.",
    )
    remit = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if GovernanceGroup.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError("A group with this name already exists.")
        return name


class MembershipForm(forms.Form):
    user = ModelChoiceField(
        queryset=User.objects.filter(is_active=True, role=User.Role.GOVERNANCE_MEMBER),
        label="Person",
        help_text="Only people with the governance member role are listed.",
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class MeetingForm(forms.Form):
    held_on = forms.DateField(label="Date", widget=DateInput())


class MeetingRecordForm(forms.Form):
    attendees = ModelMultipleChoiceField(
        queryset=User.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    minutes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), required=False, max_length=20000
    )

    def __init__(self, *args, group: GovernanceGroup, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attendees"].queryset = User.objects.filter(
            governance_memberships__group=group
        ).order_by("first_name", "last_name")


class AgendaForm(forms.Form):
    report = ModelChoiceField(queryset=None, label="Closure report")

    def __init__(self, *args, reports, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["report"].queryset = reports
        self.fields["report"].label_from_instance = lambda r: (
            f"{r.plan.reference} {r.plan.title} (submitted {r.submitted_at:%d %b %Y})"
        )


class ResidualRiskForm(forms.Form):
    description = forms.CharField(
        label="Residual risk", widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    monitoring = forms.CharField(
        label="How it is monitored", widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )


class SubmitForm(forms.Form):
    group = ModelChoiceField(
        queryset=GovernanceGroup.objects.none(),
        label="Governance group that will decide",
        empty_label=None,
    )
    override_rationale = forms.CharField(
        label="Override rationale (only if the criteria are not fully met)",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=3000,
        help_text="Shown prominently on the report. Leave empty when every criterion is met.",
    )

    def __init__(self, *args, plan: Plan, **kwargs):
        super().__init__(*args, **kwargs)
        criteria = getattr(plan, "criteria", None)
        level = criteria.sign_off_level if criteria else SignOffLevel.BOARD
        self.fields["group"].queryset = GovernanceGroup.objects.filter(
            is_active=True, authority_level__gte=level
        ).order_by("authority_level", "name")


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=Decision.Outcome.choices, widget=forms.RadioSelect, label="Decision"
    )
    meeting = ModelChoiceField(queryset=Meeting.objects.none(), empty_label=None)
    reasons = forms.CharField(
        label="Reasons",
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=5000,
        help_text="Required when returning the plan.",
    )
    monitoring_indicators = ModelMultipleChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Step down: indicators to monitor",
    )
    monitoring_audit_theme = forms.CharField(
        label="Step down: or an audit theme", required=False, max_length=120
    )
    monitoring_ends_on = forms.DateField(
        label="Step down: monitoring ends on", required=False, widget=DateInput()
    )
    password = forms.CharField(
        label="Your password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Signing needs your password again.",
    )
    otp_token = forms.CharField(
        label="Code from your authenticator app",
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
        help_text="A fresh six-digit code: signing asks for it every time.",
    )
    confirm = forms.BooleanField(label="I confirm the statement above.")

    def __init__(self, *args, report, meetings, **kwargs):
        super().__init__(*args, **kwargs)
        self.indicators = list(report.plan.indicators.all())
        self.fields["meeting"].queryset = meetings
        self.fields["monitoring_indicators"].queryset = report.plan.indicators.all()
        self.fields["monitoring_ends_on"].initial = timezone.localdate() + relativedelta(
            months=DEFAULT_MONITORING_MONTHS
        )
        for indicator in self.indicators:
            self.fields[f"floor_{indicator.pk}"] = forms.DecimalField(
                label=(
                    f"Step down: floor for “{indicator.name}” (target {indicator.target_display()})"
                ),
                required=False,
                max_digits=12,
                decimal_places=3,
            )

    def clean(self):
        data = super().clean()
        reasons = (data.get("reasons") or "").strip()
        if data.get("outcome") == Decision.Outcome.RETURN and not reasons:
            self.add_error("reasons", "Give the reasons for returning the plan.")
        if data.get("outcome") == Decision.Outcome.STEP_DOWN:
            chosen = data.get("monitoring_indicators") or []
            if not chosen and not (data.get("monitoring_audit_theme") or "").strip():
                self.add_error(
                    "monitoring_indicators", "Choose indicators to monitor, or an audit theme."
                )
            for indicator in chosen:
                if data.get(f"floor_{indicator.pk}") is None:
                    self.add_error(f"floor_{indicator.pk}", "Set a floor for this indicator.")
            ends = data.get("monitoring_ends_on")
            if ends and ends <= timezone.localdate():
                self.add_error(
                    "monitoring_ends_on", "The monitoring period must end in the future."
                )
        return data

    def floors(self) -> dict[int, object]:
        return {
            i.pk: self.cleaned_data.get(f"floor_{i.pk}")
            for i in self.cleaned_data.get("monitoring_indicators") or []
        }

    def ends_on(self) -> datetime.date | None:
        return self.cleaned_data.get("monitoring_ends_on")


class MonitoringDecisionForm(forms.Form):
    """The group's decision on a plan whose monitoring ended without enough monitoring
    data (``qip_portal.closure.decide_monitoring``)."""

    outcome = forms.ChoiceField(
        choices=[
            ("extend", "Extend the monitoring"),
            ("close", "Close the plan with a recorded rationale"),
        ],
        widget=forms.RadioSelect,
        label="Decision",
        error_messages={"required": "Choose to extend the monitoring or to close the plan."},
    )
    meeting = ModelChoiceField(
        queryset=Meeting.objects.none(),
        empty_label=None,
        error_messages={"required": "Choose the meeting at which the group decided."},
    )
    ends_on = forms.DateField(
        label="Extend: monitoring now ends on",
        required=False,
        widget=DateInput(),
        help_text="Only when extending.",
    )
    rationale = forms.CharField(
        label="Rationale",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
        help_text="Why the group decided this, recorded on the plan and in its history.",
        error_messages={"required": "Record why the group decided this."},
    )
    password = forms.CharField(
        label="Your password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Signing needs your password again.",
        error_messages={"required": "Enter your password to sign."},
    )
    otp_token = forms.CharField(
        label="Code from your authenticator app",
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
        help_text="A fresh six-digit code: signing asks for it every time.",
        error_messages={"required": "Enter the code your authenticator app shows now."},
    )

    def __init__(self, *args, meetings, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["meeting"].queryset = meetings
        self.fields["ends_on"].initial = timezone.localdate() + relativedelta(months=3)

    def clean(self):
        data = super().clean()
        if data.get("outcome") == "extend":
            ends = data.get("ends_on")
            if ends is None:
                self.add_error("ends_on", "Give the date the extended monitoring ends.")
            elif ends <= timezone.localdate():
                self.add_error("ends_on", "The extended monitoring must end in the future.")
        return data
