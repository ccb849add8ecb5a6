"""What the answer carries: search citations, thinking, and the prompt that reached Kimi."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI

from kimi_free_api.core.conversation.prompt import PREAMBLE
from kimi_free_api.emulator import Emulator
from kimi_free_api.emulator.answers import expected_answer, expected_thinking, search_hits, wire_answer
from tests.e2e.support import GatewayFactory, openai_client


def _prompt(emulator: Emulator) -> str:
    blocks = emulator.state.chat_requests[-1]["message"]["blocks"]
    return "".join(block["text"]["content"] for block in blocks)


@pytest.mark.parametrize("style", ["web_pages", "tool"])
async def test_search_citations_stream_as_they_arrive(client: AsyncOpenAI, emulator: Emulator, style: str) -> None:
    emulator.configure(search_style=style, search_results=3)
    stream = await client.chat.completions.create(
        model="kimi-search", messages=[{"role": "user", "content": "news"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    hits = search_hits(_prompt(emulator), emulator.config)
    lines = "".join(f"【检索 {n}】 [{hit.title}]({hit.url})\n" for n, hit in enumerate(hits, 1))
    assert text == lines + "\n" + expected_answer(_prompt(emulator), emulator.config, search=True)


async def test_non_streamed_search_ends_with_the_source_list(client: AsyncOpenAI, emulator: Emulator) -> None:
    reply = await client.chat.completions.create(model="kimi-search", messages=[{"role": "user", "content": "news"}])
    hits = search_hits("news", emulator.config)
    content = reply.choices[0].message.content or ""
    answer, sources = content.split("\n\n搜索结果来自：\n")
    assert answer == expected_answer("news", emulator.config, search=True)
    assert sources == "\n".join(f"【检索 {n}】 [{hit.title}]({hit.url})\n" for n, hit in enumerate(hits, 1))


async def test_silent_search_hides_citations(client: AsyncOpenAI, emulator: Emulator) -> None:
    stream = await client.chat.completions.create(
        model="kimi-search-silent", messages=[{"role": "user", "content": "news"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == expected_answer("news", emulator.config, search=True)
    reply = await client.chat.completions.create(
        model="kimi-search-silent", messages=[{"role": "user", "content": "news"}]
    )
    assert "检索" not in (reply.choices[0].message.content or "")


async def test_citation_markers_are_stripped(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(citation_style="private_use")
    reply = await client.chat.completions.create(
        model="kimi-search-silent", messages=[{"role": "user", "content": "cite"}]
    )
    content = reply.choices[0].message.content or ""
    assert not any("\ue000" <= ch <= "\uf8ff" for ch in content)
    raw = wire_answer("cite", emulator.config, search=True)
    assert any("\ue000" <= ch <= "\uf8ff" for ch in raw), "the emulator did send markers"


@pytest.mark.parametrize("style", ["think_stage", "think_block", "text_flags", "stage"])
async def test_thinking_goes_to_reasoning_content(client: AsyncOpenAI, emulator: Emulator, style: str) -> None:
    emulator.configure(thinking_style=style, thinking_events=5)
    stream = await client.chat.completions.create(
        model="kimi-thinking", messages=[{"role": "user", "content": "think"}], stream=True
    )
    content, reasoning = [], []
    async for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            content.append(delta.content or "")
            reasoning.append(getattr(delta, "reasoning_content", None) or "")
    assert "".join(reasoning) == expected_thinking("think", emulator.config)
    assert "".join(content) == expected_answer("think", emulator.config)

    reply = await client.chat.completions.create(model="kimi-thinking", messages=[{"role": "user", "content": "think"}])
    message = reply.choices[0].message
    assert message.content == expected_answer("think", emulator.config)
    assert getattr(message, "reasoning_content", None) == expected_thinking("think", emulator.config)


async def test_cumulative_append_frames(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    emulator.configure(append_mode="cumulative", thinking_style="think_block")
    gateway = await gateway_factory(kimi_append_mode="cumulative")
    account = emulator.create_account("cumulative")
    async with openai_client(gateway, account.refresh_token) as client:
        reply = await client.chat.completions.create(
            model="kimi-thinking", messages=[{"role": "user", "content": "whole"}]
        )
    assert reply.choices[0].message.content == expected_answer("whole", emulator.config)
    assert getattr(reply.choices[0].message, "reasoning_content", None) == expected_thinking("whole", emulator.config)


@pytest.mark.parametrize("end_stream", ["connect", "grpc-web", "none"])
async def test_end_of_stream_variants(client: AsyncOpenAI, emulator: Emulator, end_stream: str) -> None:
    emulator.configure(end_stream=end_stream, casing="snake")
    reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "end"}])
    assert reply.choices[0].message.content == expected_answer("end", emulator.config)


async def test_multi_turn_keeps_roles_and_order(client: AsyncOpenAI, emulator: Emulator) -> None:
    await client.chat.completions.create(
        model="kimi",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "My name is Ann.", "name": "ann"},
            {"role": "assistant", "content": "Hello Ann."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
        ],
    )
    assert _prompt(emulator) == (
        f"{PREAMBLE}\n\n"
        "<system>\nBe brief.\n</system>\n\n"
        "<system>\nAnswer in English.\n</system>\n\n"
        '<user name="ann">\nMy name is Ann.\n</user>\n\n'
        "<assistant>\nHello Ann.\n</assistant>\n\n"
        '<assistant>\n<tool_call id="call_1" name="lookup">{"q": 1}</tool_call>\n</assistant>\n\n'
        '<tool tool_call_id="call_1" name="lookup">\n42\n</tool>\n\n'
        "<user>\nWhat is my name?\n</user>"
    )


async def test_single_message_is_sent_verbatim(client: AsyncOpenAI, emulator: Emulator) -> None:
    await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "just this"}])
    assert _prompt(emulator) == "just this"
