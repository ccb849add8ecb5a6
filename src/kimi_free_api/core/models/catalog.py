"""The upstream's model catalog, fetched with a client's token and shared by every request for a while."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.models.modelspec import CatalogModel

log = logging.getLogger(__name__)
_RETRY_AFTER_FAILURE_S = 60.0


class CatalogSource(Protocol):
    async def available_models(self, token: str) -> list[CatalogModel]: ...


class ModelCatalog:
    def __init__(self, upstream: CatalogSource, ttl_s: float) -> None:
        self._upstream = upstream
        self._ttl_s = ttl_s
        self._models: dict[str, CatalogModel] = {}
        self._fetched_at = float("-inf")
        self._inflight: asyncio.Task[dict[str, CatalogModel]] | None = None

    @property
    def cached(self) -> dict[str, CatalogModel]:
        return self._models

    def fresh(self) -> bool:
        return time.monotonic() - self._fetched_at < self._ttl_s

    async def get(self, token: str | None) -> dict[str, CatalogModel]:
        """The catalog, refreshed when stale and a token is at hand; a failed fetch keeps the last one."""
        if self.fresh() or token is None:
            return self._models
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch(token))
            self._inflight.add_done_callback(self._clear_inflight)
        try:
            return await asyncio.shield(self._inflight)
        except GatewayError as exc:
            log.warning("model catalog unavailable, using the last one: %s", exc.message)
            return self._models

    def _clear_inflight(self, _: object) -> None:
        self._inflight = None

    async def _fetch(self, token: str) -> dict[str, CatalogModel]:
        try:
            models = await self._upstream.available_models(token)
        except GatewayError:
            # Try again in a minute rather than on every request: each try is an upstream call.
            self._fetched_at = time.monotonic() - self._ttl_s + _RETRY_AFTER_FAILURE_S
            raise
        self._models = {m.id: m for m in models}
        self._fetched_at = time.monotonic()
        return self._models
