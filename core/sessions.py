"""Sessions read from the shared cache, kept in the database (SESSION_ENGINE, used when
REDIS_URL is set).

Django's ``cached_db`` engine, made safe for several web nodes and for a cache that
goes away:

- A signed-in request reads its session from Redis, not from the database; the row is
  still written (at most once a minute: ``core.middleware``), so a session outlives a
  cache that is emptied or restarted.
- The idle limit does not rest on the cache's clock: each cached session carries the
  moment it expires, and one found past it is not used (the database, which knows the
  same moment, is asked instead and finds nothing). The absolute limit is
  ``core.middleware``'s, from the session's own data, as before.
- A cache that cannot be reached costs a database read, never an error page: reads fall
  back to the database and writes to the cache are skipped, with a warning in the log.
- Signing out (and a new key at sign-in) removes the cached copy *first*: if that
  fails, the sign-out fails and says so, rather than leave a copy that another node
  would go on accepting. All nodes share the cache, so a sign-out on one is a
  sign-out on all.

Only with a cache every node shares: without REDIS_URL the cache is each process's own
memory, where a sign-out in one process would leave the session alive in the others,
so the settings use Django's database engine instead.
"""

from __future__ import annotations

import logging
import time

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.contrib.sessions.backends.db import SessionStore as DBStore

logger = logging.getLogger(__name__)


class SessionStore(CachedDBStore):
    cache_key_prefix = "qip.sessions:"

    def _cache_copy(self, data: dict, expires_at: float) -> None:
        timeout = int(expires_at - time.time())
        if timeout <= 0:
            return
        try:
            self._cache.set(self.cache_key, {"expires": expires_at, "data": data}, timeout)
        except Exception:  # any cache failure: the database has the session
            logger.warning("Session not cached (the cache is unavailable)", exc_info=True)

    def load(self) -> dict:
        try:
            cached = self._cache.get(self.cache_key)
        except Exception:
            logger.warning("Session read from the database (the cache is unavailable)")
            cached = None
        if isinstance(cached, dict) and cached.get("expires", 0) > time.time():
            return cached["data"]
        row = self._get_session_from_db()  # None when missing or past its expiry
        if row is None:
            return {}
        data = self.decode(row.session_data)
        self._cache_copy(data, row.expire_date.timestamp())
        return data

    def exists(self, session_key: str) -> bool:
        """Whether a new key is taken already: the database is the record of that."""
        return DBStore.exists(self, session_key)

    def save(self, must_create: bool = False) -> None:
        DBStore.save(self, must_create)
        self._cache_copy(self._session, self.get_expiry_date().timestamp())

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self._cache.delete(self.cache_key_prefix + session_key)  # raises if it cannot
        DBStore.delete(self, session_key)
