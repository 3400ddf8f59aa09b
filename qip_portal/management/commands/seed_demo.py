"""Realistic demo data across three locations. Safe to run again: what exists is kept."""

import datetime
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from core.history import save_with_history
from governance.people import role_labels
from plans import services
from plans.models import Location, Plan, QualityStatement, Regulation, Theme, User

# Printed for local demo use only; seed_demo refuses to run with DEBUG off.
DEMO_PASSWORD = "demo-portal-2026"  # noqa: S105  # nosec B105

LOCATIONS = [
    ("Oakfield House", "1-101234567", Location.Kind.CARE_HOME),
    ("Riverside Court", "1-102345678", Location.Kind.NURSING_HOME),
    ("Meadow View Home Care", "1-103456789", Location.Kind.HOME_CARE),
]

USERS = [
    # username, first, last, role, locations, job title
    ("priya", "Priya", "Shah", User.Role.QUALITY_LEAD, [], "Head of Quality"),
    (
        "tom",
        "Tom",
        "Okafor",
        User.Role.MANAGER,
        ["Oakfield House"],
        "Registered Manager, Oakfield House",
    ),
    (
        "grace",
        "Grace",
        "Williams",
        User.Role.MANAGER,
        ["Riverside Court"],
        "Registered Manager, Riverside Court",
    ),
    (
        "sam",
        "Sam",
        "Patel",
        User.Role.MANAGER,
        ["Meadow View Home Care"],
        "Branch Manager, Meadow View",
    ),
    (
        "helen",
        "Helen",
        "Carter",
        User.Role.GOVERNANCE_MEMBER,
        [],
        "Chair, Safeguarding Governance Group",
    ),
    ("david", "David", "Reid", User.Role.GOVERNANCE_MEMBER, [], "Non-executive member"),
    ("viv", "Viv", "Morgan", User.Role.VIEWER, ["Oakfield House"], "Deputy Manager (read only)"),
    ("admin", "Ada", "Admin", User.Role.ADMINISTRATOR, [], "System administrator"),
]

THEMES = ["Safeguarding", "Care planning", "Medicines", "Falls", "Infection prevention", "Staffing"]


class Command(BaseCommand):
    help = "Load demo data (locations, people, plans in every status). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Load demo users even with DEBUG off (never on a real system).",
        )

    def handle(self, *args, allow_production: bool, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "Refusing to create demo users with DEBUG off; pass --allow-production if you mean it."
            )
        # Demo transitions would email every demo user; keep those emails in memory.
        quiet = override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
        with quiet, transaction.atomic():
            locations = self.locations()
            users = self.users(locations)
            themes = {name: Theme.objects.get_or_create(name=name)[0] for name in THEMES}
            created = self.plans(users, locations, themes)
            self.results(users)
            self.governance(users)
            self.learning(users, locations)
            self.audit_tools(users)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({created} new plans)."))
        self.stdout.write("\nSign in at http://127.0.0.1:8000 as any of these demo users")
        self.stdout.write(f"(password for all: {DEMO_PASSWORD}):")
        labels = role_labels(users.values())
        for username, first, last, _role, locs, _title in USERS:
            where = f" - {', '.join(locs)}" if locs else ""
            label = labels[users[username].pk]
            self.stdout.write(f"  {username:<8} {first} {last}, {label}{where}")
        self.stdout.write(
            "helen chairs the Safeguarding Governance Group and admin administers, so both set up\n"
            "two-step verification (any authenticator app) at their first sign-in."
        )

    def audit_tools(self, users):
        """The three demo audit tools (audits/tools/demo.py); safe to run again."""
        from audits.tools.demo import install_demo_tools

        install_demo_tools(by=users["priya"])

    def governance(self, users):
        """The Safeguarding Governance Group: Helen chairs (so she must set up two-step
        verification at first sign-in), David is a member; a meeting in a fortnight."""
        from governance import services as governance
        from governance.models import GovernanceGroup, Membership

        if GovernanceGroup.objects.filter(name="Safeguarding Governance Group").exists():
            return
        lead = users["priya"]
        group = governance.create_group(
            by=lead,
            name="Safeguarding Governance Group",
            authority_level=3,
            remit="Reviews safeguarding and care-quality plans and signs off their closure.",
        )
        governance.set_membership(
            group=group, user=users["helen"], role=Membership.Role.CHAIR, by=lead
        )
        governance.set_membership(
            group=group, user=users["david"], role=Membership.Role.MEMBER, by=lead
        )
        # Today's meeting, attended by the chair and a member: decisions are signed at a
        # meeting that has been held, by someone recorded as attending. And the next one.
        governance.schedule_meeting(
            group=group,
            held_on=timezone.localdate(),
            by=lead,
            attendees=[users["helen"], users["david"]],
        )
        governance.schedule_meeting(
            group=group, held_on=timezone.localdate() + datetime.timedelta(days=14), by=lead
        )

    def learning(self, users, locations):
        """Learning from the closed hand-hygiene plan: written, shared, partly
        acknowledged, embedded in induction and supervision, and due for review."""
        from learning import services as learning
        from learning.models import LearningSummary
        from learning.sweeps import schedule_due_reviews

        closed = Plan.objects.filter(title="Hand hygiene compliance below standard").first()
        if closed is None or LearningSummary.objects.filter(plan=closed).exists():
            return
        lead = users["priya"]
        today = timezone.localdate()
        summary = learning.save_summary(
            plan=closed,
            by=lead,
            what_happened="Hand hygiene audits at Oakfield House fell to 72% over the winter. "
            "Staff skipped hand hygiene between residents on the morning medicines round.",
            what_changed="Alcohol gel on every medicines trolley, hand hygiene champions on each "
            "shift, and monthly observed audits fed back at handover.",
            key_messages="Clean hands between every resident, every time, including on the "
            "medicines round.\nIf the gel on your trolley is empty, replace it before you start.",
        )
        learning.share_summary(
            summary=summary,
            by=lead,
            locations=[locations["Oakfield House"], locations["Riverside Court"]],
        )
        learning.acknowledge(
            ack=summary.acknowledgements.get(manager=users["grace"]), by=users["grace"]
        )
        learning.record_embedding(
            summary=summary,
            by=lead,
            kind="induction",
            embedded_on=today - datetime.timedelta(days=100),
            who="Tom Okafor, Registered Manager",
            note="Hand hygiene module added to day one of induction.",
        )
        learning.record_embedding(
            summary=summary,
            by=lead,
            kind="supervision",
            embedded_on=today - datetime.timedelta(days=90),
            who="Priya Shah",
            note="The supervision template asks about hand hygiene observations.",
        )
        schedule_due_reviews(today)

    def locations(self):
        result = {}
        for name, cqc_id, kind in LOCATIONS:
            result[name], _ = Location.objects.get_or_create(
                name=name, defaults={"cqc_location_id": cqc_id, "kind": kind}
            )
        return result

    def users(self, locations):
        result = {}
        for username, first, last, role, locs, title in USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "role": role,
                    "job_title": title,
                    "email": f"{username}@demo.qip-portal.test",
                    "is_staff": role == User.Role.ADMINISTRATOR,
                    "is_superuser": role == User.Role.ADMINISTRATOR,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
                user.locations.set([locations[name] for name in locs])
            result[username] = user
        return result

    def plans(self, users, locations, themes) -> int:
        today = timezone.localdate()
        created = 0
        for spec in demo_plans(today):
            if Plan.objects.filter(title=spec["title"]).exists():
                continue
            created += 1
            self.create_plan(spec, users, locations, themes, today)
        return created

    def results(self, users) -> None:
        """Re-audit results, evidence and (walkthrough 2) a monitoring period, through the
        services so that history is recorded. Only for a plan with no results yet."""
        from audits import services as audits_services
        from audits.models import Measurement, MonitoringPeriod

        for title, spec in DEMO_RESULTS.items():
            plan = Plan.objects.filter(title=title).first()
            if plan is None or Measurement.objects.filter(indicator__plan=plan).exists():
                continue
            by = users[spec["user"]]
            location = plan.locations.first()
            monitoring_from = plan.opened_on + datetime.timedelta(days=MONITORING_STARTED_DAY)
            monitored = plan.status == Plan.Status.MONITORING
            later = []
            for indicator in plan.indicators.all():
                for row in spec[indicator.name]:
                    on = plan.opened_on + datetime.timedelta(days=row[0])
                    if len(row) == 3:
                        fields = {"numerator": row[1], "denominator": row[2], "value": None}
                    else:
                        fields = {"numerator": None, "denominator": None, "value": Decimal(row[1])}
                    fields |= {
                        "indicator": indicator,
                        "measured_on": on,
                        "location": location,
                        "source": "import"
                        if row[0] < 0
                        else (
                            "incident_panel" if indicator.measure_type == "count" else "re_audit"
                        ),
                        "notes": "From the previous register" if row[0] < 0 else "",
                    }
                    if monitored and on >= monitoring_from:
                        later.append(fields)
                    else:
                        audits_services.record_measurement(plan=plan, by=by, fields=fields)
            for kind, evidence_title, day in spec["evidence"]:
                audits_services.add_evidence(
                    plan=plan,
                    by=by,
                    fields={
                        "kind": kind,
                        "title": evidence_title,
                        "occurred_on": plan.opened_on + datetime.timedelta(days=day),
                        "description": "",
                    },
                )
            if monitored and not MonitoringPeriod.objects.filter(plan=plan).exists():
                indicator = plan.indicators.first()
                audits_services.start_monitoring(
                    plan=plan,
                    by=users["priya"],
                    floors={indicator.pk: Decimal("85")},
                    escalate_to=["helen@demo.qip-portal.test"],
                    starts_on=monitoring_from,
                )
                for fields in later:
                    audits_services.record_measurement(plan=plan, by=by, fields=fields)
                audits_services.check_plan_monitoring(plan_id=plan.pk)

    def create_plan(self, spec, users, locations, themes, today):
        lead = users["priya"]
        opened = today - datetime.timedelta(days=spec["age"])
        data = services.NewPlan(
            plan_fields={
                "title": spec["title"],
                "summary": spec["summary"],
                "theme": themes[spec["theme"]],
                "owner": users[spec["owner"]],
                "likelihood": spec["risk"][0],
                "impact": spec["risk"][1],
                "key_questions": spec["key_questions"],
                "opened_on": opened,
                "target_date": opened + datetime.timedelta(days=spec.get("target_in", 180)),
            },
            locations=[locations[name] for name in spec["locations"]],
            quality_statements=QualityStatement.objects.filter(name__in=spec["statements"]),
            regulations=Regulation.objects.filter(number__in=spec["regulations"]),
            triggers=[
                {
                    "kind": k,
                    "reference": r,
                    "occurred_on": opened - datetime.timedelta(days=d),
                    "description": desc,
                }
                for k, r, d, desc in spec["triggers"]
            ],
            criteria=spec["criteria"],
            indicators=spec["indicators"],
            actions=[
                {
                    "description": desc,
                    "owner": users[owner],
                    "due_date": opened + datetime.timedelta(days=due),
                    "status": status,
                    # Done by its due date (or today, for one due later).
                    "completed_on": min(opened + datetime.timedelta(days=due), today)
                    if status == "completed"
                    else None,
                    "completion_note": note,
                }
                for desc, owner, due, status, note in spec["actions"]
            ],
        )
        plan = services.create_plan(by=lead, data=data)
        if spec["status"] != Plan.Status.DRAFT:
            services.activate_plan(plan=plan, by=lead)
        if spec["status"] == Plan.Status.WITHDRAWN:
            services.withdraw_plan(plan=plan, by=lead, reason=spec["withdraw_reason"])
        elif spec["status"] not in (Plan.Status.DRAFT, Plan.Status.LIVE):
            # Plans that reached later stages before the portal was adopted: their
            # status is carried over from the previous register, and history says so.
            plan.status = spec["status"]
            plan.status_changed_at = timezone.now() - datetime.timedelta(
                days=spec.get("status_days_ago", 0)
            )
            save_with_history(
                plan, by=lead, reason="Demo data: status carried over from the previous register"
            )
        stale_days = spec.get("quiet_days")
        if stale_days:
            services.touch_plan(plan.pk, timezone.now() - datetime.timedelta(days=stale_days))


# Re-audit results for the walkthrough plans, as (days after the plan opened, numerator,
# denominator) for proportions or (days, value) for counts. Negative days are audits
# from the previous register, before the plan opened (its baseline).
WALKTHROUGH_1 = "Safeguarding: missed escalation and poor recording"
WALKTHROUGH_2 = "Care plans not reviewed after changes in need"
DEMO_RESULTS = {
    WALKTHROUGH_1: {
        "user": "tom",
        "evidence": [
            ("re_audit", "Safeguarding records re-audit (month 3)", 100),
            ("incident_panel", "Incident panel: SG-2026-019 reviewed, no repeat", 110),
        ],
        "Concerns escalated within 24 hours": [
            *[
                (-30 * k, n, 24)
                for k, n in zip(
                    range(12, 0, -1), [18, 17, 19, 18, 17, 20, 18, 19, 17, 18, 19, 18], strict=True
                )
            ],
            (5, 17, 24),
            (20, 21, 25),
            (40, 24, 25),
            (65, 25, 26),
            (90, 24, 25),
            (115, 26, 27),
            (140, 25, 25),
        ],
        "Safeguarding records complete": [
            (10, 15, 24),
            (38, 20, 25),
            (45, 23, 25),
            (70, 24, 26),
            (100, 24, 25),
            (140, 26, 27),
        ],
        "Repeat safeguarding alerts": [(10, 2), (30, 1), (42, 0), (72, 0), (102, 0), (138, 0)],
    },
    WALKTHROUGH_2: {
        "user": "grace",
        "evidence": [("observation", "Observation of handover: 72-hour prompts used", 200)],
        "Care plans reviewed within 72 hours of a change": [
            (3, 19, 31),
            (30, 21, 30),
            (60, 25, 32),
            (90, 26, 30),
            (120, 29, 32),
            (150, 28, 30),
            (180, 30, 33),
            (210, 30, 31),
            (240, 28, 30),
            (270, 31, 33),
            (300, 29, 31),
            # Monitoring started on day 305; the second audit since is below the floor.
            (315, 28, 30),
            (328, 25, 31),
        ],
    },
}
MONITORING_STARTED_DAY = 305


def demo_plans(today):
    pct = "proportion"
    return [
        {
            "title": "Safeguarding: missed escalation and poor recording",
            "summary": "Several safeguarding alerts found concerns were not escalated to the local authority within 24 hours and records of the concern were incomplete.",
            "theme": "Safeguarding",
            "owner": "priya",
            "risk": (4, 4),
            "age": 150,
            "locations": ["Oakfield House"],
            "key_questions": ["safe", "well_led"],
            "statements": ["Safeguarding", "Learning culture"],
            "regulations": [13, 17],
            "triggers": [
                (
                    "safeguarding_alert",
                    "SG-2026-014",
                    20,
                    "Concern about unexplained bruising not escalated for 3 days.",
                ),
                ("safeguarding_alert", "SG-2026-019", 12, "Second alert: body map not completed."),
                ("audit", "AUD-SG-03", 5, "Safeguarding records audit scored 58%."),
            ],
            "criteria": {
                "success_in_practice": "Every safeguarding concern is escalated within 24 hours and recorded in full, and no repeat alerts arise from the same cause.",
                "sustain_months": 3,
                "min_reaudits": 2,
                "required_evidence": ["re_audit", "incident_panel", "supervision"],
                "sign_off_level": 3,
            },
            "indicators": [
                {
                    "name": "Concerns escalated within 24 hours",
                    "measure_type": pct,
                    "direction": "higher",
                    "target": Decimal("95"),
                    "unit": "%",
                    "frequency": "monthly",
                },
                {
                    "name": "Safeguarding records complete",
                    "measure_type": pct,
                    "direction": "higher",
                    "target": Decimal("90"),
                    "unit": "%",
                    "frequency": "monthly",
                },
                {
                    "name": "Repeat safeguarding alerts",
                    "measure_type": "count",
                    "direction": "lower",
                    "target": Decimal("0"),
                    "unit": "alerts",
                    "frequency": "monthly",
                },
            ],
            "actions": [
                (
                    "Deliver safeguarding escalation refresher training to all shift leads",
                    "tom",
                    30,
                    "completed",
                    "Six sessions delivered; 31 of 32 shift leads attended.",
                ),
                (
                    "Add escalation checklist to the electronic care record",
                    "tom",
                    45,
                    "completed",
                    "Checklist live on the care record since week 6.",
                ),
                (
                    "Discuss one safeguarding case in every supervision for three months",
                    "tom",
                    120,
                    "in_progress",
                    "",
                ),
            ],
            "status": Plan.Status.LIVE,
        },
        {
            "title": "Care plans not reviewed after changes in need",
            "summary": "Care-planning audit found care plans were not updated after falls or hospital discharge.",
            "theme": "Care planning",
            "owner": "grace",
            "risk": (3, 4),
            "age": 330,
            "locations": ["Riverside Court"],
            "key_questions": ["effective", "responsive"],
            "statements": ["Assessing needs", "Person-centred care"],
            "regulations": [9, 17],
            "triggers": [
                ("audit", "AUD-CP-01", 3, "Care plan audit: 61% reviewed after change in need."),
                (
                    "cqc_inspection",
                    "INS-2025-RC",
                    30,
                    "CQC feedback: care plans not reflecting current needs.",
                ),
            ],
            "criteria": {
                "success_in_practice": "Care plans are reviewed within 72 hours of any change in need, and staff follow the current plan.",
                "sustain_months": 3,
                "min_reaudits": 3,
                "required_evidence": ["re_audit", "observation"],
                "sign_off_level": 3,
            },
            "indicators": [
                {
                    "name": "Care plans reviewed within 72 hours of a change",
                    "measure_type": pct,
                    "direction": "higher",
                    "target": Decimal("90"),
                    "unit": "%",
                    "frequency": "monthly",
                }
            ],
            "actions": [
                (
                    "Introduce a 72-hour review prompt in the handover sheet",
                    "grace",
                    30,
                    "completed",
                    "Prompt in use on all units.",
                ),
                (
                    "Monthly care-plan audit by unit leads",
                    "grace",
                    90,
                    "completed",
                    "Audits running monthly since March.",
                ),
            ],
            "status": Plan.Status.MONITORING,
        },
        {
            "title": "Medicines: missed time-critical doses",
            "summary": "Two incidents of missed Parkinson's medication at the correct time.",
            "theme": "Medicines",
            "owner": "sam",
            "risk": (3, 5),
            "age": 40,
            "target_in": 150,
            "locations": ["Meadow View Home Care"],
            "key_questions": ["safe"],
            "statements": ["Medicines optimisation"],
            "regulations": [12],
            "triggers": [("incident", "INC-4471", 2, "Time-critical medicine given 2 hours late.")],
            "criteria": {
                "success_in_practice": "Time-critical medicines are always given within 30 minutes of the prescribed time.",
                "sustain_months": 3,
                "min_reaudits": 3,
                "required_evidence": ["re_audit", "training"],
                "sign_off_level": 2,
            },
            "indicators": [
                {
                    "name": "Time-critical doses on time",
                    "measure_type": pct,
                    "direction": "higher",
                    "target": Decimal("98"),
                    "unit": "%",
                    "frequency": "weekly",
                }
            ],
            "actions": [
                ("Schedule time-critical visits first on the rota system", "sam", 14, "open", ""),
                (
                    "Competency check for all carers administering medicines",
                    "sam",
                    21,
                    "in_progress",
                    "",
                ),
            ],
            "status": Plan.Status.LIVE,
        },
        {
            "title": "Falls at night on the dementia unit",
            "summary": "Rise in unwitnessed falls between 22:00 and 06:00.",
            "theme": "Falls",
            "owner": "grace",
            "risk": (4, 3),
            "age": 10,
            "locations": ["Riverside Court"],
            "key_questions": ["safe"],
            "statements": ["Involving people to manage risks"],
            "regulations": [12],
            "triggers": [("incident", "INC-4520", 1, "Third unwitnessed fall this month.")],
            "criteria": {
                "success_in_practice": "Fewer falls at night, and every faller has a post-fall review within 24 hours.",
                "sustain_months": 3,
                "min_reaudits": 3,
                "required_evidence": ["re_audit"],
                "sign_off_level": 2,
            },
            "indicators": [
                {
                    "name": "Falls per 1,000 occupied bed days",
                    "measure_type": "rate",
                    "direction": "lower",
                    "target": Decimal("6"),
                    "unit": "per 1,000 bed days",
                    "frequency": "monthly",
                }
            ],
            "actions": [("Review night staffing deployment", "grace", 30, "open", "")],
            "status": Plan.Status.DRAFT,
        },
        {
            "title": "Hand hygiene compliance below standard",
            "summary": "Infection prevention audit found hand hygiene compliance of 72%.",
            "theme": "Infection prevention",
            "owner": "tom",
            "risk": (3, 3),
            "age": 400,
            "target_in": 150,
            "locations": ["Oakfield House"],
            "key_questions": ["safe"],
            "statements": ["Infection prevention and control"],
            "regulations": [12],
            "triggers": [("audit", "AUD-IPC-07", 3, "Hand hygiene observation audit: 72%.")],
            "criteria": {
                "success_in_practice": "Staff clean their hands at every one of the five moments.",
                "sustain_months": 3,
                "min_reaudits": 3,
                "required_evidence": ["observation"],
                "sign_off_level": 2,
            },
            "indicators": [
                {
                    "name": "Hand hygiene compliance",
                    "measure_type": pct,
                    "direction": "higher",
                    "target": Decimal("95"),
                    "unit": "%",
                    "frequency": "monthly",
                }
            ],
            "actions": [
                (
                    "Hand hygiene champions on each shift",
                    "tom",
                    30,
                    "completed",
                    "Champions named and trained.",
                )
            ],
            "status": Plan.Status.CLOSED,
            "status_days_ago": 122,  # so its three-month learning review is due
        },
        {
            "title": "Agency staff induction gaps",
            "summary": "Agency staff working without a local induction.",
            "theme": "Staffing",
            "owner": "sam",
            "risk": (2, 3),
            "age": 90,
            "locations": ["Meadow View Home Care"],
            "key_questions": ["safe", "well_led"],
            "statements": ["Safe and effective staffing"],
            "regulations": [18],
            "triggers": [
                (
                    "complaint",
                    "CMP-118",
                    3,
                    "Family complaint about an agency carer unfamiliar with the care plan.",
                )
            ],
            "criteria": {
                "success_in_practice": "Every agency worker completes a local induction before their first visit.",
                "sustain_months": 2,
                "min_reaudits": 2,
                "required_evidence": ["training"],
                "sign_off_level": 1,
            },
            "indicators": [
                {
                    "name": "Agency workers inducted before first visit",
                    "measure_type": pct,
                    "direction": "higher",
                    "target": Decimal("100"),
                    "unit": "%",
                    "frequency": "monthly",
                }
            ],
            "actions": [],
            "status": Plan.Status.WITHDRAWN,
            "withdraw_reason": "Merged into the organisation-wide staffing plan.",
        },
        {
            "title": "Nutrition and hydration records incomplete",
            "summary": "Food and fluid charts incomplete for people at risk of malnutrition.",
            "theme": "Care planning",
            "owner": "tom",
            "risk": (3, 3),
            "age": 200,
            "quiet_days": 75,
            "locations": ["Oakfield House"],
            "key_questions": ["effective"],
            "statements": ["Assessing needs"],
            "regulations": [14],
            "triggers": [("audit", "AUD-NH-02", 3, "Fluid charts totalled on 40% of days.")],
            "criteria": {
                "success_in_practice": "Fluid intake is totalled and acted on every day for everyone at risk.",
                "sustain_months": 3,
                "min_reaudits": 3,
                "required_evidence": ["re_audit"],
                "sign_off_level": 2,
            },
            "indicators": [
                {
                    "name": "Fluid charts totalled and acted on",
                    "measure_type": pct,
                    "direction": "higher",
                    "target": Decimal("95"),
                    "unit": "%",
                    "frequency": "monthly",
                }
            ],
            "actions": [("Add fluid totals to the night-shift handover", "tom", 30, "open", "")],
            "status": Plan.Status.LIVE,
        },
        {
            "title": "Complaints not acknowledged within three working days",
            "summary": "Complaints audit found acknowledgement letters sent late.",
            "theme": "Staffing",
            "owner": "priya",
            "risk": (2, 2),
            "age": 260,
            "locations": ["Oakfield House", "Riverside Court"],
            "key_questions": ["responsive"],
            "statements": ["Listening to and involving people"],
            "regulations": [16],
            "triggers": [("audit", "AUD-CMP-04", 3, "Complaints audit: 55% acknowledged on time.")],
            "criteria": {
                "success_in_practice": "Every complaint is acknowledged within three working days.",
                "sustain_months": 3,
                "min_reaudits": 3,
                "required_evidence": ["re_audit"],
                "sign_off_level": 3,
            },
            "indicators": [
                {
                    "name": "Complaints acknowledged within 3 working days",
                    "measure_type": pct,
                    "direction": "higher",
                    "target": Decimal("95"),
                    "unit": "%",
                    "frequency": "monthly",
                }
            ],
            "actions": [
                (
                    "Central complaints inbox with daily check",
                    "priya",
                    20,
                    "completed",
                    "Inbox live; checked daily by the quality team.",
                )
            ],
            "status": Plan.Status.CLOSURE_REVIEW,
        },
    ]
