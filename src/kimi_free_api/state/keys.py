"""Gateway API keys: from `API_KEYS` and from the store, kept only as hashes."""

from __future__ import annotations

import asyncio
import time

from kimi_free_api.state.sqlite import SqliteStore, key_hash

# How long the store's answer about a key is trusted before it is asked again.
_RECHECK_S = 5.0


class KeyRing:
    def __init__(self, configured: list[str], store: SqliteStore | None) -> None:
        self._hashes = {key_hash(key) for key in configured}
        self._store = store
        self._answers: dict[str, tuple[bool, float]] = {}

    async def check(self, key: str) -> bool:
        hashed = key_hash(key)
        if hashed in self._hashes:
            return True
        if self._store is None:
            return False
        known, until = self._answers.get(hashed, (False, 0.0))
        if until > time.monotonic():
            return known
        # Keys created with `kimi-free-api keys create` while the server runs are found within seconds, and
        # revoked ones stop working as fast.
        known = await asyncio.to_thread(self._store.key_known, hashed)
        if len(self._answers) > 10_000:
            self._answers.clear()
        self._answers[hashed] = (known, time.monotonic() + _RECHECK_S)
        return known
