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
