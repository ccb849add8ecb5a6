"""Usage numbers are real token counts of what Kimi read and wrote, reported once per answer."""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI

from kimi_free_api.config import Settings, SettingsError
from kimi_free_api.core.usage.tokenizer import BpeCounter
from kimi_free_api.core.usage.usage import estimate_tokens
from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.answers import expected_answer, expected_thinking
from tests.e2e.support import GatewayFactory, openai_client

COUNTER = BpeCounter()


def sent_text(emulator: Emulator, index: int = -1) -> str:
    return str(emulator.state.chat_requests[index]["message"]["blocks"][0]["text"]["content"])


async def test_non_streamed_usage_counts_prompt_and_answer(client: AsyncOpenAI, emulator: Emulator) -> None:
    reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "数一数 tokens"}])
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == COUNTER.count("数一数 tokens")
    assert reply.usage.completion_tokens == COUNTER.count(expected_answer("数一数 tokens", emulator.config))


async def test_streamed_usage_arrives_once_and_counts_thinking(client: AsyncOpenAI, emulator: Emulator) -> None:
    stream = await client.chat.completions.create(
        model="kimi-thinking",
        messages=[{"role": "user", "content": "think it over"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usages) == 1 and chunks[-1].usage is usages[0] and chunks[-1].choices == []
    usage = usages[0]
    thinking = COUNTER.count(expected_thinking("think it over", emulator.config))
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == thinking
    answer = COUNTER.count(expected_answer("think it over", emulator.config))
    assert usage.completion_tokens == answer + thinking
    assert usage.prompt_tokens == COUNTER.count("think it over")


async def test_a_repaired_answer_counts_both_turns(client: AsyncOpenAI, emulator: Emulator) -> None:
    bad, good = '<tool_call name="nope">{}</tool_call>', '<tool_call name="now">{}</tool_call>'
    emulator.script([bad, good])
    tools: Any = [{"type": "function", "function": {"name": "now"}}]
    reply = await client.chat.completions.create(
        model="kimi",
        messages=[{"role": "user", "content": "time?"}],
        tools=tools,
    )
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == COUNTER.count(sent_text(emulator, 0) + "\n\n" + sent_text(emulator, 1))
    assert reply.usage.completion_tokens == COUNTER.count(bad + good)


async def test_the_estimate_can_replace_the_vocabulary(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(usage_tokenizer="estimate")
    async with openai_client(gateway, account.refresh_token) as client:
        reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "hello"}])
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == estimate_tokens("hello")
    assert reply.usage.completion_tokens == estimate_tokens(expected_answer("hello", emulator.config))
    with pytest.raises(SettingsError):
        Settings(usage_tokenizer="words").validated()
