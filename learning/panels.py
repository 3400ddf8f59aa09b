"""The "Learning" section of the plan page. Runs a fixed number of queries."""

from __future__ import annotations

from django.utils import timezone

from governance.reports import section
from learning.access import can_share_learning, can_write_learning
from learning.models import LearningSummary
from plans.models import Plan, User


def panel_context(plan: Plan, user: User) -> dict:
    # With who wrote, recorded and reviewed what: the plan page's timeline tells it
    # from these same rows.
    summary = LearningSummary.objects.filter(plan=plan).select_related("created_by").first()
    embeddings, acks, reviews = [], [], []
    if summary is not None:
        embeddings = list(summary.embeddings.select_related("recorded_by"))
        acks = list(summary.acknowledgements.select_related("manager", "location"))
        reviews = list(summary.reviews.select_related("reviewed_by", "meeting"))
    outstanding = [a for a in acks if a.is_outstanding]
    return {
        "plan": plan,
        "summary": summary,
        "embeddings": embeddings,
        "acks": acks,
        "outstanding": outstanding,
        "reviews": reviews,
        "today": timezone.localdate(),
        # A closed or withdrawn plan's page offers no edits: its learning changes at its
        # relevance reviews, from the learning page.
        "can_write": can_write_learning(user)
        and not plan.is_final
        and (summary is None or not summary.is_retired),
        "can_share": can_share_learning(user) and summary is not None and not summary.is_retired,
    }


def report_section(plan) -> dict:
    """ "Where learning is embedded" for the closure report (frozen with it): the key
    messages, then each embedding record in words. The closure workflow adds it to the
    report (``qip_portal/closure/workflow.py``)."""
    from django.utils.formats import date_format

    from learning.models import Embedding, LearningSummary

    summary = LearningSummary.objects.filter(plan=plan).first()
    if summary is None:
        return section(
            name="learning",
            title="Where learning is embedded",
            items=[],
            empty="No learning summary has been written yet.",
        )
    items = [f"Key messages for staff: {summary.key_messages}"]
    for embedding in Embedding.objects.filter(summary=summary).order_by("embedded_on", "pk"):
        when = date_format(embedding.embedded_on, "DATE_FORMAT") if embedding.embedded_on else ""
        if embedding.status == Embedding.Status.DONE:
            text = f"{embedding.get_kind_display()}: {when}, by {embedding.who}"
        else:
            due = date_format(embedding.due_on, "DATE_FORMAT") if embedding.due_on else "no date"
            text = f"{embedding.get_kind_display()}: to do, due {due}"
        items.append(text + (f". {embedding.note}" if embedding.note else ""))
    return section(
        name="learning",
        title="Where learning is embedded",
        items=items,
        empty="The learning has not been embedded anywhere yet.",
    )
