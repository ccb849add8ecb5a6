"""Deleting the Kimi chats nobody will continue: idle past their time-to-live, or orphaned by a process that died
while writing an answer into them (found at the next start, or by another instance sharing the store)."""

from __future__ import annotations

import asyncio
import logging
import time

from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.ports import ConversationStore, KimiUpstream

log = logging.getLogger(__name__)
_BATCH = 100
_RETRY_AFTER_S = 60.0


class Janitor:
    def __init__(self, store: ConversationStore, upstream: KimiUpstream, instance: str, interval_s: float) -> None:
        self._store = store
        self._upstream = upstream
        self.instance = instance
        self._interval_s = interval_s

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
                log.warning("could not delete chat %s yet: %s", conversation.chat_id, exc.message)
                conversation.writer = ""
                conversation.expires_at = now + _RETRY_AFTER_S
                await self._store.put(conversation)
                continue
            await self._store.remove(conversation.chat_id)
            deleted += 1
        if deleted:
            log.info("deleted %d idle or orphaned Kimi chat(s)", deleted)
        return deleted

    async def run(self) -> None:
        """Sweeps at once (a previous run may have left chats behind), then every interval."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("the chat sweeper failed; it runs again next round")
            await asyncio.sleep(self._interval_s)
