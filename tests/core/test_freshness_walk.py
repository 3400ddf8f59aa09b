"""Every writer of every model moves the versions of what it changes (core.freshness).

The models are found with ``django.apps`` (every app of the project, many-to-many tables
included), so a model added later fails here until it is declared, in one line, in
``core.freshness.DECLARED``. Which plan a row belongs to is found from the schema (the
shortest chain of foreign keys from the model to ``Plan``), not from the declaration:
a declaration that names the wrong plan, or none, fails too.

The world is the demo data (``seed_demo``: every status, results, evidence, reports,
decisions, meetings, learning, monitoring). Each model's rows are then written by
``save()``, ``delete()``, ``QuerySet.update()``, ``bulk_update()`` and ``bulk_create()``
(each in a savepoint rolled back afterwards), and every one must move the version of
the row's plan (and of every scope it declares), and not the version of an unrelated
plan."""

from __future__ import annotations

from collections import deque

import pytest
from django.core.management import call_command
from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError

from core import freshness
from plans.models import Plan


def _plan_path(model) -> str | None:
    """The shortest chain of forward foreign keys (or one-to-one) from ``model`` to Plan,
    as a lookup ("indicator__plan"); "pk" for Plan; None when it has none."""
    if model is Plan:
        return "pk"
    queue = deque([(model, "")])
    seen = {model}
    while queue:
        current, path = queue.popleft()
        for field in current._meta.concrete_fields:
            if not (field.is_relation and (field.many_to_one or field.one_to_one)):
                continue
            target = field.related_model
            lookup = f"{path}__{field.name}" if path else field.name
            if target is Plan:
                return lookup
            if target not in seen and lookup.count("__") < 3:
                seen.add(target)
                queue.append((target, lookup))
    return None


def test_every_model_of_the_project_is_declared():
    models_found = freshness.project_models()
    assert len(models_found) > 30  # the walk sees the project (auto-created tables too)
    missing = [freshness.label(m) for m in models_found if freshness.affects(m) is None]
    assert not missing, (
        f"Declare {missing} in core.freshness.DECLARED (one line each: what a row of it "
        "changes on the pages, or NOT_SHOWN)."
    )
    known = {freshness.label(m) for m in models_found}
    assert set(freshness.DECLARED) <= known, set(freshness.DECLARED) - known


def test_a_model_linked_to_a_plan_declares_that_plan():
    """A row that belongs to a plan is on (or behind) that plan's pages: declared with
    the very plan the schema leads to (or explicitly not shown)."""
    # Rows of a plan that no cached page shows, each with its reason:
    allowed_not_shown = {
        "audits.ImportBatch",  # shown only on its import page, never cached
        # An audit's records, answers and PDF: shown only on the audit's own pages, never
        # cached (its results and findings are what a plan's pages show).
        "audits.AuditRecord",
        "audits.Answer",
        "audits.AuditPdf",
    }
    for model in freshness.project_models():
        path = _plan_path(model)
        declaration = freshness.affects(model)
        if path is None or declaration is freshness.NOT_SHOWN:
            if path is not None:
                assert freshness.label(model) in allowed_not_shown, freshness.label(model)
            continue
        assert declaration.plan is not None, f"{freshness.label(model)} leads to a plan"


SCOPES_OF_NOTE = ("epoch", "all", "gov")


class _Rollback(Exception):
    pass


def _snapshot(scopes):
    return freshness.versions(scopes)


def _plan_ids(model, pk, path) -> set:
    if path is None:
        return set()
    value = model._base_manager.filter(pk=pk).values_list(path, flat=True)
    return {v for v in value if v is not None}


def _writable_field(model):
    """A concrete column a writer can set to the value it holds (no change of meaning,
    yet a write): the first non-key one."""
    for field in model._meta.concrete_fields:
        if field.primary_key or field.is_relation or isinstance(field, models.FileField):
            continue
        return field
    for field in model._meta.concrete_fields:
        if not field.primary_key:
            return field
    return None


def _expected(model, obj, declaration) -> set[str]:
    """What must move, from the schema and the row (not from core.freshness's reading of
    the declaration): the plan the row belongs to, plus the declared scopes."""
    expected = set()
    plan_path = _plan_path(model)
    if plan_path is not None:
        expected |= {f"plan:{i}" for i in _plan_ids(model, obj.pk, plan_path)}
        if expected:
            expected.add("all")
    if declaration.gov:
        expected.add("gov")
    if declaration.everything:
        expected.add("epoch")
    if declaration.user:
        expected |= {f"user:{i}" for i in _plan_ids(model, obj.pk, declaration.user)}
    if declaration.location:
        expected |= {f"loc:{i}" for i in _plan_ids(model, obj.pk, declaration.location)}
    return expected


def _complete_the_world() -> None:
    """Rows of the models the demo data has none of, written plainly (the walk writes
    them; how they came to be does not matter here)."""
    from audits.models import AuditTheme, ImportBatch, IndicatorSchedule
    from governance.models import AgendaItem, ClosureReport, Decision, Meeting, ResidualRisk
    from plans.models import Indicator, User
    from qip_portal.packs.models import EvidencePack

    lead = User.objects.filter(role=User.Role.QUALITY_LEAD).first()
    plan = Plan.objects.filter(status=Plan.Status.LIVE).order_by("pk").first()
    meeting = Meeting.objects.first()
    theme = AuditTheme.objects.create(name="Walk audit")
    IndicatorSchedule.objects.create(
        indicator=Indicator.objects.filter(plan=plan).first(), audit_theme=theme
    )
    ImportBatch.objects.create(plan=plan, kind="csv", original_name="x.csv", created_by=lead)
    ResidualRisk.objects.create(plan=plan, description="Risk", monitoring="Check", recorded_by=lead)
    report = ClosureReport.objects.create(
        plan=plan,
        group=meeting.group,
        submitted_by=lead,
        sign_off_level=1,
        content_json="{}",
        content_html="<p></p>",
        sha256="0" * 64,
    )
    AgendaItem.objects.create(meeting=meeting, report=report, added_by=lead)
    Decision.objects.create(
        report=report,
        meeting=meeting,
        outcome="close",
        signed_by=lead,
        signed_as="chair",
        signature_meaning="Walk",
        snapshot_sha256="0" * 64,
    )
    pack = EvidencePack.objects.create(kind=EvidencePack.Kind.PLAN, plan=plan, requested_by=lead)
    _complete_the_newer_models(plan, lead, pack)


def _complete_the_newer_models(plan, lead, pack) -> None:
    import datetime

    from django.utils import timezone

    from audits.models import (
        Annotation,
        Answer,
        Audit,
        AuditRecord,
        AuditResult,
        Finding,
        IndicatorFeed,
        Measurement,
        ToolVersion,
    )
    from qip_portal.packs.models import PackShare, PackShareAccess

    today = timezone.localdate()
    indicator = plan.indicators.order_by("pk").first()
    version = ToolVersion.objects.order_by("pk").first()
    question = version.questions.order_by("pk").first()
    Annotation.objects.create(
        indicator=indicator, noted_on=today, text="Walk note", created_by=lead
    )
    IndicatorFeed.objects.filter(indicator=indicator).delete()
    IndicatorFeed.objects.create(indicator=indicator, tool=version.tool)
    audit = Audit.objects.create(
        version=version,
        location=plan.locations.first(),
        plan=plan,
        audited_on=today,
        sample_size=1,
        started_by=lead,
    )
    record = AuditRecord.objects.create(audit=audit, position=1, identifier="R1")
    answer = Answer.objects.create(record=record, question=question, value="no", answered_by=lead)
    Finding.objects.create(
        audit=audit, answer=answer, plan=plan, kind=Finding.Kind.REPEAT, created_by=lead
    )
    measurement = Measurement.objects.filter(indicator__plan=plan, audit_result=None).first()
    AuditResult.objects.create(audit=audit, measurement=measurement)
    share = PackShare.objects.create(
        plan=plan,
        pack=pack,
        recipient="Walk Inspector",
        selector="w" * PackShare.SELECTOR_CHARS,
        verifier_sha256="0" * 64,
        created_by=lead,
        expires_at=timezone.now() + datetime.timedelta(days=7),
    )
    PackShareAccess.objects.create(
        share=share, what=PackShareAccess.What.PAGE, outcome=PackShareAccess.Outcome.SERVED
    )


def _m2m_relation(through):
    """(the model holding the many-to-many field, the field, the through table's column
    pointing at that model, the other column)."""
    for model in freshness.project_models(include_auto_created=False):
        for field in model._meta.many_to_many:
            if field.remote_field.through is through:
                return (
                    model,
                    field,
                    through._meta.get_field(field.m2m_field_name()),
                    through._meta.get_field(field.m2m_reverse_field_name()),
                )
    raise LookupError(through)


def _write(watched, write, prepare=None):
    """The versions that ``write`` moved (after ``prepare``), in a savepoint rolled back
    afterwards; None when the database refused the write (nothing written)."""
    moved = None
    try:
        with transaction.atomic():
            if prepare is not None:
                prepare()
            before = freshness.versions(watched)
            write()
            after = freshness.versions(watched)
            moved = {s for s in watched if before[s] != after[s]}
            raise _Rollback
    except _Rollback:
        return moved
    except (ProtectedError, IntegrityError):
        return None


@pytest.mark.django_db
def test_every_writer_of_every_model_moves_the_versions_of_what_it_changes(settings):
    settings.DEBUG = True  # seed_demo refuses to run with DEBUG off
    call_command("seed_demo", verbosity=0)
    _complete_the_world()
    all_plans = list(Plan.objects.values_list("pk", flat=True))
    assert len(all_plans) > 5
    exercised: dict[str, set[str]] = {}
    failures: list[str] = []

    for model in freshness.project_models():
        declaration = freshness.affects(model)
        label = freshness.label(model)
        if declaration is freshness.NOT_SHOWN:
            continue
        rows = list(model._base_manager.order_by("pk")[:2])
        if not rows:
            failures.append(f"{label}: no row to write: add one in _complete_the_world()")
            continue
        field = _writable_field(model)
        manager = model._base_manager
        for obj in rows:
            expected = _expected(model, obj, declaration)
            own_plans = {s for s in expected if s.startswith("plan:")}
            others = [f"plan:{p}" for p in all_plans if f"plan:{p}" not in own_plans][:3]
            watched = sorted(expected | set(others) | set(SCOPES_OF_NOTE))
            writers = {}
            if model._meta.auto_created:
                # A many-to-many table: written through its relation's manager.
                owner_model, m2m, source, target = _m2m_relation(model)
                owner = owner_model._base_manager.get(pk=getattr(obj, source.attname))
                related = getattr(owner, m2m.name)
                other = getattr(obj, target.attname)
                writers["remove()"] = (lambda r=related, o=other: r.remove(o), None)
                writers["clear()"] = (lambda r=related: r.clear(), None)
                writers["add()"] = (
                    lambda r=related, o=other: r.add(o),
                    lambda r=related, o=other: r.remove(o),
                )
                writers["set()"] = (lambda r=related: r.set([]), None)
            else:
                writers["save()"] = (lambda o=obj: o.save(), None)
                writers["delete()"] = (lambda o=obj: o.delete(), None)
            if field is not None:
                value = getattr(obj, field.attname)
                writers["QuerySet.update()"] = (
                    lambda o=obj, f=field, v=value, m=manager: m.filter(pk=o.pk).update(
                        **{f.attname: v}
                    ),
                    None,
                )
                writers["bulk_update()"] = (
                    lambda o=obj, f=field, m=manager: m.bulk_update([o], [f.name]),
                    None,
                )
            writers["QuerySet.delete()"] = (
                lambda o=obj, m=manager: m.filter(pk=o.pk).delete(),
                None,
            )
            # Put back by bulk_create after a plain delete: only the bulk_create is judged.
            writers["bulk_create()"] = (
                lambda o=obj, m=manager: m.bulk_create([o]),
                lambda o=obj, m=manager: m.filter(pk=o.pk)._raw_delete(m.db),
            )
            pk = obj.pk
            for writer, (write, prepare) in writers.items():
                moved = _write(watched, write, prepare)
                obj.pk = pk  # delete() forgets it; the row itself was rolled back
                if moved is None:
                    continue  # refused (a protected row): nothing written
                exercised.setdefault(label, set()).add(writer)
                if not expected <= moved:
                    failures.append(f"{label} {writer}: did not move {sorted(expected - moved)}")
                wrongly = [o for o in others if o in moved] if "epoch" not in expected else []
                if wrongly:
                    failures.append(f"{label} {writer}: moved unrelated {wrongly}")

    assert not failures, "\n".join(failures)
    shown = {
        freshness.label(m)
        for m in freshness.project_models()
        if freshness.affects(m) is not freshness.NOT_SHOWN
    }
    assert set(exercised) == shown
    for label, writers in exercised.items():
        assert "QuerySet.update()" in writers and "bulk_create()" in writers, (label, writers)
