"""Deleting the Kimi chats nobody will continue: idle past their time-to-live, or orphaned by a process that died
while writing an answer into them (found at the next start, or by another instance sharing the store).

A deletion that fails is tried again later, a bounded number of times: a chat whose token died (or was never real,
like the demo's) cannot be deleted by anyone, and retrying it forever would only fill the log."""

from __future__ import annotations

import asyncio
import logging
import time

from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.ports import Conversation, ConversationStore, KimiUpstream

log = logging.getLogger(__name__)
_BATCH = 100


class Janitor:
    def __init__(
        self,
        store: ConversationStore,
        upstream: KimiUpstream,
        instance: str,
        interval_s: float,
        *,
        attempts: int = 10,
        retry_after_s: float = 60.0,
    ) -> None:
        self._store = store
        self._upstream = upstream
        self.instance = instance
        self._interval_s = interval_s
        self._attempts = attempts
        self._retry_after_s = retry_after_s

    async def heartbeat(self) -> frozenset[str]:
        # Alive for three rounds: a missed beat or two does not make this process's chats look orphaned.
        return await self._store.live_instances(self.instance, self._interval_s * 3)

    async def sweep(self) -> int:
        """Deletes what is due now; answers how many chats were deleted."""
        now = time.time()
        live = await self.heartbeat()
        deleted = 0
        for conversation in await self._store.due(now, live, _BATCH):
            try:
                await self._upstream.delete_chat(conversation.token, conversation.chat_id)
            except GatewayError as exc:
                await self._failed(conversation, exc, now)
                continue
            await self._store.remove(conversation.chat_id)
            deleted += 1
        if deleted:
            log.info("deleted %d idle or orphaned Kimi chat(s)", deleted)
        return deleted

    async def _failed(self, conversation: Conversation, error: GatewayError, now: float) -> None:
        conversation.attempts += 1
        if conversation.attempts >= self._attempts:
            log.warning(
                "gave up deleting Kimi chat %s after %d failed attempts (last: %s); it stays in its Kimi account",
                conversation.chat_id,
                conversation.attempts,
                error.message,
            )
            await self._store.remove(conversation.chat_id)
            return
        # Said once per chat; the retries are quiet until the last one.
        level = logging.INFO if conversation.attempts == 1 else logging.DEBUG
        log.log(level, "could not delete chat %s (%s); trying again later", conversation.chat_id, error.message)
        conversation.writer = ""
        conversation.expires_at = now + self._retry_after_s
        await self._store.put(conversation)

    async def run(self) -> None:
        """Sweeps at once (a previous run may have left chats behind), then every interval."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("the chat sweeper failed; it runs again next round")
            await asyncio.sleep(self._interval_s)
