"""A closed plan is the record an inspector relies on: nothing about it changes any more,
whichever service or URL is tried. (Learning goes on after closure, and evidence packs
are read-only exports: both are outside this rule.)"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from audits import services as audit_services
from audits.models import EvidenceItem, ImportBatch, Measurement, MonitoringPeriod
from governance import services as governance
from governance.models import ClosureReport, Decision, Membership, ResidualRisk
from plans import services as plan_services
from plans.models import Action, ClosureCriteria, Indicator, Plan, Trigger
from plans.services import TransitionRefused
from qip_portal import closure
from tests import factories
from tests.audits.factories import PDF_BYTES, upload
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

TRACKED = [
    Plan,
    Action,
    Trigger,
    Indicator,
    ClosureCriteria,
    Measurement,
    EvidenceItem,
    ImportBatch,
    ResidualRisk,
    ClosureReport,
    Decision,
    MonitoringPeriod,
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MFA_REQUIRED_ROLES = set()  # two-step enforcement has its own tests


def _counts() -> dict[str, int]:
    counts = {}
    for model in TRACKED:
        counts[model.__name__] = model.objects.count()
        history = getattr(model, "history", None)
        if history is not None:
            counts[f"{model.__name__} history"] = history.count()
    return counts


@pytest.fixture
def closed(quality_lead, oakfield):
    plan = factories.make_ready(
        factories.live_plan(
            owner=quality_lead,
            locations=[oakfield],
            opened_on=timezone.localdate() - datetime.timedelta(days=200),
        ),
        by=quality_lead,
    )
    chair = factories.UserFactory(username="chair", role="governance_member")
    group = governance.create_group(by=quality_lead, name="SGG", authority_level=4)
    governance.set_membership(group=group, user=chair, role=Membership.Role.CHAIR, by=quality_lead)
    report = closure.submit_for_closure(plan=plan, by=quality_lead, group=group)
    meeting = governance.schedule_meeting(
        group=group, held_on=timezone.localdate(), by=quality_lead, attendees=[chair]
    )
    closure.sign_decision(
        report=report,
        meeting=meeting,
        by=chair,
        otp_token=factories.signing_code(chair),
        password=PASSWORD,
        outcome="close",
    )
    plan.refresh_from_db()
    assert plan.status == Plan.Status.CLOSED
    return plan


def test_every_service_refuses_a_closed_plan_and_changes_nothing(closed, quality_lead):
    action = closed.actions.get()
    indicator = closed.indicators.get()
    measurement = Measurement.objects.filter(indicator=indicator).first()
    today = timezone.localdate()
    attempts = {
        "update_plan": lambda: plan_services.update_plan(
            plan=closed, by=quality_lead, fields={"title": "Changed"}
        ),
        "add_trigger": lambda: plan_services.add_trigger(
            plan=closed,
            by=quality_lead,
            fields={
                "kind": "complaint",
                "reference": "C",
                "occurred_on": today,
                "description": "x",
            },
        ),
        "save_action": lambda: plan_services.save_action(
            plan=closed, by=quality_lead, action=action, fields={"completion_note": "x"}
        ),
        "verify_action_effective": lambda: plan_services.verify_action_effective(
            action=action, by=quality_lead, note="Re-verified after closure"
        ),
        "revise_criteria": lambda: plan_services.revise_criteria(
            plan=closed,
            by=quality_lead,
            reason="r",
            criteria_fields={"sustain_months": 6},
            indicators=[],
        ),
        "add_indicator": lambda: plan_services.add_indicator(
            plan=closed,
            by=quality_lead,
            reason="r",
            fields={
                "name": "New",
                "measure_type": "count",
                "direction": "lower",
                "target": Decimal("1"),
                "unit": "",
                "frequency": "monthly",
            },
        ),
        "record_measurement": lambda: audit_services.record_measurement(
            plan=closed,
            by=quality_lead,
            fields={
                "indicator": indicator,
                "measured_on": today - datetime.timedelta(days=3),
                "numerator": 1,
                "denominator": 2,
                "value": None,
                "location": None,
                "source": "re_audit",
                "notes": "",
            },
        ),
        "correct_measurement": lambda: audit_services.correct_measurement(
            measurement=measurement,
            by=quality_lead,
            reason="typo",
            fields={"numerator": 1, "denominator": 2},
        ),
        "add_evidence": lambda: audit_services.add_evidence(
            plan=closed,
            by=quality_lead,
            fields={"kind": "re_audit", "title": "t", "occurred_on": today, "description": ""},
        ),
        "start_import": lambda: audit_services.start_import(
            plan=closed,
            by=quality_lead,
            kind="csv",
            upload=upload("r.csv", b"indicator,measured_on,numerator,denominator\n", "text/csv"),
        ),
        "record_residual_risk": lambda: governance.record_residual_risk(
            plan=closed, by=quality_lead, description="d", monitoring="m"
        ),
        "remove_residual_risk": lambda: governance.remove_residual_risk(
            risk=ResidualRisk.objects.get(plan=closed), by=quality_lead
        ),
        "withdraw_plan": lambda: plan_services.withdraw_plan(
            plan=closed, by=quality_lead, reason="r"
        ),
    }
    before = _counts()
    for name, attempt in attempts.items():
        with pytest.raises((TransitionRefused, audit_services.MeasurementRefused)):
            attempt()
        assert _counts() == before, name
    action.refresh_from_db()
    assert action.effectiveness_note != "Re-verified after closure"


def _reference_patterns():
    def walk(patterns, prefix="", namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = p.namespace or namespace
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern) and "reference" in str(p.pattern):
                yield f"{namespace}:{p.name}", p

    return dict(walk(get_resolver().url_patterns))


# Exempt from the rule: learning goes on after closure, packs are read-only exports.
EXEMPT_NAMESPACES = ("learning:", "packs:")


def test_no_mutating_url_changes_a_closed_plan(client, closed, quality_lead):
    """POST to every URL that takes a plan reference, with what would change a live
    plan: each refuses (or redirects with a message), never a 500, and no row or
    history record of the plan's is added or changed."""
    action = closed.actions.get()
    measurement = Measurement.objects.filter(indicator__plan=closed).first()
    risk = ResidualRisk.objects.get(plan=closed)
    today = timezone.localdate().isoformat()
    extra = {
        "plans:edit_action": {"action_id": action.pk},
        "plans:verify_action": {"action_id": action.pk},
        "plans:transition": {"name": "withdraw"},
        "audits:edit_measurement": {"pk": measurement.pk},
        "audits:recalculate_limits": {"pk": closed.indicators.get().pk},
        "audits:export": {"kind": "csv"},
        "audits:import_template": {"kind": "csv"},
        "governance:risk_remove": {"risk_id": risk.pk},
    }
    payload = {
        "title": "Changed after closure",
        "summary": "x",
        "reason": "After closure",
        "note": "Re-verified after closure",
        "description": "Changed",
        "status": "completed",
        "completion_note": "x",
        "due_date": today,
        "owner": quality_lead.pk,
        "indicator": closed.indicators.get().pk,
        "measured_on": today,
        "numerator": "1",
        "denominator": "2",
        "kind": "re_audit",
        "occurred_on": today,
        "monitoring": "m",
        "criteria-sustain_months": "6",
        "name": "New",
        "measure_type": "count",
        "direction": "lower",
        "target": "1",
        "frequency": "monthly",
        "group": "1",
        "file": upload("notes.pdf", PDF_BYTES, "application/pdf"),
    }
    client.force_login(quality_lead)
    patterns = _reference_patterns()
    assert len(patterns) >= 20
    tried = 0
    for name in patterns:
        if name.startswith(EXEMPT_NAMESPACES):
            continue
        kwargs = {"reference": closed.reference, **extra.get(name, {})}
        url = reverse(name, kwargs=kwargs)
        before = _counts()
        response = client.post(url, payload)
        tried += 1
        assert response.status_code < 500, (name, response.status_code)
        assert _counts() == before, name
    assert tried >= 15
    closed.refresh_from_db()
    assert closed.title != "Changed after closure" and closed.status == Plan.Status.CLOSED
