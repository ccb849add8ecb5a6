"""MODEL_ALIASES end to end: the names agents hard-code answer on both surfaces, with the Kimi model they map to;
a custom map replaces the default; names no rule matches keep their 404."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI

from kimi_free_api.emulator import Account, Emulator
from tests.e2e.anthropic_support import anthropic_client
from tests.e2e.support import GatewayFactory, openai_client


@pytest.mark.parametrize(("model", "thinking"), [("gpt-4o", False), ("gpt-5", True), ("o3", True)])
async def test_openai_names(client: AsyncOpenAI, emulator: Emulator, model: str, thinking: bool) -> None:
    reply = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    assert reply.model == model  # the answer names the model the client asked for
    assert emulator.state.chat_requests[-1]["options"]["thinking"] is thinking
    assert (await client.models.retrieve(model)).id == model


async def test_a_custom_map(gateway_factory: GatewayFactory, account: Account, emulator: Emulator) -> None:
    gateway = await gateway_factory(model_aliases='{"claude-*": "kimi-search", "house-model": "kimi"}')
    async with anthropic_client(gateway, api_key=account.refresh_token) as claude:
        await claude.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert emulator.state.chat_requests[-1]["tools"][0]["type"] == "TOOL_TYPE_SEARCH"
    async with openai_client(gateway, account.refresh_token) as oa:
        await oa.chat.completions.create(model="HOUSE-MODEL", messages=[{"role": "user", "content": "Hi"}])
        with pytest.raises(openai.NotFoundError):  # the default map is replaced, not extended
            await oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])


async def test_no_aliases(gateway_factory: GatewayFactory, account: Account) -> None:
    gateway = await gateway_factory(model_aliases="")
    async with openai_client(gateway, account.refresh_token) as oa:
        with pytest.raises(openai.NotFoundError) as caught:
            await oa.chat.completions.create(model="claude-opus-5-5", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.code == "model_not_found"
