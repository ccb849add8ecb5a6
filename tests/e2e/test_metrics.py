"""GET /metrics after real requests (OpenAI and Anthropic clients, streamed and not, failures), scraped and read with
prometheus-client's own parser."""

from __future__ import annotations

import asyncio

import aiohttp
import anthropic
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kimi_free_api.emulator import Account, Emulator, Fault
from tests.e2e.support import Gateway, GatewayFactory, openai_client

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(gateway: Gateway, key: str = "") -> Samples:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http, http.get(gateway.url + "/metrics", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


async def test_requests_latency_first_content_tokens_and_accounts_are_counted(
    gateway: Gateway, account: Account
) -> None:
    chat = "/v1/chat/completions"
    async with openai_client(gateway, account.refresh_token) as client:
        await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "one"}])
        async for _ in await client.chat.completions.create(
            model="kimi",
            messages=[{"role": "user", "content": "two"}],
            stream=True,
            stream_options={"include_usage": True},
        ):
            pass
        async for _ in await client.chat.completions.create(
            model="kimi", messages=[{"role": "user", "content": "three, no usage asked"}], stream=True
        ):
            pass
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key=account.refresh_token, max_retries=0) as claude:
        message = await claude.messages.create(
            model="kimi", max_tokens=100, messages=[{"role": "user", "content": "four"}]
        )
        assert message.usage.output_tokens > 0

    samples = await scrape(gateway)
    assert value(samples, "kimi_free_api_requests_total", route=chat, model="kimi", status="200") == 3
    # A request that named no known model is counted without one: clients' strings never become labels.
    assert value(samples, "kimi_free_api_requests_total", route=chat, model="-", status="404") == 1
    assert value(samples, "kimi_free_api_requests_total", route="/v1/messages", model="kimi", status="200") == 1
    assert value(samples, "kimi_free_api_request_duration_seconds_count", route=chat) == 4
    assert value(samples, "kimi_free_api_first_content_seconds_count", model="kimi") == 4
    assert value(samples, "kimi_free_api_first_content_seconds_sum", model="kimi") > 0
    assert value(samples, "kimi_free_api_tokens_total", model="kimi", kind="prompt") > 4
    assert value(samples, "kimi_free_api_tokens_total", model="kimi", kind="completion") > 4
    assert value(samples, "kimi_free_api_streams_in_flight") == 0
    assert value(samples, "kimi_free_api_accounts", state="healthy", kind="client") == 1
    assert value(samples, "kimi_free_api_accounts", state="dead", kind="server") == 0


async def test_streams_in_flight_are_counted_while_open(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    emulator.configure(event_count=6, event_delay_ms=150)
    gateway = await gateway_factory()
    async with openai_client(gateway, account.refresh_token) as client:
        stream = await client.chat.completions.create(
            model="kimi", messages=[{"role": "user", "content": "a slow answer"}], stream=True
        )
        await anext(aiter(stream))
        assert value(await scrape(gateway), "kimi_free_api_streams_in_flight") == 1
        async for _ in stream:
            pass
    assert value(await scrape(gateway), "kimi_free_api_streams_in_flight") == 0


async def test_a_client_that_leaves_mid_stream_is_counted_as_499(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    emulator.configure(event_count=20, event_delay_ms=100)
    gateway = await gateway_factory()
    async with openai_client(gateway, account.refresh_token) as client:
        stream = await client.chat.completions.create(
            model="kimi", messages=[{"role": "user", "content": "I will not wait"}], stream=True
        )
        await anext(aiter(stream))
        await stream.close()

    async def counted_as_left() -> bool:
        samples = await scrape(gateway)
        left = value(samples, "kimi_free_api_requests_total", route="/v1/chat/completions", model="kimi", status="499")
        return left == 1 and value(samples, "kimi_free_api_streams_in_flight") == 0

    for _ in range(100):
        if await counted_as_left():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the abandoned stream was not counted as 499")


async def test_a_stream_broken_off_after_its_headers_counts_with_its_errors_status(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory()
    emulator.add_fault(Fault(kind="stream_error", after_events=2))
    async with openai_client(gateway, account.refresh_token) as client:
        with pytest.raises(openai.APIError):
            chunks = await client.chat.completions.create(
                model="kimi", messages=[{"role": "user", "content": "break off"}], stream=True
            )
            async for _ in chunks:
                pass
    samples = await scrape(gateway)
    route = "/v1/chat/completions"
    assert value(samples, "kimi_free_api_requests_total", route=route, model="kimi", status="502") == 1
    assert value(samples, "kimi_free_api_requests_total", route=route, model="kimi", status="200") == 0


async def test_upstream_failures_are_counted_by_kind(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(failover_attempts=3)
    emulator.add_fault(Fault(kind="unavailable", user_id=account.user_id, times=2))
    async with openai_client(gateway, account.refresh_token) as client:
        reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content  # the third attempt answered
        emulator.add_fault(Fault(kind="rate_limited", user_id=account.user_id, retry_after=30))
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "again"}])
    samples = await scrape(gateway)
    assert total(samples, "kimi_free_api_upstream_failures_total") == 3
    assert value(samples, "kimi_free_api_upstream_failures_total", kind="upstream_unavailable", phase="start") == 2
    assert value(samples, "kimi_free_api_upstream_failures_total", kind="rate_limited", phase="start") == 1
    assert value(samples, "kimi_free_api_accounts", state="cooling", kind="client") == 1


async def test_an_answer_broken_off_upstream_is_counted_apart(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory()
    emulator.add_fault(Fault(kind="stream_error", after_events=2, user_id=account.user_id))
    async with openai_client(gateway, account.refresh_token) as client:
        stream = await client.chat.completions.create(
            model="kimi", messages=[{"role": "user", "content": "break off"}], stream=True
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
    samples = await scrape(gateway)
    assert total(samples, "kimi_free_api_upstream_failures_total", phase="answer") == 1
    assert total(samples, "kimi_free_api_upstream_failures_total", phase="start") == 0


async def test_metrics_key_guards_the_scrape(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(metrics_key="scrape-key-0123456789")
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong-key"}):
            async with http.get(gateway.url + "/metrics", headers=headers) as response:
                assert response.status == 401
                error = (await response.json())["error"]
                assert error["code"] == "invalid_metrics_key"
                assert "scrape-key" not in error["message"]
    assert value(await scrape(gateway, "scrape-key-0123456789"), "kimi_free_api_streams_in_flight") == 0


async def test_metrics_can_be_switched_off(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(metrics_enabled=False)
    async with aiohttp.ClientSession() as http, http.get(gateway.url + "/metrics") as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "metrics_disabled"
