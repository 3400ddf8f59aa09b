"""Inspection evidence packs: what an inspector or commissioner is given.

- A **plan pack** tells one plan's story from trigger to embedded learning: the plan and
  its triggers, the closure criteria and every revision with its reason, each
  indicator's chart with both verdicts, the evidence list (with each file's SHA-256),
  actions (completed kept apart from verified effective), governance decisions and
  signatures with their snapshot hashes, monitoring after step-down, the learning
  summary, where it is embedded, its relevance reviews, and a readable timeline.
- A **register pack** covers a period (and optionally one location): what was opened,
  closed, stepped down, withdrawn or re-opened, and why.
- The **evidence ZIP** holds a plan's files, streamed from private storage under
  sanitised names, with ``manifest.csv`` giving each file's SHA-256.

Compilation reads the database in a fixed number of queries, whatever the number of
evidence items, results or history rows. PDFs are rendered by governance's offline
WeasyPrint set-up (``governance.pdf``): its fetcher serves governance's own print
stylesheet and refuses every other URL. Text typed by users is escaped by the
templates; the fetcher is the second wall.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import logging
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.text import slugify

from audits.charts import chart_for, render_icons, render_svg
from audits.models import EvidenceItem, MonitoringPeriod
from audits.verdicts import plan_verdicts
from core import stuck
from core.dates import day as _day
from core.exports import neutralise
from core.history import save_with_history as _save
from core.queueing import after_commit
from core.storage import open_stream
from governance.models import ClosureReport, Decision
from learning.models import (
    Acknowledgement,
    Embedding,
    LearningReview,
    LearningSummary,
    add_months,
    review_months,
)
from plans.models import Location, Plan, User
from qip_portal import closure
from qip_portal.packs.models import EvidencePack, PackShare
from qip_portal.pages import timeline

if TYPE_CHECKING:
    from governance.pdf import StaticOnlyFetcher

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
# A stored extension is set by the upload check (".pdf", ".docx"...); anything else is
# dropped rather than trusted.
_SAFE_EXTENSION = re.compile(r"^\.[a-z0-9]{1,7}$")


def _moment(value) -> str:
    return date_format(timezone.localtime(value), "j M Y, H:i") if value else ""


# --- Files: hashes, names, the ZIP -----------------------------------------------------


@dataclass(frozen=True)
class PackFile:
    """One file that goes into the ZIP, and into the PDF's evidence list."""

    arcname: str  # sanitised path inside the ZIP
    section: str  # "Evidence" or "Learning"
    title: str
    kind: str
    date: str
    original_name: str
    content_type: str
    storage_name: str
    storage: object
    modified: datetime.datetime


def _safe_name(number: int, folder: str, stem: str, extension: str, date) -> str:
    """``evidence/03-2026-01-14-supervision-notes.pdf``: a number keeps names unique and
    in order; the rest is ASCII letters, digits and hyphens only."""
    slug = slugify(stem)[:60].strip("-") or "file"
    ext = extension.lower() if _SAFE_EXTENSION.match(extension.lower() or "") else ""
    when = f"{date:%Y-%m-%d}-" if date else ""
    return f"{folder}/{number:02d}-{when}{slug}{ext}"


def pack_files(evidence: list[EvidenceItem], embeddings: list[Embedding]) -> list[PackFile]:
    """The files of already-loaded evidence items and embeddings (no queries)."""
    files: list[PackFile] = []
    for item in evidence:
        if not item.has_file:
            continue
        files.append(
            PackFile(
                arcname=_safe_name(
                    len(files) + 1,
                    "evidence",
                    item.original_name.rsplit(".", 1)[0] or item.title,
                    item.file_extension,
                    item.occurred_on,
                ),
                section="Evidence",
                title=item.title,
                kind=item.get_kind_display(),
                date=_day(item.occurred_on),
                original_name=item.original_name,
                content_type=item.content_type,
                storage_name=item.file.name,
                storage=item.file.storage,
                modified=item.created_at,
            )
        )
    for embedding in embeddings:
        if not embedding.has_file:
            continue
        files.append(
            PackFile(
                arcname=_safe_name(
                    len(files) + 1,
                    "learning",
                    embedding.original_name.rsplit(".", 1)[0] or embedding.get_kind_display(),
                    embedding.file_extension,
                    embedding.embedded_on,
                ),
                section="Learning",
                title=f"Embedded in {embedding.get_kind_display().lower()}",
                kind=embedding.get_kind_display(),
                date=_day(embedding.embedded_on),
                original_name=embedding.original_name,
                content_type=embedding.content_type,
                storage_name=embedding.file.name,
                storage=embedding.file.storage,
                modified=embedding.created_at,
            )
        )
    return files


def file_digest(file: PackFile) -> tuple[str, int] | None:
    """SHA-256 and size of a stored file, or None if it is missing from storage."""
    digest = hashlib.sha256()
    size = 0
    try:
        handle, _ = open_stream(file.storage, file.storage_name)
        with handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except (FileNotFoundError, OSError):
        logger.warning("Evidence pack: %s is missing from storage", file.storage_name)
        return None
    return digest.hexdigest(), size


def plan_files(plan: Plan) -> list[PackFile]:
    """Every file of ``plan``: two queries, whatever their number."""
    evidence = list(EvidenceItem.objects.filter(plan=plan).order_by("occurred_on", "pk"))
    embeddings = list(Embedding.objects.filter(summary__plan=plan).order_by("embedded_on", "pk"))
    return pack_files(evidence, embeddings)


class _Sink:
    """A write-only file for ``zipfile``: what is written is collected until taken.
    ``zipfile`` writes to an unseekable stream with data descriptors, so each member
    is streamed once, never held whole in memory."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


MANIFEST_HEADER = [
    "file",
    "section",
    "title",
    "kind",
    "date",
    "original name",
    "content type",
    "bytes",
    "sha256",
]


def stream_zip(plan: Plan, files: list[PackFile]) -> Iterator[bytes]:
    """The ZIP, chunk by chunk: each file read from private storage and hashed as it
    is written, then ``manifest.csv`` (one row per file, with its SHA-256). A file
    missing from storage is listed in the manifest as missing, not silently skipped."""
    sink = _Sink()
    rows: list[list[object]] = []
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            digest = hashlib.sha256()
            size = 0
            try:
                handle, _ = open_stream(file.storage, file.storage_name)
            except (FileNotFoundError, OSError):
                rows.append(_manifest_row(file, size="", sha="missing from storage"))
                continue
            info = zipfile.ZipInfo(
                file.arcname, date_time=timezone.localtime(file.modified).timetuple()[:6]
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            with handle, archive.open(info, mode="w", force_zip64=True) as member:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    member.write(chunk)
                    if data := sink.take():
                        yield data
            rows.append(_manifest_row(file, size=size, sha=digest.hexdigest()))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(MANIFEST_HEADER)
        writer.writerows(rows)
        info = zipfile.ZipInfo("manifest.csv", date_time=timezone.localtime().timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, buffer.getvalue().encode("utf-8"))
    yield sink.take()


def _manifest_row(file: PackFile, *, size, sha: str) -> list[object]:
    # Titles and names are typed by users: a spreadsheet must not run them as formulas.
    return [
        file.arcname,
        file.section,
        neutralise(file.title),
        file.kind,
        file.date,
        neutralise(file.original_name),
        file.content_type,
        size,
        sha,
    ]


# --- The plan pack ---------------------------------------------------------------------


def _charts(plan: Plan, periods: list[MonitoringPeriod]) -> tuple[list[dict], object]:
    """Each indicator's chart and verdicts (five queries, from ``audits.verdicts``),
    with the latest monitoring period's floors and deteriorations when there is one."""
    verdicts = plan_verdicts(plan)
    latest = periods[0] if periods else None
    watched = {}
    if latest is not None:
        for monitored in latest.monitored.all():
            watched[monitored.indicator_id] = monitored
    charts = []
    for position, verdict in enumerate(verdicts.indicators):
        monitored = watched.get(verdict.indicator.pk)
        deteriorations = (
            [d for d in latest.deteriorations.all() if d.indicator_id == verdict.indicator.pk]
            if latest is not None and monitored is not None
            else []
        )
        spec = chart_for(
            verdict,
            chart_id=f"pack-chart-{position}",
            monitored=monitored,
            period_start=latest.starts_on if monitored is not None else None,
            deteriorations=deteriorations,
        )
        criteria = verdict.criteria
        assurance = verdict.assurance
        charts.append(
            {
                "indicator": verdict.indicator,
                "svg": render_svg(spec),
                "icons": render_icons(spec, size=28),
                "notes": spec.notes,
                "rows": spec.rows,
                "criteria_status": criteria.status,
                "criteria_headline": criteria.headline(),
                "criteria_explain": criteria.explain(),
                # Too few results for a method: the headline says so, once.
                "method": assurance.method_label if assurance.is_judged else "",
                "assurance_headline": assurance.headline(),
                "assurance_concern": assurance.has_concern,
                "floor": monitored.floor_display() if monitored is not None else "",
            }
        )
    return charts, verdicts


def _governance(plan: Plan) -> list[dict]:
    """Every closure report put to a group, its frozen snapshot's hash (recomputed now,
    so the pack says whether it still matches) and the signed decision. One query."""
    rows = []
    for report in (
        ClosureReport.objects.filter(plan=plan)
        .select_related("group", "submitted_by", "decision__signed_by", "decision__meeting")
        .order_by("submitted_at", "pk")
    ):
        try:
            decision: Decision | None = report.decision
        except Decision.DoesNotExist:
            decision = None
        rows.append(
            {
                "report": report,
                "intact": report.is_intact(),
                "decision": decision,
                "decision_hash_matches": decision is not None
                and decision.snapshot_sha256 == report.sha256,
            }
        )
    return rows


def _scheduled_reviews(plan: Plan, summary: LearningSummary, reviews: list) -> list[dict]:
    """The relevance reviews not yet due, with the day each will fall due: the
    intervals after closure (``learning.models.review_months``) that have no review
    yet. Only a closed plan's current learning is reviewed. No queries."""
    if plan.status != Plan.Status.CLOSED or summary.is_retired or plan.status_changed_at is None:
        return []
    closed_on = timezone.localdate(plan.status_changed_at)
    held = {r.months_after_closure for r in reviews}
    return [
        {"months": months, "due_on": add_months(closed_on, months)}
        for months in review_months()
        if months not in held
    ]


def _learning(plan: Plan) -> dict:
    """The learning summary with its embeddings, acknowledgements (who it was shared
    with, by whom and when, and who acknowledged it when) and reviews, held and
    scheduled: four queries (one when there is no summary)."""
    summary = (
        LearningSummary.objects.filter(plan=plan)
        .select_related("created_by")
        .prefetch_related(
            Prefetch("embeddings", queryset=Embedding.objects.select_related("recorded_by")),
            Prefetch(
                "acknowledgements",
                queryset=Acknowledgement.objects.select_related(
                    "manager", "location", "shared_by"
                ).order_by("shared_at", "manager__first_name", "manager__last_name", "pk"),
            ),
            Prefetch(
                "reviews",
                queryset=LearningReview.objects.select_related("reviewed_by", "meeting__group"),
            ),
        )
        .first()
    )
    if summary is None:
        return {
            "summary": None,
            "embeddings": [],
            "reviews": [],
            "scheduled_reviews": [],
            "acknowledgements": [],
            "acks": 0,
            "acked": 0,
        }
    acks = list(summary.acknowledgements.all())
    reviews = list(summary.reviews.all())
    return {
        "summary": summary,
        "embeddings": list(summary.embeddings.all()),
        "reviews": reviews,
        "scheduled_reviews": _scheduled_reviews(plan, summary, reviews),
        "acknowledgements": acks,
        "acks": len(acks),
        "acked": sum(1 for a in acks if a.acknowledged_at is not None),
    }


def compile_plan_pack(plan: Plan, *, for_share: PackShare | None = None) -> dict:
    """Everything the plan pack shows, read now. A fixed number of queries (about
    thirty) whatever the number of evidence items, results, actions or history rows;
    stored files are read (to hash them) but not the database. A copy made for a share
    link (``for_share``) names that link alone: never the other people the pack was
    shared with."""
    plan = (
        Plan.objects.select_related("theme", "owner", "merged_into", "recurrence_of")
        .prefetch_related("locations", "regulations", "quality_statements")
        .get(pk=plan.pk)
    )
    # The closure report's own compilation: plan facts, triggers, criteria and their
    # revisions (with reasons), actions and residual risks, exactly as governance
    # presents them to the deciding group.
    report = closure.compile_report(plan)
    periods = list(
        MonitoringPeriod.objects.filter(plan=plan)
        .select_related("audit_theme", "started_by")
        .prefetch_related(
            "monitored__indicator",
            "deteriorations__measurement__indicator",
        )
        .order_by("-starts_on", "-pk")
    )
    charts, verdicts = _charts(plan, periods)
    blockers = closure.closure_blockers(plan, verdicts=verdicts)
    evidence = list(
        EvidenceItem.objects.filter(plan=plan)
        .select_related("uploaded_by")
        .order_by("occurred_on", "pk")
    )
    governance = _governance(plan)
    learning = _learning(plan)
    files = pack_files(evidence, learning["embeddings"])
    hashes = {}
    for file in files:
        hashes[file.storage_name] = (file, file_digest(file))
    evidence_rows = []
    for item in evidence:
        file, found = hashes.get(item.file.name, (None, None)) if item.has_file else (None, None)
        evidence_rows.append(
            {
                "item": item,
                "arcname": file.arcname if file else "",
                "sha256": found[0] if found else "",
                "size": found[1] if found else None,
                "missing": bool(item.has_file and found is None),
            }
        )
    embedding_files = {
        e.pk: hashes.get(e.file.name, (None, None)) for e in learning["embeddings"] if e.has_file
    }
    for embedding in learning["embeddings"]:
        file, found = embedding_files.get(embedding.pk, (None, None))
        embedding.pack_arcname = file.arcname if file else ""
        embedding.pack_sha256 = found[0] if found else ""
    return {
        "plan": plan,
        "report": report,
        "charts": charts,
        # The closure workflow's one answer, in words (qip_portal/closure/workflow.py).
        "readiness": {"reasons": [b.text for b in blockers]},
        "all_met": verdicts.all_met,
        "evidence": evidence_rows,
        "files_count": len(files),
        "governance": governance,
        "monitoring": periods,
        "learning": learning,
        "story": timeline.story(
            plan,
            indicators=[v.indicator for v in verdicts.indicators],
            evidence=evidence,
            reports=[row["report"] for row in governance],
            learning=learning,
            shares=list(
                PackShare.objects.filter(
                    plan=plan, **({"pk": for_share.pk} if for_share else {})
                ).select_related("created_by", "revoked_by")
            ),
        ),
        "compiled_at": _moment(timezone.now()),
    }


def render_plan_pack_html(context: dict) -> str:
    return render_to_string("evidence_pack/plan_pack.html", _document_context(context))


# --- The register pack -----------------------------------------------------------------

# Status moves the register pack reports, and how it names them.
MOVES = {
    Plan.Status.CLOSED: "closed",
    Plan.Status.MONITORING: "stepped_down",
    Plan.Status.WITHDRAWN: "withdrawn",
}
REOPENED_FROM = (Plan.Status.MONITORING, Plan.Status.CLOSURE_REVIEW)


def _bounds(date_from: datetime.date, date_to: datetime.date):
    tz = timezone.get_current_timezone()
    start = datetime.datetime.combine(date_from, datetime.time.min, tzinfo=tz)
    end = datetime.datetime.combine(
        date_to + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz
    )
    return start, end


def compile_register_pack(
    *, date_from: datetime.date, date_to: datetime.date, location: Location | None = None
) -> dict:
    """What happened on the register between two dates (inclusive), at one location or
    all: plans opened, closed, stepped down, withdrawn and re-opened, each with why
    (the triggers; the signed decision and its reasons; the recorded reason). Five
    queries, whatever the number of plans."""
    start, end = _bounds(date_from, date_to)
    scope = Plan.objects.all()
    if location is not None:
        scope = scope.filter(locations=location)
    scope_ids = scope.values("pk")
    # Every history row of the plans that changed in the period, up to its end, so each
    # row can be compared with the one before it (which may predate the period).
    changed = Plan.history.filter(
        history_date__gte=start, history_date__lt=end, id__in=scope_ids
    ).values("id")
    records = list(
        Plan.history.filter(id__in=changed, history_date__lt=end)
        .select_related("history_user")
        # history_id is the order the rows were written in.
        .order_by("id", "history_id")
    )
    moves: list[tuple[str, object, object]] = []  # (what, record, previous)
    previous = None
    for record in records:
        if previous is not None and previous.id != record.id:
            previous = None
        if (
            record.history_date >= start
            and previous is not None
            and previous.status != record.status
        ):
            if record.status in MOVES:
                moves.append((MOVES[record.status], record, previous))
            elif record.status == Plan.Status.LIVE and previous.status in REOPENED_FROM:
                moves.append(("reopened", record, previous))
        previous = record
    opened = (
        scope.filter(opened_on__gte=date_from, opened_on__lte=date_to)
        .select_related("theme", "owner")
        .prefetch_related("locations", "triggers")
        .order_by("opened_on", "reference")
    )
    opened = list(opened)
    plan_ids = {record.id for _, record, _ in moves}
    plans = {
        p.pk: p
        for p in Plan.objects.filter(pk__in=plan_ids)
        .select_related("theme", "merged_into")
        .prefetch_related("locations")
    }
    decisions: dict[int, list[Decision]] = defaultdict(list)
    for decision in (
        Decision.objects.filter(report__plan_id__in=plan_ids, signed_at__lt=end)
        .select_related("report__group", "signed_by", "meeting")
        .order_by("signed_at")
    ):
        decisions[decision.report.plan_id].append(decision)
    sections: dict[str, list[dict]] = {
        key: [] for key in ("closed", "stepped_down", "withdrawn", "reopened")
    }
    for what, record, before in moves:
        plan = plans.get(record.id)
        if plan is None:
            continue
        # The decision that made this move: the latest signed at or before it.
        decision = None
        if what in ("closed", "stepped_down", "reopened"):
            outcome = {
                "closed": Decision.Outcome.CLOSE,
                "stepped_down": Decision.Outcome.STEP_DOWN,
                "reopened": Decision.Outcome.RETURN,
            }[what]
            candidates = [
                d
                for d in decisions[plan.pk]
                if d.outcome == outcome and d.signed_at <= record.history_date
            ]
            decision = candidates[-1] if candidates else None
        sections[what].append(
            {
                "plan": plan,
                "when": _moment(record.history_date),
                "day": _day(timezone.localtime(record.history_date).date()),
                "who": str(record.history_user) if record.history_user else "The system",
                "from": before.get_status_display(),
                "reason": record.history_change_reason or "",
                "decision": decision,
            }
        )
    return {
        "date_from": date_from,
        "date_to": date_to,
        "location": location,
        "opened": opened,
        "closed": sections["closed"],
        "stepped_down": sections["stepped_down"],
        "withdrawn": sections["withdrawn"],
        "reopened": sections["reopened"],
        "compiled_at": _moment(timezone.now()),
    }


def render_register_pack_html(context: dict) -> str:
    return render_to_string("evidence_pack/register_pack.html", _document_context(context))


# --- Rendering -------------------------------------------------------------------------


def _document_context(context: dict) -> dict:
    from governance.pdf import STATIC_PREFIX  # imports WeasyPrint: slow and chatty

    return {
        **context,
        # Governance's print stylesheet, served from disk by its fetcher; the pack's
        # own rules are in the document's <style> element.
        "stylesheet": STATIC_PREFIX + "report-print.css",
    }


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


def render_pdf(html: str, *, fetcher: StaticOnlyFetcher | None = None) -> RenderedPdf:
    """A whole HTML document to PDF with governance's offline fetcher (which refuses
    every URL but governance's own static files). ``governance.pdf.render_pdf`` wraps
    a closure report's body in the closure report's page; a pack is its own document,
    so only the wrapping differs."""
    from weasyprint import HTML  # imported here: it is slow and chatty to import

    from governance.pdf import BASE_URL, StaticOnlyFetcher

    fetcher = fetcher or StaticOnlyFetcher()
    document = HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher).render()
    return RenderedPdf(document.write_pdf(), len(document.pages))


def _progress(pack_id: int, attempt: int, *, percent: int, note: str) -> None:
    # Operational counters, excluded from history: a plain UPDATE is right here. Only
    # the run that owns the pack reports (core/stuck.py).
    EvidencePack.objects.filter(pk=pack_id, attempts=attempt).update(
        progress=percent, progress_note=note, progress_at=timezone.now()
    )


def _claim(pack_id: int) -> int | None:
    """Take a waiting pack for this run of the render task; returns the run's number, or
    None when there is nothing to do (rendered, failed, or another run has it)."""
    with transaction.atomic():
        attempts = (
            EvidencePack.objects.select_for_update()
            .filter(pk=pack_id, render_status=EvidencePack.RenderStatus.PENDING, pdf="")
            .values_list("attempts", flat=True)
            .first()
        )
        if attempts is None:
            return None
        EvidencePack.objects.filter(pk=pack_id).update(
            render_status=EvidencePack.RenderStatus.RENDERING,
            attempts=attempts + 1,
            progress=10,
            progress_note="Gathering the record",
            progress_at=timezone.now(),
        )
    return attempts + 1


def pack_html(pack: EvidencePack) -> str:
    """The pack's HTML, compiled from the database now."""
    if pack.kind == EvidencePack.Kind.PLAN:
        # A copy made for a share link names its recipient and the link's expiry on
        # every page.
        shared = PackShare.objects.filter(pack=pack).first()
        context = compile_plan_pack(pack.plan, for_share=shared)
        return render_plan_pack_html(
            {**context, "prepared_by": pack.requested_by, "shared_with": shared}
        )
    context = compile_register_pack(
        date_from=pack.date_from, date_to=pack.date_to, location=pack.location
    )
    return render_register_pack_html({**context, "prepared_by": pack.requested_by})


def render_pack(*, pack_id: int) -> EvidencePack:
    """Compile and render a requested pack's PDF, once. Safe to run any number of
    times: only a run that claims a waiting pack renders it, and a pack whose PDF exists
    is left alone. A failure is recorded on the pack (the page says so) and logged; it
    is not raised, so a request running the task in-process still answers."""
    attempt = _claim(pack_id)
    pack = EvidencePack.objects.select_related("plan", "location", "requested_by").get(pk=pack_id)
    if attempt is None:
        return pack
    mine = EvidencePack.objects.filter(
        pk=pack_id, attempts=attempt, render_status=EvidencePack.RenderStatus.RENDERING
    )
    try:
        html = pack_html(pack)
        _progress(pack_id, attempt, percent=40, note="Laying out the pages")
        rendered = render_pdf(html)
    except Exception as exc:
        logger.exception("Evidence pack %s could not be rendered", pack_id)
        mine.update(
            render_status=EvidencePack.RenderStatus.FAILED,
            render_error=str(exc)[:300],
            progress_note="",
            progress_at=timezone.now(),
        )
        pack.refresh_from_db()
        return pack
    _progress(pack_id, attempt, percent=90, note="Saving")
    with transaction.atomic():
        pack = EvidencePack.objects.select_for_update().get(pk=pack_id)
        if pack.pdf or pack.attempts != attempt or pack.render_status != "rendering":
            return pack  # another run finished first, or this one was given up on
        pack.pdf.save(pack.download_name(), ContentFile(rendered.data), save=False)
        pack.pdf_sha256 = hashlib.sha256(rendered.data).hexdigest()
        pack.page_count = rendered.pages
        pack.render_status = EvidencePack.RenderStatus.READY
        pack.progress = 100
        pack.progress_note = ""
        pack.render_error = ""
        pack.progress_at = timezone.now()
        _save(pack, by=None, reason="PDF rendered")
    return pack


def _refuse_beyond_limit(by: User) -> None:
    """Raise ``stuck.TooMuchWaiting`` when ``by`` already has as many packs queued or
    rendering as one person may (``settings.PDF_RENDERS_PER_USER``). A stuck pack is not
    counted: no task is working on it, and "Try again" is how it moves on. The person's
    row is locked until commit, so two requests at once cannot both take the last place."""
    User.objects.select_for_update().filter(pk=by.pk).first()
    waiting = EvidencePack.objects.filter(requested_by=by).running(stuck.cutoffs()).count()
    stuck.refuse_beyond_limit(waiting, what="evidence pack")


def _queue(pack: EvidencePack) -> None:
    from qip_portal.packs import tasks as pack_tasks

    after_commit(pack_tasks.render_evidence_pack, pack.pk)


@transaction.atomic
def retry_pack(*, pack: EvidencePack, by: User) -> bool:
    """Render a failed or stuck pack again, from the record as it is now. Returns False,
    changing nothing, when the pack is rendered or still rendering; raises
    ``stuck.TooMuchWaiting``, changing nothing, when ``by`` has as many packs waiting as
    one person may. The caller has checked that ``by`` may."""
    # skip_locked: a pack locked now is being saved by its render, or retried by another.
    locked = EvidencePack.objects.select_for_update(skip_locked=True).filter(pk=pack.pk).first()
    if locked is None or not locked.can_retry:
        return False
    _refuse_beyond_limit(by)
    locked.render_status = EvidencePack.RenderStatus.PENDING
    locked.attempts = 0
    locked.progress = 0
    locked.progress_note = ""
    locked.render_error = ""
    locked.progress_at = timezone.now()
    _save(locked, by=by, reason="Rendering tried again")
    _queue(locked)
    return True


@transaction.atomic
def request_plan_pack(*, plan: Plan, by: User) -> EvidencePack:
    """Ask for a plan's evidence pack; it is rendered in the background after commit.
    Raises ``stuck.TooMuchWaiting``, creating nothing, when ``by`` has as many packs
    waiting as one person may. The caller has checked that ``by`` may read ``plan``."""
    _refuse_beyond_limit(by)
    pack = EvidencePack(kind=EvidencePack.Kind.PLAN, plan=plan, requested_by=by)
    _save(pack, by=by, reason="Evidence pack requested")
    _queue(pack)
    return pack


@transaction.atomic
def request_register_pack(
    *, by: User, date_from: datetime.date, date_to: datetime.date, location: Location | None
) -> EvidencePack:
    """Ask for a register pack; rendered in the background after commit. Raises
    ``stuck.TooMuchWaiting``, creating nothing, when ``by`` has as many packs waiting
    as one person may. The caller has checked that ``by`` is a quality lead or
    administrator."""
    _refuse_beyond_limit(by)
    pack = EvidencePack(
        kind=EvidencePack.Kind.REGISTER,
        location=location,
        date_from=date_from,
        date_to=date_to,
        requested_by=by,
    )
    _save(pack, by=by, reason="Register pack requested")
    _queue(pack)
    return pack
