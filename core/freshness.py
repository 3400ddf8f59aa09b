"""The data version: one stamp in the shared cache that changes whenever domain data
does, so a cache of figures derived from many rows (the home page's counts, computed
over every plan a quality lead can see) can be keyed on it and is never older than the
last change.

What changes it:
- every save and delete of a model of the domain apps, and every change to their
  many-to-many relations (the receivers below, connected by ``CoreConfig.ready``),
  except a sign-in's record of its time;
- ``data_changed()``, which code that writes without model signals calls itself
  (bulk imports, ``QuerySet.update()``), and every scheduled job when it finishes
  (``core.jobs``).

The stamp changes at once *and* again when the transaction commits: a page computed by
another request between the two (reading the rows as they were before the commit)
is cached under the first stamp only, and the second makes it unreachable.

If the cache cannot be reached, figures are computed afresh on every view (and the
failure logged): a cache outage slows pages down, it does not break them.

A view that reads rows first and caches figures computed from them later holds the
version from before its first read (``pinned()``): a change committed in between
then leaves those figures under the older version, where nobody finds them.

Keyed caches still expire (``settings.DERIVED_CACHE_SECONDS``): figures that depend on
the clock (a plan turning stale at midnight) are at most that old. Every process must
share the cache for the version to reach them: Redis, or without it a folder of files
(``CACHE_DIR``), so the scheduled jobs of ``make run``, in a process of their own, move
the version the web server reads.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from contextvars import ContextVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

KEY = "qip:data-version"
DOMAIN_APPS = frozenset({"plans", "audits", "governance", "learning"})

logger = logging.getLogger(__name__)


def data_version() -> str | None:
    """The current stamp; None when the cache cannot be reached."""
    try:
        version = cache.get(KEY)
        if version is None:
            cache.add(KEY, uuid.uuid4().hex, timeout=None)
            version = cache.get(KEY)
    except Exception:  # noqa: BLE001 - any cache failure: compute without it
        logger.warning("The cache could not be read; figures are computed afresh.", exc_info=True)
        return None
    return version


def _new_version() -> None:
    try:
        cache.set(KEY, uuid.uuid4().hex, timeout=None)
    except Exception:  # noqa: BLE001 - logged; cached figures then expire on their own
        logger.error("The data version could not be moved on.", exc_info=True)


def data_changed() -> None:
    """Domain data changed (or is about to, in this transaction)."""
    _new_version()
    transaction.on_commit(_new_version)


def _is_domain_model(model) -> bool:
    # simple-history's records are written beside their instance, which is enough.
    return model._meta.app_label in DOMAIN_APPS and not hasattr(model, "instance_type")


# Saves that change nothing any figure is derived from: signing in records the time on
# the user (a morning's sign-ins would otherwise empty every cache again and again).
_BOOKKEEPING = frozenset({"last_login"})


def _on_change(sender, update_fields=None, **kwargs) -> None:
    if update_fields and set(update_fields) <= _BOOKKEEPING:
        return
    if _is_domain_model(sender):
        data_changed()


def _on_m2m_change(sender, instance, action, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear") and _is_domain_model(type(instance)):
        data_changed()


def connect() -> None:
    post_save.connect(_on_change, dispatch_uid="core.freshness.save")
    post_delete.connect(_on_change, dispatch_uid="core.freshness.delete")
    m2m_changed.connect(_on_m2m_change, dispatch_uid="core.freshness.m2m")


_pinned: ContextVar[str | None] = ContextVar("qip_pinned_data_version", default=None)


@contextlib.contextmanager
def pinned():
    """Inside, ``cached`` uses the data version read on entry. Enter before reading the
    rows the figures will be computed from."""
    token = _pinned.set(data_version())
    try:
        yield
    finally:
        _pinned.reset(token)


def cached(key: str, compute):
    """``compute()``, cached under ``key`` and the current data version (or the one
    ``pinned()`` holds)."""
    version = _pinned.get() or data_version()
    if version is None:
        return compute()
    full_key = f"qip:derived:{key}:{version}"
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
