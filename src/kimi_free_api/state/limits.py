"""Per-key limits counted in this process (core.access.callers.KeyLimiter), for a single gateway instance; with
REDIS_URL every instance counts in Redis instead (state/redis_access.py)."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from kimi_free_api.core.access.callers import RPM_WINDOW_S


class LocalKeyLimiter:
    def __init__(self) -> None:
        self._starts: defaultdict[str, deque[float]] = defaultdict(deque)
        self._held: defaultdict[str, set[str]] = defaultdict(set)

    async def admit(self, key_id: str, rpm: int) -> float:
        now = time.monotonic()
        starts = self._starts[key_id]
        while starts and starts[0] <= now - RPM_WINDOW_S:
            starts.popleft()
        if len(starts) >= rpm:
            return starts[0] + RPM_WINDOW_S - now
        starts.append(now)
        return 0.0

    async def hold(self, key_id: str, cap: int, slot_id: str) -> bool:
        held = self._held[key_id]
        if len(held) >= cap:
            return False
        held.add(slot_id)
        return True

    async def release(self, key_id: str, slot_id: str) -> None:
        held = self._held.get(key_id)
        if held is not None:
            held.discard(slot_id)
            if not held:
                del self._held[key_id]
