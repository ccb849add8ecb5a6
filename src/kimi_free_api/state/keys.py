"""Gateway API keys: from `API_KEYS` and from the store, kept only as hashes."""

from __future__ import annotations

import asyncio
import time

from kimi_free_api.core.access.callers import Caller
from kimi_free_api.state.sqlite import SqliteStore, key_hash

# How long the store's answer about a key is trusted before it is asked again.
_RECHECK_S = 5.0
# Keys from API_KEYS have no record: they are named after where they come from, with no limits.
CONFIGURED_NAME = "API_KEYS"


class KeyRing:
    def __init__(self, configured: list[str], store: SqliteStore | None) -> None:
        self._configured = {key_hash(key): Caller(f"env-{key_hash(key)[:8]}", CONFIGURED_NAME) for key in configured}
        self._store = store
        self._answers: dict[str, tuple[Caller | None, float]] = {}

    @property
    def configured_ids(self) -> tuple[str, ...]:
        return tuple(caller.key_id for caller in self._configured.values())

    async def identify(self, key: str) -> Caller | None:
        hashed = key_hash(key)
        configured = self._configured.get(hashed)
        if configured is not None or self._store is None:
            return configured
        found, until = self._answers.get(hashed, (None, 0.0))
        if until > time.monotonic():
            return found
        # Keys created with `kimi-free-api keys create` while the server runs are found within seconds, and
        # revoked ones stop working as fast (at once when revoked in the admin console: see `forget`).
        stored = await asyncio.to_thread(self._store.key_by_hash, hashed)
        found = Caller(stored.id, stored.name, stored.limits) if stored is not None else None
        if len(self._answers) > 10_000:
            self._answers.clear()
        self._answers[hashed] = (found, time.monotonic() + _RECHECK_S)
        return found

    def forget(self) -> None:
        """Drops the remembered answers: a key just revoked or changed in this process takes effect at once."""
        self._answers.clear()
