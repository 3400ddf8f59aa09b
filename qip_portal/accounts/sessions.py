"""Ending a person's other sessions when what they may do changes.

A change of role (or of staff or superuser status), of Django group, or of governance
group membership (added, removed, made chair or delegate, chair passed on) moves the
person's ``session_version`` on. It is part of the hash Django checks on every request
(``User._get_session_auth_hash``), so every session signed in before the change ends
at its next request, and the person signs in again under the new role: with two-step
verification if the new role requires it. When the change is made in the person's own
session (an administrator changing their own role), that one session carries on.

Each change is a security event ("role_changed") naming who made it. The receivers
are connected in ``QipPortalConfig.ready``, so every path is covered: the Django admin,
the governance services and the shell alike.
"""

from __future__ import annotations

from django.contrib.auth import update_session_auth_hash
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from simple_history.models import HistoricalRecords

from core import security
from governance.models import Membership
from plans.models import User

# What a User row carries that decides what its sessions may do.
_ACCESS_FIELDS = ("role", "is_staff", "is_superuser")


def _current_request():
    # Set for the length of each request by simple-history's HistoryRequestMiddleware.
    return getattr(HistoricalRecords.context, "request", None)


def end_other_sessions(
    user_id: int, *, what: str, by: User | None = None, loaded: User | None = None
) -> None:
    """End every session of user ``user_id`` except the one making the change (if it is
    theirs), and record the change as a security event. ``loaded``, the caller's copy
    of the user if it has one, is brought up to date (signing in with a stale copy
    would start a session that is already over)."""
    User.objects.filter(pk=user_id).update(session_version=F("session_version") + 1)
    subject = User.objects.get(pk=user_id)
    if loaded is not None:
        loaded.session_version = subject.session_version
    request = _current_request()
    acting = getattr(request, "user", None)
    if by is None and acting is not None and acting.is_authenticated:
        by = acting
    security.record(
        "role_changed",
        request=request,
        user=subject,
        detail=f"{what}; changed by {by.get_username() if by else 'the system'}",
    )
    if (
        request is not None
        and hasattr(request, "session")
        and acting is not None
        and acting.is_authenticated
        and acting.pk == user_id
    ):
        update_session_auth_hash(request, subject)  # this session stays signed in


def _user_before_save(sender, instance: User, update_fields=None, **kwargs) -> None:
    instance._access_change = None
    if instance._state.adding or instance.pk is None:
        return  # a new account has no sessions
    if update_fields is not None and not set(update_fields) & set(_ACCESS_FIELDS):
        return  # e.g. last_login at sign-in
    before = User.objects.filter(pk=instance.pk).values(*_ACCESS_FIELDS).first()
    if before is None:
        return
    changes = [
        f"{field.replace('_', ' ')} {before[field]} → {getattr(instance, field)}"
        for field in _ACCESS_FIELDS
        if before[field] != getattr(instance, field)
    ]
    if changes:
        instance._access_change = ", ".join(changes)


def _user_after_save(sender, instance: User, created=False, **kwargs) -> None:
    change = getattr(instance, "_access_change", None)
    if change and not created:
        instance._access_change = None
        end_other_sessions(instance.pk, what=change, loaded=instance)


def _django_groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in {"post_add", "post_remove", "pre_clear"}:
        return
    verb = {"post_add": "added to", "post_remove": "removed from", "pre_clear": "removed from"}[
        action
    ]
    if reverse:  # group.user_set.add(...): instance is the group
        user_ids = pk_set or set(instance.user_set.values_list("pk", flat=True))
        groups = [instance.name]
    else:  # user.groups.add(...): instance is the user
        user_ids = {instance.pk}
        groups = list(
            instance.groups.model.objects.filter(pk__in=pk_set).values_list("name", flat=True)
            if pk_set
            else instance.groups.values_list("name", flat=True)
        )
    for user_id in user_ids:
        end_other_sessions(
            user_id,
            what=f"{verb} Django group {', '.join(groups)}",
            loaded=None if reverse else instance,
        )


def _membership_before_save(sender, instance: Membership, **kwargs) -> None:
    if instance.pk is None:
        instance._role_before = None
    else:
        instance._role_before = (
            Membership.objects.filter(pk=instance.pk).values_list("role", flat=True).first()
        )


def _loaded_user(membership: Membership) -> User | None:
    return membership.user if Membership.user.is_cached(membership) else None


def _membership_after_save(sender, instance: Membership, created=False, **kwargs) -> None:
    before = getattr(instance, "_role_before", None)
    by = getattr(instance, "_history_user", None)
    if created or before is None:
        what = f"added to {instance.group} as {instance.get_role_display().lower()}"
    elif before != instance.role:
        old = Membership.Role(before).label.lower()
        what = f"{old} → {instance.get_role_display().lower()} of {instance.group}"
    else:
        return
    end_other_sessions(instance.user_id, what=what, by=by, loaded=_loaded_user(instance))


def _membership_deleted(sender, instance: Membership, **kwargs) -> None:
    end_other_sessions(
        instance.user_id,
        what=f"removed from {instance.group}",
        by=getattr(instance, "_history_user", None),
        loaded=_loaded_user(instance),
    )


def connect() -> None:
    pre_save.connect(_user_before_save, sender=User, dispatch_uid="sessions_user_pre")
    post_save.connect(_user_after_save, sender=User, dispatch_uid="sessions_user_post")
    m2m_changed.connect(
        _django_groups_changed, sender=User.groups.through, dispatch_uid="sessions_groups"
    )
    pre_save.connect(_membership_before_save, sender=Membership, dispatch_uid="sessions_mem_pre")
    post_save.connect(_membership_after_save, sender=Membership, dispatch_uid="sessions_mem_post")
    post_delete.connect(_membership_deleted, sender=Membership, dispatch_uid="sessions_mem_del")
