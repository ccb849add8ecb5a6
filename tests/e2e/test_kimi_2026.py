"""Today's Kimi as the 2026 evidence describes it (kimi-2026-evidence.md §3 P1, P2, P4, P6, P10), end to end:
the real `openai` client, the gateway, and the emulator playing the 2026 frame shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer, expected_thinking, research_question, search_hits
from kimi_free_api.upstream.drift import drift
from tests.e2e.support import GatewayFactory, eventually, openai_client

CHAT = "/v1/chat/completions"
API_KEY = "gateway-key-for-tests-0123"


@pytest.fixture(autouse=True)
def fresh_drift() -> Iterator[None]:
    drift.reset()
    yield
    drift.reset()


async def _stream(client: AsyncOpenAI, model: str, text: str) -> tuple[str, str, list[str | None]]:
    """(content, reasoning, finish reasons) of a streamed answer."""
    chunks = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True
    )
    content: list[str] = []
    reasoning: list[str] = []
    reasons: list[str | None] = []
    async for chunk in chunks:
        if chunk.choices:
            delta = chunk.choices[0].delta
            content.append(delta.content or "")
            reasoning.append(getattr(delta, "reasoning_content", None) or "")
            reasons.append(chunk.choices[0].finish_reason)
    return "".join(content), "".join(reasoning), reasons


# --- P1: thinking stage START … END ---


@pytest.mark.parametrize("stage_statuses", ["start_end", "running_completed"])
async def test_thinking_stage_splits_reasoning_from_the_answer(
    client: AsyncOpenAI, emulator: Emulator, stage_statuses: str
) -> None:
    emulator.configure(stage_statuses=stage_statuses, thinking_events=6)
    content, reasoning, reasons = await _stream(client, "kimi-thinking", "ponder")
    assert reasoning == expected_thinking("ponder", emulator.config)
    assert content == expected_answer("ponder", emulator.config)
    assert reasons[-1] == "stop"
    reply = await client.chat.completions.create(model="kimi-thinking", messages=[{"role": "user", "content": "p"}])
    assert reply.choices[0].message.content == expected_answer("p", emulator.config)
    assert getattr(reply.choices[0].message, "reasoning_content", None) == expected_thinking("p", emulator.config)
    assert drift.counts() == {}


# --- P2: block.exception with REASON_COMPLETION_OVERLOADED ---


async def test_overload_before_the_first_byte_fails_over_to_another_account(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    busy, calm = emulator.create_account("busy"), emulator.create_account("calm")
    gateway = await gateway_factory(kimi_tokens=f"{busy.refresh_token},{calm.refresh_token}", api_keys=API_KEY)
    emulator.add_fault(Fault(kind="overloaded", user_id=busy.user_id))
    emulator.add_fault(Fault(kind="overloaded", user_id=calm.user_id))
    async with openai_client(gateway, API_KEY) as client:
        # Attempt 1 meets one account's overload, attempt 2 the other's, attempt 3 answers.
        content, _, reasons = await _stream(client, "kimi", "retry")
    assert content == expected_answer("retry", emulator.config)
    assert reasons[-1] == "stop"
    assert emulator.state.requests["chat"] == 3
    await eventually(lambda: emulator.state.live_chats == 0)


@pytest.mark.parametrize("casing", ["camel", "snake"])
@pytest.mark.parametrize("stream", [False, True])
async def test_overload_with_nowhere_to_go_is_a_503_with_retry_after(
    gateway_factory: GatewayFactory, account: Account, emulator: Emulator, stream: bool, casing: str
) -> None:
    emulator.configure(casing=casing)
    gateway = await gateway_factory(failover_attempts=1)
    emulator.add_fault(Fault(kind="overloaded", message="Too many people are asking right now"))
    body = {"messages": [{"role": "user", "content": "x"}], "stream": stream}
    async with (
        aiohttp.ClientSession(base_url=gateway.url) as http,
        http.post(CHAT, json=body, headers={"Authorization": f"Bearer {account.refresh_token}"}) as response,
    ):
        payload = await response.json(content_type=None)
        assert response.status == 503, payload
        assert response.headers["Retry-After"] == "1"
    assert payload["error"]["code"] == "service_unavailable"
    assert "Too many people are asking right now" in payload["error"]["message"]


async def test_overload_after_output_is_an_error_event_not_a_stop(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.add_fault(Fault(kind="overloaded", after_events=3))
    chunks = await client.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "cut"}], stream=True
    )
    received: list[str] = []
    reasons: list[Any] = []
    with pytest.raises(openai.APIError):
        async for chunk in chunks:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
                reasons.append(chunk.choices[0].finish_reason)
    assert "".join(received), "some content arrived before the failure"
    assert "stop" not in reasons
    await eventually(lambda: emulator.state.live_chats == 0)


# --- P4: citation markers, cut across frames by the emulator's even split ---


@pytest.mark.parametrize("citation_style", ["kimi", "tool", "private_use"])
async def test_citation_markers_never_reach_the_client(
    client: AsyncOpenAI, emulator: Emulator, citation_style: str
) -> None:
    emulator.configure(citation_style=citation_style, event_count=60, search_results=3)
    content, _, _ = await _stream(client, "kimi-search-silent", "markers")
    assert content == expected_answer("markers", emulator.config, search=True)
    assert not any(ch in content for ch in "\ue3a0\ue3a3\ue3a8\U0001f6e0\U0001f3a8")
    assert "web_search" not in content
    reply = await client.chat.completions.create(
        model="kimi-search-silent", messages=[{"role": "user", "content": "markers"}]
    )
    assert reply.choices[0].message.content == expected_answer("markers", emulator.config, search=True)


@pytest.mark.parametrize("search_style", ["web_pages", "tool"])
async def test_citation_footnotes_number_like_the_search_lines(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, search_style: str
) -> None:
    emulator.configure(event_count=60, search_results=3, search_style=search_style)
    gateway = await gateway_factory(citation_footnotes=True)
    async with openai_client(gateway, account.refresh_token) as client:
        content, _, _ = await _stream(client, "kimi-search", "notes")
    hits = search_hits("notes", emulator.config)
    lines = "".join(f"【检索 {n}】 [{hit.title}]({hit.url})\n" for n, hit in enumerate(hits, 1))
    assert content.startswith(lines)
    body = content[len(lines) :]
    assert "[1]" in body and "[2][3]" in body  # one marker cites hits 2 and 3 at once
    assert body.replace("[1]", "").replace("[2]", "").replace("[3]", "") == "\n" + expected_answer(
        "notes", emulator.config, search=True
    )


# --- P6: research parks on a question ---


@pytest.mark.parametrize("stream", [False, True])
async def test_research_that_asks_the_user_ends_with_the_question(
    client: AsyncOpenAI, emulator: Emulator, stream: bool
) -> None:
    if stream:
        content, _, reasons = await _stream(client, "kimi-research", "solar power")
        assert reasons[-1] == "stop"
    else:
        reply = await client.chat.completions.create(
            model="kimi-research", messages=[{"role": "user", "content": "solar power"}]
        )
        content = reply.choices[0].message.content or ""
        assert reply.choices[0].finish_reason == "stop"
    sent = emulator.state.chat_requests[-1]
    assert sent["kimiplus_id"] == "deep-researcher" and sent["scenario"] == "SCENARIO_OK_COMPUTER"
    [entry] = research_question(sent["message"]["blocks"][0]["text"]["content"])["questions"]
    assert entry["question"] in content
    assert all(option["option"] in content for option in entry["options"])
    # The parked run is cancelled upstream (it would otherwise wait for the user) and the chat deleted.
    await eventually(lambda: emulator.state.cancelled == 1 and emulator.state.live_chats == 0)
    assert drift.counts() == {}


# --- drift: an unknown answer format, stray envelopes ---


async def test_an_answer_in_an_unknown_format_is_a_502_that_says_so(
    gateway_factory: GatewayFactory, account: Account, emulator: Emulator
) -> None:
    emulator.configure(answer_block="novel")
    gateway = await gateway_factory(failover_attempts=1)
    async with openai_client(gateway, account.refresh_token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "new"}])
    assert caught.value.status_code == 502
    assert "format seems to have changed" in caught.value.message
    counts = drift.counts()
    assert counts["block"] >= 1 and counts["empty answer"] == 1
    assert not any("Echo" in record.shape for record in drift.records())


async def test_empty_and_unreadable_envelopes_are_skipped_and_counted(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(stray_envelopes=True)
    reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "junk"}])
    assert reply.choices[0].message.content == expected_answer("junk", emulator.config)
    assert drift.counts() == {"unreadable data envelope": 2}
