"""Walkthrough 2 (PRODUCT.md): a care-planning QIP stepped down into routine monitoring.

Improvement is delivered, but the governance decision is to step down instead of
close, with a floor, for six months. Managers keep logging audits; the first result
below the floor is escalated by email at once and the plan is re-opened with one
action. Separately, six months without deterioration put the plan forward for final
closure.

Set-up (people, the group, the plan's sustained results, its learning summary and the
submitted closure report) uses the services; the decision, the audits, the re-opening
and the final submission are done in the browser."""

import datetime
import re
from decimal import Decimal

import pytest
import time_machine

from audits import services as audit_services
from audits.models import Deterioration, MonitoringPeriod
from governance import services as governance_services
from governance.models import ClosureReport, Decision
from learning import services as learning_services
from plans.models import Plan
from qip_portal import closure
from tests import factories
from tests.e2e.helpers import (
    as_user,
    check_accessible,
    complete_actions,
    emails_to,
    fast_password_hashing,  # noqa: F401  (autouse fixture)
    governance_group,
    log_result,
    moment,
    person,
    run_job,
    success_message,
    totp_code,
    totp_device,
)

pytestmark = pytest.mark.django_db(transaction=True)

OPENED = moment(2026, 1, 5)
DECIDED = moment(2026, 5, 18)  # after four monthly audits on target
FLOOR = "85"
INDICATOR = "Care plans reviewed monthly and signed by the person"


def _stepped_down(page, screenshots, a11y: dict, traveller):
    """A care-planning plan whose criteria are met and whose closure report awaits the
    Quality & Safety Committee; its chair signs a step-down in the browser."""
    oakfield = factories.LocationFactory(name="Oakfield House")
    lead = person("priya", "quality_lead", first="Priya", last="Shah")
    tom = person("tom", "manager", first="Tom", last="Okafor", locations=[oakfield])
    helen = person("helen", "governance_member", first="Helen", last="Morris")
    device = totp_device(helen)
    group = governance_group(name="Quality and Safety Committee", by=lead, chair=helen)
    plan = factories.live_plan(
        owner=lead,
        locations=[oakfield],
        title="Care plans not reviewed with the person",
        opened_on=OPENED.date(),
        indicators=[
            {
                "name": INDICATOR,
                "measure_type": "proportion",
                "direction": "higher",
                "target": Decimal("90"),
                "unit": "%",
                "frequency": "monthly",
            }
        ],
    )
    indicator = plan.indicators.get()
    # The results come in over four months; the report is submitted the day before
    # the committee meets.
    traveller.move_to(DECIDED - datetime.timedelta(days=1))
    for month in (1, 2, 3, 4):
        log_result(
            plan,
            indicator,
            by=tom,
            on=OPENED.date() + datetime.timedelta(days=31 * month),
            numerator=19 if month % 2 else 39,
            denominator=20 if month % 2 else 40,
        )
    audit_services.add_evidence(
        plan=plan,
        by=tom,
        fields={
            "kind": "re_audit",
            "title": "Care-plan audit",
            "occurred_on": OPENED.date() + datetime.timedelta(days=124),
            "description": "",
        },
    )
    complete_actions(plan, by=lead)
    learning_services.save_summary(
        plan=plan,
        by=lead,
        what_happened="Care plans were not reviewed with the people they describe.",
        what_changed="Monthly review with the person, signed; audited monthly.",
        key_messages="Review every care plan with the person each month and get it signed.",
    )
    governance_services.record_residual_risk(
        plan=plan,
        by=lead,
        description="Drift back to desk-based reviews when staffing is short.",
        monitoring="Care-planning quality is a standing audit theme for six months.",
    )
    report = closure.submit_for_closure(plan=plan, by=lead, group=group)
    meeting = governance_services.schedule_meeting(
        group=group, held_on=DECIDED.date(), by=lead, attendees=[helen]
    )
    governance_services.put_on_agenda(meeting=meeting, report=report, by=lead)

    # The committee decides to step down, with a floor; Helen signs in the browser.
    traveller.move_to(DECIDED)
    as_user(page, "helen", device)
    page.goto(page.base + report.get_absolute_url())
    page.get_by_role("link", name="Record and sign the decision").click()
    # The step-down fields are asked for only when stepping down.
    page.wait_for_load_state()
    step_down_fields = page.locator("#step-down-fields")
    assert step_down_fields.is_hidden()
    page.get_by_label("Close", exact=True).check()
    assert step_down_fields.is_hidden()
    page.get_by_label("Step down into monitoring").check()
    assert step_down_fields.is_visible()
    page.get_by_role("combobox", name="Meeting").select_option(value=str(meeting.pk))
    page.get_by_label("Reasons").fill(
        "Improvement delivered; care-planning quality becomes a standing audit theme."
    )
    page.get_by_label(INDICATOR, exact=True).check()
    page.get_by_label(re.compile("Step down: floor for")).fill(FLOOR)
    page.get_by_label("I confirm the statement above.").check()
    page.get_by_label("Your password").fill(factories.PASSWORD)
    traveller.shift(datetime.timedelta(seconds=31))  # the app's next code
    page.get_by_label("Code from your authenticator app").fill(totp_code(device))
    screenshots(page, "wt2-01-step-down")
    check_accessible(page, "sign a step-down", a11y)
    page.get_by_role("button", name="Sign the decision").click()
    success_message(page, f"Decision signed: step down into monitoring ({plan.reference})")
    plan.refresh_from_db()
    assert plan.status == Plan.Status.MONITORING
    decision = Decision.objects.get()
    assert decision.monitoring_floors == {str(indicator.pk): FLOOR}
    ends_on = decision.monitoring_ends_on
    assert ends_on == datetime.date(2026, 11, 18)  # six months by default
    return plan, indicator, lead, tom, helen, decision


def _at_both_widths(page, screenshots, name: str) -> None:
    """The page as a desktop (1280 x 900) and a phone (390 x 844) show it."""
    before = page.viewport_size
    for width, height, suffix in ((1280, 900, "desktop"), (390, 844, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        screenshots(page, f"{name}-{suffix}")
    page.set_viewport_size(before)


def _monitoring_period(plan, lead, decision) -> MonitoringPeriod:
    """The period the signed step-down opened (it must exist: the product opens it)."""
    return MonitoringPeriod.objects.get(plan=plan)


def test_step_down_decision_opens_the_monitoring_period(page, live_server, screenshots):
    with time_machine.travel(OPENED, tick=True) as traveller:
        plan, indicator, *_ = _stepped_down(page, screenshots, {}, traveller)
        period = MonitoringPeriod.objects.get(plan=plan)
        assert period.is_open and period.ends_on == datetime.date(2026, 11, 18)
        assert period.monitored.get().floor == Decimal(FLOOR)


def test_deterioration_below_the_floor_escalates_at_once_and_the_plan_reopens(
    page, live_server, screenshots, mailoutbox
):
    a11y: dict = {}
    with time_machine.travel(OPENED, tick=True) as traveller:
        plan, indicator, lead, tom, helen, decision = _stepped_down(
            page, screenshots, a11y, traveller
        )
        _monitoring_period(plan, lead, decision)
        # One decision, one email for Priya (she submitted the report and owns the
        # plan): the decision's, with its reasons. Tom, who keeps logging at Oakfield,
        # is told the plan is now in monitoring.
        about_plan = emails_to(lead.email, plan.reference)
        assert [m.subject for m in about_plan if "step down" in m.subject.lower()] == [
            f"{plan.reference}: step down into monitoring (Quality and Safety Committee)"
        ], [m.subject for m in about_plan]
        (told,) = emails_to(tom.email, "step down into monitoring")
        assert "now monitoring" in told.body and "still logged" in told.body
        assert "…" not in told.body

        # A month on, Tom logs the routine audit: 90%, on target and above the floor.
        # The sustained phase froze only four results, too few for process limits
        # (Making Data Count locks limits on 12), so none are drawn or used: this result
        # is not a concern, whatever "limits" four results would have made.
        traveller.move_to(DECIDED + datetime.timedelta(days=30))
        as_user(page, "tom")
        page.goto(page.base + plan.get_absolute_url())
        page.locator("#audits").get_by_role("link", name="Log a re-audit").click()
        page.get_by_label("Met the standard").fill("18")
        page.get_by_label("Checked").fill("20")
        page.get_by_role("button", name="Save the audit").click()
        success_message(page, f"logged: “{INDICATOR}” 90.0%")
        assert emails_to(lead.email, "Deterioration") == []
        assert not Deterioration.objects.exists()
        monitoring = page.locator("#monitoring")
        assert monitoring.get_by_text("too few for process limits (12 needed)").is_visible()
        page.locator("#verdicts").get_by_text("Chart data as a table").click()
        rows = page.locator("#verdicts table tbody tr").all_inner_texts()
        assert rows[-1].startswith("17 Jun 2026") and "to" not in rows[-1].split("Met")[-1]
        screenshots(page, "wt2-02-monitoring")
        _at_both_widths(page, screenshots, "wt2-02-monitoring")
        check_accessible(page, "plan page (monitoring)", a11y)

        # The next month's audit falls below the floor: escalated at once.
        traveller.move_to(DECIDED + datetime.timedelta(days=61))
        mailoutbox.clear()
        as_user(page, "tom")  # a month later: a new session
        page.goto(page.base + plan.get_absolute_url())
        page.locator("#audits").get_by_role("link", name="Log a re-audit").click()
        page.get_by_label("Met the standard").fill("14")
        page.get_by_label("Checked").fill("20")
        page.get_by_role("button", name="Save the audit").click()
        success_message(page, f"logged: “{INDICATOR}” 70.0%")
        escalations = [m for m in mailoutbox if m.subject.startswith("Deterioration:")]
        assert len(escalations) == 1, [m.subject for m in mailoutbox]
        assert {lead.email, helen.email} <= set(escalations[0].to)
        assert plan.reference in escalations[0].subject
        # One result, one email, though it breaks the floor and an SPC rule at once.
        kinds = set(Deterioration.objects.filter(status="open").values_list("kind", flat=True))
        assert "floor" in kinds

        # Priya re-opens the plan with one action.
        as_user(page, "priya")
        page.goto(page.base + plan.get_absolute_url())
        screenshots(page, "wt2-03-deterioration")
        _at_both_widths(page, screenshots, "wt2-03-deterioration")
        page.get_by_role("link", name="Re-open the plan").click()
        check_accessible(page, "re-open", a11y)
        page.get_by_label("Why is the plan being re-opened?").fill(
            "Care-plan reviews fell to 70% in July: staffing gaps at Oakfield."
        )
        page.get_by_role("button", name="Re-open the plan").click()
        success_message(page, f"{plan.reference} is live again.")
        plan.refresh_from_db()
        assert plan.status == Plan.Status.LIVE
        # Told of the re-opening: Tom (Oakfield's manager) and the committee, with the
        # reason whole.
        for address in (tom.email, helen.email):
            (reopened,) = emails_to(address, "re-open")
            assert "staffing gaps at Oakfield" in reopened.body
            assert "…" not in reopened.body
        assert set(Deterioration.objects.values_list("status", flat=True)) == {"acted_on"}
        screenshots(page, "wt2-04-reopened")

    assert a11y == {}, a11y


def test_six_months_without_deterioration_put_the_plan_forward_for_final_closure(
    page, live_server, screenshots, mailoutbox
):
    a11y: dict = {}
    with time_machine.travel(OPENED, tick=True) as traveller:
        plan, indicator, lead, tom, helen, decision = _stepped_down(
            page, screenshots, a11y, traveller
        )
        period = _monitoring_period(plan, lead, decision)
        for month in range(1, 7):  # monthly audits on target throughout
            traveller.move_to(DECIDED + datetime.timedelta(days=30 * month))
            log_result(
                plan,
                indicator,
                by=tom,
                on=(DECIDED + datetime.timedelta(days=30 * month)).date(),
                numerator=19,
                denominator=20,
            )
        assert not Deterioration.objects.exists()
        assert emails_to(lead.email, "Deterioration") == []

        # The day after the period ends, the sweep puts the plan forward.
        traveller.move_to(moment(2026, 11, 19))
        for _ in range(2):
            run_job("audits_monitoring_ended")
            run_job("audits_ready_for_review")
        prompted = emails_to(lead.email, f"{plan.reference}: monitoring ended")
        assert len(prompted) == 1
        period.refresh_from_db()
        assert period.status == MonitoringPeriod.Status.ENDED

        # Priya submits it for final closure from the closure report page.
        as_user(page, "priya")
        page.goto(page.base + plan.get_absolute_url())
        page.get_by_role("link", name="Prepare closure report").click()
        screenshots(page, "wt2-05-final-closure")
        assert page.get_by_role("heading", name="Submit for final closure").is_visible()
        assert page.get_by_text("Before this can be submitted").count() == 0
        screenshots(page, "wt2-05-final-closure")
        check_accessible(page, "closure report (final)", a11y)
        page.get_by_role("button", name="Freeze and submit").click()
        success_message(page, "Closure report frozen and put to Quality and Safety Committee")
        plan.refresh_from_db()
        assert plan.status == Plan.Status.CLOSURE_REVIEW
        assert (
            ClosureReport.objects.filter(plan=plan).latest("submitted_at").transition
            == "submit_for_final_closure"
        )

    assert a11y == {}, a11y


def test_six_months_with_too_few_results_end_without_enough_data_and_the_group_decides(
    page, live_server, screenshots, mailoutbox
):
    """Item 1 of issue #21: a period whose audits stopped does not end "without
    deterioration". It ends "without enough monitoring data", the committee is asked to
    decide, nobody is prompted to put the plan forward for final closure, and Helen
    records the committee's decision in the browser: close, with a rationale."""
    a11y: dict = {}
    with time_machine.travel(OPENED, tick=True) as traveller:
        plan, indicator, lead, tom, helen, decision = _stepped_down(
            page, screenshots, a11y, traveller
        )
        group = decision.report.group
        # Two audits in the first two months, then none.
        for month in (1, 2):
            traveller.move_to(DECIDED + datetime.timedelta(days=30 * month))
            log_result(
                plan,
                indicator,
                by=tom,
                on=(DECIDED + datetime.timedelta(days=30 * month)).date(),
                numerator=19,
                denominator=20,
            )
        traveller.move_to(moment(2026, 11, 19))
        for _ in range(2):
            run_job("audits_monitoring_ended")
            run_job("audits_ready_for_review")
        period = MonitoringPeriod.objects.get(plan=plan)
        assert period.status == MonitoringPeriod.Status.SHORT
        assert emails_to(lead.email, "final closure") == []  # no prompt to close
        asked = emails_to(helen.email, "without enough monitoring data")
        assert len(asked) == 1 and len(emails_to(lead.email, "without enough monitoring")) == 1
        assert "extend the monitoring, or close the plan" in asked[0].body

        # Priya sees why, and that the committee decides; no final-closure step.
        as_user(page, "priya")
        page.goto(page.base + plan.get_absolute_url())
        banner = page.locator("#monitoring-decision-banner")
        assert banner.get_by_text("Monitoring ended without enough monitoring data").is_visible()
        assert banner.get_by_text("a result in 2 of the 5 intervals").is_visible()
        assert page.get_by_role("link", name="Prepare the closure report").count() == 0
        assert page.get_by_role("link", name="Record the group's decision").count() == 0
        screenshots(page, "wt2-06-monitoring-short")
        _at_both_widths(page, screenshots, "wt2-06-monitoring-short")
        check_accessible(page, "plan page (monitoring without enough data)", a11y)

        # The committee meets; Helen records and signs its decision.
        meeting = governance_services.schedule_meeting(
            group=group, held_on=moment(2026, 11, 24).date(), by=lead, attendees=[helen]
        )
        traveller.move_to(moment(2026, 11, 24))
        device = totp_device(helen)
        as_user(page, "helen", device)
        page.goto(page.base + plan.get_absolute_url())
        page.get_by_role("link", name="Record the group's decision").click()
        page.get_by_role("button", name="Sign the decision").click()  # nothing filled in
        summary = page.locator("#error-summary")
        assert summary.get_by_text("Rationale").first.is_visible()
        screenshots(page, "wt2-07-monitoring-decision-errors")
        _at_both_widths(page, screenshots, "wt2-07-monitoring-decision-errors")
        page.get_by_label("Close the plan with a recorded rationale").check()
        page.get_by_role("combobox", name="Meeting").select_option(value=str(meeting.pk))
        rationale = (
            "Oakfield's own monthly care-plan sampling, reported to the committee, held at "
            "95% from July to November; the audit lapse was a rota problem, now fixed."
        )
        page.get_by_role("textbox", name="Rationale").fill(rationale)
        page.get_by_label("Your password").fill(factories.PASSWORD)
        traveller.shift(datetime.timedelta(seconds=31))
        page.get_by_label("Code from your authenticator app").fill(totp_code(device))
        screenshots(page, "wt2-08-monitoring-decision")
        _at_both_widths(page, screenshots, "wt2-08-monitoring-decision")
        check_accessible(page, "monitoring decision", a11y)
        page.get_by_role("button", name="Sign the decision").click()
        success_message(
            page, f"Decision signed: close the plan with a recorded rationale ({plan.reference})"
        )
        plan.refresh_from_db()
        assert plan.status == Plan.Status.CLOSED
        assert plan.history.first().history_user == helen
        period.refresh_from_db()
        assert period.status == MonitoringPeriod.Status.CLOSED_SHORT
        assert rationale in period.outcome_note
        (closed,) = emails_to(lead.email, "close without enough monitoring data")
        assert rationale in " ".join(closed.body.split())
        screenshots(page, "wt2-09-closed-without-enough-data")

    assert a11y == {}, a11y
