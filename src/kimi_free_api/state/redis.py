"""State shared by several gateway instances through Redis (`REDIS_URL`).

Conversations and the cleanup queue live in Redis instead of the SQLite file, and the account pool's in-flight
limits, start spacing, cooldowns and dead marks are kept there with atomic scripts, so no account is double-used
across instances. Instances announce themselves with a heartbeat; a chat still marked as being written by an
instance that stopped beating is an orphan, deleted by whichever instance sweeps next.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any, cast

from redis.asyncio import Redis

from kimi_free_api.core.attachments.files import StoredFile
from kimi_free_api.core.conversation.response_store import (
    CAPACITY,
    StoredResponse,
    decode_transcript,
    encode_transcript,
)
from kimi_free_api.core.ports import CachedAccess, Conversation

P = "kfa:"

# Replaces a conversation and its indexes in one step (another instance may be reading them).
_PUT = """
local conv, chat = KEYS[1], ARGV[1]
local old = redis.call('HGET', conv, 'key')
if old and old ~= '' and redis.call('GET', ARGV[8] .. old) == chat then redis.call('DEL', ARGV[8] .. old) end
redis.call('HSET', conv, 'chat_id', chat, 'account_id', ARGV[2], 'token', ARGV[3], 'message_id', ARGV[4],
           'key', ARGV[5], 'expires_at', ARGV[6], 'writer', ARGV[7], 'owner', ARGV[9], 'attempts', ARGV[10])
if ARGV[5] ~= '' then redis.call('SET', ARGV[8] .. ARGV[5], chat) end
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[3], 0, chat); redis.call('ZREM', KEYS[2], chat)
else
  redis.call('ZREM', KEYS[3], chat)
  if ARGV[6] ~= 'inf' then redis.call('ZADD', KEYS[2], ARGV[6], chat) else redis.call('ZREM', KEYS[2], chat) end
end
"""
_REMOVE = """
local conv, chat = KEYS[1], ARGV[1]
local old = redis.call('HGET', conv, 'key')
if old and old ~= '' and redis.call('GET', ARGV[2] .. old) == chat then redis.call('DEL', ARGV[2] .. old) end
redis.call('DEL', conv); redis.call('ZREM', KEYS[2], chat); redis.call('ZREM', KEYS[3], chat)
"""
# Takes one of an account's `cap` slots if one is free and the last start is far enough back. Slots are leases
# that expire, so a crashed instance cannot hold an account forever.
_CLAIM = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
local spacing = tonumber(ARGV[5])
if spacing > 0 then
  if redis.call('SET', KEYS[2], '1', 'PX', spacing, 'NX') == false then return 0 end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
return 1
"""

# Moves the log-out-everywhere mark only forward: another instance's later mark stays.
_END_BEFORE = """
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > old then redis.call('SET', KEYS[1], ARGV[1]) end
"""
_ENDED_BEFORE = f"{P}admin:ended-before"


def _ended_session(nonce: str) -> str:
    return f"{P}admin:ended:{nonce}"


def _number(value: str) -> float:
    return math.inf if value == "inf" else float(value)


class RedisState:
    def __init__(self, client: Redis) -> None:
        self.client = self._redis = client
        self._put = client.register_script(_PUT)
        self._remove = client.register_script(_REMOVE)
        self._claim = client.register_script(_CLAIM)
        self._end_before = client.register_script(_END_BEFORE)

    @classmethod
    def from_url(cls, url: str) -> RedisState:
        return cls(Redis.from_url(url, decode_responses=True))

    async def close(self) -> None:
        await self._redis.aclose()

    # --- conversations (core.ports.ConversationStore) ---

    async def put(self, conversation: Conversation) -> None:
        c = conversation
        expires = "inf" if math.isinf(c.expires_at) else repr(c.expires_at)
        await self._put(
            keys=[f"{P}conv:{c.chat_id}", f"{P}due", f"{P}writing"],
            args=[
                c.chat_id,
                c.account_id,
                c.token,
                c.message_id,
                c.key,
                expires,
                c.writer,
                f"{P}key:",
                c.owner,
                c.attempts,
            ],
        )

    async def _load(self, chat_id: str) -> Conversation | None:
        fields = cast(dict[str, str], await self._redis.hgetall(f"{P}conv:{chat_id}"))
        if not fields:
            return None
        return Conversation(
            chat_id=fields["chat_id"],
            account_id=fields["account_id"],
            token=fields["token"],
            message_id=fields["message_id"],
            key=fields["key"],
            expires_at=_number(fields["expires_at"]),
            writer=fields["writer"],
            # Absent in what an earlier version wrote.
            owner=fields.get("owner", ""),
            attempts=int(fields.get("attempts", 0)),
        )

    async def by_key(self, key: str) -> Conversation | None:
        chat_id = cast(str | None, await self._redis.get(f"{P}key:{key}"))
        return await self._load(chat_id) if chat_id else None

    async def by_chat(self, chat_id: str) -> Conversation | None:
        return await self._load(chat_id)

    async def remove(self, chat_id: str) -> None:
        await self._remove(keys=[f"{P}conv:{chat_id}", f"{P}due", f"{P}writing"], args=[chat_id, f"{P}key:"])

    async def live_instances(self, instance: str, ttl_s: float) -> frozenset[str]:
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(f"{P}instances", {instance: now + ttl_s})
            pipe.zremrangebyscore(f"{P}instances", "-inf", now)
            pipe.zrange(f"{P}instances", 0, -1)
            results: list[Any] = await pipe.execute()
        return frozenset(results[-1])

    async def due(self, now: float, live_writers: frozenset[str], limit: int) -> list[Conversation]:
        idle = cast(list[str], await self._redis.zrangebyscore(f"{P}due", "-inf", now, start=0, num=limit))
        writing = cast(list[str], await self._redis.zrange(f"{P}writing", 0, -1))
        found: list[Conversation] = []
        for chat_id in [*idle, *writing]:
            conversation = await self._load(chat_id)
            if conversation is None:
                await self.remove(chat_id)
            elif chat_id in idle or conversation.writer not in live_writers:
                found.append(conversation)
        return found[:limit]

    # --- exchanged access tokens (core.ports.TokenCache) ---

    async def load(self, credential_id: str) -> CachedAccess | None:
        fields = cast(dict[str, str], await self._redis.hgetall(f"{P}token:{credential_id}"))
        if not fields:
            return None
        return CachedAccess(fields["access_token"], float(fields["expires_at"]), fields["refresh_token"])

    async def save(self, credential_id: str, entry: CachedAccess) -> None:
        key = f"{P}token:{credential_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "access_token": entry.access_token,
                    "expires_at": repr(entry.expires_at),
                    "refresh_token": entry.refresh_token,
                },
            )
            # A rotated refresh token must outlive the access token it came with.
            pipe.expire(key, 90 * 24 * 3600)
            await pipe.execute()

    # --- ended admin console sessions (api.admin.ports.EndedSessions) ---

    async def end_session(self, nonce: str, expires_at: float) -> None:
        # Kept until the cookie would have expired anyway; after that its expiry refuses it.
        await self._redis.set(_ended_session(nonce), "1", px=max(1, math.ceil((expires_at - time.time()) * 1000)))

    async def end_sessions_before(self, issued_ms: int) -> None:
        await self._end_before(keys=[_ENDED_BEFORE], args=[issued_ms])

    async def session_ended(self, nonce: str, issued_ms: int) -> bool:
        ended, before = cast(list[str | None], await self._redis.mget(_ended_session(nonce), _ENDED_BEFORE))
        return ended is not None or (before is not None and int(before) > issued_ms)

    # --- the account pool's shared half (pool.scheduler.SharedAccounts) ---

    async def claim(self, account_id: str, cap: int, lease_id: str, lease_s: float, spacing_s: float) -> bool:
        claimed = await self._claim(
            keys=[f"{P}{kind}:{account_id}" for kind in ("leases", "start", "cool", "dead")],
            args=[time.time(), cap, lease_id, lease_s, int(spacing_s * 1000)],
        )
        return bool(claimed)

    async def renew(self, account_id: str, lease_id: str, lease_s: float) -> None:
        await self._redis.zadd(f"{P}leases:{account_id}", {lease_id: time.time() + lease_s}, xx=True)

    async def release(self, account_id: str, lease_id: str) -> None:
        await self._redis.zrem(f"{P}leases:{account_id}", lease_id)

    async def cool(self, account_id: str, until_s: float) -> None:
        await self._redis.set(f"{P}cool:{account_id}", "1", px=max(1, int(until_s * 1000)))

    async def kill(self, account_id: str) -> None:
        await self._redis.set(f"{P}dead:{account_id}", "1")

    async def revive(self, account_id: str) -> None:
        await self._redis.delete(f"{P}dead:{account_id}", f"{P}cool:{account_id}")

    async def health(self, account_ids: list[str]) -> dict[str, tuple[float, bool]]:
        """Each account's remaining shared cooldown (seconds) and dead mark."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for account_id in account_ids:
                pipe.pttl(f"{P}cool:{account_id}")
                pipe.exists(f"{P}dead:{account_id}")
            results: list[Any] = await pipe.execute()
        return {
            account_id: (max(0, results[2 * n]) / 1000, bool(results[2 * n + 1]))
            for n, account_id in enumerate(account_ids)
        }


class RedisFileRegistry:
    """The Files API's records shared by every instance (core.files.FileRegistry): a hash per file and a set of
    file ids per owner."""

    def __init__(self, state: RedisState) -> None:
        self._redis = state.client

    async def put(self, file: StoredFile) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(f"{P}file:{file.id}", mapping={name: str(value) for name, value in asdict(file).items()})
            pipe.sadd(f"{P}files:{file.owner}", file.id)
            await pipe.execute()

    async def get(self, file_id: str) -> StoredFile | None:
        return _stored_file(cast(dict[str, str], await self._redis.hgetall(f"{P}file:{file_id}")))

    async def remove(self, file_id: str) -> bool:
        found = await self.get(file_id)
        if found is None:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{P}file:{file_id}")
            pipe.srem(f"{P}files:{found.owner}", file_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def owned_by(self, owners: frozenset[str]) -> list[StoredFile]:
        ids: list[str] = []
        for owner in owners:
            ids += cast(set[str], await self._redis.smembers(f"{P}files:{owner}"))
        async with self._redis.pipeline(transaction=False) as pipe:
            for file_id in ids:
                pipe.hgetall(f"{P}file:{file_id}")
            found = [_stored_file(fields) for fields in await pipe.execute()]
        return sorted((file for file in found if file is not None), key=lambda file: (file.created_at, file.id))


def _stored_file(fields: dict[str, str]) -> StoredFile | None:
    if not fields:
        return None
    return StoredFile(
        id=fields["id"],
        kimi_id=fields["kimi_id"],
        owner=fields["owner"],
        filename=fields["filename"],
        bytes=int(fields["bytes"]),
        sha256=fields["sha256"],
        media_type=fields["media_type"],
        purpose=fields["purpose"],
        created_at=int(fields["created_at"]),
    )


class RedisResponseStore:
    """The Responses API's stored responses shared by every instance (core.response_store.ResponseStore): a hash per
    response, and a sorted set by last use that keeps the most recent `capacity`."""

    def __init__(self, state: RedisState, capacity: int = CAPACITY) -> None:
        self._redis = state.client
        self._capacity = capacity

    async def put(self, response: StoredResponse) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                f"{P}resp:{response.id}",
                mapping={
                    "owner": response.owner,
                    "messages": encode_transcript(response.messages).decode(),
                    "body": response.body.decode(),
                },
            )
            pipe.zadd(f"{P}responses", {response.id: time.time()})
            pipe.zcard(f"{P}responses")
            *_, count = await pipe.execute()
        if count > self._capacity:
            oldest = await self._redis.zpopmin(f"{P}responses", count - self._capacity)
            await self._redis.delete(*(f"{P}resp:{response_id}" for response_id, _ in cast(list[Any], oldest)))

    async def get(self, response_id: str) -> StoredResponse | None:
        fields = cast(dict[str, str], await self._redis.hgetall(f"{P}resp:{response_id}"))
        if not fields:
            return None
        await self._redis.zadd(f"{P}responses", {response_id: time.time()}, xx=True)  # used: the last to go
        return StoredResponse(
            response_id, fields["owner"], decode_transcript(fields["messages"].encode()), fields["body"].encode()
        )

    async def delete(self, response_id: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{P}resp:{response_id}")
            pipe.zrem(f"{P}responses", response_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)
