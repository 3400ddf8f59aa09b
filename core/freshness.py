"""The data version: one stamp in the shared cache that changes whenever domain data
does, so a cache of figures derived from many rows (the home page's counts, computed
over every plan a quality lead can see) can be keyed on it and is never older than the
last change.

What changes it:
- every save and delete of a model of the domain apps, and every change to their
  many-to-many relations (the receivers below, connected by ``CoreConfig.ready``);
- ``data_changed()``, which code that writes without model signals calls itself
  (bulk imports, ``QuerySet.update()``), and every scheduled job when it finishes
  (``core.jobs``).

The stamp changes at once *and* again when the transaction commits: a page computed by
another request between the two (reading the rows as they were before the commit)
is cached under the first stamp only, and the second makes it unreachable.

Keyed caches still expire (``settings.DERIVED_CACHE_SECONDS``): figures that depend on
the clock (a plan turning stale at midnight) and a development server whose scheduled
jobs run in another process (a per-process cache, without Redis) are at most that old.
"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

KEY = "qip:data-version"
DOMAIN_APPS = frozenset({"plans", "audits", "governance", "learning"})


def data_version() -> str:
    version = cache.get(KEY)
    if version is None:
        cache.add(KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(KEY)
    return version


def _new_version() -> None:
    cache.set(KEY, uuid.uuid4().hex, timeout=None)


def data_changed() -> None:
    """Domain data changed (or is about to, in this transaction)."""
    _new_version()
    transaction.on_commit(_new_version)


def _is_domain_model(model) -> bool:
    # simple-history's records are written beside their instance, which is enough.
    return model._meta.app_label in DOMAIN_APPS and not hasattr(model, "instance_type")


def _on_change(sender, **kwargs) -> None:
    if _is_domain_model(sender):
        data_changed()


def _on_m2m_change(sender, instance, action, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear") and _is_domain_model(type(instance)):
        data_changed()


def connect() -> None:
    post_save.connect(_on_change, dispatch_uid="core.freshness.save")
    post_delete.connect(_on_change, dispatch_uid="core.freshness.delete")
    m2m_changed.connect(_on_m2m_change, dispatch_uid="core.freshness.m2m")


def cached(key: str, compute):
    """``compute()``, cached under ``key`` and the current data version."""
    from django.conf import settings

    full_key = f"qip:derived:{key}:{data_version()}"
    value = cache.get(full_key)
    if value is None:
        value = compute()
        cache.set(full_key, value, timeout=settings.DERIVED_CACHE_SECONDS)
    return value
