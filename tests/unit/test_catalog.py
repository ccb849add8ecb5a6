"""ModelCatalog: TTL caching, one shared fetch for concurrent callers, and a failed fetch that is not hammered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from kimi_free_api.core.errors import UpstreamUnavailable
from kimi_free_api.core.events import ChatEvent
from kimi_free_api.core.models import catalog as catalog_module
from kimi_free_api.core.models.catalog import ModelCatalog
from kimi_free_api.core.models.modelspec import CatalogModel
from kimi_free_api.core.ports import UpstreamChat

TTL = 600.0
K2 = CatalogModel(id="kimi-k2", display_name="K2", scenario="SCENARIO_K2")
K26 = CatalogModel(id="kimi-k2.6", display_name="K2.6", scenario="SCENARIO_K2D5")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class FakeUpstream:
    """Only available_models is used by the catalog; the rest satisfies the KimiUpstream protocol."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.models: list[CatalogModel] = [K2]
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def available_models(self, token: str) -> list[CatalogModel]:
        self.calls.append(token)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise UpstreamUnavailable("Kimi is unavailable: maintenance")
        return list(self.models)

    def chat(self, token: str, request: UpstreamChat) -> AsyncIterator[list[ChatEvent]]:
        raise NotImplementedError

    async def cancel_chat(self, token: str, chat_id: str, message_id: str) -> None:
        raise NotImplementedError

    async def delete_chat(self, token: str, chat_id: str) -> None:
        raise NotImplementedError

    async def check_token(self, token: str) -> bool:
        raise NotImplementedError


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    # Only the catalog module's view of `time` is replaced; the event loop keeps the real clock.
    monkeypatch.setattr(catalog_module, "time", fake)
    return fake


async def test_fetches_once_within_the_ttl(clock: FakeClock) -> None:
    upstream = FakeUpstream()
    models = ModelCatalog(upstream, ttl_s=TTL)
    assert not models.fresh()
    assert await models.get("t1") == {"kimi-k2": K2}
    assert models.fresh()
    clock.now += TTL - 1
    upstream.models = [K26]
    assert await models.get("t2") == {"kimi-k2": K2}
    assert upstream.calls == ["t1"]
    clock.now += 2
    assert not models.fresh()
    assert await models.get("t3") == {"kimi-k2.6": K26}
    assert models.cached == {"kimi-k2.6": K26}
    assert upstream.calls == ["t1", "t3"]


async def test_without_a_token_the_cache_is_served_as_is(clock: FakeClock) -> None:
    upstream = FakeUpstream()
    models = ModelCatalog(upstream, ttl_s=TTL)
    assert await models.get(None) == {}
    assert upstream.calls == []
    await models.get("t")
    clock.now += TTL * 10
    assert await models.get(None) == {"kimi-k2": K2}
    assert upstream.calls == ["t"]


async def test_concurrent_gets_share_one_fetch(clock: FakeClock) -> None:
    upstream = FakeUpstream()
    upstream.gate = asyncio.Event()
    models = ModelCatalog(upstream, ttl_s=TTL)
    waiters = [asyncio.create_task(models.get(f"t{i}")) for i in range(10)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert upstream.calls == ["t0"]
    upstream.gate.set()
    results = await asyncio.gather(*waiters)
    assert upstream.calls == ["t0"]
    assert all(result is results[0] for result in results)
    assert results[0] == {"kimi-k2": K2}


async def test_a_cancelled_waiter_does_not_cancel_the_shared_fetch(clock: FakeClock) -> None:
    upstream = FakeUpstream()
    upstream.gate = asyncio.Event()
    models = ModelCatalog(upstream, ttl_s=TTL)
    first = asyncio.create_task(models.get("a"))
    await asyncio.sleep(0)
    second = asyncio.create_task(models.get("b"))
    await asyncio.sleep(0)
    first.cancel()
    upstream.gate.set()
    assert await second == {"kimi-k2": K2}
    assert first.cancelled()
    assert upstream.calls == ["a"]


async def test_failed_fetch_keeps_the_last_catalog_and_waits_before_retrying(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = FakeUpstream()
    models = ModelCatalog(upstream, ttl_s=TTL)
    assert await models.get("secret-token-1") == {"kimi-k2": K2}
    clock.now += TTL + 1
    upstream.fail = True
    with caplog.at_level(logging.WARNING, logger="kimi_free_api.core.models.catalog"):
        assert await models.get("secret-token-2") == {"kimi-k2": K2}
    assert "model catalog unavailable" in caplog.text
    assert "maintenance" in caplog.text
    assert "secret-token" not in caplog.text
    assert len(upstream.calls) == 2
    # Not retried on every call: the next minute is served from the old catalog.
    for _ in range(5):
        clock.now += 10
        assert await models.get("t") == {"kimi-k2": K2}
    assert len(upstream.calls) == 2
    clock.now += 11  # 61 s after the failure
    upstream.fail = False
    upstream.models = [K26]
    assert await models.get("t") == {"kimi-k2.6": K26}
    assert len(upstream.calls) == 3


async def test_first_fetch_failing_gives_an_empty_catalog(clock: FakeClock) -> None:
    upstream = FakeUpstream()
    upstream.fail = True
    models = ModelCatalog(upstream, ttl_s=TTL)
    assert await models.get("t") == {}
    assert await models.get("t") == {}
    assert len(upstream.calls) == 1


async def test_concurrent_gets_during_a_failing_fetch_all_get_the_old_catalog(clock: FakeClock) -> None:
    upstream = FakeUpstream()
    models = ModelCatalog(upstream, ttl_s=TTL)
    await models.get("t")
    clock.now += TTL + 1
    upstream.fail = True
    upstream.gate = asyncio.Event()
    waiters = [asyncio.create_task(models.get("t")) for _ in range(5)]
    await asyncio.sleep(0)
    upstream.gate.set()
    assert await asyncio.gather(*waiters) == [{"kimi-k2": K2}] * 5
    assert len(upstream.calls) == 2
