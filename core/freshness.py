"""Freshness: versions in the shared cache, one per plan and one per scope, that change
whenever the data a page shows does, so figures and rendered HTML derived from many rows
can be cached under them and are never older than the last change to what they show.

The versions ("scopes"):

- ``plan:<id>``: everything the plan's own pages show (its rows, results, evidence,
  reports, decisions, learning...);
- ``loc:<id>``: the plans at a location (a manager's register and home);
- ``all``: every plan (the register and home of those who see every location);
- ``user:<id>``: one person's own rows (role, locations, memberships, what they own);
- ``gov``: governance (groups, meetings, reports, decisions);
- ``epoch``: everything at once. It is part of every key; reference data (locations'
  names, themes) and ``data_changed()`` move it.

Every key also carries the code version (``code_version()``): a deploy never serves
HTML or figures cached by older code.

What moves them is declared per model in ``DECLARED`` below: one line per model saying
what a row of it touches (``plan="indicator__plan"``: the plan its indicator belongs to;
``user="owner"``; ``gov=True``; ``everything=True``; or ``NOT_SHOWN``). The receivers
(saves, deletes, many-to-many changes) and ``QuerySet.update()``, ``bulk_create()``
and ``bulk_update()`` (wrapped in ``connect()``) read it, so bulk paths (imports,
sweeps) move the versions of the rows they touch. A model of the project's apps with no
declaration fails ``tests/core/test_freshness_walk.py``; so does a declaration that
misses a writer.

A version changes at once *and* again when the transaction commits: a page computed by
another request between the two (reading the rows as they were before the commit) is
cached under the first version only, and the second makes it unreachable.

If the cache cannot be reached, figures are computed afresh on every view (and the
failure logged): a cache outage slows pages down, it does not break them.

A view that reads rows first and caches what it computes from them later holds the
versions from before its first read (``pinned()``): a change committed in between then
leaves that value under the older version, where nobody finds it.

Only plain values are cached (dicts, lists, tuples, strings, numbers, dates, rendered
HTML): never model instances. Keyed caches still expire (``settings.DERIVED_CACHE_SECONDS``):
figures that depend on the clock (a plan turning stale at midnight) are at most that old.
Every process must share the cache for the versions to reach them: Redis, or without it
a folder of files (``CACHE_DIR``), so the scheduled jobs of ``make run``, in a process of
their own, move the versions the web server reads.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

logger = logging.getLogger(__name__)

PREFIX = "qip:v:"
EPOCH = "epoch"
ALL = "all"
GOV = "gov"


# --- What each model's rows touch -----------------------------------------------------


@dataclass(frozen=True)
class Affects:
    """What a row of a model changes on the pages. Paths are Django lookups from the
    row ("indicator__plan"); "pk" is the row itself."""

    plan: str | None = None  # plan:<id>, all, and loc:<id> of the plan's locations
    location: str | None = None  # loc:<id>
    user: str | None = None  # user:<id>
    gov: bool = False  # gov
    everything: bool = False  # epoch: reference data every page may show

    @property
    def paths(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (("plan", self.plan), ("location", self.location), ("user", self.user))
            if v
        }


NOT_SHOWN = Affects()  # no cached page shows it (security log, outbox, counters)

# One line per model of the project's apps (auto-created many-to-many tables included):
# ``apps.get_models`` is walked by the test, and a model missing here fails it.
DECLARED: dict[str, Affects] = {
    # plans
    "plans.Plan": Affects(plan="pk", user="owner"),
    "plans.Plan_locations": Affects(plan="plan", location="location"),
    "plans.Plan_quality_statements": Affects(plan="plan"),
    "plans.Plan_regulations": Affects(plan="plan"),
    "plans.Trigger": Affects(plan="plan"),
    "plans.ClosureCriteria": Affects(plan="plan"),
    "plans.Indicator": Affects(plan="plan"),
    "plans.Action": Affects(plan="plan", user="owner"),
    "plans.User": Affects(user="pk", everything=True),  # names shown on every page
    "plans.User_locations": Affects(user="user", location="location"),
    "plans.User_groups": NOT_SHOWN,
    "plans.User_user_permissions": NOT_SHOWN,
    "plans.Location": Affects(everything=True),
    "plans.Theme": Affects(everything=True),
    "plans.QualityStatement": Affects(everything=True),
    "plans.Regulation": Affects(everything=True),
    "plans.PlanReferenceCounter": NOT_SHOWN,
    # audits
    "audits.AuditTheme": Affects(everything=True),
    "audits.IndicatorSchedule": Affects(plan="indicator__plan"),
    "audits.Measurement": Affects(plan="indicator__plan"),
    "audits.EvidenceItem": Affects(plan="plan"),
    # A spreadsheet between upload and commit: shown only on its own import page, which
    # is never cached. The results it imports are Measurements (bulk_create moves them).
    "audits.ImportBatch": NOT_SHOWN,
    "audits.MonitoringPeriod": Affects(plan="plan"),
    "audits.MonitoredIndicator": Affects(plan="period__plan"),
    "audits.Deterioration": Affects(plan="period__plan"),
    "audits.Annotation": Affects(plan="indicator__plan"),
    # Audit tools: a tool's name, sections and questions are shown wherever a plan is fed
    # by it (rarely edited, so any change moves everything).
    "audits.AuditTool": Affects(everything=True),
    "audits.ToolVersion": Affects(everything=True),
    "audits.ToolSection": Affects(everything=True),
    "audits.ToolQuestion": Affects(everything=True),
    "audits.IndicatorFeed": Affects(plan="indicator__plan"),
    "audits.Audit": Affects(plan="plan"),
    # An audit's records and answers are shown only on its own pages, never cached; what
    # reaches a plan's pages are its results (Measurements) and findings.
    "audits.AuditRecord": NOT_SHOWN,
    "audits.Answer": NOT_SHOWN,
    "audits.AuditResult": Affects(plan="measurement__indicator__plan"),
    "audits.Finding": Affects(plan="plan"),
    "audits.ToolImport": NOT_SHOWN,
    "audits.AuditPdf": NOT_SHOWN,
    # governance
    "governance.GovernanceGroup": Affects(gov=True, everything=True),
    "governance.Membership": Affects(user="user", gov=True),
    "governance.Meeting": Affects(gov=True),
    "governance.Meeting_attendees": Affects(gov=True),
    "governance.ResidualRisk": Affects(plan="plan"),
    "governance.ClosureReport": Affects(plan="plan", gov=True),
    "governance.AgendaItem": Affects(plan="report__plan", gov=True),
    "governance.Decision": Affects(plan="report__plan", gov=True),
    # learning
    "learning.LearningSummary": Affects(plan="plan"),
    "learning.Embedding": Affects(plan="summary__plan"),
    "learning.Acknowledgement": Affects(plan="summary__plan", user="manager"),
    "learning.LearningReview": Affects(plan="summary__plan"),
    # core and the composition app
    "core.SecurityEvent": NOT_SHOWN,
    "core.Alert": NOT_SHOWN,  # the failed-email count is read live, never cached
    "qip_portal.EvidencePack": Affects(plan="plan"),
    "qip_portal.PackShare": Affects(plan="plan"),
    "qip_portal.PackShareAccess": Affects(plan="share__plan"),
}


def project_models(*, include_auto_created: bool = True) -> list[type[models.Model]]:
    """Every model of the project's own apps (those under BASE_DIR), simple-history's
    records left out (they are written beside their instance)."""
    base = Path(settings.BASE_DIR).resolve()
    found = []
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if base not in path.parents or ".venv" in path.parts or "site-packages" in path.parts:
            continue
        for model in config.get_models(include_auto_created=include_auto_created):
            if _is_history(model):
                continue
            found.append(model)
    return found


def _is_history(model) -> bool:
    return hasattr(model, "instance_type") or model.__name__.startswith("Historical")


def label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.object_name}"


def affects(model) -> Affects | None:
    """The declaration of ``model`` (None: not a model of the project, or undeclared)."""
    return DECLARED.get(label(model))


# --- Code version ---------------------------------------------------------------------


@functools.cache
def code_version() -> str:
    """The code's version, part of every key: ``settings.CODE_VERSION`` (the environment's
    ``CODE_VERSION``, e.g. the image's commit) when set, otherwise a digest of the
    project's Python files and templates, which works on a clean copy with no .git and
    is the same on every node running the same code."""
    configured = getattr(settings, "CODE_VERSION", "")
    if configured:
        return hashlib.sha256(configured.encode()).hexdigest()[:12]
    base = Path(settings.BASE_DIR)
    digest = hashlib.sha256()
    skip = {"node_modules", "tests", "staticfiles", "media", "private-media", "__pycache__"}
    skip |= {"scripts", "docs", "venv", "env", "site-packages"}
    found = []
    for folder, dirs, files in os.walk(base):
        # Pruned as it goes: never into the virtualenv, .git or other hidden folders.
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".")]
        found += [Path(folder) / f for f in files if f.endswith((".py", ".html"))]
    for path in sorted(found):
        digest.update(str(path.relative_to(base)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# --- Versions -------------------------------------------------------------------------


def _keys(scopes: Iterable[str]) -> list[str]:
    return [PREFIX + s for s in scopes]


def versions(scopes: Iterable[str]) -> dict[str, str] | None:
    """The current version of each scope (``epoch`` always included); None when the cache
    cannot be reached. One round trip when every scope has a version already."""
    wanted = list(dict.fromkeys([EPOCH, *scopes]))
    try:
        found = cache.get_many(_keys(wanted))
        missing = [s for s in wanted if PREFIX + s not in found]
        for scope in missing:
            cache.add(PREFIX + scope, uuid.uuid4().hex[:16], timeout=None)
        if missing:
            found.update(cache.get_many(_keys(missing)))
    except Exception:  # noqa: BLE001 - any cache failure: compute without it
        logger.warning("The cache could not be read; figures are computed afresh.", exc_info=True)
        return None
    if any(PREFIX + s not in found for s in wanted):
        return None
    return {s: found[PREFIX + s] for s in wanted}


def _move(scopes: Iterable[str]) -> None:
    keys = _keys(set(scopes))
    if not keys:
        return
    try:
        cache.set_many({k: uuid.uuid4().hex[:16] for k in keys}, timeout=None)
    except Exception:  # noqa: BLE001 - logged; cached values then expire on their own
        logger.error("Versions could not be moved on.", exc_info=True)


def move(scopes: Iterable[str]) -> None:
    """These scopes changed (or are about to, in this transaction): at once and at
    commit. At commit, the transaction's first ``_CommitBatch`` moves every scope the
    transaction moved, then tells the listeners of ``on_plans_committed`` once; each
    move's own callback moves its scopes only if that batch has not run yet."""
    scopes = set(scopes)
    if not scopes:
        return
    _move(scopes)
    connection = transaction.get_connection()
    if not connection.in_atomic_block:  # autocommit: this was the commit
        _committed(scopes)
        return
    batch = _batch(connection)
    batch.scopes |= scopes
    transaction.on_commit(lambda: None if batch.done else _move(scopes))


class _CommitBatch:
    """The scopes a transaction moved, moved again once when it commits, and then told to
    the listeners of ``on_plans_committed`` (once per transaction, however many rows it
    wrote)."""

    def __init__(self) -> None:
        self.scopes: set[str] = set()
        self.done = False
        self.callback = self.run  # one bound method, found again in run_on_commit

    def run(self) -> None:
        self.done = True
        _committed(self.scopes)


def _batch(connection) -> _CommitBatch:
    batch = getattr(connection, "_qip_freshness_batch", None)
    # A new batch when there is none, when it ran (a test runs callbacks without a
    # commit), or when its callback was dropped by a rollback. Scopes added to a batch
    # from a savepoint rolled back later are moved anyway: harmless, never stale.
    if (
        batch is None
        or batch.done
        or not any(func is batch.callback for _sids, func, _robust in connection.run_on_commit)
    ):
        batch = _CommitBatch()
        connection._qip_freshness_batch = batch
        transaction.on_commit(batch.callback)
    return batch


# Called with the ids of the plans whose version a commit moved, after it moved them
# (``qip_portal.pages.plans`` re-renders their pages for their recent viewers). A failing
# listener is logged: it never breaks the request that committed.
_PLAN_LISTENERS: list = []


def on_plans_committed(listener) -> None:
    if listener not in _PLAN_LISTENERS:
        _PLAN_LISTENERS.append(listener)


def _committed(scopes: set[str]) -> None:
    _move(scopes)
    plan_ids = {int(s.split(":", 1)[1]) for s in scopes if s.startswith("plan:")}
    if not plan_ids:
        return
    for listener in _PLAN_LISTENERS:
        try:
            listener(plan_ids)
        except Exception:  # noqa: BLE001 - logged; the change is committed already
            logger.exception("A listener of committed plan changes failed.")


def data_changed() -> None:
    """Everything changed: every cached value is computed afresh."""
    move({EPOCH})


def plan_scopes(plan_ids: Iterable[int]) -> set[str]:
    """The scopes a change to these plans moves: each plan, every location it is at, all."""
    ids = {i for i in plan_ids if i is not None}
    if not ids:
        return set()
    from plans.models import Plan

    through = Plan.locations.through
    locations = set(
        through.objects.filter(plan_id__in=ids).values_list("location_id", flat=True).distinct()
    )
    return {ALL, *(f"plan:{i}" for i in ids), *(f"loc:{i}" for i in locations)}


def _scopes_for(declaration: Affects, values: dict[str, set]) -> set[str]:
    scopes: set[str] = set()
    if declaration.everything:
        scopes.add(EPOCH)
    if declaration.gov:
        scopes.add(GOV)
    scopes |= plan_scopes(values.get("plan", ()))
    scopes |= {f"loc:{i}" for i in values.get("location", ()) if i is not None}
    scopes |= {f"user:{i}" for i in values.get("user", ()) if i is not None}
    return scopes


def _resolve_objects(model, objs, path: str) -> set:
    """The ids ``path`` leads to from these (unsaved or saved) instances: in memory where
    the first step is a column on the row, with one query for the rest of the path."""
    if path == "pk":
        return {o.pk for o in objs}
    first, _, rest = path.partition("__")
    field = model._meta.get_field(first)
    if not rest:
        return {getattr(o, field.attname) for o in objs}
    ids = {getattr(o, field.attname) for o in objs} - {None}
    if not ids:
        return set()
    related = field.related_model
    # Walk in memory while the related objects are loaded already (no query).
    cached_objs = [getattr(o, first) for o in objs if field.is_cached(o)]
    if len(cached_objs) == len(objs) and "__" not in rest:
        return _resolve_objects(related, cached_objs, rest)
    return set(related._base_manager.filter(pk__in=ids).values_list(rest, flat=True))


def _touched_by_objects(model, objs) -> set[str]:
    declaration = affects(model)
    if declaration is None or not objs:
        return set()
    values = {kind: _resolve_objects(model, objs, path) for kind, path in declaration.paths.items()}
    return _scopes_for(declaration, values)


def _touched_by_queryset(qs) -> set[str]:
    declaration = affects(qs.model)
    if declaration is None:
        return set()
    paths = declaration.paths
    values: dict[str, set] = {kind: set() for kind in paths}
    if paths:
        for row in qs.order_by().values_list(*paths.values()):
            for kind, value in zip(paths, row, strict=True):
                values[kind].add(value)
    return _scopes_for(declaration, values)


# --- Receivers ------------------------------------------------------------------------

# Saves that change nothing any page shows: signing in records the time on the user (a
# morning's sign-ins would otherwise empty every cache again and again).
_BOOKKEEPING = frozenset({"last_login"})


def _only_bookkeeping(fields) -> bool:
    return bool(fields) and set(fields) <= _BOOKKEEPING


def _on_save(sender, instance, update_fields=None, raw=False, **kwargs) -> None:
    declaration = affects(sender)
    if declaration is None or _only_bookkeeping(update_fields):
        return
    if affects(sender) is not None:
        move(_touched_by_objects(sender, [instance]))


def _on_pre_delete(sender, instance, **kwargs) -> None:
    # Resolved while the row (and the rows it points to) still exist; moved after.
    if affects(sender) is not None:
        instance._freshness_scopes = _touched_by_objects(sender, [instance])
        move(instance._freshness_scopes)


def _on_post_delete(sender, instance, **kwargs) -> None:
    if affects(sender) is not None:
        move(getattr(instance, "_freshness_scopes", ()) or _touched_by_objects(sender, [instance]))


def _on_m2m_change(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if action == "pre_clear":
        # Which rows are about to go: the relation's other ends, read before.
        field = _m2m_ends(sender, type(instance), reverse)
        instance._freshness_cleared = set(
            sender.objects.filter(**{field[0]: instance.pk}).values_list(field[1], flat=True)
        )
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        pk_set = getattr(instance, "_freshness_cleared", set())
    through_declaration = affects(sender)
    if through_declaration is None:
        return
    source, target = _m2m_ends(sender, type(instance), reverse)
    rows = [sender(**{f"{source}_id": instance.pk, f"{target}_id": pk}) for pk in pk_set or ()]
    move(_touched_by_objects(sender, rows))


def _m2m_ends(through, instance_model, reverse) -> tuple[str, str]:
    """(the through table's field pointing at ``instance_model``, the other one)."""
    fks = [f for f in through._meta.fields if f.is_relation and f.many_to_one]
    first = next(f for f in fks if issubclass(instance_model, f.related_model))
    others = [f for f in fks if f is not first]
    if not others:  # a relation from a model to itself
        return first.name, first.name
    return first.name, others[0].name


# --- Bulk paths: QuerySet.update, bulk_create, bulk_update ----------------------------


def _wrap_bulk_paths() -> None:
    QuerySet = models.QuerySet
    if getattr(QuerySet.update, "_freshness", False):
        return
    original_update = QuerySet.update
    original_bulk_create = QuerySet.bulk_create
    original_bulk_update = QuerySet.bulk_update
    original_delete = QuerySet.delete

    @functools.wraps(original_update)
    def update(self, **kwargs):
        declaration = affects(self.model)
        if declaration is None or _only_bookkeeping(kwargs):
            return original_update(self, **kwargs)
        moved_paths = {p.split("__")[0] for p in declaration.paths.values()} & set(kwargs)
        pks = list(self.order_by().values_list("pk", flat=True)) if moved_paths else None
        before = _touched_by_queryset(self)
        move(before)
        count = original_update(self, **kwargs)
        if pks:  # the rows now point elsewhere: those move too
            move(_touched_by_queryset(self.model._base_manager.filter(pk__in=pks)) - before)
        return count

    @functools.wraps(original_bulk_create)
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        created = original_bulk_create(self, objs, *args, **kwargs)
        if affects(self.model) is not None:
            move(_touched_by_objects(self.model, objs))
        return created

    @functools.wraps(original_bulk_update)
    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        declaration = affects(self.model)
        if declaration is not None and _only_bookkeeping(fields):
            declaration = None
        before = set()
        if declaration is not None and objs:
            before = _touched_by_queryset(
                self.model._base_manager.filter(pk__in=[o.pk for o in objs])
            )
            move(before)
        count = original_bulk_update(self, objs, fields, *args, **kwargs)
        if declaration is not None and objs:
            move(_touched_by_objects(self.model, objs) - before)
        return count

    @functools.wraps(original_delete)
    def delete(self):
        # Many-to-many tables send no delete signals (Django sends none for auto-created
        # models); a direct delete of their rows moves what they touched.
        if self.model._meta.auto_created and affects(self.model) is not None:
            move(_touched_by_queryset(self))
        return original_delete(self)

    for func in (update, bulk_create, bulk_update, delete):
        func._freshness = True
    QuerySet.update = update
    QuerySet.bulk_create = bulk_create
    QuerySet.bulk_update = bulk_update
    QuerySet.delete = delete


def connect() -> None:
    post_save.connect(_on_save, dispatch_uid="core.freshness.save")
    pre_delete.connect(_on_pre_delete, dispatch_uid="core.freshness.pre_delete")
    post_delete.connect(_on_post_delete, dispatch_uid="core.freshness.delete")
    m2m_changed.connect(_on_m2m_change, dispatch_uid="core.freshness.m2m")
    _wrap_bulk_paths()


# --- Reading through the cache --------------------------------------------------------

_pinned: ContextVar[dict[str, str] | None] = ContextVar("qip_pinned_versions", default=None)


@contextlib.contextmanager
def pinned(*scopes: str):
    """Inside, ``cached`` uses the versions of ``scopes`` (and the epoch) read on entry.
    Enter before reading the rows the cached values will be computed from."""
    held = dict(_pinned.get() or {})
    read = versions([s for s in scopes if s not in held])
    # What an outer pin holds stays held.
    token = _pinned.set({"__outage__": ""} if read is None else {**read, **held})
    try:
        yield
    finally:
        _pinned.reset(token)


def stamp(scopes: Iterable[str]) -> str | None:
    """The part of a key that says which versions it was computed under (None: no cache)."""
    held = _pinned.get() or {}
    if "__outage__" in held:
        return None
    wanted = [EPOCH, *scopes]
    missing = [s for s in wanted if s not in held]
    found = dict(held)
    if missing:
        read = versions(missing)
        if read is None:
            return None
        found.update({s: read[s] for s in missing})  # what is held stays held
    parts = [f"{s}={found[s]}" for s in dict.fromkeys(wanted)]
    return code_version() + ":" + ":".join(parts)


def _full_key(key: str, version_stamp: str) -> str:
    raw = f"{key}|{version_stamp}"
    if len(raw) > 200:
        raw = f"{key[:80]}|{hashlib.sha256(raw.encode()).hexdigest()}"
    return "qip:derived:" + raw


def cached(key: str, compute, scopes: Iterable[str] = (ALL,)):
    """``compute()``, cached under ``key`` and the versions of ``scopes`` (those
    ``pinned()`` holds, or the current ones). ``compute`` must return plain values."""
    version_stamp = stamp(scopes)
    if version_stamp is None:
        return compute()
    full_key = _full_key(key, version_stamp)
    try:
        value = cache.get(full_key)
    except Exception:  # noqa: BLE001
        logger.warning("The cache could not be read; figures are computed afresh.", exc_info=True)
        return compute()
    if value is None:
        value = compute()
        try:
            cache.set(full_key, value, timeout=settings.DERIVED_CACHE_SECONDS)
        except Exception:  # noqa: BLE001
            logger.warning("Figures could not be cached.", exc_info=True)
    return value


def _keeps_many() -> bool:
    """Whether the cache keeps thousands of small values cheaply (``cached_each``)."""
    from django.core.cache import caches
    from django.core.cache.backends.filebased import FileBasedCache

    return not isinstance(caches["default"], FileBasedCache)


def cached_each(items: dict, compute) -> dict:
    """Many values at once, each cached under its own key and scopes, as ``cached`` does
    for one: ``items`` is {item: (key, scopes)}, ``compute(missing items)`` returns
    {item: plain value} for those not cached. Two round trips to the cache for what is
    found (versions, values) and one to store what was computed: a change to one item's
    scopes recomputes that item alone.

    Only where the cache keeps many small values cheaply (Redis, local memory): Django's
    file cache lists its folder on every write and culls beyond 300 entries, so
    thousands of values (one per plan) would cost more than they save, and push out
    everything else; there the values are computed every time."""
    if not items:
        return {}
    if not _keeps_many():
        return compute(list(items))
    held = _pinned.get() or {}
    if "__outage__" in held:
        return compute(list(items))
    scopes = {s for _, item_scopes in items.values() for s in item_scopes}
    read = versions([s for s in scopes if s not in held])
    if read is None:
        return compute(list(items))
    found = {**read, **held}
    prefix = code_version() + ":"
    full = {
        item: _full_key(
            key, prefix + ":".join(f"{s}={found[s]}" for s in dict.fromkeys([EPOCH, *sc]))
        )
        for item, (key, sc) in items.items()
    }
    try:
        got = cache.get_many(list(full.values()))
    except Exception:  # noqa: BLE001
        logger.warning("The cache could not be read; figures are computed afresh.", exc_info=True)
        return compute(list(items))
    result = {item: got[k] for item, k in full.items() if k in got}
    missing = [item for item in items if item not in result]
    if missing:
        computed = compute(missing)
        result.update(computed)
        try:
            cache.set_many(
                {full[item]: computed[item] for item in missing},
                timeout=settings.DERIVED_CACHE_SECONDS,
            )
        except Exception:  # noqa: BLE001
            logger.warning("Figures could not be cached.", exc_info=True)
    return result


def plan_scopes_of(user) -> list[str]:
    """The scopes of the plans ``user`` sees: every plan, or their locations' plans (as
    ``plans.access.visible_plans``). The scope names are part of the key, so two
    managers of the same locations share what is cached."""
    if user.sees_all_locations:
        return [ALL]
    return [f"loc:{i}" for i in sorted(user.locations.values_list("pk", flat=True))]


def viewer_scopes(user) -> list[str]:
    """The scopes of what ``user`` sees (``plan_scopes_of``) and of their own rows."""
    return [*plan_scopes_of(user), f"user:{user.pk}"]
