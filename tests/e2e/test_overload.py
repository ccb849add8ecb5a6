"""Kimi's peak-hour refusal of free accounts: one quick 503 with Retry-After, no tour of the pool, an optional
fallback model (evidence: `resource_exhausted` + REASON_SERVER_OVERLOADED_FOR_FREE_USER in an HTTP-200 trailer)."""

from __future__ import annotations

import time

import openai
import pytest
from openai import AsyncOpenAI

from kimi_free_api.emulator import Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.anthropic_support import anthropic_client
from tests.e2e.support import Gateway, GatewayFactory, openai_client

API_KEY = "gateway-key-for-tests-0123"


async def _server(gateway_factory: GatewayFactory, emulator: Emulator, **overrides: object) -> Gateway:
    accounts = [emulator.create_account(f"free{n}") for n in range(4)]
    return await gateway_factory(kimi_tokens=",".join(a.refresh_token for a in accounts), api_keys=API_KEY, **overrides)


async def _ask(client: AsyncOpenAI, model: str = "kimi") -> openai.types.chat.ChatCompletion:
    return await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "busy?"}])


async def test_free_tier_overload_is_one_quick_503(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    gateway = await _server(gateway_factory, emulator, failover_attempts=4, free_tier_retry_after_s=45)
    emulator.add_fault(Fault(kind="free_tier_overloaded", times=10))
    started = time.monotonic()
    async with openai_client(gateway, API_KEY) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await _ask(client)
    assert time.monotonic() - started < 2.0
    error = caught.value
    assert (error.status_code, error.code) == (503, "kimi_overloaded")
    assert "Too many people are chatting with Kimi" in error.message
    assert error.response.headers["Retry-After"] == "45"
    assert emulator.state.requests["chat"] == 1, "no other free account was tried"
    emulator.clear_faults()
    async with openai_client(gateway, API_KEY) as client:
        assert (await _ask(client)).choices[0].message.content, "no account was put to rest for it"


async def test_the_fallback_model_is_tried_once(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    gateway = await _server(gateway_factory, emulator, overload_fallback_model="k2d6-chat")
    emulator.add_fault(Fault(kind="free_tier_overloaded"))
    async with openai_client(gateway, API_KEY) as client:
        reply = await _ask(client, "k3")
    assert reply.choices[0].message.content == expected_answer("busy?", emulator.config)
    tried = [(r["scenario"], r["options"].get("model")) for r in emulator.state.chat_requests]
    assert tried == [("SCENARIO_K3", "k3"), ("SCENARIO_CHAT", "k2d6-chat")]
    assert reply.model == "k2d6-chat"  # the answer names the model that gave it


async def test_every_surface_names_the_fallback_that_answered(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await _server(gateway_factory, emulator, overload_fallback_model="k2d6-chat")
    async with openai_client(gateway, API_KEY) as client:
        emulator.add_fault(Fault(kind="free_tier_overloaded"))
        chunks = await client.chat.completions.create(
            model="k3", messages=[{"role": "user", "content": "busy?"}], stream=True
        )
        assert {chunk.model async for chunk in chunks} == {"k2d6-chat"}
        emulator.add_fault(Fault(kind="free_tier_overloaded"))
        response = await client.responses.create(model="k3", input="busy?")
        assert response.model == "k2d6-chat"
        assert (await _ask(client, "k3")).model == "k3"  # no refusal, no fallback
    async with anthropic_client(gateway, API_KEY) as anthropic:
        emulator.add_fault(Fault(kind="free_tier_overloaded"))
        message = await anthropic.messages.create(
            model="k3", max_tokens=100, messages=[{"role": "user", "content": "busy?"}]
        )
        assert message.model == "k2d6-chat"
        emulator.add_fault(Fault(kind="free_tier_overloaded"))
        async with anthropic.messages.stream(
            model="k3", max_tokens=100, messages=[{"role": "user", "content": "busy?"}]
        ) as stream:
            assert (await stream.get_final_message()).model == "k2d6-chat"


async def test_an_overloaded_fallback_is_not_tried_again(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    gateway = await _server(gateway_factory, emulator, overload_fallback_model="k2d6-chat")
    emulator.add_fault(Fault(kind="free_tier_overloaded", times=10))
    async with openai_client(gateway, API_KEY) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await _ask(client, "k3")
    assert caught.value.code == "kimi_overloaded"
    assert emulator.state.requests["chat"] == 2
