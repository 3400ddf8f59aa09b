"""Compiling a closure report from a plan.

``compile_report`` reads the plan as it is now and returns plain, JSON-ready data
(strings, numbers, lists, dicts): the live report page renders it, and submission
freezes it (``services.freeze_report``). What it cannot know itself, whether the plan
may close and what the higher apps add (where learning is embedded), is passed in by
the closure workflow (``qip_portal/closure/workflow.py``), which composes the report.
Text typed by users stays text: it is escaped by the template that renders it, in HTML
and in the PDF.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateformat import format as date_format

from audits.charts import drawn_chart
from audits.models import EvidenceItem, Measurement
from audits.verdicts import PlanVerdicts, plan_verdicts
from core.dates import day as _day
from governance.models import ResidualRisk
from plans.models import Action, ClosureCriteria, Indicator, Plan

REVISION_PREFIX = "Criteria revised:"
REPORT_VERSION = 1


def moment(value) -> str:
    """A date and time as reports write it: ``4 Dec 2026, 14:41`` (local time)."""
    return date_format(timezone.localtime(value), "j M Y, H:i") if value else ""


def _person(user) -> str:
    return str(user) if user is not None else "System"


def _plan_part(plan: Plan) -> dict:
    return {
        "reference": plan.reference,
        "title": plan.title,
        "summary": plan.summary,
        "theme": plan.theme.name,
        "locations": [loc.name for loc in plan.locations.all()],
        "owner": _person(plan.owner),
        "opened_on": _day(plan.opened_on),
        "target_date": _day(plan.target_date),
        "status": plan.get_status_display(),
        "risk": f"{plan.risk_level} ({plan.likelihood} × {plan.impact} = {plan.risk_score})",
        "key_questions": plan.key_question_labels(),
        "regulations": [str(r) for r in plan.regulations.all()],
    }


def _criteria_part(criteria: ClosureCriteria | None) -> dict | None:
    if criteria is None:
        return None
    return {
        "success_in_practice": criteria.success_in_practice,
        "sustain_months": criteria.sustain_months,
        "min_reaudits": criteria.min_reaudits,
        "required_evidence": criteria.required_evidence_labels(),
        "sign_off_level": criteria.get_sign_off_level_display(),
        "sign_off_level_value": criteria.sign_off_level,
        "locked_on": _day(criteria.locked_at),
    }


def _changes(record) -> list[str]:
    previous = record.prev_record
    if previous is None:
        return ["Added"]
    delta = record.diff_against(previous)
    return [
        f"{record.instance_type._meta.get_field(c.field).verbose_name}: {c.old} → {c.new}"
        for c in delta.changes
    ]


def _revisions(plan: Plan, indicators: list[Indicator]) -> list[dict]:
    """Every revision of the locked contract, from history: when, who, why, what."""
    records = list(
        ClosureCriteria.history.filter(
            plan_id=plan.pk, history_change_reason__startswith=REVISION_PREFIX
        ).select_related("history_user")
    )
    records += list(
        Indicator.history.filter(
            plan_id=plan.pk, history_change_reason__startswith=REVISION_PREFIX
        ).select_related("history_user")
    )
    records.sort(key=lambda r: r.history_date)
    revisions: list[dict] = []
    for record in records:
        changes = _changes(record)
        if not changes:
            continue  # an indicator saved unchanged alongside the criteria
        subject = (
            "Closure criteria"
            if record.instance_type is ClosureCriteria
            else f"Indicator “{record.name}”"
        )
        reason = record.history_change_reason.removeprefix(REVISION_PREFIX).strip()
        entry = {
            "when": moment(record.history_date),
            "who": _person(record.history_user),
            "reason": reason,
            "changes": [f"{subject}: {c}" for c in changes],
        }
        # One revision saves the criteria and several indicators: show it once.
        last = revisions[-1] if revisions else None
        if last and (last["when"], last["who"], last["reason"]) == (
            entry["when"],
            entry["who"],
            entry["reason"],
        ):
            last["changes"].extend(entry["changes"])
        else:
            revisions.append(entry)
    return revisions


def _measurements(indicators: list[Indicator]) -> dict[int, list[dict]]:
    by_indicator: dict[int, list[dict]] = {i.pk: [] for i in indicators}
    rows = (
        Measurement.objects.filter(indicator__in=indicators)
        .select_related(
            "indicator",
            "location",
            "audit_result__audit__version__tool",
            "audit_result__audit__submitted_by",
        )
        .order_by("measured_on", "pk")
    )
    for m in rows:
        by_indicator[m.indicator_id].append(
            {
                # The audit behind a result fed by an audit tool (audits/tools).
                "audit": _audit_behind(m),
                "measured_on": _day(m.measured_on),
                "value": m.value_display(),
                "meets_target": m.meets_target,
                "source": m.get_source_display(),
                "location": m.location.name if m.location else "",
                "notes": m.notes,
            }
        )
    return by_indicator


def _audit_behind(measurement: Measurement) -> str:
    result = getattr(measurement, "audit_result", None)
    if result is None:
        return ""
    audit = result.audit
    return (
        f"Audit #{audit.pk}: {audit.version}, {audit.sample_size} "
        f"record{'s' if audit.sample_size != 1 else ''}, submitted by {audit.submitted_by} "
        f"on {_day(audit.audited_on)}"
    )


def _evidence(plan: Plan) -> list[dict] | None:
    return [
        {
            "kind": e.get_kind_display(),
            "title": e.title,
            "occurred_on": _day(e.occurred_on),
            "description": e.description,
            "file": e.download_name() if e.has_file else "",
        }
        for e in EvidenceItem.objects.filter(plan=plan).order_by("occurred_on", "pk")
    ]


def _action_part(action: Action) -> dict:
    return {
        "description": action.description,
        "owner": _person(action.owner),
        "due_date": _day(action.due_date),
        "status": action.get_status_display(),
        "completed": action.is_completed,
        "completed_on": _day(action.completed_on),
        "completion_note": action.completion_note,
        "verified_effective": action.is_verified_effective,
        "verified_effective_on": _day(action.verified_effective_on),
        "verified_by": _person(action.verified_by) if action.verified_by_id else "",
        "effectiveness_note": action.effectiveness_note,
    }


def _verdicts(verdicts: PlanVerdicts, blockers: list[str]) -> dict:
    """The plan's readiness as the closure workflow judges it, in words frozen into the
    report."""
    return {
        "all_met": verdicts.all_met,
        "met_since": _day(verdicts.met_since) if verdicts.met_since else "",
        "readiness": [str(text) for text in blockers],
    }


def section(*, name: str, title: str, items: list[str], empty: str) -> dict:
    """A section a higher app adds to the report (plain text only: it is frozen into the
    snapshot as JSON and escaped when rendered)."""
    return {
        "name": name,
        "title": str(title),
        "items": [str(item) for item in items],
        "empty": str(empty),
    }


def _indicator_verdict(verdict) -> dict:
    """Both verdicts of one indicator, and its chart (an SVG drawn by audits' renderer,
    whose text is escaped), as plain values for the frozen snapshot."""
    if verdict is None:
        return {}
    # Memoised by its exact inputs (audits.charts.drawn_chart).
    drawn = drawn_chart(
        verdict, chart_id=f"report-chart-{verdict.indicator.pk}", icon_sizes=((32, True),)
    )
    spec = drawn["spec"]
    return {
        "criteria_headline": verdict.criteria.headline(),
        "criteria_explanation": verdict.criteria.explain(),
        "assurance_headline": verdict.assurance.headline(),
        "assurance_explanation": verdict.assurance.explain(),
        "chart_svg": str(drawn["svg"]),
        # Making Data Count's icons, drawn (escaped SVG) and in words, as frozen.
        "icons_svg": str(drawn["icons"][0]),
        "icons_text": " ".join(
            icon.text for icon in (spec.variation, spec.assurance) if icon is not None
        )
        or spec.no_icons,
        # The chart's numbered notes, in words (the chart's flags carry the numbers).
        "notes": [f"{n.number}. {n.sentence}" for n in spec.notes],
    }


def preloaded_plan(plan_id: int) -> Plan:
    """The plan as ``compile_report(..., preloaded=True)`` and
    ``plan_verdicts(..., preloaded=True)`` take it: read once, with all they read."""
    from plans.models import Action

    return (
        Plan.objects.select_related("criteria", "theme", "owner")
        .prefetch_related(
            "locations",
            "regulations",
            "indicators",
            "triggers",
            # In due-date order, as the verdicts list the open actions.
            Prefetch(
                "actions",
                queryset=Action.objects.select_related("owner", "verified_by").order_by(
                    "due_date", "pk"
                ),
            ),
        )
        .get(pk=plan_id)
    )


def compile_report(
    plan: Plan,
    *,
    blockers: list[str],
    sections: list[dict] = (),  # type: ignore[assignment]
    override_rationale: str = "",
    verdicts=None,
    preloaded: bool = False,
) -> dict[str, Any]:
    """Everything the governance group needs to decide, read from the plan now.
    ``blockers``: why the plan may not yet go to closure review, in words (the closure
    workflow's ``closure_blockers``); ``sections``: what higher apps add (``section``);
    ``verdicts``: the plan's ``plan_verdicts``, when the caller has them already;
    ``preloaded``: ``plan`` was read with its criteria, theme and owner
    (``select_related``) and its locations, regulations, indicators and actions (with
    their owner and verifier) prefetched, as ``PRELOAD`` says: they are not read again."""
    if not preloaded:
        plan = (
            Plan.objects.select_related("theme", "owner")
            .prefetch_related("locations", "regulations")
            .get(pk=plan.pk)
        )
        criteria = ClosureCriteria.objects.filter(plan=plan).first()
    else:
        try:
            criteria = plan.criteria
        except ClosureCriteria.DoesNotExist:
            criteria = None
    indicators = list(plan.indicators.all())
    measurements = _measurements(indicators)
    if verdicts is None:
        verdicts = plan_verdicts(plan)
    verdicts_by_indicator = {v.indicator.pk: v for v in verdicts.indicators}
    rows = (
        sorted(plan.actions.all(), key=lambda a: (a.due_date, a.pk))
        if preloaded
        else plan.actions.select_related("owner", "verified_by").order_by("due_date", "pk")
    )
    actions = [_action_part(a) for a in rows]
    risks = ResidualRisk.objects.filter(plan=plan).select_related("recorded_by")
    return {
        "version": REPORT_VERSION,
        "compiled_at": moment(timezone.now()),
        "plan": _plan_part(plan),
        "triggers": [
            {
                "kind": t.get_kind_display(),
                "reference": t.reference,
                "occurred_on": _day(t.occurred_on),
                "description": t.description,
            }
            for t in plan.triggers.all()
        ],
        "criteria": _criteria_part(criteria),
        "revisions": _revisions(plan, indicators),
        "indicators": [
            {
                "id": i.pk,
                "name": i.name,
                "measure": i.get_measure_type_display(),
                "target": i.target_display(),
                "direction": i.get_direction_display(),
                "frequency": i.get_frequency_display(),
                "measurements": measurements[i.pk],
                "audits": [m["audit"] for m in measurements[i.pk] if m["audit"]],
                **_indicator_verdict(verdicts_by_indicator.get(i.pk)),
            }
            for i in indicators
        ],
        "verdicts": _verdicts(verdicts, blockers),
        "measurements_available": True,
        "evidence": _evidence(plan),
        "actions": actions,
        "actions_summary": {
            "total": len(actions),
            "completed": sum(1 for a in actions if a["completed"]),
            "verified": sum(1 for a in actions if a["verified_effective"]),
        },
        "residual_risks": [
            {
                "description": r.description,
                "monitoring": r.monitoring,
                "recorded_by": _person(r.recorded_by),
                "recorded_on": _day(r.recorded_at),
            }
            for r in risks
        ],
        "sections": {s["name"]: {k: v for k, v in s.items() if k != "name"} for s in sections},
        "override_rationale": override_rationale.strip(),
        "submission": None,
    }


def canonical_json(content: dict) -> str:
    """The exact text that is stored and hashed: sorted keys, no extra whitespace."""
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def render_body(content: dict) -> str:
    """The report as an HTML fragment (no page chrome), used on the page, frozen at
    submission and wrapped for the PDF. Autoescaped: user text cannot become markup."""
    return render_to_string("governance/_report_body.html", {"report": content})


def decision_summary(content: dict) -> dict:
    """What the decision form shows the signer from the frozen report (its stored
    JSON, so it is exactly what was submitted): each indicator's criteria and assurance
    verdicts, the residual risks, where learning is embedded, the actions and any
    rationale for setting the verdicts aside."""
    return {
        "indicators": [
            {
                "name": i.get("name", ""),
                "target": i.get("target", ""),
                "criteria": i.get("criteria_headline", ""),
                "assurance": i.get("assurance_headline", ""),
            }
            for i in content.get("indicators", [])
        ],
        "all_met": (content.get("verdicts") or {}).get("all_met"),
        "met_since": (content.get("verdicts") or {}).get("met_since", ""),
        "risks": content.get("residual_risks", []),
        "learning": (content.get("sections") or {}).get("learning"),
        "actions": content.get("actions_summary") or {},
        "override_rationale": content.get("override_rationale", ""),
    }
