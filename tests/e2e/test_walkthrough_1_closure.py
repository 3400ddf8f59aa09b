"""Walkthrough 1 (PRODUCT.md): a safeguarding QIP closed after sustained improvement.

Opened after alerts about missed escalation and poor recording, with closure criteria
agreed at the outset (escalation timeliness, recording quality, repeat alerts; three
months sustained; sign-off by the Safeguarding Governance Group). The quality lead feeds
the two re-audit indicators from the "Safeguarding records" audit tool; the manager
conducts that audit at two intervals, record by record, and logs an incident panel
outcome and supervision evidence; the
system says when the window has elapsed with every indicator on target and emails the
quality lead; the quality lead compiles and submits the closure report; the chair signs
(password re-entered, two-step verification); the plan closes.

Set-up (people, the group, the plan as opened, the passage of time, the scheduled
sweep) uses factories and services; every step a person takes is in the browser."""

import datetime
import hashlib
import re
import shutil
import subprocess  # nosec B404 - runs pdftotext on a PDF the test downloaded
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from audits.models import Measurement
from governance import services as governance_services
from governance.models import ClosureReport, Decision
from plans.models import Plan
from tests import factories
from tests.audits.tool_helpers import safeguarding_tool
from tests.e2e.audit_helpers import conduct_in_browser
from tests.e2e.helpers import (
    as_user,
    both_sizes,
    check_accessible,
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


def pdf_text(data: bytes) -> str | None:
    """The PDF's text, if poppler's pdftotext is installed."""
    binary = shutil.which("pdftotext")
    if binary is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        return subprocess.run(  # nosec B603 - fixed binary, a file the test wrote
            [binary, "-layout", handle.name, "-"], capture_output=True, check=True, text=True
        ).stdout


OPENED = moment(2026, 5, 4)  # the plan opened after the alerts
FIRST_REAUDIT = moment(2026, 5, 11)
SECOND_REAUDIT = moment(2026, 8, 12)  # three months and a day later

INDICATORS = [
    {
        "name": "Concerns escalated within 24 hours",
        "measure_type": "proportion",
        "direction": "higher",
        "target": Decimal("95"),
        "unit": "%",
        "frequency": "monthly",
    },
    {
        "name": "Safeguarding records meeting the recording standard",
        "measure_type": "proportion",
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
]


def _log(page, plan, indicator: str, *, numerator=None, denominator=None, value=None, source=None):
    """The manager's "log one result" form, from the plan page."""
    page.goto(page.base + plan.get_absolute_url())
    page.locator("#audits").get_by_role("link", name="Log one result").click()
    page.get_by_label("Indicator").select_option(label=indicator)
    if numerator is not None:
        page.get_by_label("Met the standard").fill(str(numerator))
        page.get_by_label("Checked").fill(str(denominator))
    else:
        page.get_by_label("Value").fill(str(value))
    if source:
        page.get_by_label("Where the result came from").select_option(label=source)
    page.get_by_role("button", name="Save result").click()
    success_message(page, f"Result logged for “{indicator}”")


def _evidence(page, plan, kind: str, title: str, description: str):
    page.goto(page.base + plan.get_absolute_url())
    page.locator("#evidence").get_by_role("link", name="Add evidence").click()
    page.get_by_label("Kind").select_option(label=kind)
    page.get_by_label("Title").fill(title)
    # The server's (travelled) date, not the browser's.
    page.get_by_label("Date").fill(timezone.localdate().isoformat())
    page.get_by_label("Description").fill(description)
    page.get_by_role("button", name="Add evidence").click()
    page.wait_for_load_state()
    assert "/evidence/new/" not in page.url, f"evidence {title!r} was not saved"


def test_safeguarding_plan_closes_after_sustained_improvement(
    page, live_server, screenshots, mailoutbox
):
    a11y: dict = {}
    with time_machine.travel(OPENED, tick=True) as traveller:
        oakfield = factories.LocationFactory(name="Oakfield House")
        lead = person("priya", "quality_lead", first="Priya", last="Shah")
        tom = person("tom", "manager", first="Tom", last="Okafor", locations=[oakfield])
        helen = person("helen", "governance_member", first="Helen", last="Morris")
        device = totp_device(helen)
        group = governance_group(name="Safeguarding Governance Group", by=lead, chair=helen)
        plan = factories.live_plan(
            owner=lead,
            locations=[oakfield],
            title="Missed escalation and poor safeguarding recording",
            opened_on=OPENED.date(),
            indicators=INDICATORS,
            criteria={
                "success_in_practice": "Every concern escalated within 24 hours and "
                "recorded factually; no repeat alerts.",
                "sustain_months": 3,
                "min_reaudits": 2,
                "required_evidence": ["re_audit", "incident_panel", "supervision"],
                "sign_off_level": 3,
            },
            actions=[
                {
                    "description": "Safeguarding escalation refresher for every shift lead",
                    "owner": tom,
                    "due_date": OPENED.date() + datetime.timedelta(days=30),
                    "status": "open",
                    "completion_note": "",
                }
            ],
        )
        assert plan.status == Plan.Status.LIVE and plan.criteria.is_locked

        # 0. Priya feeds the two re-audit indicators from the "Safeguarding records" tool:
        #    escalation from its question S1.Q1, recording from its section S2.
        safeguarding_tool(lead)
        as_user(page, "priya")
        for indicator, scope, key in [
            (INDICATORS[0]["name"], "One question's compliance", "S1.Q1"),
            (INDICATORS[1]["name"], "A section's score", "S2"),
        ]:
            page.goto(page.base + plan.get_absolute_url())
            page.locator("#audits").get_by_role("link", name="Feed from an audit tool").click()
            page.get_by_label("Indicator").select_option(label=indicator)
            page.get_by_label("Audit tool").select_option(label="Safeguarding records")
            page.get_by_label("Fed by").select_option(label=scope)
            page.get_by_label("Question or section").fill(key)
            page.get_by_role("button", name="Save").click()
            success_message(page, f"“{indicator}” is now fed by Safeguarding records.")

        # 1. First re-audit interval: Tom conducts the audit of 10 records from the plan
        #    page (two records fall short on recording: 18 of 20 answers), and logs the
        #    panel outcome and evidence.
        traveller.move_to(FIRST_REAUDIT)
        as_user(page, "tom")
        records = [(f"Room {n}", ("S2.Q1",) if n in (3, 7) else ()) for n in range(1, 11)]
        conduct_in_browser(page, plan, records)
        screenshots(page, "wt1-01-audit-submitted")
        check_accessible(page, "audit page", a11y)
        escalation, recording = (plan.indicators.get(name=i["name"]) for i in INDICATORS[:2])
        assert [(m.numerator, m.denominator) for m in escalation.measurements.all()] == [(10, 10)]
        assert [(m.numerator, m.denominator) for m in recording.measurements.all()] == [(18, 20)]
        page.goto(page.base + plan.get_absolute_url())
        page.locator("#audits").get_by_role("link", name="Log a re-audit").click()
        check_accessible(page, "log a re-audit", a11y)
        #    A mistake on the one-form re-audit is named at the top, with a link to its
        #    field; nothing is saved.
        first = page.get_by_role("group", name=re.compile(INDICATORS[0]["name"]))
        first.get_by_label("Met the standard").fill("21")
        first.get_by_label("Checked").fill("20")
        page.get_by_role("button", name="Save the audit").click()
        summary = page.locator("[data-error-summary]")
        assert "met the standard: 21 met the standard but only 20" in summary.inner_text()
        check_accessible(page, "log a re-audit (errors)", a11y)
        both_sizes(page, screenshots, "wt1-01-log-reaudit-errors")
        assert Measurement.objects.filter(indicator__plan=plan).count() == 2
        _log(page, plan, INDICATORS[2]["name"], value=0, source="Incident panel")
        _evidence(
            page, plan, "Re-audit", "Safeguarding records re-audit (May)", "20 records checked."
        )
        assert Measurement.objects.filter(indicator__plan=plan).count() == 3
        assert plan.evidence_items.filter(title="Safeguarding records re-audit (May)").exists()
        check_accessible(page, "plan page (live)", a11y)

        #    Tom notes on the chart when the new checklist came in.
        page.locator("#verdicts").get_by_role(
            "link", name=f"Add a note to the chart of {INDICATORS[0]['name']}"
        ).click()
        page.get_by_label("Date").fill("06/05/2026")
        page.get_by_label("Kind of note").select_option(label="Process change")
        page.get_by_role("textbox", name="Note").fill("New escalation checklist introduced")
        check_accessible(page, "add a note to a chart", a11y)
        both_sizes(page, screenshots, "wt1-01a-note-form")
        page.get_by_role("button", name="Add note").click()
        success_message(page, "Note added to the chart")
        chart = page.locator("#verdicts article").first
        assert chart.locator("svg.qip-chart g.qip-note").count() == 1
        assert "Note 1: 6 May 2026, Process change: New escalation checklist introduced" in (
            chart.locator("svg.qip-chart g.qip-note title").text_content()
        )
        assert (
            chart.get_by_role("list", name="Notes on this chart")
            .get_by_text("New escalation checklist introduced")
            .is_visible()
        )
        check_accessible(page, "plan page (annotated chart)", a11y)
        both_sizes(page, screenshots, "wt1-01b-annotated-chart")
        # Tom completes the refresher action.
        page.get_by_role("link", name=re.compile(r"Edit.*action 1")).click()
        page.get_by_label("Status").select_option(label="Completed")
        page.get_by_label("Completed on").fill("09/05/2026")  # typed as day/month/year
        page.get_by_label("What was done").fill("Delivered to all 14 shift leads on 9 May.")
        page.get_by_role("button", name="Save action").click()
        page.wait_for_load_state()
        success_message(page, "Action saved.")
        assert plan.actions.get().completed_on == datetime.date(2026, 5, 9)

        #    Not met yet: the window has started but not elapsed.
        page.goto(page.base + plan.get_absolute_url())
        assert page.get_by_text(re.compile(r"Window started 11 May 2026")).first.is_visible()
        run_job("audits_ready_for_review")
        assert emails_to(lead.email, "has met its sustain window") == []

        # 2. Second interval, three months on: re-audits, panel outcome, supervision.
        traveller.move_to(SECOND_REAUDIT)
        as_user(page, "tom")
        records = [(f"Room {n}", ("S2.Q2",) if n == 14 else ()) for n in range(11, 21)]
        conduct_in_browser(page, plan, records)
        assert [(m.numerator, m.denominator) for m in recording.measurements.all()] == [
            (19, 20),
            (18, 20),
        ]
        _log(page, plan, INDICATORS[2]["name"], value=0, source="Incident panel")
        _evidence(
            page,
            plan,
            "Re-audit",
            "Safeguarding records re-audit (August)",
            "Audit tool: 19 of 20 recording answers met the standard.",
        )
        _evidence(
            page,
            plan,
            "Incident panel outcome",
            "Incident panel, July",
            "No repeat alerts; two concerns escalated the same day.",
        )
        _evidence(
            page,
            plan,
            "Supervision record",
            "Supervision audit of shift leads",
            "Every supervision since June discussed recent concerns.",
        )

        #    The plan page shows every criterion met.
        page.goto(page.base + plan.get_absolute_url())
        for indicator in INDICATORS:
            assert page.get_by_text(indicator["name"]).first.is_visible()
        assert page.get_by_text(re.compile(r"Criteria met since 12 Aug 2026")).count() >= 3
        assert page.get_by_text(re.compile(r"Window started|Not met")).count() == 0
        screenshots(page, "wt1-02-criteria-met")

        # 3. The evidence that completed the plan announced it at once: the quality lead
        #    has the email before any sweep runs, and the page says "ready".
        ready = emails_to(lead.email, f"{plan.reference}: ready for closure review")
        assert len(ready) == 1
        assert page.get_by_text("Ready for closure review.").is_visible()
        #    The nightly sweep is only the safety net: it sends nothing more.
        run_job("audits_ready_for_review")
        run_job("audits_ready_for_review")
        ready = emails_to(lead.email, f"{plan.reference}: ready for closure review")
        assert len(ready) == 1

        # 4. Priya writes the learning summary, compiles and submits the closure report.
        as_user(page, "priya")
        page.goto(page.base + plan.get_absolute_url())
        page.get_by_role("link", name="Write the learning summary").first.click()
        page.get_by_label("What happened").fill("Concerns were escalated late and recorded poorly.")
        page.get_by_label("What changed").fill("Daily huddle, recording template, supervision.")
        page.get_by_label("Key messages for staff").fill("Escalate the same day; record facts.")
        page.get_by_role("button", name="Save summary").click()
        success_message(page, "Learning summary saved.")
        page.goto(page.base + plan.get_absolute_url())
        page.get_by_role("link", name="Prepare closure report").click()
        page.get_by_role("textbox", name="Residual risk").fill(
            "Agency staff may not know the escalation route."
        )
        page.get_by_role("textbox", name="How it is monitored").fill(
            "Monthly spot check of agency inductions."
        )
        page.get_by_role("button", name="Add residual risk").click()
        success_message(page, "Residual risk recorded.")
        assert page.get_by_text("Before this can be submitted").count() == 0
        both_sizes(page, screenshots, "wt1-03-closure-report")
        check_accessible(page, "closure report (live)", a11y)
        page.get_by_label("Governance group that will decide").select_option(label=group.name)
        page.get_by_role("button", name="Freeze and submit").click()
        success_message(page, f"Closure report frozen and put to {group.name}")
        plan.refresh_from_db()
        assert plan.status == Plan.Status.CLOSURE_REVIEW
        report = ClosureReport.objects.get(plan=plan)
        assert len(report.sha256) == 64
        assert emails_to(helen.email), "the chair is told a report awaits the group"
        check_accessible(page, "closure report (frozen)", a11y)

        # 5. At the meeting, Helen (chair, two-step verification) signs the closure.
        meeting = governance_services.schedule_meeting(
            group=group,
            held_on=SECOND_REAUDIT.date() + datetime.timedelta(days=7),
            by=lead,
            attendees=[helen],
        )
        traveller.move_to(SECOND_REAUDIT + datetime.timedelta(days=7))
        as_user(page, "helen", device)
        page.get_by_role("link", name="Governance", exact=True).click()
        check_accessible(page, "governance home", a11y)
        # Only a meeting with the report on its agenda is offered: Helen tables it.
        page.goto(page.base + report.get_absolute_url())
        page.get_by_role("link", name="Record and sign the decision").click()
        assert page.get_by_text("put the report on its agenda").is_visible()
        page.goto(page.base + meeting.get_absolute_url())
        page.get_by_label("Closure report").select_option(value=str(report.pk))
        page.get_by_role("button", name="Add to agenda").click()
        success_message(page, "Added to the agenda.")
        page.goto(page.base + report.get_absolute_url())
        page.get_by_role("link", name="Record and sign the decision").click()
        # The chair signs what they can see: the report's verdicts, risks and learning.
        summary = page.locator("section", has_text="What you are signing on")
        assert summary.get_by_text(INDICATORS[0]["name"]).is_visible()
        assert summary.get_by_text("Agency staff", exact=False).first.is_visible()
        assert summary.get_by_role("heading", name="Where learning is embedded").is_visible()
        page.get_by_label("Close", exact=True).check()
        page.get_by_role("combobox", name="Meeting").select_option(value=str(meeting.pk))
        page.get_by_label("I confirm the statement above.").check()
        page.get_by_label("Your password").fill("not my password")
        page.get_by_label("Code from your authenticator app").fill(totp_code(device))
        page.get_by_role("button", name="Sign the decision").click()
        assert page.get_by_text(
            "The password or the code was not right. Nothing was signed."
        ).is_visible()
        assert not Decision.objects.exists()
        page.get_by_label("Close", exact=True).check()
        page.get_by_label("I confirm the statement above.").check()
        page.get_by_label("Your password").fill(factories.PASSWORD)
        # A fresh code: the app shows the next one half a minute later.
        traveller.shift(datetime.timedelta(seconds=31))
        page.get_by_label("Code from your authenticator app").fill(totp_code(device))
        screenshots(page, "wt1-04-sign")
        check_accessible(page, "sign the decision", a11y)
        page.get_by_role("button", name="Sign the decision").click()
        success_message(page, f"Decision signed: close ({plan.reference})")
        screenshots(page, "wt1-05-signed")
        # "Download PDF" of the decided report is now the signed record.
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the signed record (PDF)").click()
        signed = Path(download.value.path()).read_bytes()
        decision = Decision.objects.get()
        assert hashlib.sha256(signed).hexdigest() == decision.record_sha256
        text = pdf_text(signed)
        if text is not None:
            for expected in ("Decision: Close", decision.signature_meaning, str(helen)):
                assert expected in " ".join(text.split()), expected
            assert decision.snapshot_sha256 in text.replace("\n", "").replace(" ", "")

        # 6. The plan is closed; its evidence and learning stay with it.
        plan.refresh_from_db()
        assert plan.status == Plan.Status.CLOSED
        decision = Decision.objects.get()
        assert decision.signed_by == helen and decision.snapshot_sha256 == report.sha256
        assert emails_to(lead.email, f"{plan.reference}: close")
        page.goto(page.base + plan.get_absolute_url())
        assert page.get_by_text("Closed", exact=True).first.is_visible()
        assert page.locator("#evidence").get_by_text("Incident panel, July").is_visible()
        screenshots(page, "wt1-06-plan-closed")
        check_accessible(page, "plan page (closed)", a11y)

    assert a11y == {}, a11y


# SPC.md TV-16: a stable year and a quarter imported from the previous register, then a
# sustained improvement after the new escalation checklist.
BASELINE = [68, 72, 65, 71, 74, 69, 66, 73, 70, 67, 72, 68, 75, 69, 71]
IMPROVED = [84, 86, 89, 87, 90, 88, 91, 86, 89, 92, 88, 90, 87, 89, 91]
SCORE = "Safeguarding record quality score"


def test_quality_lead_recalculates_limits_after_the_checklist_and_reads_the_icons(
    page, live_server, screenshots
):
    """Item 12 and 13 of the journeys: the quality lead sees the variation and assurance
    icons, is refused a recalculation the rules do not allow (with the reason), makes
    one they do, and the chart, verdicts, icons and register follow it."""
    a11y: dict = {}
    start = datetime.date(2023, 1, 5)
    dates = [start + datetime.timedelta(days=30 * i) for i in range(30)]
    with time_machine.travel(moment(2025, 6, 2), tick=True):
        oakfield = factories.LocationFactory(name="Oakfield House")
        lead = person("priya", "quality_lead", first="Priya", last="Shah")
        plan = factories.live_plan(
            owner=lead,
            locations=[oakfield],
            title="Safeguarding records quality",
            opened_on=dates[15],
            indicators=[
                {
                    "name": SCORE,
                    "measure_type": "score",
                    "direction": "higher",
                    "target": Decimal("80"),
                    "unit": "",
                    "frequency": "monthly",
                }
            ],
        )
        indicator = plan.indicators.get()
        for on, value in zip(dates, BASELINE + IMPROVED, strict=True):
            log_result(plan, indicator, by=lead, on=on, value=Decimal(value))

        as_user(page, "priya")
        page.goto(page.base + plan.get_absolute_url())
        article = page.locator("#verdicts article").first
        assert article.get_by_role("img", name=re.compile("special cause improvement")).count()
        assert article.get_by_text("Target hit or miss").is_visible()

        # Too late a start: the new phase would be too short. Refused, with the reason.
        article.get_by_role("link", name=f"Recalculate limits of {SCORE}").click()
        check_accessible(page, "recalculate limits", a11y)
        page.get_by_label("First result of the new phase").select_option(
            value=dates[20].isoformat()
        )
        page.get_by_label("What changed in the process").fill(
            "New escalation checklist in use on every shift."
        )
        page.get_by_role("button", name="Recalculate limits").click()
        summary = page.locator("[data-error-summary]")
        assert "needs at least 12" in summary.inner_text()
        check_accessible(page, "recalculate limits (refused)", a11y)
        both_sizes(page, screenshots, "wt1-07-recalculate-refused")

        # From the first result of the shift: allowed.
        page.get_by_label("First result of the new phase").select_option(
            value=dates[15].isoformat()
        )
        page.get_by_label("What changed in the process").fill(
            "New escalation checklist in use on every shift."
        )
        page.get_by_role("button", name="Recalculate limits").click()
        success_message(page, f"Limits of “{SCORE}” recalculated from")
        article = page.locator("#verdicts article").first
        assert "Limits recalculated" in article.locator("svg.qip-chart").first.text_content()
        assert article.get_by_text(
            "Limits recalculated from this result on: New escalation checklist"
        ).is_visible()
        assert article.get_by_text("Target consistently passed").is_visible()
        assert article.get_by_role(
            "img", name=re.compile("Assurance: the target will be consistently passed")
        ).count()
        check_accessible(page, "plan page (recalculated limits)", a11y)
        both_sizes(page, screenshots, "wt1-08-recalculated")

        # The register shows the same icons in a plan's detail, on hover.
        page.get_by_role("link", name="Plans", exact=True).first.click()
        peek = page.locator("[data-peek]").first
        button = peek.get_by_role("button", name=re.compile("Icons"))
        panel = peek.locator("[data-peek-panel]")
        peek.hover()
        panel.get_by_text("Target consistently passed").wait_for()
        assert button.get_attribute("aria-expanded") == "true"
        page.keyboard.press("Escape")  # dismissed without moving the pointer
        assert panel.is_hidden() and button.get_attribute("aria-expanded") == "false"
        # From the keyboard: the button opens it and keeps it open.
        button.focus()
        page.keyboard.press("Enter")
        panel.get_by_text("Common cause variation; target consistently passed.").wait_for()
        check_accessible(page, "register (detail open)", a11y)
        both_sizes(page, screenshots, "wt1-09-register-detail")

    assert a11y == {}, a11y
