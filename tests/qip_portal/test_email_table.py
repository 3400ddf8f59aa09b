"""The README's table of who gets which email, checked against the outbox.

Each row of the table ("email (`kind`) | sent to | when") is read from README.md; its
event is made to happen through the services, with the real rules, and the recipients
of the outbox rows of that kind it wrote must be exactly the people the "sent to"
column names. A row this test cannot drive, or a phrase it does not know, fails."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from audits import sweeps as audit_sweeps
from core.models import Alert
from governance import services as governance
from governance.models import Membership
from learning import services as learning
from learning import sweeps as learning_sweeps
from learning.models import LearningSummary
from plans import services as plan_services
from plans import sweeps as plan_sweeps
from plans.models import Plan, SignOffLevel
from qip_portal import closure
from qip_portal.pages import digest
from qip_portal.pages import failed_emails as failed_alerts
from tests import factories
from tests.audits.factories import measure
from tests.factories import PASSWORD

README = Path(__file__).resolve().parents[2] / "README.md"
LONDON = ZoneInfo("Europe/London")
NOW = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=LONDON)
TODAY = NOW.date()

pytestmark = pytest.mark.django_db


def table_rows() -> list[tuple[str, str, str]]:
    """(label, kind, sent to) of every row of the README's email table."""
    text = README.read_text(encoding="utf-8")
    start = text.index("| email | sent to | when |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        label, sent_to = cells[0], cells[1]
        kind = re.search(r"\(`([a-z-]+)`\)", label)
        assert kind, f"no `kind` in {label!r}"
        rows.append((label.split(" (`")[0], kind.group(1), sent_to))
    return rows


def phrases(sent_to: str) -> tuple[list[str], list[str]]:
    """("the plan's owner and the quality leads, not the person who acted") ->
    (["the plan's owner", "the quality leads"], ["the person who acted"])."""
    included, _, excluded = sent_to.partition(", not ")

    def split(part: str) -> list[str]:
        return [p.strip() for p in re.split(r",\s*|\s+and\s+", part) if p.strip()]

    return split(included), split(excluded)


# --- The people --------------------------------------------------------------------------


class World:
    """Two quality leads (Priya owns the plans), Tom managing Oakfield (the plans'
    location), Sam managing Riverside, the Quality and Safety Committee (a chair and
    a member), a governance member of no group, and an administrator."""

    def __init__(self):
        self.oakfield = factories.LocationFactory(name="Oakfield")
        riverside = factories.LocationFactory(name="Riverside")
        self.lead = factories.UserFactory(username="priya", role="quality_lead")
        self.lead2 = factories.UserFactory(username="quinn", role="quality_lead")
        self.tom = factories.UserFactory(username="tom", role="manager", locations=[self.oakfield])
        self.sam = factories.UserFactory(username="sam", role="manager", locations=[riverside])
        self.chair = factories.UserFactory(username="helen", role="governance_member")
        self.member = factories.UserFactory(username="david", role="governance_member")
        factories.UserFactory(username="gail", role="governance_member")
        self.admin = factories.UserFactory(username="admin", role="administrator")
        self.group = governance.create_group(
            by=self.lead, name="Quality and Safety Committee", authority_level=SignOffLevel.BOARD
        )
        for user, role in ((self.chair, Membership.Role.CHAIR), (self.member, "member")):
            governance.set_membership(group=self.group, user=user, role=role, by=self.lead)
        self.actor = None
        self.submitter = None
        self.action_owner = None
        self.decision_recipients: set[str] = set()
        self.plan = None

    def people(self, phrase: str) -> set[str]:
        leads = {self.lead.email, self.lead2.email}
        group = {self.chair.email, self.member.email}
        known = {
            "the plan's owner": lambda: {self.plan.owner.email},
            "the quality leads": lambda: leads,
            "the managers of the plan's locations": lambda: {self.tom.email},
            "the managers it is shared with": lambda: {self.tom.email},
            "the group that stepped the plan down": lambda: group,
            "the deciding group": lambda: group,
            "the submitter": lambda: {self.submitter.email},
            "the signer": lambda: {self.chair.email},
            "the person who acted": lambda: {self.actor.email},
            "those the decision email reaches": lambda: self.decision_recipients,
            "the action's owner": lambda: {self.action_owner.email},
            "the administrators": lambda: {self.admin.email},
        }
        assert phrase in known, f"the test does not know who {phrase!r} is"
        return known[phrase]()

    # --- Plans at each stage -----------------------------------------------------------

    def live_plan(self) -> Plan:
        self.plan = factories.live_plan(
            owner=self.lead,
            locations=[self.oakfield],
            opened_on=TODAY - datetime.timedelta(days=200),
        )
        return self.plan

    def ready_plan(self) -> Plan:
        plan = self.live_plan()
        factories.meet_criteria(plan, by=self.tom)
        factories.complete_actions(plan, by=self.lead)
        factories.add_required_evidence(plan, by=self.tom)
        factories.write_learning_summary(plan, by=self.lead)
        factories.record_residual_risk(plan, by=self.lead)
        return plan

    def submitted(self):
        plan = self.ready_plan()
        self.submitter = self.lead
        report = closure.submit_for_closure(plan=plan, by=self.lead, group=self.group)
        meeting = governance.schedule_meeting(
            group=self.group, held_on=TODAY, by=self.lead, attendees=[self.chair]
        )
        return plan, report, meeting

    def decide(self, outcome: str) -> Plan:
        plan, report, meeting = self.submitted()
        indicator = plan.indicators.get()
        decision = closure.sign_decision(
            report=report,
            meeting=meeting,
            by=self.chair,
            otp_token=factories.signing_code(self.chair),
            password=PASSWORD,
            outcome=outcome,
            reasons="Improvement delivered and embedded in supervision.",
            monitoring_indicators=[indicator] if outcome == "step_down" else [],
            monitoring_floors={indicator.pk: "85"} if outcome == "step_down" else None,
            monitoring_ends_on=TODAY + datetime.timedelta(days=92)
            if outcome == "step_down"
            else None,
        )
        self.actor = self.chair
        self.decision_recipients = set(
            Alert.objects.get(key=f"governance-decision:{decision.pk}").recipients
        )
        plan.refresh_from_db()
        return plan


# --- One event per row -------------------------------------------------------------------


def _activation(w: World, clock) -> None:
    w.plan = factories.draft_plan(owner=w.lead, locations=[w.oakfield])
    w.actor = w.lead2
    plan_services.activate_plan(plan=w.plan, by=w.lead2)


def _step_down(w: World, clock) -> None:
    w.decide("step_down")


def _reopen(w: World, clock) -> None:
    plan = w.decide("step_down")
    clock.shift(datetime.timedelta(days=10))
    measure(plan, by=w.tom, on=TODAY + datetime.timedelta(days=10), numerator=10)
    from audits import services as audit_services

    audit_services.check_plan_monitoring(plan_id=plan.pk)
    w.actor = w.lead
    closure.reopen_plan(plan=plan, by=w.lead, reason="Reviews fell to 50% at Oakfield.")


def _deterioration(w: World, clock) -> None:
    plan = w.decide("step_down")
    clock.shift(datetime.timedelta(days=10))
    measure(plan, by=w.tom, on=TODAY + datetime.timedelta(days=10), numerator=10)
    from audits import services as audit_services

    audit_services.check_plan_monitoring(plan_id=plan.pk)


def _monitoring_end(w: World, clock, *, results: bool) -> None:
    plan = w.decide("step_down")
    if results:
        for days in (20, 50, 80):
            clock.move_to(NOW + datetime.timedelta(days=days))
            measure(plan, by=w.tom, on=TODAY + datetime.timedelta(days=days))
    clock.move_to(NOW + datetime.timedelta(days=93))
    audit_sweeps.monitoring_ended()
    closure.announce_ready_plans()


def _submitted(w: World, clock) -> None:
    w.submitted()


def _decision(w: World, clock) -> None:
    w.decide("close")


def _ready(w: World, clock) -> None:
    w.ready_plan()
    closure.announce_ready_plans()


def _overdue_action(w: World, clock) -> None:
    plan = w.live_plan()
    action = plan.actions.first()
    w.action_owner = action.owner
    clock.move_to(
        datetime.datetime.combine(action.due_date, NOW.timetz()) + datetime.timedelta(days=1)
    )
    plan_sweeps.overdue_actions()


def _stale(w: World, clock) -> None:
    w.live_plan()
    clock.move_to(NOW + datetime.timedelta(days=400))
    plan_sweeps.stale_plans()


def _reaudit_due(w: World, clock) -> None:
    w.plan = factories.live_plan(
        owner=w.lead, locations=[w.oakfield], opened_on=TODAY - datetime.timedelta(days=28)
    )
    audit_sweeps.reaudits_due()


def _shared(w: World, clock) -> None:
    plan = w.live_plan()
    factories.write_learning_summary(plan, by=w.lead)
    learning.share_summary(
        summary=LearningSummary.objects.get(plan=plan), by=w.lead, locations=[w.oakfield]
    )


def _reminder(w: World, clock) -> None:
    _shared(w, clock)
    clock.move_to(NOW + datetime.timedelta(days=9))
    learning_sweeps.remind_outstanding_acknowledgements(TODAY + datetime.timedelta(days=9))


def _review_due(w: World, clock) -> None:
    w.decide("close")
    learning_sweeps.schedule_due_reviews(TODAY + datetime.timedelta(days=100))


def _failed(w: World, clock) -> None:
    Alert.objects.create(
        kind="stale-plan",
        key="stale-plan:test",
        recipients=["someone@example.test"],
        subject="A plan has gone quiet",
        body_text="",
        body_html="",
        status=Alert.Status.FAILED,
    )
    failed_alerts.send_failed_alerts_report()


EVENTS = {
    "plan moved on": _activation,
    "plan stepped down": _step_down,
    "plan re-opened": _reopen,
    "overdue action": _overdue_action,
    "stale plan": _stale,
    "re-audit due / overdue": _reaudit_due,
    "ready for closure review": _ready,
    "deterioration": _deterioration,
    "monitoring ended, ready for final closure": lambda w, c: _monitoring_end(w, c, results=True),
    "monitoring ended without enough data": lambda w, c: _monitoring_end(w, c, results=False),
    "closure report submitted": _submitted,
    "governance decision": _decision,
    "learning to read": _shared,
    "learning reminder": _reminder,
    "learning review due": _review_due,
    "emails not sent": _failed,
}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_the_table_is_read_whole():
    rows = table_rows()
    assert len(rows) >= 17
    assert {label for label, _, _ in rows} == set(EVENTS) | {"weekly digest"}


@pytest.mark.parametrize(
    "label,kind,sent_to",
    [row for row in table_rows() if row[0] != "weekly digest"],
    ids=[row[0] for row in table_rows() if row[0] != "weekly digest"],
)
def test_each_email_goes_to_whom_the_readme_says(label, kind, sent_to):
    with time_machine.travel(NOW, tick=False) as clock:
        w = World()
        marker = Alert.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        EVENTS[label](w, clock)
        included, excluded = phrases(sent_to)
        expected: set[str] = set()
        for phrase in included:
            expected |= w.people(phrase)
        for phrase in excluded:
            expected -= w.people(phrase)
        written = Alert.objects.filter(kind=kind, pk__gt=marker).order_by("pk")
        if kind == "plan-transition":
            # The event's own transition: the latest one.
            written = written.reverse()[:1]
        assert written, f"{label}: no {kind} email was written"
        got = set().union(*(set(a.recipients) for a in written))
        assert got == expected, f"{label}: sent to {sorted(got)}, README says {sorted(expected)}"


def test_the_weekly_digest_goes_to_each_person_with_something_to_look_at():
    label, kind, sent_to = next(r for r in table_rows() if r[0] == "weekly digest")
    assert sent_to == "each person with something to look at"
    with time_machine.travel(NOW, tick=False):
        w = World()
        plan = w.live_plan()
        due = plan.actions.first().due_date + datetime.timedelta(days=1)
    monday = datetime.datetime.combine(
        due + datetime.timedelta(days=7 - due.weekday()), NOW.timetz()
    )
    with time_machine.travel(monday, tick=False):
        digest.send_weekly_digests()
        wanted = {d.user.email for d in digest.build_digests(monday) if not d.is_empty}
        written = list(Alert.objects.filter(kind=kind))
        assert wanted and all(len(a.recipients) == 1 for a in written)
        assert {a.recipients[0] for a in written} == wanted


def test_make_run_points_the_links_in_emails_at_its_own_port():
    """`make run PORT=8123` serves on 8123, so the links in its emails must too."""
    import os
    import subprocess

    root = README.parent
    env = {k: v for k, v in os.environ.items() if k != "SITE_URL"}
    planned = subprocess.run(
        ["make", "-n", "run", "PORT=8123"], cwd=root, env=env, capture_output=True, text=True
    ).stdout
    line = next(x for x in planned.splitlines() if "SITE_URL=" in x)
    assert "runserver 127.0.0.1:8123" in planned
    shown = subprocess.run(
        ["sh", "-c", line.rstrip("\\ ;") + '; echo "$SITE_URL"'],
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert shown == "http://127.0.0.1:8123"
    given = subprocess.run(
        ["sh", "-c", line.rstrip("\\ ;") + '; echo "$SITE_URL"'],
        env=dict(env, SITE_URL="https://qip.example.org"),
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert given == "https://qip.example.org"
