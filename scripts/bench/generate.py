"""The benchmark dataset: locations, people, plans in every status with their triggers,
criteria, indicators, actions, measurements, evidence, monitoring, closure reports,
decisions and learning, each with django-simple-history rows.

Everything is written with ``bulk_create`` on the models (and
``Model.history.bulk_history_create`` for the history rows), so a new nullable field or
one with a default needs no change here. Services are not used: they would cost one
transaction and several queries per object. Dates are relative to today, so the sweeps
find a realistic amount of due, overdue, stale and ready work.

History written: one "+" row per object (dated when the object was created, attributed
to its author), one "~" row per plan status change (with the transition as the reason),
"~" rows for completed and verified actions, and a "~" correction row for one
measurement in a hundred; plus the many-to-many history of each plan record (its
locations). Not written: history of users' location links, and security events.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import math
import random
import time
from collections import defaultdict
from decimal import Decimal

from django.apps import apps
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from scripts.bench import config

THEMES = [
    "Safeguarding",
    "Medicines",
    "Falls prevention",
    "Infection control",
    "Care planning",
    "Nutrition and hydration",
    "Pressure care",
    "Staffing",
    "Mental Capacity Act",
    "Complaints handling",
    "Record keeping",
    "End of life care",
]
AUDIT_THEMES = [
    "Safeguarding records audit",
    "Medicines administration audit",
    "Falls audit",
    "Infection control audit",
    "Care plan audit",
    "Nutrition audit",
    "Skin integrity audit",
    "Staff supervision audit",
    "MCA and DoLS audit",
    "Complaints audit",
]
WORDS = [
    "residents", "staff", "records", "night", "shift", "handover", "medication", "escalation",
    "supervision", "training", "documentation", "assessment", "family", "review", "audit",
    "policy", "agency", "weekend", "moving", "handling", "hydration", "wound", "infection",
    "consent", "capacity", "risk",
]
# (status, share of plans). Closed and withdrawn plans dominate an old register.
STATUS_MIX = [
    ("draft", 0.06),
    ("live", 0.36),
    ("closure_review", 0.03),
    ("monitoring", 0.10),
    ("closed", 0.38),
    ("withdrawn", 0.07),
]
FREQ_DAYS = {"weekly": 7, "fortnightly": 14, "monthly": 31, "quarterly": 92}
EVIDENCE_KINDS = [
    "re_audit",
    "incident_panel",
    "supervision",
    "training",
    "observation",
    "feedback",
    "policy",
]
TRIGGER_KINDS = [
    "incident",
    "audit",
    "safeguarding_alert",
    "complaint",
    "cqc_inspection",
    "commissioner_visit",
]
CHUNK = 1000  # plans per transaction


def _aware(day: datetime.date, hour: int = 10) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, 0)))


def _history(model, objs, *, update=False, batch_size=2000):
    """History rows for ``objs`` (each may carry _history_date, _history_user and
    _change_reason). Returns the historical rows with their primary keys."""
    if not objs:
        return []
    return model.history.bulk_history_create(objs, batch_size=batch_size, update=update)


def plan_statuses(n: int, live_plans: int | None = None) -> list[str]:
    """The statuses of the scale's ``n`` plans, before shuffling. By default, STATUS_MIX
    (rounded, any shortfall made up with live plans). With ``live_plans``, exactly that
    many are live and the other statuses share the rest in STATUS_MIX's proportions
    (largest remainders, so the total is exact). The showcase and import plans (two more
    live, one in closure review) come on top of these."""
    if live_plans is None:
        statuses = []
        for status, share in STATUS_MIX:
            statuses += [status] * round(n * share)
        return (statuses + ["live"] * n)[:n]
    if not 0 <= live_plans <= n:
        raise ValueError(f"live_plans must be between 0 and {n}, not {live_plans}")
    others = [(status, share) for status, share in STATUS_MIX if status != "live"]
    rest = n - live_plans
    weight = sum(share for _, share in others)
    exact = [rest * share / weight for _, share in others]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(others)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    wanted = dict(zip((status for status, _ in others), counts, strict=True))
    wanted["live"] = live_plans
    statuses = []
    for status, _ in STATUS_MIX:  # the order of STATUS_MIX, as by default
        statuses += [status] * wanted[status]
    return statuses


class Generator:
    def __init__(
        self,
        scale: config.Scale,
        *,
        seed: int = config.SEED,
        live_plans: int | None = None,
        log=print,
    ):
        self.scale = scale
        self.live_plans = live_plans
        self.rng = random.Random(seed)
        self.log = log
        self.today = timezone.localdate()
        self.counts: dict[str, int] = defaultdict(int)
        self.timings: dict[str, float] = {}

    # -- helpers -------------------------------------------------------------------------

    def _text(self, n: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(n)).capitalize() + "."

    def _bulk(self, model, objs, *, history=True, batch_size=2000, **hist):
        created = model.objects.bulk_create(objs, batch_size=batch_size)
        self.counts[model._meta.label] += len(created)
        if history and hasattr(model, "history"):
            rows = _history(model, created, batch_size=batch_size, **hist)
            self.counts[model.history.model._meta.label] += len(rows)
        return created

    def _stamp(self, obj, when: datetime.datetime, user, reason: str = ""):
        obj._history_date = when
        obj._history_user = user
        if reason:
            obj._change_reason = reason
        return obj

    # -- entry point ---------------------------------------------------------------------

    def run(self) -> dict:
        started = time.perf_counter()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO off")
        steps = [
            ("reference data and people", self.people),
            ("plans, indicators, measurements, evidence", self.plans),
            ("showcase and import plans", self.showcases),
            ("governance: groups, meetings, reports, decisions", self.governance),
            ("monitoring periods", self.monitoring),
            ("learning", self.learning),
            ("indicators' latest result dates", self.last_measured),
        ]
        for label, step in steps:
            t0 = time.perf_counter()
            with transaction.atomic():
                step()
            self.timings[label] = round(time.perf_counter() - t0, 1)
            self.log(f"  {label}: {self.timings[label]} s")
        if connection.vendor == "postgresql":
            t0 = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            self.timings["ANALYZE"] = round(time.perf_counter() - t0, 1)
        self.timings["total"] = round(time.perf_counter() - started, 1)
        return {"counts": dict(sorted(self.counts.items())), "timings": self.timings}

    def last_measured(self) -> None:
        # What audits.services keeps on every result logged (one statement for all).
        from audits.services import refresh_last_measured
        from plans.models import Indicator

        refresh_last_measured(Indicator.objects.values_list("pk", flat=True))

    # -- people and reference data ------------------------------------------------------

    def people(self) -> None:
        from audits.models import AuditTheme
        from plans.models import Location, PlanReferenceCounter, Regulation, Theme, User

        rng = self.rng
        long_ago = _aware(self.today - datetime.timedelta(days=5 * 365))
        kinds = [k for k, _ in Location.Kind.choices]
        self.locations = self._bulk(
            Location,
            [
                self._stamp(
                    Location(
                        name=f"{rng.choice(['Oak', 'Ash', 'Elm', 'Beech', 'Willow', 'Cedar'])}"
                        f" {rng.choice(['House', 'Court', 'Lodge', 'Gardens', 'View'])} {i:03d}",
                        cqc_location_id=f"1-{100000000 + i}",
                        kind=rng.choice(kinds),
                    ),
                    long_ago,
                    None,
                )
                for i in range(1, self.scale.locations + 1)
            ],
        )
        self.themes = self._bulk(
            Theme, [self._stamp(Theme(name=n), long_ago, None) for n in THEMES]
        )
        self.audit_themes = self._bulk(
            AuditTheme, [self._stamp(AuditTheme(name=n), long_ago, None) for n in AUDIT_THEMES]
        )
        if not Regulation.objects.exists():
            self._bulk(
                Regulation,
                [
                    self._stamp(Regulation(number=n, title=f"Regulation {n}"), long_ago, None)
                    for n in (9, 10, 11, 12, 13, 17, 18)
                ],
            )
        password = make_password(config.PASSWORD)
        users = []

        def user(username, role, first, last, **extra):
            u = User(
                username=username,
                first_name=first,
                last_name=last,
                email=f"{username}@bench.test",
                role=role,
                password=password,
                **extra,
            )
            users.append(self._stamp(u, long_ago, None))
            return u

        n_leads = max(2, round(self.scale.locations / 50))
        self.leads = [
            user(f"bench_lead{i}", "quality_lead", "Lead", f"Number {i}")
            for i in range(1, n_leads + 1)
        ]
        self.managers = [
            user(f"bench_mgr{i:03d}", "manager", "Manager", f"Number {i}")
            for i in range(1, len(self.locations) + 1)
        ]
        self.members = [
            user(f"bench_gov{i}", "governance_member", "Member", f"Number {i}") for i in range(1, 9)
        ]
        self.chairs = [
            user(f"bench_chair{i}", "governance_member", "Chair", f"Number {i}")
            for i in range(1, 4)
        ]
        self.viewers = [
            user(f"bench_viewer{i}", "viewer", "Viewer", f"Number {i}") for i in range(1, 6)
        ]
        self.admin = user(
            "bench_admin", "administrator", "Admin", "Bench", is_staff=True, is_superuser=True
        )
        self._bulk(User, users)
        links = []
        self.managers_at: dict[int, list] = defaultdict(list)
        for i, manager in enumerate(self.managers):
            homes = [self.locations[i]]
            if rng.random() < 0.1:  # one manager in ten runs a second service
                homes.append(rng.choice(self.locations))
            for loc in {h.pk: h for h in homes}.values():
                links.append(User.locations.through(user_id=manager.pk, location_id=loc.pk))
                self.managers_at[loc.pk].append(manager)
        for viewer in self.viewers:
            for loc in rng.sample(self.locations, min(3, len(self.locations))):
                links.append(User.locations.through(user_id=viewer.pk, location_id=loc.pk))
        User.locations.through.objects.bulk_create(links)
        self.counts["plans.User_locations"] += len(links)
        # Reference counters well above anything generated (QIP-<year>-NNNN).
        for year in range(self.today.year - 6, self.today.year + 2):
            PlanReferenceCounter.objects.update_or_create(
                year=year, defaults={"last_number": 90000}
            )

    # -- plans ---------------------------------------------------------------------------

    def _status_plan(self, status: str) -> dict:
        """Dates for a plan in ``status``: opened, status changed, last activity."""
        rng, today = self.rng, self.today
        if status == "draft":
            opened = today - datetime.timedelta(days=rng.randint(0, 60))
            changed = opened
        elif status == "live":
            opened = today - datetime.timedelta(days=rng.randint(60, 720))
            changed = opened + datetime.timedelta(days=rng.randint(3, 20))
        elif status in ("closure_review", "monitoring"):
            opened = today - datetime.timedelta(days=rng.randint(300, 900))
            changed = today - datetime.timedelta(days=rng.randint(5, 150))
        elif status == "closed":
            opened = today - datetime.timedelta(days=rng.randint(400, 1800))
            changed = min(
                today - datetime.timedelta(days=5),
                opened + datetime.timedelta(days=rng.randint(240, 720)),
            )
        else:  # withdrawn
            opened = today - datetime.timedelta(days=rng.randint(60, 1800))
            changed = min(
                today - datetime.timedelta(days=1),
                opened + datetime.timedelta(days=rng.randint(5, 200)),
            )
        if status in ("live", "closure_review", "monitoring"):
            # One open plan in eight has gone quiet (stale after 60 days).
            quiet = rng.randint(61, 200) if rng.random() < 0.125 else rng.randint(0, 40)
            activity = max(_aware(changed), _aware(today - datetime.timedelta(days=quiet)))
        else:
            activity = _aware(changed)
        return {"opened": opened, "changed": changed, "activity": activity}

    STEPS = {
        "draft": [],
        "live": [("live", "Activated")],
        "closure_review": [("live", "Activated"), ("closure_review", "Submitted for closure")],
        "monitoring": [
            ("live", "Activated"),
            ("closure_review", "Submitted for closure"),
            ("monitoring", "Stepped down into monitoring"),
        ],
        "closed": [
            ("live", "Activated"),
            ("closure_review", "Submitted for closure"),
            ("closed", "Closure signed off"),
        ],
        "withdrawn": [("live", "Activated"), ("withdrawn", "Withdrawn: merged into another plan")],
    }

    def plans(self) -> None:
        n = self.scale.plans
        statuses = plan_statuses(n, self.live_plans)
        self.rng.shuffle(statuses)
        # Indicators per plan: 1-5, three on average; measurements shared out so the
        # totals match the scale (drafts have none).
        per_plan = [self.rng.choice((1, 2, 3, 4, 5)) for _ in range(n)]
        self.indicators_wanted = self.scale.indicators
        self.measurements_wanted = self.scale.measurements
        self.evidence_wanted = self.scale.evidence
        measured_indicators = sum(
            k for k, s in zip(per_plan, statuses, strict=True) if s != "draft"
        )
        self.points_mean = self.measurements_wanted / max(1, measured_indicators)
        self.point_debt = 0.0
        self.evidence_per_plan = self.evidence_wanted / max(
            1, sum(1 for s in statuses if s != "draft")
        )
        self.evidence_debt = 0.0
        self.plans_by_status: dict[str, list[int]] = defaultdict(list)
        self.plan_info: dict[int, dict] = {}
        numbers: dict[int, int] = defaultdict(int)
        for start in range(0, n, CHUNK):
            batch = []
            for i in range(start, min(n, start + CHUNK)):
                batch.append((statuses[i], per_plan[i]))
            self._plan_chunk(batch, numbers)
            if start and start % (CHUNK * 5) == 0:
                self.log(f"    {start:,} plans, {self.counts['audits.Measurement']:,} measurements")

    def _plan_chunk(self, batch, numbers, *, showcase: dict | None = None) -> list:
        from audits.models import EvidenceItem, IndicatorSchedule, Measurement
        from plans.models import Action, ClosureCriteria, Indicator, Plan, Trigger

        rng = self.rng
        plans, meta = [], []
        for status, n_ind in batch:
            dates = showcase["dates"] if showcase else self._status_plan(status)
            location = rng.choice(self.locations)
            locs = [location] + (rng.sample(self.locations, 2) if rng.random() < 0.08 else [])
            locs = list({loc.pk: loc for loc in locs}.values())
            owner = rng.choice(self.leads + self.managers_at.get(location.pk, []) or self.leads)
            creator = rng.choice(self.leads)
            opened = dates["opened"]
            numbers[opened.year] += 1
            likelihood, impact = rng.randint(1, 5), rng.randint(1, 5)
            plan = Plan(
                reference=f"QIP-{opened.year}-{numbers[opened.year]:04d}",
                title=showcase["title"]
                if showcase
                else f"{rng.choice(THEMES)}: {self._text(5)}"[:200],
                summary=self._text(40),
                theme=rng.choice(self.themes),
                owner=owner,
                likelihood=likelihood,
                impact=impact,
                risk_score=likelihood * impact,
                key_questions=rng.sample(
                    ["safe", "effective", "caring", "responsive", "well_led"], 2
                ),
                opened_on=opened,
                target_date=opened + datetime.timedelta(days=rng.randint(120, 365)),
                status=status,
                status_changed_at=_aware(dates["changed"]),
                created_by=creator,
                created_at=_aware(opened, 9),
                last_activity_at=dates["activity"],
            )
            plans.append(self._stamp(plan, _aware(opened, 9), creator, "Plan opened"))
            meta.append({"status": status, "n_ind": n_ind, "locs": locs, "dates": dates})
        Plan.objects.bulk_create(plans, batch_size=2000)
        self.counts["plans.Plan"] += len(plans)
        # Plan history: "+" at opening, "~" per status change; m2m history per record.
        hist_objs, hist_updates = [], []
        for plan, m in zip(plans, meta, strict=True):
            hist_objs.append(plan)
            steps = self.STEPS[m["status"]]
            opened, changed = m["dates"]["opened"], m["dates"]["changed"]
            for k, (status, reason) in enumerate(steps):
                when = (
                    _aware(opened + datetime.timedelta(days=7))
                    if k == 0 and len(steps) > 1
                    else _aware(changed)
                )
                if 0 < k < len(steps) - 1:
                    when = _aware(changed) - datetime.timedelta(days=30 * (len(steps) - 1 - k))
                snap = copy.copy(plan)
                snap.status = status
                hist_updates.append(self._stamp(snap, when, plan.owner, reason))
        rows = _history(Plan, hist_objs) + _history(Plan, hist_updates, update=True)
        self.counts["plans.HistoricalPlan"] += len(rows)
        locs_of = {p.pk: m["locs"] for p, m in zip(plans, meta, strict=True)}
        links = Plan.locations.through.objects.bulk_create(
            [
                Plan.locations.through(plan_id=p.pk, location_id=loc.pk)
                for p in plans
                for loc in locs_of[p.pk]
            ],
            batch_size=5000,
        )
        self.counts["plans.Plan_locations"] += len(links)
        link_ids = {(link.plan_id, link.location_id): link.pk for link in links}
        try:
            through = apps.get_model("plans", "HistoricalPlan_locations")
        except LookupError:
            through = None
        if through is not None:
            m2m = [
                through(
                    id=link_ids[(row.id, loc.pk)],
                    history_id=row.history_id,
                    plan_id=row.id,
                    location_id=loc.pk,
                )
                for row in rows
                for loc in locs_of[row.id]
            ]
            through.objects.bulk_create(m2m, batch_size=5000)
            self.counts[through._meta.label] += len(m2m)

        triggers, criteria, indicators, actions, evidence = [], [], [], [], []
        for plan, m in zip(plans, meta, strict=True):
            self.plans_by_status[m["status"]].append(plan.pk)
            info = self.plan_info[plan.pk] = {
                "status": m["status"],
                "owner": plan.owner,
                "locs": m["locs"],
                "opened": plan.opened_on,
                "changed": m["dates"]["changed"],
                "reference": plan.reference,
                "indicators": [],
            }
            created = _aware(plan.opened_on, 9)
            for t in range(showcase["triggers"] if showcase else 1):
                triggers.append(
                    self._stamp(
                        Trigger(
                            plan=plan,
                            kind=rng.choice(TRIGGER_KINDS),
                            reference=f"INC-{rng.randint(1000, 99999)}",
                            occurred_on=plan.opened_on
                            - datetime.timedelta(days=rng.randint(1, 30) + t),
                            description=self._text(20),
                        ),
                        created,
                        plan.created_by,
                    )
                )
            level = rng.choice((1, 2, 3, 3, 3, 4))
            info["level"] = level
            criteria.append(
                self._stamp(
                    ClosureCriteria(
                        plan=plan,
                        success_in_practice=self._text(25),
                        sustain_months=rng.choice((3, 3, 6)),
                        min_reaudits=rng.choice((2, 3)),
                        required_evidence=rng.sample(EVIDENCE_KINDS[:5], 2),
                        sign_off_level=level,
                        locked_at=None if m["status"] == "draft" else _aware(plan.opened_on, 11),
                    ),
                    created,
                    plan.created_by,
                )
            )
            for position in range(m["n_ind"]):
                indicators.append(self._indicator(plan, position, showcase))
            n_actions = showcase["actions"] if showcase else rng.randint(1, 5)
            for a in range(n_actions):
                actions.append(self._action(plan, m["status"], a))
            if m["status"] != "draft":
                want = self.evidence_per_plan + self.evidence_debt
                k = showcase["evidence"] if showcase else max(0, round(rng.uniform(0, 2 * want)))
                k = min(k, 20)
                self.evidence_debt = want - k if not showcase else self.evidence_debt
                for e in range(k):
                    day = min(
                        self.today, plan.opened_on + datetime.timedelta(days=rng.randint(5, 400))
                    )
                    evidence.append(
                        self._stamp(
                            EvidenceItem(
                                plan=plan,
                                kind=rng.choice(EVIDENCE_KINDS),
                                title=f"{self._text(4)[:-1]} ({e + 1})",
                                occurred_on=day,
                                description=self._text(15),
                                uploaded_by=plan.owner,
                                created_at=_aware(day, 15),
                            ),
                            _aware(day, 15),
                            plan.owner,
                            "Evidence added",
                        )
                    )
        self._bulk(Trigger, triggers)
        self._bulk(ClosureCriteria, criteria)
        created_ind = self._bulk(Indicator, indicators)
        self._bulk(
            IndicatorSchedule,
            [
                self._stamp(
                    IndicatorSchedule(indicator=i, audit_theme=rng.choice(self.audit_themes)),
                    i._history_date,
                    i._history_user,
                )
                for i in created_ind
            ],
        )
        acts = self._bulk(Action, actions)
        updates = []
        for act in acts:
            if act.status == "completed":
                snap = copy.copy(act)
                updates.append(
                    self._stamp(snap, _aware(act.completed_on, 16), act.owner, "Action completed")
                )
        rows = _history(Action, updates, update=True)
        self.counts["plans.HistoricalAction"] += len(rows)
        self._bulk(EvidenceItem, evidence)
        # Measurements, indicator by indicator.
        measurements = []
        for ind in created_ind:
            info = self.plan_info[ind.plan_id]
            info["indicators"].append(ind)
            if info["status"] == "draft" or (showcase and not showcase.get("points", True)):
                continue
            measurements += self._series(ind, info, showcase)
        for start in range(0, len(measurements), 20000):
            part = Measurement.objects.bulk_create(
                measurements[start : start + 20000], batch_size=5000
            )
            self.counts["audits.Measurement"] += len(part)
            rows = _history(Measurement, part, batch_size=5000)
            fixes = []
            for mm in part:
                if rng.random() < 0.01:
                    snap = copy.copy(mm)
                    snap._change_reason = "Corrected: transcription error"
                    snap._history_date = mm.recorded_at + datetime.timedelta(days=2)
                    fixes.append(snap)
            rows += _history(Measurement, fixes, update=True, batch_size=5000)
            self.counts["audits.HistoricalMeasurement"] += len(rows)
        return plans

    def _indicator(self, plan, position, showcase):
        from plans.models import Indicator

        rng = self.rng
        kind = rng.choices(["proportion", "count", "score", "rate"], weights=[5, 2, 2, 1])[0]
        if kind == "proportion":
            fields = {
                "direction": "higher",
                "target": Decimal(rng.choice((80, 85, 90, 95))),
                "unit": "%",
            }
        elif kind == "count":
            fields = {
                "direction": "lower",
                "target": Decimal(rng.choice((1, 2, 3))),
                "unit": "alerts",
            }
        elif kind == "score":
            fields = {
                "direction": "higher",
                "target": Decimal(rng.choice((75, 80))),
                "unit": "points",
            }
        else:
            fields = {
                "direction": "lower",
                "target": Decimal("3.000"),
                "unit": "per 1,000 bed days",
            }
        freq = (
            "weekly"
            if showcase
            else rng.choices(
                ["weekly", "fortnightly", "monthly", "quarterly"], weights=[2, 2, 5, 1]
            )[0]
        )
        ind = Indicator(
            plan=plan,
            name=f"{kind.capitalize()} {position + 1}: {self._text(4)[:-1]}"[:160],
            measure_type=kind,
            frequency=freq,
            position=position,
            **fields,
        )
        return self._stamp(ind, _aware(plan.opened_on, 9), plan.created_by, "")

    def _series(self, ind, info, showcase) -> list:
        """Results for one indicator: improving towards the target, then (mostly)
        holding. Spaced by the indicator's frequency, ending recently for open plans
        (some overdue) or at the status change for closed and withdrawn ones."""
        from audits.models import Measurement

        rng = self.rng
        interval = FREQ_DAYS[ind.frequency]
        status = info["status"]
        if showcase:
            n = config.SHOWCASE_POINTS
            end = self.today - datetime.timedelta(days=2)
        else:
            want = self.points_mean + self.point_debt
            n = max(2, round(rng.uniform(0.3, 1.7) * want))
            if status in ("live", "closure_review", "monitoring"):
                # Most are on schedule; about one in six is due or overdue.
                lag = (
                    rng.randint(0, interval - 1)
                    if rng.random() < 0.83
                    else rng.randint(interval - 7, interval * 3)
                )
                end = self.today - datetime.timedelta(days=max(0, lag))
            else:
                end = info["changed"] - datetime.timedelta(days=rng.randint(1, 10))
            start = info["opened"] + datetime.timedelta(days=3)
            fit = max(1, (end - start).days // interval + 1)
            n = min(n, fit)
            self.point_debt = want - n
        target = float(ind.target)
        higher = ind.direction == "higher"
        # Plans in closure review, monitoring or closed have a sustained good run; one
        # live plan in four is doing well enough to be ready for review.
        good = status in ("closure_review", "monitoring", "closed") or rng.random() < 0.25
        turn = int(n * (0.4 if good else 0.75))
        rows = []
        loc = info["locs"][0]
        for k in range(n):
            day = end - datetime.timedelta(days=interval * (n - 1 - k))
            improved = k >= turn
            numerator = denominator = None
            if ind.measure_type == "proportion":
                denominator = rng.randint(15, 40)
                p = (target + (rng.uniform(2, 8) if improved else -rng.uniform(5, 25))) / 100
                numerator = max(0, min(denominator, round(denominator * p + rng.gauss(0, 0.8))))
                value = Decimal(numerator * 100) / Decimal(denominator)
            elif ind.measure_type == "count":
                lam = target * (0.4 if improved else 2.5)
                value = Decimal(max(0, round(rng.gauss(lam, math.sqrt(lam + 0.1)))))
            else:
                shift = target * (0.08 if improved else -0.15)
                centre = target + (shift if higher else -shift)
                value = Decimal(str(round(max(0.0, rng.gauss(centre, target * 0.04)), 1)))
            when = _aware(day, 17)
            m = Measurement(
                indicator=ind,
                measured_on=day,
                numerator=numerator,
                denominator=denominator,
                value=value.quantize(Decimal("0.001")),
                location=loc,
                source="re_audit" if rng.random() < 0.8 else "kpi_report",
                recorded_by=info["owner"],
                recorded_at=when,
            )
            rows.append(self._stamp(m, when, info["owner"], "Re-audit logged"))
        return rows

    def _action(self, plan, status, a):
        from plans.models import Action

        rng = self.rng
        due = plan.opened_on + datetime.timedelta(days=rng.randint(14, 200))
        done = status in ("closure_review", "monitoring", "closed") or (
            status == "live" and rng.random() < 0.55
        )
        completed_on = (
            min(self.today, due + datetime.timedelta(days=rng.randint(-10, 10))) if done else None
        )
        if completed_on and completed_on < plan.opened_on:
            completed_on = plan.opened_on
        owner = plan.owner
        act = Action(
            plan=plan,
            description=self._text(12),
            owner=owner,
            due_date=due,
            status="completed" if done else rng.choice(("open", "in_progress")),
            completed_on=completed_on,
            completion_note=self._text(10) if done else "",
            verified_effective_on=completed_on if done and status != "live" else None,
            verified_by=plan.created_by if done and status != "live" else None,
            effectiveness_note=self._text(8) if done and status != "live" else "",
        )
        return self._stamp(act, _aware(plan.opened_on, 9), plan.created_by, "")

    # -- showcase plans -----------------------------------------------------------------

    def showcases(self) -> None:
        numbers: dict[int, int] = defaultdict(lambda: 80000)
        opened = self.today - datetime.timedelta(days=7 * config.SHOWCASE_POINTS + 30)
        for title, status in (
            (config.SHOWCASE_LIVE, "live"),
            (config.SHOWCASE_REVIEW, "closure_review"),
        ):
            changed = self.today - datetime.timedelta(days=1 if status == "closure_review" else 400)
            self._plan_chunk(
                [(status, config.SHOWCASE_INDICATORS)],
                numbers,
                showcase={
                    "title": title,
                    "dates": {"opened": opened, "changed": changed, "activity": _aware(self.today)},
                    "triggers": 3,
                    "actions": 6,
                    "evidence": 8,
                },
            )
        # The import target: live, five indicators, opened long enough ago for 1,000
        # distinct daily dates per indicator, no results yet.
        from plans.models import Indicator

        plan = self._plan_chunk(
            [("live", 5)],
            numbers,
            showcase={
                "title": config.IMPORT_TARGET,
                "dates": {
                    "opened": self.today - datetime.timedelta(days=1100),
                    "changed": self.today - datetime.timedelta(days=1090),
                    "activity": _aware(self.today),
                },
                "triggers": 1,
                "actions": 1,
                "evidence": 0,
                "points": 0,
            },
        )[0]
        Indicator.objects.filter(plan=plan).update(frequency="weekly")

    # -- governance ---------------------------------------------------------------------

    def governance(self) -> None:
        from governance import reports
        from governance.models import (
            AgendaItem,
            ClosureReport,
            Decision,
            GovernanceGroup,
            Meeting,
            Membership,
            ResidualRisk,
            snapshot_digest,
        )
        from plans.models import Plan

        long_ago = _aware(self.today - datetime.timedelta(days=5 * 365))
        lead = self.leads[0]
        groups = self._bulk(
            GovernanceGroup,
            [
                self._stamp(
                    GovernanceGroup(name=n, authority_level=lvl, remit=self._text(10)),
                    long_ago,
                    lead,
                )
                for n, lvl in (
                    ("Quality and Safety Committee", 2),
                    ("Safeguarding Governance Group", 3),
                    ("Board Quality Assurance Committee", 4),
                )
            ],
        )
        memberships = []
        for g, chair in zip(groups, self.chairs, strict=True):
            memberships.append(Membership(group=g, user=chair, role="chair"))
        for i, member in enumerate(self.members):
            for g in {
                groups[i % 3].pk: groups[i % 3],
                groups[(i + 1) % 3].pk: groups[(i + 1) % 3],
            }.values():
                memberships.append(Membership(group=g, user=member, role="member"))
        self._bulk(Membership, [self._stamp(m, long_ago, lead) for m in memberships])
        # Monthly meetings for five years, and three ahead, per group.
        meetings, ahead = [], defaultdict(list)
        for g in groups:
            for k in range(-60, 4):
                day = self.today + datetime.timedelta(days=30 * k + 3)
                mt = Meeting(
                    group=g, held_on=day, minutes=self._text(30) if k < 0 else "", created_by=lead
                )
                meetings.append(self._stamp(mt, _aware(day) - datetime.timedelta(days=20), lead))
        meetings = self._bulk(Meeting, meetings)
        past = defaultdict(list)
        for mt in meetings:
            (ahead if mt.held_on >= self.today else past)[mt.group_id].append(mt)
        level_group = {1: groups[0], 2: groups[0], 3: groups[1], 4: groups[2]}
        chair_of = {g.pk: c for g, c in zip(groups, self.chairs, strict=True)}
        # One real compiled report, of an ordinary plan in closure review, is the frozen
        # content of every generated report: compiling 10,000 would take far longer.
        typical = self.plans_by_status["closure_review"][:1]
        sample = Plan.objects.get(pk=typical[0]) if typical else None
        from qip_portal import closure

        content = closure.compile_report(sample or Plan.objects.get(title=config.SHOWCASE_REVIEW))
        content_json = reports.canonical_json(content)
        content_html = reports.render_body(content)
        sha = snapshot_digest(content_json, content_html)
        reps, decided = [], []
        for status in ("closure_review", "monitoring", "closed"):
            for pk in self.plans_by_status[status]:
                info = self.plan_info[pk]
                group = level_group[info["level"]]
                if status == "closure_review":
                    submitted = _aware(info["changed"])
                else:
                    submitted = _aware(info["changed"]) - datetime.timedelta(days=30)
                rep = ClosureReport(
                    plan_id=pk,
                    group=group,
                    transition="submit_for_closure",
                    status="awaiting_decision" if status == "closure_review" else "decided",
                    submitted_by=lead,
                    submitted_at=submitted,
                    sign_off_level=info["level"],
                    content_json=content_json,
                    content_html=content_html,
                    sha256=sha,
                    pdf_status="ready" if status != "closure_review" else "pending",
                )
                reps.append(self._stamp(rep, submitted, lead, "Submitted for closure"))
                if status != "closure_review":
                    decided.append((rep, status, info))
        reps = self._bulk(ClosureReport, reps)
        decisions, agenda = [], []
        for rep in reps:
            if rep.status == "awaiting_decision" and ahead[rep.group_id]:
                mt = ahead[rep.group_id][0]
                agenda.append(
                    self._stamp(
                        AgendaItem(meeting=mt, report=rep, added_by=lead), rep.submitted_at, lead
                    )
                )
        for rep, status, info in decided:
            when = _aware(info["changed"])
            candidates = [mt for mt in past[rep.group_id] if mt.held_on <= info["changed"]] or past[
                rep.group_id
            ]
            mt = candidates[-1]
            chair = chair_of[rep.group_id]
            outcome = "step_down" if status == "monitoring" else "close"
            decisions.append(
                self._stamp(
                    Decision(
                        report=rep,
                        meeting=mt,
                        outcome=outcome,
                        reasons=self._text(20),
                        signed_by=chair,
                        signed_as="chair",
                        signed_at=when,
                        signature_meaning=f"I, {chair}, sign this decision ({outcome}).",
                        snapshot_sha256=sha,
                        # As the reports' PDFs: marked rendered, so the recovery sweep
                        # does not render 10,000 signed records.
                        record_status="ready",
                        monitoring_ends_on=(self.today + datetime.timedelta(days=90))
                        if outcome == "step_down"
                        else None,
                    ),
                    when,
                    chair,
                    "Decision signed",
                )
            )
            agenda.append(
                self._stamp(
                    AgendaItem(meeting=mt, report=rep, added_by=lead), rep.submitted_at, lead
                )
            )
        self._bulk(Decision, decisions)
        self._bulk(AgendaItem, agenda)
        self._bulk(
            ResidualRisk,
            [
                self._stamp(
                    ResidualRisk(
                        plan_id=pk,
                        description=self._text(12),
                        monitoring=self._text(8),
                        recorded_by=lead,
                    ),
                    _aware(self.plan_info[pk]["changed"]),
                    lead,
                )
                for pk in self.plans_by_status["closure_review"]
            ],
        )
        self.content_sha = hashlib.sha256(content_html.encode()).hexdigest()

    # -- monitoring ---------------------------------------------------------------------

    def monitoring(self) -> None:
        from audits.models import Measurement, MonitoredIndicator, MonitoringPeriod

        try:
            from audits.deterioration import freeze_reference
        except ImportError:  # being reworked: fall back to no frozen SPC reference
            freeze_reference = None
        rng = self.rng
        periods, watched = [], []
        ids = self.plans_by_status["monitoring"]
        series = defaultdict(list)
        for m in (
            Measurement.objects.filter(indicator__plan_id__in=ids)
            .only("id", "indicator_id", "measured_on", "value")
            .order_by("measured_on", "pk")
            .iterator(chunk_size=20000)
        ):
            series[m.indicator_id].append(m)
        for pk in ids:
            info = self.plan_info[pk]
            starts = info["changed"]
            # One period in twenty has run past its end (the "monitoring ended" sweep).
            ends = (
                self.today - datetime.timedelta(days=rng.randint(1, 20))
                if rng.random() < 0.05
                else self.today + datetime.timedelta(days=rng.randint(10, 180))
            )
            period = MonitoringPeriod(
                plan_id=pk,
                audit_theme=rng.choice(self.audit_themes),
                starts_on=starts,
                ends_on=max(ends, starts + datetime.timedelta(days=1)),
                escalate_to=["governance@bench.test"],
                started_by=self.chairs[0],
                created_at=_aware(starts),
                status_changed_at=_aware(starts),
            )
            periods.append(
                self._stamp(
                    period, _aware(starts), self.chairs[0], "Monitoring started at step-down"
                )
            )
        periods = self._bulk(MonitoringPeriod, periods)
        for period in periods:
            for ind in self.plan_info[period.plan_id]["indicators"]:
                before = [m for m in series[ind.pk] if m.measured_on < period.starts_on]
                ref_values, mean = [], None
                lower = upper = None
                if freeze_reference is not None:
                    try:
                        ref = freeze_reference(ind, before, sustain_months=3, min_reaudits=2)
                        ref_values, mean, lower, upper = ref.values, ref.mean, ref.lower, ref.upper
                    except Exception:  # noqa: BLE001 - the contract may be changing
                        ref_values = []
                watched.append(
                    self._stamp(
                        MonitoredIndicator(
                            period=period,
                            indicator=ind,
                            floor=ind.target
                            * (Decimal("0.9") if ind.direction == "higher" else Decimal("1.5")),
                            reference_values=ref_values,
                            reference_from=datetime.date.fromisoformat(ref_values[0]["on"])
                            if ref_values
                            else None,
                            reference_to=datetime.date.fromisoformat(ref_values[-1]["on"])
                            if ref_values
                            else None,
                            reference_mean=mean,
                            reference_lower=lower,
                            reference_upper=upper,
                        ),
                        period._history_date,
                        self.chairs[0],
                        "Floor set and reference frozen at step-down",
                    )
                )
        self._bulk(MonitoredIndicator, watched)

    # -- learning -----------------------------------------------------------------------

    def learning(self) -> None:
        from core.models import Alert
        from learning.models import (
            Acknowledgement,
            Embedding,
            LearningReview,
            LearningSummary,
            add_months,
        )

        rng = self.rng
        summaries = []
        for pk in self.plans_by_status["closed"]:
            info = self.plan_info[pk]
            when = _aware(info["changed"]) - datetime.timedelta(days=10)
            summaries.append(
                self._stamp(
                    LearningSummary(
                        plan_id=pk,
                        what_happened=self._text(40),
                        what_changed=self._text(40),
                        key_messages=self._text(25),
                        created_by=info["owner"],
                        created_at=when,
                        updated_at=when,
                    ),
                    when,
                    info["owner"],
                    "Learning written",
                )
            )
        summaries = self._bulk(LearningSummary, summaries)
        acks, embeddings, reviews = [], [], []
        for s in summaries:
            info = self.plan_info[s.plan_id]
            closed = info["changed"]
            embeddings.append(
                self._stamp(
                    Embedding(
                        summary=s,
                        kind=rng.choice(["induction", "supervision", "training", "policy"]),
                        embedded_on=closed,
                        who="Bench manager",
                        note=self._text(8),
                        recorded_by=info["owner"],
                    ),
                    _aware(closed),
                    info["owner"],
                )
            )
            for loc in info["locs"]:
                for manager in self.managers_at.get(loc.pk, [])[:2]:
                    shared = _aware(closed)
                    done = rng.random() < 0.9 or (self.today - closed).days > 120
                    acks.append(
                        self._stamp(
                            Acknowledgement(
                                summary=s,
                                manager=manager,
                                location=loc,
                                shared_by=info["owner"],
                                shared_at=shared,
                                acknowledged_at=shared + datetime.timedelta(days=rng.randint(1, 20))
                                if done
                                else None,
                            ),
                            shared,
                            info["owner"],
                        )
                    )
            for months in (3, 12):
                due = add_months(closed, months)
                if due > self.today or rng.random() < 0.1:
                    continue  # not due yet, or left for the sweep to create
                old = (self.today - due).days > 45
                reviews.append(
                    self._stamp(
                        LearningReview(
                            summary=s,
                            months_after_closure=months,
                            due_on=due,
                            outcome="still_relevant" if old else "",
                            reviewed_by=self.leads[0] if old else None,
                            reviewed_on=due + datetime.timedelta(days=14) if old else None,
                            note=self._text(8) if old else "",
                        ),
                        _aware(due),
                        None,
                    )
                )
        unique = {}
        for a in acks:
            unique[(a.summary.pk, a.manager.pk)] = a
        self._bulk(Acknowledgement, list(unique.values()))
        self._bulk(Embedding, embeddings)
        created = self._bulk(LearningReview, reviews)
        # Their "review due" emails went out when they fell due: the outbox's record of
        # that, so the sweep does not owe them again.
        self._bulk(
            Alert,
            [
                Alert(
                    kind="learning-review-due",
                    key=f"learning-review-due:{review.pk}",
                    recipients=[],
                    subject="Learning review due",
                    body_text="Generated.",
                    status=Alert.Status.SENT,
                    attempts=1,
                    created_at=_aware(review.due_on),
                    next_attempt_at=_aware(review.due_on),
                    sent_at=_aware(review.due_on),
                )
                for review in created
            ],
            history=False,
        )


def generate(scale: config.Scale, *, live_plans: int | None = None, log=print) -> dict:
    """Fill the database. ``live_plans``: make exactly that many of the scale's plans live
    (see ``plan_statuses``); None keeps STATUS_MIX, so the same seed gives the same data."""
    generator = Generator(scale, live_plans=live_plans, log=log)
    result = generator.run()
    if live_plans is not None:
        result["live_plans_requested"] = live_plans
        result["plans_by_status"] = {
            status: len(generator.plans_by_status[status]) for status, _ in STATUS_MIX
        }
    return result


def summary_json(result: dict) -> str:
    return json.dumps(result, indent=2, default=str)
