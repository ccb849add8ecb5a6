"""Per-key limits and the request log shared by every instance through Redis (`REDIS_URL`).

A key's requests of the last minute are a sorted set of arrival times (a sliding window, trimmed by the same
script that counts), and its answers in progress are leases that expire unless renewed, like the account pool's
(state/redis.py), so a crashed instance frees its slots by itself. The log is one capped list, newest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import cast

import orjson
from redis.asyncio import Redis

from kimi_free_api.core.access.callers import RPM_WINDOW_S
from kimi_free_api.core.access.requestlog import LogEntry, LogQuery, Retention
from kimi_free_api.state.redis import P, RedisState

# Answers 0 when admitted, else the milliseconds until the oldest request of the window leaves it.
_ADMIT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""
_HOLD = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""
_SLOT_LEASE_MS = 60_000


class RedisKeyLimiter:
    def __init__(self, state: RedisState) -> None:
        self._redis: Redis = state.client
        self._admit = self._redis.register_script(_ADMIT)
        self._hold = self._redis.register_script(_HOLD)
        self._held: dict[str, str] = {}  # slot id -> key id, renewed while held
        self._renewer: asyncio.Task[None] | None = None

    async def admit(self, key_id: str, rpm: int) -> float:
        now_ms = int(time.time() * 1000)
        wait_ms = await self._admit(
            keys=[f"{P}rpm:{key_id}"], args=[now_ms, int(RPM_WINDOW_S * 1000), rpm, uuid.uuid4().hex]
        )
        return int(cast(int, wait_ms)) / 1000

    async def hold(self, key_id: str, cap: int, slot_id: str) -> bool:
        held = await self._hold(
            keys=[f"{P}streams:{key_id}"], args=[int(time.time() * 1000), cap, slot_id, _SLOT_LEASE_MS]
        )
        if not held:
            return False
        self._held[slot_id] = key_id
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew(), name="key-slot-renewer")
        return True

    async def release(self, key_id: str, slot_id: str) -> None:
        self._held.pop(slot_id, None)
        await self._redis.zrem(f"{P}streams:{key_id}", slot_id)

    async def _renew(self) -> None:
        while self._held:
            await asyncio.sleep(_SLOT_LEASE_MS / 3000)
            until = int(time.time() * 1000) + _SLOT_LEASE_MS
            for slot_id, key_id in list(self._held.items()):
                with contextlib.suppress(Exception):  # Redis briefly away: the next round renews
                    await self._redis.zadd(f"{P}streams:{key_id}", {slot_id: until}, xx=True)


class RedisRequestLog:
    def __init__(self, state: RedisState) -> None:
        self._redis: Redis = state.client

    async def append(self, entries: list[LogEntry], retention: Retention) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(f"{P}log", *(orjson.dumps(entry.to_json()) for entry in entries))
            pipe.ltrim(f"{P}log", 0, retention.max_entries - 1)
            await pipe.execute()

    async def recent(self, query: LogQuery, retention: Retention) -> list[LogEntry]:
        since = time.time() - retention.max_age_s
        raw = cast(list[str], await self._redis.lrange(f"{P}log", 0, retention.max_entries - 1))
        found: list[LogEntry] = []
        for item in raw:
            entry = LogEntry.from_json(orjson.loads(item))
            if entry.at < since:
                break  # newest first: the rest is older still
            if query.matches(entry):
                found.append(entry)
                if len(found) >= query.limit:
                    break
        return found
