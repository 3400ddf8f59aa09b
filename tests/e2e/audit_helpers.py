"""Conducting an audit in the browser, as a manager would: shared by the audit tool
walkthrough and walkthrough 1."""

from __future__ import annotations

from playwright.sync_api import expect

YES_NO = ["S1.Q1", "S1.Q2", "S2.Q1", "S2.Q2", "S3.Q1"]  # the Safeguarding records tool


def no_sideways_scroll(page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} scrolls sideways at {width[1]} px: {width[0]} px"


def question(page, key: str):
    return page.locator("fieldset.audit-question", has_text=key)


def answer_record(page, identifier: str, noes=(), *, wait_saved: bool = True) -> None:
    """Give the record its identifier and answer every yes/no question (yes unless the
    key is in ``noes``), by clicking, as on a tablet."""
    box = page.get_by_label("Record identifier")
    box.fill(identifier)
    box.dispatch_event("change")
    for key in YES_NO:
        question(page, key).get_by_text("No" if key in noes else "Yes", exact=True).click()
    if wait_saved:
        expect(page.locator("#st-identifier")).to_contain_text("Saved")
        for key in YES_NO:
            expect(question(page, key).locator(".save-status")).to_contain_text("Saved")


def start_from_plan(page, plan, sample: int) -> None:
    """From the plan's re-audit schedule, the pre-filled start form."""
    page.goto(page.base + plan.get_absolute_url())
    page.locator("#audits").get_by_role("link", name="Conduct the audit").first.click()
    expect(page.get_by_label("Audit tool")).to_have_value(str(_selected(page, "Audit tool")))
    page.get_by_label("How many records will you audit?").fill(str(sample))
    page.get_by_role("button", name="Start the audit").click()
    page.wait_for_url("**/records/1/")


def _selected(page, label: str) -> str:
    return page.get_by_label(label).input_value()


def next_record(page, number: int) -> None:
    page.get_by_role("button", name=f"Save and go to record {number}").click()
    page.wait_for_url(f"**/records/{number}/")


def review_and_submit(page) -> None:
    page.get_by_role("button", name="Review scores and submit").click()
    page.wait_for_url("**/review/")
    expect(page.get_by_role("rowheader", name="Overall")).to_be_visible()
    page.get_by_role("button", name="Confirm and submit the audit").click()
    expect(page.get_by_text("Audit submitted.")).to_be_visible()


def conduct_in_browser(page, plan, records: list[tuple[str, tuple[str, ...]]]) -> None:
    """The whole audit from the plan page: one (identifier, noes) per record."""
    start_from_plan(page, plan, len(records))
    for number, (identifier, noes) in enumerate(records, start=1):
        answer_record(page, identifier, noes)
        if number < len(records):
            next_record(page, number + 1)
    review_and_submit(page)
