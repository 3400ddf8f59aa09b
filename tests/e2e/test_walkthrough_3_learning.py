"""Walkthrough 3 (PRODUCT.md): learning retention.

Every closed plan produces a short learning summary that is shared with managers (who
acknowledge it), integrated into training or supervision (recorded where), and comes
back to leadership meetings on a schedule to test whether it is still relevant. An
inspector can see a line from a past QIP to a current practice expectation.

Set-up (people, the leadership group, the plan's results and its governance closure)
uses the services; every step a person takes is done in the browser."""

import datetime
import re

import pytest
import time_machine

from audits import services as audit_services
from governance import services as governance_services
from learning.models import Acknowledgement, Embedding, LearningReview
from plans.models import Plan
from tests import factories
from tests.e2e.helpers import (
    as_user,
    check_accessible,
    close_through_governance,
    complete_actions,
    emails_to,
    fast_password_hashing,  # noqa: F401  (autouse fixture)
    governance_group,
    log_result,
    moment,
    person,
    run_job,
    success_message,
)

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_AT = moment(2026, 11, 2)  # a Monday
REVIEW_DAY = moment(2027, 2, 3)  # three months and a day after closure

KEY_MESSAGES = "Escalate every safeguarding concern the same day. Record facts, not opinions."


def test_learning_is_shared_acknowledged_embedded_and_reviewed(
    page, live_server, screenshots, mailoutbox
):
    a11y: dict = {}
    with time_machine.travel(CLOSED_AT, tick=True) as traveller:
        today = CLOSED_AT.date()
        oakfield = factories.LocationFactory(name="Oakfield House")
        lead = person("priya", "quality_lead", first="Priya", last="Shah")
        tom = person("tom", "manager", first="Tom", last="Okafor", locations=[oakfield])
        grace = person("grace", "manager", first="Grace", last="Adeyemi", locations=[oakfield])
        chair = person("helen", "governance_member", first="Helen", last="Morris")
        director = person("david", "governance_member", first="David", last="Lee")
        safeguarding = governance_group(name="Safeguarding Governance Group", by=lead, chair=chair)
        leadership = governance_group(name="Leadership Team", by=lead, members=[director])

        # A live plan whose indicator has met its three-month window, with its actions done.
        plan = factories.live_plan(
            owner=lead,
            locations=[oakfield],
            title="Missed escalation of safeguarding concerns",
            opened_on=today - datetime.timedelta(days=150),
        )
        indicator = plan.indicators.get()
        for days_ago in (140, 100, 50, 5):
            log_result(
                plan,
                indicator,
                by=tom,
                on=today - datetime.timedelta(days=days_ago),
                numerator=20,
                denominator=20,
            )
        audit_services.add_evidence(
            plan=plan,
            by=tom,
            fields={
                "kind": "re_audit",
                "title": "Safeguarding records re-audit",
                "occurred_on": today - datetime.timedelta(days=5),
                "description": "20 of 20 records complete.",
            },
        )
        complete_actions(plan, by=lead)

        # 1. The quality lead writes the learning summary from the plan page.
        as_user(page, "priya")
        page.goto(page.base + plan.get_absolute_url())
        page.get_by_role("link", name="Write the learning summary").first.click()
        page.get_by_label("What happened").fill(
            "Three safeguarding concerns at Oakfield House were escalated days late and "
            "recorded as opinion rather than fact."
        )
        page.get_by_label("What changed").fill(
            "A daily safeguarding huddle and a new recording template; re-audits at 100%."
        )
        page.get_by_label("Key messages for staff").fill(KEY_MESSAGES)
        page.get_by_role("button", name="Save summary").click()
        success_message(page, "Learning summary saved.")
        assert page.get_by_role("heading", name="Summary", exact=True).is_visible()
        screenshots(page, "wt3-01-learning-summary")
        check_accessible(page, "learning detail", a11y)

        # The plan closes through governance (walkthrough 1 drives this in the browser).
        close_through_governance(plan, lead=lead, chair=chair, group=safeguarding, on=today)
        plan.refresh_from_db()
        assert plan.status == Plan.Status.CLOSED

        # 2. The quality lead shares the learning with Oakfield's managers.
        page.goto(page.base + f"/learning/{plan.reference}/")
        page.get_by_role("link", name="Share with managers").click()
        assert page.get_by_label("Oakfield House").is_checked()
        check_accessible(page, "share learning", a11y)
        page.get_by_role("button", name="Share and ask for acknowledgement").click()
        success_message(page, "Shared with 2 managers")
        for address in (tom.email, grace.email):
            sent = emails_to(address, f"Please read: learning from {plan.reference}")
            assert len(sent) == 1, address
        assert KEY_MESSAGES in emails_to(tom.email, "Please read")[0].body

        # 3. Tom reads it from "Learning to read" and acknowledges it.
        as_user(page, "tom")
        page.get_by_role("link", name="Learning", exact=True).click()
        page.get_by_role("link", name="Learning to read").click()
        assert page.get_by_text("1 piece of learning is waiting for you").is_visible()
        assert page.get_by_text(KEY_MESSAGES).is_visible()
        screenshots(page, "wt3-02-learning-to-read")
        check_accessible(page, "learning to read", a11y)
        page.get_by_role("button", name=re.compile(f"I have read this.*{plan.reference}")).click()
        success_message(page, f"learning from {plan.reference} acknowledged")
        assert page.get_by_text("You are up to date").is_visible()
        ack = Acknowledgement.objects.get(manager=tom)
        assert ack.acknowledged_at is not None
        assert Acknowledgement.objects.get(manager=grace).acknowledged_at is None

        # 4. Tom records where the learning now lives: induction and supervision.
        page.goto(page.base + f"/learning/{plan.reference}/")
        for kind, note in [
            ("Induction", "Added to day-one induction: the escalation route and template."),
            ("Supervision framework", "Standing supervision question on recent concerns."),
        ]:
            page.get_by_role("link", name="Record embedding").click()
            page.get_by_label(kind, exact=True).check()
            page.get_by_label("Note (optional)").fill(note)
            if kind == "Induction":
                check_accessible(page, "record embedding", a11y)
            page.get_by_role("button", name="Save").click()
            success_message(page, "Recorded where the learning is embedded.")
        embedded = page.locator("#embedding")
        assert embedded.get_by_role("cell", name="Induction", exact=True).is_visible()
        assert embedded.get_by_role("cell", name="Supervision framework", exact=True).is_visible()
        assert Embedding.objects.filter(summary__plan=plan, status="done").count() == 2
        screenshots(page, "wt3-03-embedded")

        # 5. Three months after closure the learning comes back for review.
        traveller.move_to(REVIEW_DAY)
        review_day = REVIEW_DAY.date()
        meeting = governance_services.schedule_meeting(
            group=leadership, held_on=review_day + datetime.timedelta(days=2), by=lead
        )
        run_job("learning_review_schedule")
        run_job("learning_review_schedule")  # a doubled tick sends nothing twice
        review = LearningReview.objects.get(summary__plan=plan)
        assert review.months_after_closure == 3
        assert review.due_on == datetime.date(2027, 2, 2)
        due_emails = emails_to(lead.email, f"Learning review due: {plan.reference}")
        assert len(due_emails) == 1

        #    The quality lead puts it on the Leadership Team's agenda.
        as_user(page, "priya")
        page.get_by_role("link", name="Learning", exact=True).click()
        page.get_by_role("link", name="Reviews due").click()
        assert page.get_by_role("cell", name="3 months after closure").is_visible()
        screenshots(page, "wt3-04-reviews-due")
        check_accessible(page, "reviews due", a11y)
        page.get_by_role("link", name=re.compile(f"Record outcome.*{plan.reference}")).click()
        page.get_by_label("Meeting", exact=True).select_option(label=str(meeting))
        page.get_by_role("button", name="Save agenda").click()
        success_message(page, f"On the agenda of {meeting}.")

        #    At the meeting, David (leadership) records that it still holds.
        traveller.move_to(REVIEW_DAY + datetime.timedelta(days=2))
        as_user(page, "david")
        page.goto(page.base + "/learning/reviews/")
        assert page.get_by_text(str(meeting)).first.is_visible()
        page.get_by_role("link", name=re.compile(f"Record outcome.*{plan.reference}")).click()
        check_accessible(page, "relevance review", a11y)
        page.get_by_label("Still relevant").check()
        page.get_by_label("Reviewed at meeting").select_option(label=str(meeting))
        page.get_by_label("Notes or reason").fill(
            "Two concerns since closure, both escalated within 24 hours."
        )
        screenshots(page, "wt3-05-review-form")
        page.get_by_role("button", name="Record outcome").click()
        success_message(page, "Review outcome recorded.")
        review.refresh_from_db()
        assert review.outcome == "still_relevant"
        assert review.reviewed_by == director and review.meeting == meeting
        reviews = page.locator("#reviews")
        assert reviews.get_by_text("Still relevant").is_visible()
        assert reviews.get_by_text(f"at {meeting}").is_visible()

        # 6. The library entry: the line from the past QIP to current practice.
        as_user(page, "priya")
        page.goto(page.base + "/learning/")
        page.get_by_role("searchbox", name="Search").fill(plan.reference)
        page.get_by_role("button", name="Apply filters").click()
        entry = page.locator("article").filter(has_text=plan.reference)
        assert entry.count() == 1
        text = " ".join(entry.inner_text().split())
        assert f"{plan.reference} {plan.title}" in text
        assert KEY_MESSAGES in text
        assert "Induction (" in text and "Supervision framework (" in text
        assert "3 months: still relevant" in text
        assert "1 acknowledgement outstanding" in text  # Grace has not read it yet
        screenshots(page, "wt3-06-library")
        check_accessible(page, "learning library", a11y)

    assert a11y == {}, a11y
