"""Memoised pure computations, keyed by a digest of their exact inputs.

Some parts of a page are pure functions of rows the page reads anyway (an indicator's
chart from its results and verdict). ``memoised(namespace, inputs, compute)`` caches
``compute()`` under a digest of ``inputs`` (their pickle: every column of every row in
them, every field of every dataclass, recursively) and the code version: whatever
moved the plan's version (an action saved, ``core.freshness.data_changed()``), a chart
whose inputs are the same is not drawn again, and any change to any of its inputs
gives another key, so a memo can never show stale figures. Nothing here depends on
the freshness versions: the key *is* the content.

Only plain values may be cached (strings, numbers, dataclasses of them): never model
instances. If the cache cannot be reached the value is computed.
"""

from __future__ import annotations

import hashlib
import logging
import pickle  # nosec B403 - only our own values are pickled, never unpickled here

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

PREFIX = "qip:memo:"


def fingerprint(value) -> str:
    """A digest of ``value``'s whole content: its pickle, which holds every attribute of
    every object in it (a row's columns and the rows loaded with it, every field of a
    dataclass, recursively). Equal content may, rarely, pickle differently (attributes
    set in another order): that is a miss, never a stale value."""
    return hashlib.sha256(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()


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
