"""A plan's timeline, whichever app holds each moment of it.

``plans.timeline`` tells the plan's own history (opened, triggers, criteria, actions,
status changes); this adds the results logged and evidence added (audits), the reports
put to governance and the decisions signed (governance), and the learning written,
embedded and reviewed (learning). The plan page shows it newest first, the evidence
pack oldest first; both sort by the day each thing happened (a plan opened on 15 Aug
was opened then, whenever it was typed in), then by when it was entered, and both
show times in local time (Europe/London).
"""

from __future__ import annotations

from types import SimpleNamespace

from django.db.models import Count, Max, Min
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localdate, localtime

from audits.models import Annotation, EvidenceItem, ImportBatch, Measurement
from audits.spc.text import plural
from core.dates import day
from governance.models import ClosureReport, Decision
from learning.models import Embedding, LearningReview, LearningSummary
from plans.models import Indicator, Plan
from plans.timeline import Entry, build_timeline, newest_first, oldest_first

__all__ = ["Entry", "plan_story", "plan_timeline", "story", "timeline_html"]


def _name(first: str | None, last: str | None, username: str | None) -> str:
    """A person's name as ``User.__str__`` says it, from its columns (``str(None)`` when
    there is no one, as ``str(m.recorded_by)`` said)."""
    if username is None:
        return str(None)
    return f"{first} {last}".strip() or username


def _results(plan: Plan, indicators: list[Indicator]) -> list[Entry]:
    """Each result logged by hand, each correction, and each spreadsheet import as one
    entry (an import of 5,000 rows is one thing that happened). Four queries."""
    by_id = {i.pk: i for i in indicators}
    entries: list[Entry] = []
    # Plain rows, not models: a plan with a year of weekly results has hundreds, and
    # only these columns are told (the author's name as ``User.__str__`` gives it).
    logged = (
        Measurement.objects.filter(indicator__plan=plan, import_batch__isnull=True)
        .order_by("recorded_at", "pk")
        .values_list(
            "indicator_id",
            "measured_on",
            "value",
            "numerator",
            "denominator",
            "recorded_at",
            "recorded_by__first_name",
            "recorded_by__last_name",
            "recorded_by__username",
        )
    )
    for ind_id, measured_on, value, numerator, denominator, at, first, last, username in logged:
        indicator = by_id[ind_id]
        shown = SimpleNamespace(
            indicator=indicator, value=value, numerator=numerator, denominator=denominator
        )
        entries.append(
            Entry(
                when=at,
                who=_name(first, last, username),
                text=f"logged a result for “{indicator.name}”: {Measurement.value_display(shown)}",
                reason="",
                happened_on=measured_on,
            )
        )
    corrections = (
        Measurement.history.filter(indicator_id__in=by_id, history_type="~")
        .select_related("history_user")
        .order_by("history_date", "history_id")
    )
    for record in corrections:
        indicator = by_id.get(record.indicator_id)
        if indicator is None:
            continue
        as_corrected = Measurement(
            indicator=indicator,
            value=record.value,
            numerator=record.numerator,
            denominator=record.denominator,
        )
        entries.append(
            Entry(
                when=record.history_date,
                who=str(record.history_user) if record.history_user else "The system",
                text=f"corrected the result for “{indicator.name}” of "
                f"{day(record.measured_on)} to {as_corrected.value_display()}",
                reason=(record.history_change_reason or "").removeprefix("Corrected: "),
            )
        )
    imported = {
        row["import_batch"]: row
        for row in Measurement.objects.filter(indicator__plan=plan, import_batch__isnull=False)
        .values("import_batch")
        .annotate(n=Count("pk"), first=Min("measured_on"), last=Max("measured_on"))
        .order_by()
    }
    batches = ImportBatch.objects.filter(pk__in=imported).select_related(
        "created_by", "confirmed_by"
    )
    for batch in batches:
        row = imported[batch.pk]
        span = (
            day(row["first"])
            if row["first"] == row["last"]
            else (f"{day(row['first'])} to {day(row['last'])}")
        )
        entries.append(
            Entry(
                when=batch.committed_at or batch.created_at,
                who=str(batch.confirmed_by or batch.created_by),
                text=f"imported {plural(row['n'], 'result')} ({span}) from “{batch.original_name}”",
                reason="",
            )
        )
    return entries


def _chart_notes(plan: Plan, indicators: list[Indicator]) -> list[Entry]:
    """Notes added to charts and limits recalculated, each on the day it concerns. One
    query."""
    by_id = {i.pk: i for i in indicators}
    entries = []
    for note in Annotation.objects.filter(indicator__plan=plan).select_related("created_by"):
        indicator = by_id.get(note.indicator_id)
        name = indicator.name if indicator else "an indicator"
        if note.is_rebase:
            text = f"recalculated the limits of “{name}” from its result of {day(note.noted_on)}"
            reason = note.text
        else:
            text = f"added a note to the chart of “{name}” ({note.get_kind_display()}): {note.text}"
            reason = ""
        entries.append(
            Entry(
                when=note.created_at,
                who=str(note.created_by),
                text=text,
                reason=reason,
                happened_on=note.noted_on,
            )
        )
    return entries


def _evidence(items: list[EvidenceItem]) -> list[Entry]:
    return [
        Entry(
            when=item.created_at,
            who=str(item.uploaded_by),
            text=f"added evidence “{item.title}” ({item.get_kind_display().lower()})",
            reason="",
            happened_on=item.occurred_on,
        )
        for item in items
    ]


def _governance(reports: list[ClosureReport]) -> list[Entry]:
    """Reports loaded with ``group``, ``submitted_by`` and ``decision__signed_by``."""
    entries = []
    for report in reports:
        entries.append(
            Entry(
                when=report.submitted_at,
                who=str(report.submitted_by),
                text=f"submitted the closure report to {report.group.name} "
                f"(snapshot {report.sha256[:12]}…)",
                reason=report.override_rationale and f"Override: {report.override_rationale}",
            )
        )
        try:
            decision: Decision | None = report.decision
        except Decision.DoesNotExist:
            decision = None
        if decision is not None:
            entries.append(
                Entry(
                    when=decision.signed_at,
                    who=str(decision.signed_by),
                    text=f"signed the decision “{decision.get_outcome_display().lower()}” for "
                    f"{report.group.name}",
                    reason=decision.reasons,
                )
            )
    return entries


def _learning(learning: dict) -> list[Entry]:
    """``learning``: the summary (with ``created_by``), its embeddings (with
    ``recorded_by``) and reviews (with ``reviewed_by`` and ``meeting``). One query, for
    when each review was recorded: a review keeps only its day, its history the time."""
    summary = learning["summary"]
    if summary is None:
        return []
    entries = [
        Entry(
            when=summary.created_at,
            who=str(summary.created_by),
            text="wrote the learning summary",
            reason="",
        )
    ]
    for embedding in learning["embeddings"]:
        if embedding.is_done:
            entries.append(
                Entry(
                    when=embedding.created_at,
                    who=str(embedding.recorded_by),
                    text="recorded the learning as embedded in "
                    f"{embedding.get_kind_display().lower()}",
                    reason=embedding.note,
                    happened_on=embedding.embedded_on,
                )
            )
    reviewed = [r for r in learning["reviews"] if r.outcome and r.reviewed_on]
    recorded_at: dict[int, object] = {}
    if reviewed:
        records = (
            LearningReview.history.filter(id__in=[r.pk for r in reviewed])
            .exclude(outcome="")
            .order_by("-history_date", "-history_id")
            .values_list("id", "history_date")
        )
        # The first record with an outcome is the moment it was recorded.
        recorded_at = dict(records)
    for review in reviewed:
        entries.append(
            Entry(
                when=recorded_at.get(review.pk),  # type: ignore[arg-type]
                who=str(review.reviewed_by) if review.reviewed_by else "The system",
                text=f"recorded the {review.months_after_closure}-month relevance review: "
                f"{review.get_outcome_display().lower()}",
                reason=review.note,
                happened_on=review.meeting.held_on if review.meeting else review.reviewed_on,
            )
        )
    return entries


def story(
    plan: Plan,
    *,
    indicators: list[Indicator],
    evidence: list[EvidenceItem],
    reports: list[ClosureReport],
    learning: dict,
    shares: list = (),  # type: ignore[assignment]
) -> list[Entry]:
    """Every moment of the plan, oldest first, from what the caller has loaded (the
    evidence pack loads it anyway). The pack also passes the learning's
    acknowledgements (``learning["acknowledgements"]``) and its share links
    (``shares``), so its timeline shows who the learning and the pack went to."""
    entries = build_timeline(plan)
    entries += _results(plan, indicators)
    entries += _chart_notes(plan, indicators)
    entries += _evidence(evidence)
    entries += _governance(reports)
    entries += _learning(learning)
    entries += _acknowledgements(learning.get("acknowledgements", ()))
    entries += _pack_shares(shares)
    return oldest_first(entries)


def _acknowledgements(acks) -> list[Entry]:
    """One entry per sharing of the learning (everyone asked at once by one person is
    one entry, naming them), and one per acknowledgement. No queries: the caller loads
    each acknowledgement with its manager, location and sharer."""
    entries = []
    batches: dict[tuple, list] = {}
    for ack in acks:
        batches.setdefault((ack.shared_by_id, ack.shared_at), []).append(ack)
    for batch in batches.values():
        first = batch[0]
        names = ", ".join(f"{a.manager} ({a.location.name})" for a in batch)
        entries.append(
            Entry(
                when=first.shared_at,
                who=str(first.shared_by),
                text=f"shared the learning with {names}",
                reason="",
            )
        )
    for ack in acks:
        if ack.acknowledged_at is not None:
            entries.append(
                Entry(
                    when=ack.acknowledged_at,
                    who=str(ack.manager),
                    text=f"acknowledged reading the learning ({ack.location.name})",
                    reason="",
                )
            )
    return entries


def _pack_shares(shares) -> list[Entry]:
    """The evidence pack's share links: made, and withdrawn. No queries (the caller
    loads ``created_by`` and ``revoked_by``)."""
    entries = []
    for share in shares:
        entries.append(
            Entry(
                when=share.created_at,
                who=str(share.created_by),
                text=f"shared the evidence pack with {share.recipient_label} by a link "
                f"valid until {day(localdate(share.expires_at))}",
                reason="",
            )
        )
        if share.revoked_at is not None:
            entries.append(
                Entry(
                    when=share.revoked_at,
                    who=str(share.revoked_by),
                    text=f"withdrew the evidence pack's share link for {share.recipient_label}",
                    reason="",
                )
            )
    return entries


def plan_story(
    plan: Plan,
    *,
    indicators: list[Indicator] | None = None,
    evidence: list[EvidenceItem] | None = None,
    reports: list[ClosureReport] | None = None,
    learning: dict | None = None,
) -> list[Entry]:
    """The same story, loading what it needs, unless the caller has it (the plan page's
    sections read the same rows): the plan's ``indicators``; its ``evidence`` (with
    ``uploaded_by``); all its closure ``reports`` (with ``group``, ``submitted_by`` and
    ``decision__signed_by``); its ``learning`` (``summary`` with ``created_by``,
    ``embeddings`` with ``recorded_by``, ``reviews`` with ``reviewed_by`` and
    ``meeting``). A fixed number of queries (about fifteen) whatever the number of
    results, evidence items or history records."""
    if learning is None:
        summary = LearningSummary.objects.filter(plan=plan).select_related("created_by").first()
        learning = {"summary": summary, "embeddings": [], "reviews": []}
        if summary is not None:
            learning["embeddings"] = list(
                Embedding.objects.filter(summary=summary).select_related("recorded_by")
            )
            learning["reviews"] = list(
                LearningReview.objects.filter(summary=summary).select_related(
                    "reviewed_by", "meeting"
                )
            )
    if evidence is None:
        evidence = list(EvidenceItem.objects.filter(plan=plan).select_related("uploaded_by"))
    if reports is None:
        reports = list(
            ClosureReport.objects.filter(plan=plan)
            .select_related("group", "submitted_by", "decision__signed_by")
            .defer("content_json", "content_html")  # the frozen snapshot is not told
        )
    return story(
        plan,
        indicators=list(Indicator.objects.filter(plan=plan)) if indicators is None else indicators,
        evidence=evidence,
        reports=reports,
        learning=learning,
    )


def plan_timeline(plan: Plan, **loaded) -> list[Entry]:
    """The plan page's timeline: the story, newest first (``loaded``: what the caller
    has read already, as ``plan_story`` takes it)."""
    return newest_first(plan_story(plan, **loaded))


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _day_text(d) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def _time_tag(when) -> str:
    local = localtime(when)
    return (
        f'<time datetime="{local.isoformat()}">{_day_text(local)}, '
        f"{local.hour:02d}:{local.minute:02d}</time>"
    )


def timeline_html(entries: list[Entry]) -> SafeString:
    """The plan page's timeline items (``<li>`` elements), built here rather than by a
    template loop: a plan with a year of weekly results has hundreds. Each says when it
    happened (its day, if that is its own fact) and when it was entered, in local time,
    who did it, what, and why."""
    out = []
    for e in entries:
        if e.backdated:
            when = f'<time datetime="{e.day.isoformat()}">{_day_text(e.day)}</time>'
            if e.when:
                when += f" · entered {_time_tag(e.when)}"
        else:
            when = _time_tag(e.when)
        reason = f'<div class="small">Why: {escape(e.reason)}</div>' if e.reason else ""
        out.append(
            f'<li><div class="small text-body-secondary">{when}</div>'
            f"<div><strong>{escape(e.who)}</strong> {escape(e.text)}</div>{reason}</li>"
        )
    return mark_safe("".join(out))  # noqa: S308  # nosec B308 B703 - every text escaped
