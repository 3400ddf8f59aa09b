"""Memoised pure computations, keyed by a digest of their exact inputs.

Some parts of a page are pure functions of rows the page reads anyway (an indicator's
chart from its results and verdict). ``memoised(namespace, inputs, compute)`` caches
``compute()`` under a digest of ``inputs`` (every concrete column of every row in
them, every field of every dataclass, recursively) and the code version: whatever
moved the plan's version (an action saved, ``core.freshness.data_changed()``), a chart
whose inputs are the same is not drawn again, and any change to any of its inputs
gives another key, so a memo can never show stale figures. Nothing here depends on
the freshness versions: the key *is* the content.

Only plain values may be cached (strings, numbers, dataclasses of them): never model
instances. If the cache cannot be reached the value is computed.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.db import models

logger = logging.getLogger(__name__)

PREFIX = "qip:memo:"


def _feed(update, value, depth: int = 0) -> None:
    if depth > 40:
        raise ValueError("memo inputs nested too deeply")
    if value is None or isinstance(
        value, bool | int | float | str | bytes | decimal.Decimal | datetime.date | datetime.time
    ):
        # The type too: 1, 1.0, "1" and Decimal("1") are different inputs.
        update(f"{type(value).__name__}:{value!r};")
        return
    if isinstance(value, enum.Enum):
        update(f"enum:{type(value).__qualname__}.{value.name}={value.value!r};")
        return
    if isinstance(value, models.Model):
        meta = value._meta
        update(f"model:{meta.label}(")
        # Every concrete column that is loaded (a deferred one is not read: reading it
        # would be a query, and what is not loaded cannot have been used).
        for f in meta.concrete_fields:
            if f.attname in value.__dict__:
                update(f"{f.attname}=")
                _feed(update, value.__dict__[f.attname], depth + 1)
        update(");")
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        update(f"dc:{type(value).__qualname__}(")
        for f in dataclasses.fields(value):
            update(f"{f.name}=")
            _feed(update, getattr(value, f.name), depth + 1)
        update(");")
        return
    if isinstance(value, dict):
        update("{")
        for k in sorted(value, key=repr):
            _feed(update, k, depth + 1)
            _feed(update, value[k], depth + 1)
        update("};")
        return
    if isinstance(value, list | tuple):
        update(f"{type(value).__name__}[")
        for item in value:
            _feed(update, item, depth + 1)
        update("];")
        return
    if isinstance(value, set | frozenset):
        update("set[")
        for item in sorted(value, key=repr):
            _feed(update, item, depth + 1)
        update("];")
        return
    if hasattr(value, "__dict__"):
        update(f"obj:{type(value).__qualname__}(")
        for k in sorted(value.__dict__):
            if not k.startswith("_"):
                update(f"{k}=")
                _feed(update, value.__dict__[k], depth + 1)
        update(");")
        return
    if hasattr(value, "__slots__"):
        update(f"slots:{type(value).__qualname__}(")
        for k in value.__slots__:
            update(f"{k}=")
            _feed(update, getattr(value, k, None), depth + 1)
        update(");")
        return
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def fingerprint(value) -> str:
    """A digest of ``value``'s whole content (see the module's docstring)."""
    digest = hashlib.sha256()
    parts: list[str] = []
    _feed(parts.append, value)
    digest.update("".join(parts).encode())
    return digest.hexdigest()


def key_for(namespace: str, inputs) -> str:
    from core.freshness import code_version

    return f"{PREFIX}{namespace}:{code_version()}:{fingerprint(inputs)}"


def memoised(namespace: str, inputs, compute):
    """``compute()``, cached under the digest of ``inputs`` (and the code version)."""
    key = key_for(namespace, inputs)
    try:
        value = cache.get(key)
    except Exception:  # noqa: BLE001 - any cache failure: compute without it
        logger.warning("The memo cache could not be read.", exc_info=True)
        return compute()
    if value is None:
        value = compute()
        try:
            cache.set(key, value, timeout=settings.MEMO_CACHE_SECONDS)
        except Exception:  # noqa: BLE001
            logger.warning("A memo could not be cached.", exc_info=True)
    return value
