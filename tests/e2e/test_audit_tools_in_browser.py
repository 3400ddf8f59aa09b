"""Audit tools in the browser: a manager conducts a 10-record "Safeguarding records"
audit on a tablet, the connection drops after record 4 and nothing is lost; one record
is answered by keyboard alone; submitting updates the plan's result and chart. Then
every new page at desktop, tablet and phone sizes, with axe and no sideways scroll."""

import datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from audits.models import Measurement
from audits.tools import services as tool_services
from audits.tools.models import Answer, Audit, AuditRecord
from tests import factories
from tests.audits.tool_helpers import conduct, safeguarding_tool
from tests.e2e.audit_helpers import (
    YES_NO,
    answer_record,
    next_record,
    no_sideways_scroll,
    question,
    start_from_plan,
)
from tests.e2e.helpers import (
    as_user,
    check_accessible,
    fast_password_hashing,  # noqa: F401  (autouse fixture)
    person,
)

pytestmark = pytest.mark.django_db(transaction=True)

INDICATOR = {
    "name": "Safeguarding records meeting the recording standard",
    "measure_type": "proportion",
    "direction": "higher",
    "target": Decimal("90"),
    "unit": "%",
    "frequency": "monthly",
}


def _world():
    oakfield = factories.LocationFactory(name="Oakfield House")
    lead = person("priya", "quality_lead", first="Priya", last="Shah")
    tom = person("tom", "manager", first="Tom", last="Okafor", locations=[oakfield])
    plan = factories.live_plan(
        owner=lead,
        locations=[oakfield],
        title="Poor safeguarding recording",
        opened_on=datetime.date.today() - datetime.timedelta(days=40),
        indicators=[INDICATOR],
    )
    tool = safeguarding_tool(lead)
    tool_services.feed_indicator(
        indicator=plan.indicators.get(), tool=tool, scope="section", key="S2", by=lead
    )
    return oakfield, lead, tom, plan, tool


def _saved(record_position: int, audit: Audit) -> int:
    return (
        Answer.objects.filter(record__audit=audit, record__position=record_position)
        .exclude(value="")
        .count()
    )


def _keyboard_record(page, identifier: str) -> None:
    """Answer a record with the keyboard alone: type, Tab to each question, Space."""
    page.get_by_label("Record identifier").focus()
    page.keyboard.type(identifier)
    answered = 0
    for _ in range(20):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "[document.activeElement.type, document.activeElement.value,"
            " document.activeElement.textContent]"
        )
        if focused[0] == "radio":
            page.keyboard.press("Space")  # the first radio of a group: "Yes"
            answered += 1
        if focused[0] == "submit" and "Save and go" in (focused[2] or ""):
            break
    assert answered == len(YES_NO)
    for key in YES_NO:  # each answer saved as given, before moving on
        expect(question(page, key).locator(".save-status")).to_contain_text("Saved")
    page.keyboard.press("Enter")


def test_a_tablet_audit_survives_a_dropped_connection_and_feeds_the_plan(
    page, live_server, screenshots
):
    a11y: dict = {}
    oakfield, lead, tom, plan, tool = _world()
    page.set_viewport_size({"width": 820, "height": 1180})
    as_user(page, "tom")
    start_from_plan(page, plan, 10)
    audit = Audit.objects.get()
    assert audit.plan == plan and audit.location == oakfield and audit.sample_size == 10
    no_sideways_scroll(page)
    check_accessible(page, "audit record", a11y)
    screenshots(page, "audit-record-tablet")
    for number in range(1, 5):
        answer_record(page, f"Room {number}", noes=("S2.Q1",) if number == 2 else ())
        next_record(page, number + 1)
    assert [_saved(n, audit) for n in range(1, 6)] == [5, 5, 5, 5, 0]

    # The connection drops on record 5: answers are kept on the device, not lost.
    page.context.set_offline(True)
    answer_record(page, "Room 5", wait_saved=False)
    expect(question(page, "S3.Q1").locator(".save-status")).to_contain_text("Not saved yet")
    expect(page.locator("[data-offline-banner]")).to_be_visible()
    screenshots(page, "audit-record-offline")
    assert _saved(5, audit) == 0
    page.get_by_role("button", name="Save and go to record 6").click()  # stays put
    assert page.url.endswith("/records/5/")
    page.context.set_offline(False)
    for key in YES_NO:
        expect(question(page, key).locator(".save-status")).to_contain_text("Saved")
    assert _saved(5, audit) == 5
    assert AuditRecord.objects.get(audit=audit, position=5).identifier == "Room 5"

    # Offline again on record 6, and the tab is closed: reopened, nothing is lost.
    page.goto(page.base + f"/audits/conduct/{audit.pk}/")
    page.wait_for_url("**/records/6/")  # resumes where it stopped
    page.context.set_offline(True)
    answer_record(page, "Room 6", wait_saved=False)
    expect(question(page, "S3.Q1").locator(".save-status")).to_contain_text("Not saved yet")
    page.close()
    page = page.context.new_page()
    page.base = live_server.url
    page.context.set_offline(False)
    page.goto(page.base + f"/audits/conduct/{audit.pk}/")
    page.wait_for_url("**/records/6/")
    for key in YES_NO:
        expect(question(page, key).locator(".save-status")).to_contain_text("Saved")
    assert _saved(6, audit) == 5
    assert AuditRecord.objects.get(audit=audit, position=6).identifier == "Room 6"
    next_record(page, 7)

    # Record 7 by keyboard alone.
    _keyboard_record(page, "Room 7")
    page.wait_for_url("**/records/8/")
    assert _saved(7, audit) == 5
    for number in range(8, 11):
        answer_record(page, f"Room {number}")
        if number < 10:
            next_record(page, number + 1)
    page.get_by_role("button", name="Review scores and submit").click()
    page.wait_for_url("**/review/")
    no_sideways_scroll(page)
    check_accessible(page, "audit review", a11y)
    screenshots(page, "audit-review-tablet")
    expect(page.locator("table.scores tfoot")).to_contain_text("98.0%")  # 49 of 50
    page.get_by_role("button", name="Confirm and submit the audit").click()
    expect(page.get_by_text("Audit submitted.")).to_be_visible()
    no_sideways_scroll(page)
    check_accessible(page, "audit page", a11y)

    # The plan's result and chart: S2 (Recording), 19 of 20 records = 95%.
    m = Measurement.objects.get(indicator__plan=plan)
    assert (m.numerator, m.denominator) == (19, 20)
    page.goto(page.base + plan.get_absolute_url())
    results = page.locator("#audits")
    expect(results.get_by_role("link", name=f"Audit #{audit.pk}")).to_be_visible()
    expect(results).to_contain_text("95.0% (19 of 20)")
    chart = page.locator("#verdicts")
    expect(chart.locator("svg").first).to_be_visible()
    chart.get_by_text("Chart data as a table").first.click()
    expect(chart).to_contain_text("95.0% (19 of 20)")
    no_sideways_scroll(page)
    assert a11y == {}, a11y


PAGES = [
    ("tool-list", lambda w: "/audits/tools/"),
    ("tool-detail", lambda w: f"/audits/tools/{w['tool'].pk}/"),
    ("audit-list", lambda w: "/audits/conduct/"),
    ("audit-start", lambda w: f"/audits/conduct/new/?tool={w['tool'].pk}"),
    ("audit-record", lambda w: f"/audits/conduct/{w['open'].pk}/records/1/"),
    ("audit-review", lambda w: f"/audits/conduct/{w['open'].pk}/review/"),
    ("audit-detail", lambda w: f"/audits/conduct/{w['done'].pk}/"),
    ("audit-correct", lambda w: f"/audits/conduct/{w['done'].pk}/records/1/correct/"),
    ("raise-action", lambda w: f"/audits/conduct/{w['done'].pk}/findings/{w['no'].pk}/action/"),
    ("compliance", lambda w: f"/audits/tools/{w['tool'].pk}/compliance/"),
    ("tool-import", lambda w: "/audits/tools/import/"),
    ("feed-form", lambda w: f"/audits/plans/{w['plan'].reference}/feed/"),
    ("plan-page", lambda w: w["plan"].get_absolute_url()),
]


def test_every_new_page_fits_desktop_tablet_and_phone(page, live_server, screenshots):
    oakfield, lead, tom, plan, tool = _world()
    other = factories.LocationFactory(name="Riverside Court")
    done = conduct(tool, location=oakfield, by=lead, answers=[{"S1.Q1": "no"}, {"S2.Q1": "no"}])
    conduct(tool, location=other, by=lead, answers=[{"S1.Q2": "no"}, {}])
    open_audit = conduct(tool, location=oakfield, by=lead, answers=[{}, {}], submit=False)
    world = {
        "tool": tool,
        "plan": plan,
        "done": done,
        "open": open_audit,
        "no": Answer.objects.filter(record__audit=done, value="no", finding__isnull=True).first(),
    }
    a11y: dict = {}
    as_user(page, "priya")
    for width, height in [(1280, 900), (820, 1180), (390, 844)]:
        page.set_viewport_size({"width": width, "height": height})
        for name, url in PAGES:
            page.goto(page.base + url(world))
            assert "/accounts/login/" not in page.url
            no_sideways_scroll(page)
            screenshots(page, f"{name}-{width}")
            if width == 390:
                check_accessible(page, name, a11y)
    assert a11y == {}, a11y
