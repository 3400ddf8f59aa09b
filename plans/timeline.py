"""A plan's history as sentences ("Jane Smith changed the target date from 1 Mar 2027
to 1 Apr 2027"), built from django-simple-history records in a fixed number of queries."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils.formats import date_format
from django.utils.timezone import localtime

from plans.models import Action, ClosureCriteria, Indicator, Plan, Trigger, User

# Fields whose change is noise on a timeline.
_SKIP = {"id", "plan", "position", "risk_score", "status_changed_at", "created_at", "created_by"}


@dataclass(frozen=True)
class Entry:
    """One moment of a plan's story. ``when`` is when it was entered (``None`` if that
    is not known); ``happened_on`` the day it happened, where that is its own fact (the
    day a plan was opened, a result measured, an action completed)."""

    when: datetime.datetime | None
    who: str
    text: str
    reason: str
    happened_on: datetime.date | None = None

    @property
    def day(self) -> datetime.date:
        """The day it happened: its own date, or the local day it was entered."""
        if self.happened_on is not None or self.when is None:
            return self.happened_on  # type: ignore[return-value]
        return localtime(self.when).date()

    @property
    def backdated(self) -> bool:
        """Entered on another day than it happened: show both."""
        return self.happened_on is not None and (
            self.when is None or localtime(self.when).date() != self.happened_on
        )

    @property
    def sort_key(self) -> tuple:
        """By the day it happened, then by when it was entered (entered-time unknown
        first)."""
        return (self.day, self.when is not None, self.when or _EPOCH)


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def newest_first(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: e.sort_key, reverse=True)


def oldest_first(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: e.sort_key)


def _display(record, field_name: str) -> str:
    field = record.instance_type._meta.get_field(field_name)
    value = getattr(record, field.attname)
    if value is None or value == "":
        return "nothing"
    if field.choices:
        return str(dict(field.choices).get(value, value))
    if isinstance(value, datetime.datetime):
        return date_format(localtime(value), "DATETIME_FORMAT")
    if isinstance(value, datetime.date):
        return date_format(value, "DATE_FORMAT")
    if isinstance(value, list):
        return ", ".join(str(v).replace("_", " ") for v in value) or "nothing"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _as_it_was(record):
    """The object as this history record saw it, for its ``str()``. Not
    ``record.instance``: for a model with fields left out of history (an indicator's
    ``last_measured_on``) that reads the live row, one query per record."""
    model = record.instance_type
    tracked = {
        field.attname: getattr(record, field.attname)
        for field in model._meta.concrete_fields
        if hasattr(record, field.attname)
    }
    return model(**tracked)


def _describe(record, previous, noun: str, users: dict[int, str]) -> str | None:
    if noun == "plan":
        label = "the plan"
    elif noun == "criteria":
        label = "the closure criteria"
    else:
        label = f"{noun} “{_as_it_was(record)}”"
    if record.history_type == "+":
        if noun == "plan":
            return "opened the plan"
        if noun == "trigger":
            return f"recorded {label}"
        if noun == "action" and record.status == Action.Status.COMPLETED:
            return f"added {label}, already completed"
        return f"added {label}"
    if record.history_type == "-":
        return f"removed {label}"
    if previous is None:
        return f"updated {label}"
    changes = []
    # Many-to-many changes are not told here, and diffing them costs simple-history
    # two queries per record (BENCHMARKS.md): left out.
    many_to_many = {f.name for f in record.instance_type._meta.many_to_many}
    delta = record.diff_against(previous, excluded_fields=_SKIP | many_to_many)
    for change in delta.changes:
        if change.field in _SKIP:
            continue
        field = record.instance_type._meta.get_field(change.field)
        if field.is_relation and not field.many_to_many:
            old = users.get(change.old) if field.related_model is User else None
            new = users.get(change.new) if field.related_model is User else None
            if old is not None or new is not None:
                changes.append(f"{field.verbose_name} from {old or 'nobody'} to {new or 'nobody'}")
            continue
        if field.many_to_many:
            continue
        old, new = _display(previous, change.field), _display(record, change.field)
        changes.append(f"{field.verbose_name} from {old} to {new}")
    if not changes:
        return None
    return f"changed {label}: " + "; ".join(changes)


def build_timeline(plan: Plan) -> list[Entry]:
    """The plan's own history, newest first (``Entry.sort_key``). Five history queries
    and one for names, whatever the plan's size. The plan page and the evidence pack
    add what other apps hold (``qip_portal/pages/timeline.py``)."""
    sources = [
        ("plan", Plan.history.filter(id=plan.pk)),
        ("criteria", ClosureCriteria.history.filter(plan_id=plan.pk)),
        ("indicator", Indicator.history.filter(plan_id=plan.pk)),
        ("trigger", Trigger.history.filter(plan_id=plan.pk)),
        ("action", Action.history.filter(plan_id=plan.pk)),
    ]
    records = []
    for noun, queryset in sources:
        rows = list(queryset.order_by("history_date", "history_id"))
        records.append((noun, rows))
    user_ids = {r.history_user_id for _, rows in records for r in rows if r.history_user_id}
    for noun, rows in records:
        if noun in ("plan", "action"):
            user_ids |= {r.owner_id for r in rows}
    users = {u.pk: str(u) for u in User.objects.filter(pk__in=user_ids)}
    entries: list[Entry] = []
    for noun, rows in records:
        previous_by_object: dict[int, object] = {}
        for record in rows:
            previous = previous_by_object.get(record.id)
            previous_by_object[record.id] = record
            text = _describe(record, previous, noun, users)
            if noun == "plan" and previous is not None and previous.status != record.status:
                old = previous.get_status_display().lower()
                text = f"moved the plan from {old} to {record.get_status_display().lower()}"
            if text is None:
                continue
            entries.append(
                Entry(
                    when=record.history_date,
                    who=users.get(record.history_user_id, "The system"),
                    text=text,
                    reason=record.history_change_reason or "",
                    happened_on=_happened_on(noun, record, previous),
                )
            )
    return newest_first(entries)


def _happened_on(noun: str, record, previous) -> datetime.date | None:
    """The day a change happened when it is a fact of its own, not the day it was typed:
    a plan opened, a trigger's event, an action completed."""
    if record.history_type != "+" and noun != "action":
        return None
    if noun == "plan":
        return record.opened_on
    if noun == "trigger":
        return record.occurred_on
    if noun != "action":
        return None
    newly_completed = record.status == Action.Status.COMPLETED and (
        previous is None or previous.status != Action.Status.COMPLETED
    )
    return record.completed_on if newly_completed else None
