"""Timelines tell when things happened, in local time (Europe/London), and are sorted by
it: a plan opened on a past day shows as opened then, with the time it was entered
beside it; results logged appear; a review recorded at 14:41 says 14:41."""

import datetime
import re
from zoneinfo import ZoneInfo

import time_machine
from django.utils import timezone

from learning import services as learning
from learning import sweeps
from learning.models import LearningReview
from qip_portal.packs import evidence_pack
from qip_portal.pages.timeline import plan_timeline
from tests import factories
from tests.audits.factories import measure
from tests.learning.helpers import close_plan, write_summary

LONDON = ZoneInfo("Europe/London")


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=LONDON)


def _timeline_items(html: str) -> list[str]:
    section = html[html.index('id="timeline-h"') :]
    section = section[: section.index("</ol>")]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", li)).strip() for li in section.split("<li>")[1:]
    ]


def test_a_plan_entered_late_shows_when_it_was_opened_and_when_it_was_entered(
    client, quality_lead, oakfield
):
    # Summer time: 13:41 UTC is 14:41 in London.
    with time_machine.travel(
        datetime.datetime(2026, 7, 1, 13, 41, tzinfo=datetime.UTC), tick=False
    ):
        plan = factories.draft_plan(
            owner=quality_lead, locations=[oakfield], opened_on=datetime.date(2026, 6, 15)
        )
    client.force_login(quality_lead)
    items = _timeline_items(client.get(plan.get_absolute_url()).content.decode())
    opened = next(i for i in items if "opened the plan" in i)
    assert opened.startswith("15 Jun 2026")
    assert "entered 1 Jul 2026, 14:41" in opened
    # Newest first: the criteria, entered with it on 1 July, come above the opening.
    assert items.index(opened) > max(
        i for i, text in enumerate(items) if "closure criteria" in text
    )


def test_results_logged_appear_on_the_plan_page_in_the_order_they_were_measured(
    client, quality_lead, oakfield
):
    today = timezone.localdate()
    plan = factories.live_plan(
        owner=quality_lead, locations=[oakfield], opened_on=today - datetime.timedelta(days=40)
    )
    later = measure(plan, by=quality_lead, on=today - datetime.timedelta(days=10), numerator=20)
    earlier = measure(plan, by=quality_lead, on=today - datetime.timedelta(days=30), numerator=18)
    client.force_login(quality_lead)
    items = _timeline_items(client.get(plan.get_absolute_url()).content.decode())
    texts = [i for i in items if "logged a result" in i]
    assert len(texts) == 2
    assert "“Escalated within 24h”: 100.0% (20 of 20)" in texts[0]  # newest first
    assert "“Escalated within 24h”: 90.0% (18 of 20)" in texts[1]
    assert texts[0].startswith(f"{later.measured_on.day} {later.measured_on:%b %Y}")
    assert f"entered {today.day} {today:%b %Y}" in texts[1]
    assert earlier.measured_on < later.measured_on
    # Measured between the day the plan was opened and today, when it was activated.
    activated = next(i for i, t in enumerate(items) if "to live" in t)
    opened = next(i for i, t in enumerate(items) if "opened the plan" in t)
    assert activated < items.index(texts[0]) < items.index(texts[1]) < opened


def test_plan_timeline_sorts_by_the_day_things_happened_then_by_entry_time(quality_lead, oakfield):
    with time_machine.travel(at(2026, 3, 10, 9, 0), tick=False):
        plan = factories.live_plan(
            owner=quality_lead, locations=[oakfield], opened_on=datetime.date(2026, 3, 1)
        )
    with time_machine.travel(at(2026, 3, 12, 16, 0), tick=False):
        measure(plan, by=quality_lead, on=datetime.date(2026, 3, 2))
    entries = plan_timeline(plan)
    days = [e.day for e in entries]
    assert days == sorted(days, reverse=True)
    texts = [e.text for e in entries]
    assert texts.index(
        "logged a result for “Escalated within 24h”: 95.0% (19 of 20)"
    ) < texts.index("opened the plan")
    result = next(e for e in entries if e.text.startswith("logged a result"))
    assert result.backdated and timezone.localtime(result.when).hour == 16


def test_the_evidence_pack_timeline_shows_the_time_a_review_was_recorded(
    quality_lead, governance_member, oakfield
):
    with time_machine.travel(at(2026, 1, 10, 9, 0), tick=False):
        plan = factories.live_plan(owner=quality_lead, locations=[oakfield])
        summary = write_summary(plan, by=quality_lead)
        close_plan(plan, by=quality_lead, when=at(2026, 1, 15, 16))
    sweeps.schedule_due_reviews(datetime.date(2026, 4, 15))
    review = LearningReview.objects.get()
    with time_machine.travel(at(2026, 4, 20, 13, 5), tick=False):
        learning.record_embedding(
            summary=summary,
            by=quality_lead,
            kind="induction",
            embedded_on=datetime.date(2026, 4, 20),
            who="Training team",
            note="In day-one induction.",
        )
    with time_machine.travel(at(2026, 4, 20, 14, 41), tick=False):
        learning.record_review(review=review, by=governance_member, outcome="still_relevant")
    html = evidence_pack.render_plan_pack_html(evidence_pack.compile_plan_pack(plan))
    timeline = html[html.index('id="s-timeline"') :]
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)) for r in timeline.split("<tr>")[2:]]
    review_row = next(r for r in rows if "relevance review" in r)
    assert "20 Apr 2026, 14:41" in review_row and "12:00" not in review_row
    embedded_row = next(r for r in rows if "embedded in induction" in r)
    assert "20 Apr 2026, 13:05" in embedded_row
    assert rows.index(embedded_row) < rows.index(review_row)  # oldest first
