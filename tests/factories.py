import datetime
from decimal import Decimal

import factory
from django.utils import timezone

from plans import services
from plans.models import Location, Plan, Theme, User

PASSWORD = "correct-horse-battery-staple"


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"Location {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.LazyAttribute(lambda o: o.username.capitalize())
    last_name = "Tester"
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    role = User.Role.VIEWER
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def locations(self, create, extracted, **kwargs):
        self.save()
        if extracted:
            self.locations.set(extracted)


class ThemeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Theme
        django_get_or_create = ["name"]

    name = "Safeguarding"


def new_plan_data(
    *,
    owner: User,
    locations,
    title="Safeguarding recording",
    opened_on=None,
    indicators=None,
    actions=None,
    criteria=None,
) -> services.NewPlan:
    opened_on = opened_on or timezone.localdate() - datetime.timedelta(days=30)
    return services.NewPlan(
        plan_fields={
            "title": title,
            "summary": "Alerts found poor recording.",
            "theme": ThemeFactory(),
            "owner": owner,
            "likelihood": 3,
            "impact": 4,
            "key_questions": ["safe"],
            "opened_on": opened_on,
            "target_date": opened_on + datetime.timedelta(days=180),
        },
        locations=locations,
        quality_statements=[],
        regulations=[],
        triggers=[
            {
                "kind": "safeguarding_alert",
                "reference": "SG-1",
                "occurred_on": opened_on,
                "description": "Missed escalation.",
            }
        ],
        criteria=criteria
        if criteria is not None
        else {
            "success_in_practice": "Every concern escalated within 24 hours.",
            "sustain_months": 3,
            "min_reaudits": 2,
            "required_evidence": ["re_audit"],
            "sign_off_level": 3,
        },
        indicators=indicators
        if indicators is not None
        else [
            {
                "name": "Escalated within 24h",
                "measure_type": "proportion",
                "direction": "higher",
                "target": Decimal("95"),
                "unit": "%",
                "frequency": "monthly",
            }
        ],
        actions=actions
        if actions is not None
        else [
            {
                "description": "Refresher training",
                "owner": owner,
                "due_date": opened_on + datetime.timedelta(days=20),
                "status": "open",
                "completion_note": "",
            }
        ],
    )


def draft_plan(*, owner: User, locations, **kwargs) -> Plan:
    return services.create_plan(
        by=owner, data=new_plan_data(owner=owner, locations=locations, **kwargs)
    )


def live_plan(*, owner: User, locations, **kwargs) -> Plan:
    plan = draft_plan(owner=owner, locations=locations, **kwargs)
    return services.activate_plan(plan=plan, by=owner)


# --- A plan genuinely ready for closure review --------------------------------------
# Built through the services, as a user would: the closure workflow's own rules
# (qip_portal/closure/workflow.py) then find nothing missing. Tests never stub those rules.

READY_RESULT_DAYS_AGO = (120, 60, 0)  # 19/20 = 95% each: on a 95% target for 3 months


def meet_criteria(plan: Plan, *, by: User) -> None:
    """Results on target for every indicator across the sustain window (three months,
    three re-audits: the default criteria of ``new_plan_data``)."""
    from audits import services as audit_services

    today = timezone.localdate()
    for indicator in plan.indicators.all():
        for days in READY_RESULT_DAYS_AGO:
            audit_services.record_measurement(
                plan=plan,
                by=by,
                fields={
                    "indicator": indicator,
                    "measured_on": today - datetime.timedelta(days=days),
                    "numerator": 19,
                    "denominator": 20,
                    "value": None,
                    "location": plan.locations.first(),
                    "source": "re_audit",
                    "notes": "",
                },
            )


def complete_actions(plan: Plan, *, by: User, verify: bool = True) -> None:
    for action in plan.actions.all():
        services.save_action(
            plan=plan,
            by=by,
            action=action,
            fields={"status": "completed", "completion_note": "Training delivered to all staff"},
        )
        if verify:
            action.refresh_from_db()
            services.verify_action_effective(action=action, by=by, note="Re-audit at 95%")


def add_required_evidence(plan: Plan, *, by: User) -> None:
    from audits import services as audit_services

    for kind in plan.criteria.required_evidence:
        audit_services.add_evidence(
            plan=plan,
            by=by,
            fields={
                "kind": kind,
                "title": f"Evidence: {kind}",
                "occurred_on": timezone.localdate(),
                "description": "Re-audit of 20 safeguarding records.",
            },
        )


def write_learning_summary(plan: Plan, *, by: User) -> None:
    from learning import services as learning_services

    learning_services.save_summary(
        plan=plan,
        by=by,
        what_happened="Concerns were not escalated within 24 hours.",
        what_changed="A daily safeguarding huddle and a new recording template.",
        key_messages="Escalate every concern the same day. Record facts, not opinions.",
    )


def record_residual_risk(plan: Plan, *, by: User) -> None:
    from governance import services as governance_services

    governance_services.record_residual_risk(
        plan=plan,
        by=by,
        description="Agency staff unfamiliar with the escalation route.",
        monitoring="Monthly spot check of agency induction records.",
    )


def make_ready(plan: Plan, *, by: User) -> Plan:
    """Everything ``qip_portal.closure.closure_blockers`` asks of a live plan: criteria
    met, actions completed (and verified), required evidence, a learning summary and a
    residual risk."""
    meet_criteria(plan, by=by)
    complete_actions(plan, by=by)
    add_required_evidence(plan, by=by)
    write_learning_summary(plan, by=by)
    record_residual_risk(plan, by=by)
    plan.refresh_from_db()
    return plan


def signing_code(user: User) -> str:
    """The code the signer's authenticator app shows now (a confirmed TOTP device is
    set up if they have none). Each call stands for a new 30-second step of the app:
    the device's replay guard is moved back, so two signatures in one frozen test
    moment do not look like the same code used twice, and an earlier wrong code's
    throttling delay has passed."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    TOTPDevice.objects.filter(pk=device.pk).update(
        last_t=-1, throttling_failure_count=0, throttling_failure_timestamp=None
    )
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return f"{code:0{device.digits}d}"


def meeting_of(group, *, on: datetime.date, by: User, attendees=()):
    """The group's meeting on ``on``, with ``attendees`` recorded: the one already
    scheduled (a group meets at most once a day), or a new one, through the services."""
    from governance import services as governance
    from governance.models import Meeting

    meeting = Meeting.objects.filter(group=group, held_on=on).first()
    if meeting is None:
        return governance.schedule_meeting(group=group, held_on=on, by=by, attendees=attendees)
    return governance.record_meeting(
        meeting=meeting,
        by=by,
        minutes=meeting.minutes,
        attendees={*meeting.attendees.all(), *attendees},
    )
