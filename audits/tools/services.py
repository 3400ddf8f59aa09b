"""Everything that changes audit tools and audits: one function per change, each in a
transaction, each saving with history (who and why).

A submitted audit writes its indicators' results through
``audits.services.record_measurement`` (corrections through ``correct_measurement``),
the same service a typed result uses, so verdicts, charts, the readiness sweep and
monitoring treat them alike; the audit is linked as the result's source
(``AuditResult``)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format

from audits.models import Deterioration, Measurement, MonitoredIndicator, MonitoringPeriod
from audits.services import measurements as measurement_services
from audits.tools import scoring
from audits.tools.models import (
    MAX_SAMPLE,
    MIN_SAMPLE,
    Answer,
    Audit,
    AuditRecord,
    AuditResult,
    AuditTool,
    Finding,
    IndicatorFeed,
    ToolQuestion,
    ToolSection,
    ToolVersion,
)
from core import outbox
from core.history import save_with_history as _save
from plans import services as plan_services
from plans.models import Indicator, Location, Plan, User

# The rule name of a repeat finding in monitoring (``Deterioration.rule``).
REPEAT_RULE = "repeat_finding"


class AuditRefused(Exception):
    def __init__(self, reasons: list[str]):
        super().__init__(" ".join(reasons))
        self.reasons = reasons


# --- Tools and versions ----------------------------------------------------------------


@dataclass
class QuestionSpec:
    text: str
    kind: str = ToolQuestion.Kind.YES_NO
    guidance: str = ""
    evidence_hint: str = ""
    choices: tuple[str, ...] = ()
    min_value: Decimal | None = None
    max_value: Decimal | None = None


@dataclass
class SectionSpec:
    title: str
    questions: list[QuestionSpec]


def current_version(tool: AuditTool) -> ToolVersion:
    return tool.versions.order_by("-number").first()


def _write_sections(version: ToolVersion, sections: list[SectionSpec], *, by: User) -> None:
    if not sections or not any(s.questions for s in sections):
        raise AuditRefused(["A tool needs at least one question."])
    for s_pos, spec in enumerate(sections, start=1):
        section = ToolSection(version=version, key=f"S{s_pos}", title=spec.title, position=s_pos)
        _save(section, by=by, reason="Section written")
        for q_pos, q in enumerate(spec.questions, start=1):
            _save(
                ToolQuestion(
                    version=version,
                    section=section,
                    key=f"S{s_pos}.Q{q_pos}",
                    position=q_pos,
                    text=q.text,
                    kind=q.kind,
                    guidance=q.guidance,
                    evidence_hint=q.evidence_hint,
                    choices=list(q.choices),
                    min_value=q.min_value,
                    max_value=q.max_value,
                ),
                by=by,
                reason="Question written",
            )


@transaction.atomic
def create_tool(*, by: User, name: str, sections: list[SectionSpec], **details) -> AuditTool:
    """A new tool with its first version. ``details``: theme, quality_statement,
    regulation, description, suggest_plan_below."""
    if AuditTool.objects.filter(name__iexact=name.strip()).exists():
        raise AuditRefused([f"There is already a tool called “{name.strip()}”."])
    tool = AuditTool(name=name.strip(), created_by=by, **details)
    _save(tool, by=by, reason="Tool created")
    version = ToolVersion(tool=tool, number=1, created_by=by, change_note="First version")
    _save(version, by=by, reason="First version")
    _write_sections(version, sections, by=by)
    return tool


@transaction.atomic
def revise_tool(
    *, tool: AuditTool, by: User, sections: list[SectionSpec], change_note: str = "", **details
) -> ToolVersion:
    """Change a tool's questions (and details). A version no audit has used is
    rewritten in place; once used, a new version is made and the old one is left as it
    was, so past audits keep the questions they were answered with. Audits started in
    between keep their version too: they point at it, and it is never changed again."""
    # Starting an audit locks the tool row too: a version cannot become used between
    # the check below and the rewrite.
    tool = AuditTool.objects.select_for_update().get(pk=tool.pk)
    for name, value in details.items():
        setattr(tool, name, value)
    if details:
        _save(tool, by=by, reason="Tool details changed")
    version = current_version(tool)
    if version.audits.exists():
        version = ToolVersion(
            tool=tool,
            number=version.number + 1,
            created_by=by,
            change_note=change_note[:300],
        )
        _save(version, by=by, reason="New version: the previous one has been used")
    else:
        for question in version.questions.all():
            question._history_user = by
            question.delete()
        for section in version.sections.all():
            section._history_user = by
            section.delete()
        if change_note:
            version.change_note = change_note[:300]
            _save(version, by=by, reason="Questions rewritten (version not yet used)")
    _write_sections(version, sections, by=by)
    return version


# --- Conducting ------------------------------------------------------------------------


@transaction.atomic
def start_audit(
    *,
    tool: AuditTool,
    location: Location,
    by: User,
    audited_on: datetime.date,
    sample_size: int,
    plan: Plan | None = None,
) -> Audit:
    """An audit of ``sample_size`` records with the tool's current version."""
    problems = []
    if not isinstance(sample_size, int) or not MIN_SAMPLE <= sample_size <= MAX_SAMPLE:
        problems.append(f"The sample must be between {MIN_SAMPLE} and {MAX_SAMPLE} records.")
    if audited_on > timezone.localdate():
        problems.append("An audit cannot be dated in the future.")
    if plan is not None and not plan.locations.filter(pk=location.pk).exists():
        problems.append(f"{plan.reference} does not cover {location.name}.")
    if problems:
        raise AuditRefused(problems)
    tool = AuditTool.objects.select_for_update().get(pk=tool.pk)  # see revise_tool
    audit = Audit(
        version=current_version(tool),
        location=location,
        plan=plan,
        audited_on=audited_on,
        sample_size=sample_size,
        started_by=by,
    )
    _save(audit, by=by, reason="Audit started")
    for position in range(1, sample_size + 1):
        _save(AuditRecord(audit=audit, position=position), by=by, reason="Record added")
    return audit


def clean_value(question: ToolQuestion, raw: str) -> str:
    """An answer as stored, or AuditRefused naming the question. Blank clears it."""
    value = (raw or "").strip()
    if "\x00" in value:
        raise AuditRefused([f"{question.key}: the answer contains a character not allowed."])
    if value == "":
        return ""
    if question.kind == ToolQuestion.Kind.YES_NO:
        if value not in (Answer.YES, Answer.NO, Answer.NA):
            raise AuditRefused([f"{question.key}: answer yes, no or not applicable."])
    elif question.kind == ToolQuestion.Kind.NUMBER:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise AuditRefused([f"{question.key}: give a number."]) from None
        if not number.is_finite() or abs(number) >= Decimal("1e12"):
            raise AuditRefused([f"{question.key}: give a number."])
        if question.min_value is not None and number < question.min_value:
            raise AuditRefused([f"{question.key}: at least {question.min_value.normalize():f}."])
        if question.max_value is not None and number > question.max_value:
            raise AuditRefused([f"{question.key}: at most {question.max_value.normalize():f}."])
        value = f"{number.normalize():f}"
    elif question.kind == ToolQuestion.Kind.CHOICE:
        if value not in question.choices:
            raise AuditRefused([f"{question.key}: choose one of the options given."])
    elif len(value) > 2000:
        raise AuditRefused([f"{question.key}: at most 2,000 characters."])
    return value


def clean_identifier(raw: str) -> str:
    identifier = (raw or "").strip()
    if len(identifier) > 40 or "\x00" in identifier:
        raise AuditRefused(["A record identifier is at most 40 characters."])
    return identifier


def _write_answers(
    *,
    audit: Audit,
    record: AuditRecord,
    by: User,
    identifier: str | None,
    values: dict[int, str],
    reason: str,
) -> list[str]:
    """Validate everything first, then write: one refusal leaves nothing half-saved.
    Returns what changed, as "S1.Q2: yes -> no"."""
    questions = {q.pk: q for q in audit.version.questions.all()}
    cleaned: dict[int, str] = {}
    problems = []
    for question_id, raw in values.items():
        question = questions.get(question_id)
        if question is None:
            problems.append("That question is not in this audit's version of the tool.")
            continue
        try:
            cleaned[question_id] = clean_value(question, raw)
        except AuditRefused as refused:
            problems.extend(refused.reasons)
    if identifier is not None:
        try:
            identifier = clean_identifier(identifier)
        except AuditRefused as refused:
            problems.extend(refused.reasons)
        else:
            clash = (
                identifier
                and AuditRecord.objects.filter(audit=audit, identifier=identifier)
                .exclude(pk=record.pk)
                .exists()
            )
            if clash:
                problems.append(
                    f"Another record in this audit is already called “{identifier}”: "
                    "each record needs its own identifier."
                )
    if problems:
        raise AuditRefused(problems)
    changes = []
    if identifier is not None and identifier != record.identifier:
        changes.append(f"record {record.position} identifier")
        record.identifier = identifier
        try:
            with transaction.atomic():
                _save(record, by=by, reason=reason)
        except IntegrityError:  # a second tab named another record the same at once
            raise AuditRefused(
                [f"Another record in this audit is already called “{identifier}”."]
            ) from None
    existing = {a.question_id: a for a in record.answers.all()}
    for question_id, value in cleaned.items():
        answer = existing.get(question_id)
        if answer is None:
            if value == "":
                continue
            answer = Answer(record=record, question_id=question_id, answered_by=by)
        elif answer.value == value:
            continue
        changes.append(f"{questions[question_id].key}: {answer.value or '-'} → {value or '-'}")
        answer.value = value
        answer.answered_by = by
        answer.answered_at = timezone.now()
        _save(answer, by=by, reason=reason)
    return changes


@transaction.atomic
def save_answers(
    *,
    audit: Audit,
    record: AuditRecord,
    by: User,
    values: dict[int, str],
    identifier: str | None = None,
) -> list[str]:
    """Save answers (and the record's identifier) as they are given, in an audit still
    in progress. Refused, with nothing saved, once the audit has been submitted."""
    locked = Audit.objects.select_for_update().get(pk=audit.pk)
    if locked.is_submitted:
        raise AuditRefused(
            ["This audit has been submitted: its answers change only by a correction."]
        )
    return _write_answers(
        audit=locked,
        record=record,
        by=by,
        identifier=identifier,
        values=values,
        reason="Answer given",
    )


def audit_scores(audit: Audit) -> scoring.Scores:
    """Scores per question, section and overall (three queries)."""
    return scoring.score(
        list(audit.version.sections.all()),
        list(audit.version.questions.all()),
        Answer.objects.filter(record__audit=audit).values_list("question_id", "value"),
    )


def submission_problems(audit: Audit) -> list[str]:
    """What stops the audit being submitted, in plain English (empty: it may be)."""
    problems = []
    records = list(audit.records.all())
    unnamed = [r.position for r in records if not r.identifier]
    if unnamed:
        problems.append(
            f"{len(unnamed)} record{'s' if len(unnamed) != 1 else ''} ha"
            f"{'ve' if len(unnamed) != 1 else 's'} no identifier (record "
            f"{', '.join(str(p) for p in unnamed[:10])}{'…' if len(unnamed) > 10 else ''})."
        )
    scored = [q.pk for q in audit.version.questions.all() if q.is_scored]
    answered = set(
        Answer.objects.filter(record__audit=audit, question_id__in=scored)
        .exclude(value="")
        .values_list("record_id", "question_id")
    )
    missing = [r.position for r in records if any((r.pk, q) not in answered for q in scored)]
    if missing:
        problems.append(
            f"Record{'s' if len(missing) != 1 else ''} "
            f"{', '.join(str(p) for p in missing[:10])}{'…' if len(missing) > 10 else ''} "
            "still ha" + ("ve" if len(missing) != 1 else "s") + " yes/no questions unanswered."
        )
    return problems


def feeds_for(audit: Audit) -> list[IndicatorFeed]:
    """The indicators this audit writes: fed by its tool, on live or monitoring plans
    that cover its location."""
    return list(
        IndicatorFeed.objects.filter(
            tool_id=audit.version.tool_id,
            indicator__plan__status__in=[Plan.Status.LIVE, Plan.Status.MONITORING],
            indicator__plan__locations=audit.location_id,
        )
        .select_related("indicator__plan", "tool")
        .order_by("indicator__plan__reference", "indicator__position", "indicator_id")
    )


def _result_fields(audit: Audit, indicator: Indicator, tally: scoring.Tally) -> dict:
    fields = {
        "indicator": indicator,
        "measured_on": audit.audited_on,
        "location": audit.location,
        "source": Measurement.Source.RE_AUDIT,
        "notes": (
            f"Audit #{audit.pk}: {audit.version}, {audit.sample_size} "
            f"record{'s' if audit.sample_size != 1 else ''} at {audit.location.name}"
        )[:2000],
        "numerator": None,
        "denominator": None,
        "value": None,
    }
    if indicator.measure_type == Indicator.MeasureType.PROPORTION:
        fields["numerator"], fields["denominator"] = tally.yes, tally.counted
    else:
        fields["value"] = tally.percent
    return fields


@transaction.atomic
def submit_audit(*, audit: Audit, by: User) -> Audit:
    """Submit an audit: from now on read-only except through ``correct_audit``. Writes a
    result for each indicator fed by the tool at this location (``feeds_for``), links
    every "No" to a plan that already covers its question there (a repeat finding), and
    escalates a repeat finding on a monitored indicator as deterioration, once.

    Two tabs submitting at once: the audit row is locked and its status read under the
    lock, so exactly one submission counts; the other is refused and changes nothing."""
    locked = (
        Audit.objects.select_for_update()
        .select_related("version__tool", "location")
        .get(pk=audit.pk)
    )
    if locked.is_submitted:
        raise AuditRefused(["This audit has already been submitted."])
    problems = submission_problems(locked)
    if problems:
        raise AuditRefused(problems)
    locked.status = Audit.Status.SUBMITTED
    locked.submitted_by = by
    locked.submitted_at = timezone.now()
    _save(locked, by=by, reason="Audit submitted")
    scores = audit_scores(locked)
    feeds = feeds_for(locked)
    written: dict[int, Measurement] = {}
    for feed in feeds:
        tally = scores.for_scope(feed.scope, feed.key)
        if tally is None or not tally.counted:
            continue  # every record "not applicable": nothing to measure
        try:
            measurement = measurement_services.record_measurement(
                plan=feed.indicator.plan,
                by=by,
                fields=_result_fields(locked, feed.indicator, tally),
            )
        except measurement_services.MeasurementRefused as refused:
            raise AuditRefused(
                [
                    *refused.reasons,
                    f"Nothing was submitted. Check the audit date "
                    f"({date_format(locked.audited_on)}) with the plan's results.",
                ]
            ) from None
        result = AuditResult(
            audit=locked,
            measurement=measurement,
            scope=feed.scope,
            key=feed.key,
            version=locked.version,
        )
        _save(result, by=by, reason="Audit result")
        written[feed.indicator_id] = measurement
    noes = list(
        Answer.objects.filter(record__audit=locked, value=Answer.NO).select_related(
            "question", "record"
        )
    )
    _findings_for_noes(
        locked,
        noes,
        feeds,
        written,
        by=by,
    )
    return locked


def _covering_feed(feeds: list[IndicatorFeed], question: ToolQuestion) -> IndicatorFeed | None:
    """The plan that covers ``question`` most closely: a feed on the question itself,
    then its section, then the overall score."""
    order = {IndicatorFeed.Scope.QUESTION: 0, IndicatorFeed.Scope.SECTION: 1}
    covering = [f for f in feeds if f.covers(question)]
    covering.sort(key=lambda f: (order.get(f.scope, 2), f.indicator.plan.reference))
    return covering[0] if covering else None


def _findings_for_noes(
    audit: Audit,
    noes: list[Answer],
    feeds: list[IndicatorFeed],
    written: dict[int, Measurement],
    *,
    by: User,
    correction: str = "",
) -> None:
    """The path of a new "No", at submission and at correction alike: linked as a
    repeat finding to the plan that covers its question most closely
    (``_covering_feed``); on a plan in monitoring, escalated as deterioration through
    the monitoring path with the result the audit wrote for that plan's indicator
    (``_escalate_repeat_finding``: once per period and result, so a correction never
    sends a second email). A "No" whose finding a correction withdrew is opened again,
    not linked twice; one with no plan covering it waits for "Raise an action"."""
    known = {f.answer_id: f for f in Finding.objects.filter(answer__in=noes)}
    escalate: dict[int, tuple[IndicatorFeed, list[Answer]]] = {}
    for answer in noes:
        feed = _covering_feed(feeds, answer.question)
        finding = known.get(answer.pk)
        if finding is not None:
            if finding.is_withdrawn:
                finding.status = Finding.Status.OPEN
                finding.withdrawn_by = finding.withdrawn_at = None
                finding.withdrawn_reason = ""
                _save(finding, by=by, reason=f"“No” again, corrected: {correction}")
            if feed is None or feed.indicator.plan_id != finding.plan_id:
                continue
        elif feed is None:
            continue
        else:
            _save(
                Finding(
                    audit=audit,
                    answer=answer,
                    plan=feed.indicator.plan,
                    kind=Finding.Kind.REPEAT,
                    created_by=by,
                ),
                by=by,
                reason="Repeat finding linked to the plan that covers it"
                + (f" (corrected: {correction})" if correction else ""),
            )
        if feed.indicator.plan.status == Plan.Status.MONITORING:
            escalate.setdefault(feed.indicator_id, (feed, []))[1].append(answer)
    for indicator_id, (feed, answers) in escalate.items():
        measurement = written.get(indicator_id)
        if measurement is not None:
            _escalate_repeat_finding(feed, measurement, answers)


def _withdraw_findings(answers: list[Answer], *, by: User, reason: str) -> int:
    """A correction turned these "No" answers into something else: their findings are
    withdrawn, with the correction's reason (kept, not deleted; an action one raised
    stays on its plan for its owner, and the audit's page says its finding was
    corrected). Returns how many."""
    findings = list(
        Finding.objects.select_for_update().filter(answer__in=answers, status=Finding.Status.OPEN)
    )
    now = timezone.now()
    for finding in findings:
        finding.status = Finding.Status.WITHDRAWN
        finding.withdrawn_by, finding.withdrawn_at = by, now
        finding.withdrawn_reason = reason[:300]
        _save(finding, by=by, reason=f"Withdrawn by a correction: {reason}")
    return len(findings)


def _escalate_repeat_finding(
    feed: IndicatorFeed, measurement: Measurement, answers: list[Answer]
) -> None:
    """A repeat finding on a monitored indicator is deterioration: recorded and
    escalated through the monitoring path (its ``Deterioration`` row, its email kind and
    its outbox key, one per period and result), so a result that also breaches its
    floor still sends one email."""
    from audits.services.monitoring import _escalation_recipients

    period = (
        MonitoringPeriod.objects.select_for_update(of=("self",))
        .select_related("plan__owner")
        .filter(plan=feed.indicator.plan, status=MonitoringPeriod.Status.OPEN)
        .first()
    )
    if (
        period is None
        or not MonitoredIndicator.objects.filter(
            period=period, indicator_id=feed.indicator_id
        ).exists()
    ):
        return
    if Deterioration.objects.filter(
        period=period, measurement=measurement, rule=REPEAT_RULE
    ).exists():
        return
    questions = sorted({a.question.key for a in answers})
    records = sorted({a.record.identifier for a in answers})
    row = Deterioration(
        period=period,
        indicator=feed.indicator,
        measurement=measurement,
        kind=Deterioration.Kind.REPEAT,
        rule=REPEAT_RULE,
        explanation=(
            f"Repeat audit finding: “No” to {', '.join(questions)} of "
            f"{feed.tool.name} for record{'s' if len(records) != 1 else ''} "
            f"{', '.join(records)} at {measurement.location} "
            f"({date_format(measurement.measured_on)}), a question this plan monitors."
        ),
    )
    _save(row, by=None, reason="Repeat audit finding in monitoring")
    outbox.queue(
        "audits-deterioration",
        key=f"audits-deterioration:{period.pk}:{measurement.pk}",
        recipients=_escalation_recipients(period),
        context={
            "plan": period.plan,
            "period": period,
            "measurement": measurement,
            "deteriorations": [row],
        },
    )


def _result_source(result: AuditResult, audit: Audit) -> tuple[str, str] | None:
    """The scope and key ``result`` was computed with at submission, so a correction
    recomputes it the same way whatever the indicator's feed says now. A result written
    before these were kept follows the current feed, if it is still the audit's tool's
    (None: the result stays as it was written)."""
    if result.scope:
        return result.scope, result.key
    try:
        feed = result.measurement.indicator.feed
    except IndicatorFeed.DoesNotExist:
        return None
    if feed.tool_id != audit.version.tool_id:
        return None
    return feed.scope, feed.key


@transaction.atomic
def correct_audit(
    *,
    audit: Audit,
    record: AuditRecord,
    by: User,
    values: dict[int, str],
    reason: str,
    identifier: str | None = None,
) -> list[str]:
    """Correct a submitted audit's answers. The previous answers stay in history with
    ``reason``, and every result the audit wrote is corrected through
    ``correct_measurement`` with the same reason, computed as it was at submission (the
    scope and key kept on its ``AuditResult``), even if the indicator's feed has changed
    since. Findings follow as at submission: a new "No" takes the submission's path
    (a repeat finding, escalated once in monitoring), and a "No" corrected away has its
    finding withdrawn with ``reason``."""
    reason = (reason or "").strip()
    if not reason:
        raise AuditRefused(["Say why the audit is being corrected."])
    if len(reason) > 300 or "\x00" in reason:
        raise AuditRefused(["Keep the reason to 300 characters."])
    locked = Audit.objects.select_for_update().select_related("version").get(pk=audit.pk)
    if not locked.is_submitted:
        raise AuditRefused(["An audit in progress is changed by answering, not correcting."])
    before = dict(record.answers.values_list("question_id", "value"))
    changes = _write_answers(
        audit=locked,
        record=record,
        by=by,
        identifier=identifier,
        values=values,
        reason=f"Corrected: {reason}",
    )
    if not changes:
        return changes
    problems = submission_problems(locked)
    if problems:
        raise AuditRefused(problems)
    scores = audit_scores(locked)
    results = AuditResult.objects.filter(audit=locked).select_related(
        "measurement__indicator__plan", "measurement__indicator__feed"
    )
    written: dict[int, Measurement] = {}
    for result in results:
        measurement = result.measurement
        written[measurement.indicator_id] = measurement
        source = _result_source(result, locked)
        if source is None:
            continue
        tally = scores.for_scope(*source)
        if tally is None or not tally.counted:
            continue
        fields = _result_fields(locked, measurement.indicator, tally)
        if (measurement.numerator, measurement.denominator) == (
            fields["numerator"],
            fields["denominator"],
        ) and (fields["value"] is None or measurement.value == fields["value"]):
            continue
        fields.pop("notes")
        try:
            measurement_services.correct_measurement(
                measurement=measurement,
                by=by,
                fields=fields,
                reason=f"Audit #{locked.pk}: {reason}",
            )
        except measurement_services.MeasurementRefused as refused:
            # e.g. the plan has closed since: its results no longer change, nor the audit.
            raise AuditRefused(
                [*refused.reasons, "Nothing was corrected: the audit's results could not be."]
            ) from None
    # Findings follow the answers exactly as at submission (``_findings_for_noes``).
    after = list(record.answers.select_related("question", "record"))
    was_no = {q for q, value in before.items() if value == Answer.NO}
    _withdraw_findings(
        [a for a in after if a.value != Answer.NO and a.question_id in was_no],
        by=by,
        reason=reason,
    )
    became_no = [a for a in after if a.value == Answer.NO and a.question_id not in was_no]
    if became_no:
        _findings_for_noes(
            locked,
            became_no,
            feeds_for(locked),
            written,
            by=by,
            correction=reason,
        )
    _save(locked, by=by, reason=f"Corrected: {reason}")
    return changes


# --- Failed questions -----------------------------------------------------------------


@transaction.atomic
def raise_action(
    *, answer: Answer, plan: Plan, by: User, owner: User, due_date: datetime.date
) -> Finding:
    """Raise an action on ``plan`` for a "No" answer: the question and the record's
    identifier in its description. One finding per answer."""
    audit = Audit.objects.select_for_update().get(pk=answer.record.audit_id)
    if not audit.is_submitted:
        raise AuditRefused(["Submit the audit before raising actions from it."])
    if answer.value != Answer.NO:
        raise AuditRefused(["Only a “No” answer raises an action."])
    if Finding.objects.filter(answer=answer).exists():
        raise AuditRefused(["This answer has already raised an action or joined a plan."])
    if plan.is_final or not plan.locations.filter(pk=audit.location_id).exists():
        raise AuditRefused([f"{plan.reference} is not an open plan at {audit.location.name}."])
    question = answer.question
    description = (
        f"Audit finding ({audit.version}, {date_format(audit.audited_on)}, "
        f"{audit.location.name}): “No” to {question.key} “{question.text}” "
        f"for record {answer.record.identifier}."
    )[:2000]
    try:
        action = plan_services.save_action(
            plan=plan,
            by=by,
            fields={"description": description, "owner": owner, "due_date": due_date},
        )
    except plan_services.TransitionRefused as refused:
        raise AuditRefused(refused.reasons) from None
    finding = Finding(
        audit=audit,
        answer=answer,
        plan=plan,
        kind=Finding.Kind.ACTION,
        action=action,
        created_by=by,
    )
    _save(finding, by=by, reason="Action raised from an audit finding")
    return finding


# --- Indicators fed by a tool ---------------------------------------------------------


@transaction.atomic
def feed_indicator(
    *, indicator: Indicator, tool: AuditTool, scope: str, key: str, by: User
) -> IndicatorFeed:
    """Feed ``indicator`` from ``tool``'s audits (or change what feeds it)."""
    version = current_version(tool)
    if (
        scope == IndicatorFeed.Scope.QUESTION
        and not version.questions.filter(key=key, kind=ToolQuestion.Kind.YES_NO).exists()
    ):
        raise AuditRefused([f"{tool.name} has no yes/no question {key}."])
    if scope == IndicatorFeed.Scope.SECTION and not version.sections.filter(key=key).exists():
        raise AuditRefused([f"{tool.name} has no section {key}."])
    if scope == IndicatorFeed.Scope.OVERALL:
        key = ""
    feed = IndicatorFeed.objects.filter(indicator=indicator).first() or IndicatorFeed(
        indicator=indicator
    )
    feed.tool, feed.scope, feed.key = tool, scope, key
    _save(feed, by=by, reason="Indicator fed by an audit tool")
    plan_services.touch_plan(indicator.plan_id)
    return feed
