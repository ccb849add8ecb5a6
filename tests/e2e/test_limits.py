"""`stop` and `max_tokens`, which Kimi's web chat cannot take, are applied by the gateway."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from kimi_free_api.core.usage.usage import estimate_tokens
from kimi_free_api.emulator import Emulator
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.support import eventually


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_sequence_cuts_the_answer(client: AsyncOpenAI, emulator: Emulator, stream: bool) -> None:
    emulator.configure(event_count=40)
    full = expected_answer("stop here", emulator.config)
    stop = full[30:34]
    assert full.find(stop) == 30
    reply_text, reason = await _answer(client, "stop here", stream, stop=[stop, "never-appears"])
    assert reply_text == full[:30]
    assert reason == "stop"
    await eventually(lambda: emulator.state.live_chats == 0)


@pytest.mark.parametrize("stream", [False, True])
async def test_max_tokens_truncates_with_length(client: AsyncOpenAI, emulator: Emulator, stream: bool) -> None:
    emulator.configure(event_count=60)
    full = expected_answer("long answer", emulator.config)
    reply_text, reason = await _answer(client, "long answer", stream, max_tokens=10)
    assert reason == "length"
    assert full.startswith(reply_text)
    assert 0 < estimate_tokens(reply_text) <= 10 < estimate_tokens(full)
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_budget_larger_than_the_answer_changes_nothing(client: AsyncOpenAI, emulator: Emulator) -> None:
    reply_text, reason = await _answer(client, "short", False, max_tokens=100_000, stop=["\x00"])
    assert reply_text == expected_answer("short", emulator.config)
    assert reason == "stop"


async def _answer(
    client: AsyncOpenAI, prompt: str, stream: bool, stop: list[str] | None = None, max_tokens: int | None = None
) -> tuple[str, str | None]:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": prompt}]
    if not stream:
        reply = await client.chat.completions.create(
            model="kimi",
            messages=messages,
            stop=stop,
            max_tokens=max_tokens,
        )
        return reply.choices[0].message.content or "", reply.choices[0].finish_reason
    chunks = await client.chat.completions.create(
        model="kimi",
        messages=messages,
        stop=stop,
        max_tokens=max_tokens,
        stream=True,
    )
    text, reason = "", None
    async for chunk in chunks:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            reason = chunk.choices[0].finish_reason or reason
    return text, reason
