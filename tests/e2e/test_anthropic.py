"""The Anthropic Messages API end to end: the real `anthropic` client → gateway → emulator, with Kimi's answers
scripted where the test needs a particular one (tool calls, stop sequences)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from anthropic import AsyncAnthropic
from anthropic.types import TextBlock, ThinkingBlock, ToolUseBlock

from kimi_free_api.core.conversation.prompt import PREAMBLE
from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer, expected_thinking, search_hits
from tests.e2e.anthropic_support import anthropic_client, parse_sse, post_messages, sent_prompts
from tests.e2e.support import Gateway, GatewayFactory, eventually
from tests.fileserver import FileServer, pdf, png

WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
TIME: Any = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
ASK: Any = [{"role": "user", "content": "What's the weather in Paris?"}]


def call(name: str, arguments: str) -> str:
    return f'<tool_call name="{name}">{arguments}</tool_call>'


@pytest.fixture
async def claude(gateway: Gateway, account: Account) -> AsyncIterator[AsyncAnthropic]:
    async with anthropic_client(gateway, api_key=account.refresh_token) as client:
        yield client


async def test_create(claude: AsyncAnthropic, emulator: Emulator) -> None:
    message = await claude.messages.create(
        model="kimi", max_tokens=1024, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.model == "kimi"
    [block] = message.content
    assert isinstance(block, TextBlock)
    assert block.text == expected_answer("Hello there", emulator.config)
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message._request_id  # Anthropic's `request-id` header
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_stream_sends_anthropics_event_order(gateway: Gateway, account: Account, emulator: Emulator) -> None:
    body = {"model": "kimi", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    status, raw, headers = await post_messages(gateway, body, {"x-api-key": account.refresh_token})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert headers["request-id"] == headers["X-Request-Id"]
    events = parse_sse(raw)
    names = [name for name, _ in events if name != "ping"]
    deltas = emulator.config.event_count
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] > 0
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == expected_answer("Hi", emulator.config)
    final = next(data for name, data in events if name == "message_delta")
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] > 0


async def test_sdk_stream_helper(claude: AsyncAnthropic, emulator: Emulator) -> None:
    async with claude.messages.stream(
        model="kimi", max_tokens=256, messages=[{"role": "user", "content": "Stream me"}]
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        message = await stream.get_final_message()
    assert "".join(pieces) == expected_answer("Stream me", emulator.config)
    assert isinstance(message.content[0], TextBlock) and message.content[0].text == "".join(pieces)
    assert message.stop_reason == "end_turn"


async def test_multi_turn_with_system_blocks(claude: AsyncAnthropic, emulator: Emulator) -> None:
    await claude.messages.create(
        model="kimi",
        max_tokens=64,
        system=[
            {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Answer in English."},
        ],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "My name is Ann."}, {"type": "text", "text": ""}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "x"},
                    {"type": "text", "text": "Hi Ann"},
                ],
            },
            {"role": "user", "content": "What is my name?"},
        ],
    )
    [prompt] = sent_prompts(emulator)
    assert prompt.startswith(PREAMBLE)
    assert "<system>\nYou are terse.\n\nAnswer in English.\n</system>" in prompt
    assert "<user>\nMy name is Ann.\n</user>\n\n<assistant>\nHi Ann\n</assistant>\n\n<user>\nWhat is my name?" in prompt
    assert "hm" not in prompt.replace("What", "")  # earlier thinking is not sent back


async def test_a_tool_loop(claude: AsyncAnthropic, emulator: Emulator) -> None:
    emulator.script([call("get_weather", '{"city": "Paris"}'), "It is sunny in Paris."])
    first = await claude.messages.create(model="kimi", max_tokens=512, messages=ASK, tools=[WEATHER, TIME])
    assert first.stop_reason == "tool_use"
    [use] = first.content
    assert isinstance(use, ToolUseBlock) and use.name == "get_weather" and use.input == {"city": "Paris"}
    assert use.id.startswith("toolu_")
    history: Any = [
        *ASK,
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": [{"type": "text", "text": "22°C"}]}],
        },
    ]
    second = await claude.messages.create(model="kimi", max_tokens=512, messages=history, tools=[WEATHER, TIME])
    assert second.stop_reason == "end_turn"
    assert [block.text for block in second.content if isinstance(block, TextBlock)] == ["It is sunny in Paris."]
    prompt = sent_prompts(emulator)[1]
    assert f'<tool_call id="{use.id}" name="get_weather">{{"city":"Paris"}}</tool_call>' in prompt
    assert f'<tool tool_call_id="{use.id}" name="get_weather">\n22°C\n</tool>' in prompt


async def test_tool_errors_and_image_results_reach_kimi(claude: AsyncAnthropic, emulator: Emulator) -> None:
    picture = base64.b64encode(png()).decode()
    history: Any = [
        *ASK,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": "city is required"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": picture}}
                    ],
                },
                {"type": "text", "text": "Go on."},
            ],
        },
    ]
    await claude.messages.create(model="kimi", max_tokens=64, messages=history, tools=[WEATHER])
    [prompt] = sent_prompts(emulator)
    assert '<tool tool_call_id="toolu_1" name="get_weather">\n[the tool reported an error]\ncity is required' in prompt
    assert "<user>\nGo on.\n</user>" in prompt
    [file] = emulator.state.files.values()
    assert file.kind == "image" and file.size == len(png())


async def test_parallel_tool_use_streamed(claude: AsyncAnthropic, emulator: Emulator, gateway: Gateway) -> None:
    emulator.script(["Checking both.\n\n" + call("get_weather", '{"city": "Paris"}') + "\n" + call("get_time", "{}")])
    async with claude.messages.stream(model="kimi", max_tokens=512, messages=ASK, tools=[WEATHER, TIME]) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "tool_use"
    text, weather, clock = message.content
    assert isinstance(text, TextBlock) and text.text == "Checking both."
    assert isinstance(weather, ToolUseBlock) and (weather.name, weather.input) == ("get_weather", {"city": "Paris"})
    assert isinstance(clock, ToolUseBlock) and (clock.name, clock.input) == ("get_time", {})
    assert weather.id != clock.id


async def test_tool_use_stream_events(gateway: Gateway, account: Account, emulator: Emulator) -> None:
    emulator.script([call("get_time", '{"zone": "UTC"}')])
    body = {"model": "kimi", "max_tokens": 64, "stream": True, "messages": ASK, "tools": [TIME]}
    _, raw, _ = await post_messages(gateway, body, {"x-api-key": account.refresh_token})
    events = [data for name, data in parse_sse(raw) if name != "ping"]
    start, delta, stop = events[1:4]
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["input"] == {}
    assert delta["delta"] == {"type": "input_json_delta", "partial_json": '{"zone":"UTC"}'}
    assert stop == {"type": "content_block_stop", "index": 0}
    assert events[4]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("choice", "rule"),
    [
        ({"type": "any"}, "This reply must call at least one of the tools."),
        ({"type": "tool", "name": "get_time"}, "This reply must call the tool `get_time`."),
        ({"type": "none"}, "No tool may be called for this reply"),
        ({"type": "auto", "disable_parallel_tool_use": True}, "Call at most one tool in this reply."),
    ],
)
async def test_tool_choice(claude: AsyncAnthropic, emulator: Emulator, choice: Any, rule: str) -> None:
    emulator.script([call("get_time", "{}") if choice["type"] in ("any", "tool") else "Fine."])
    message = await claude.messages.create(
        model="kimi", max_tokens=64, messages=ASK, tools=[WEATHER, TIME], tool_choice=choice
    )
    assert rule in sent_prompts(emulator)[0]
    assert message.stop_reason == ("tool_use" if choice["type"] in ("any", "tool") else "end_turn")


async def test_thinking_enabled(claude: AsyncAnthropic, emulator: Emulator) -> None:
    message = await claude.messages.create(
        model="kimi",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think first"}],
    )
    thought, text = message.content
    assert isinstance(thought, ThinkingBlock) and thought.thinking == expected_thinking("Think first", emulator.config)
    assert thought.signature
    assert isinstance(text, TextBlock) and text.text == expected_answer("Think first", emulator.config)
    assert emulator.state.chat_requests[0]["options"]["thinking"] is True


async def test_adaptive_thinking_streams_thinking_blocks(
    gateway: Gateway, account: Account, emulator: Emulator
) -> None:
    # Claude Code's request: an Opus name (mapped to Kimi with thinking) and adaptive thinking.
    body = {
        "model": "claude-opus-5-5",
        "max_tokens": 2048,
        "stream": True,
        "thinking": {"type": "adaptive"},
        "messages": [{"role": "user", "content": "Ponder"}],
    }
    _, raw, _ = await post_messages(gateway, body, {"x-api-key": account.refresh_token})
    events = [data for name, data in parse_sse(raw) if name != "ping"]
    assert events[0]["message"]["model"] == "claude-opus-5-5"
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    kinds = [event["delta"]["type"] for event in events if event["type"] == "content_block_delta"]
    thinking = emulator.config.thinking_events
    assert kinds == ["thinking_delta"] * thinking + ["signature_delta"] + ["text_delta"] * emulator.config.event_count
    thought = "".join(e["delta"].get("thinking", "") for e in events if e["type"] == "content_block_delta")
    assert thought == expected_thinking("Ponder", emulator.config)
    assert [e["index"] for e in events if e["type"] == "content_block_stop"] == [0, 1]


async def test_thinking_disabled(claude: AsyncAnthropic, emulator: Emulator) -> None:
    message = await claude.messages.create(
        model="kimi", max_tokens=64, thinking={"type": "disabled"}, messages=[{"role": "user", "content": "Quick"}]
    )
    assert [block.type for block in message.content] == ["text"]
    assert not emulator.state.chat_requests[0]["options"].get("thinking")


async def test_stop_sequences(claude: AsyncAnthropic, emulator: Emulator) -> None:
    emulator.script(["one two END three", "alpha omega"])
    message = await claude.messages.create(
        model="kimi", max_tokens=64, stop_sequences=["END", "two"], messages=[{"role": "user", "content": "Count"}]
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "two"
    assert isinstance(message.content[0], TextBlock) and message.content[0].text == "one "
    async with claude.messages.stream(
        model="kimi", max_tokens=64, stop_sequences=["omega"], messages=[{"role": "user", "content": "Greek"}]
    ) as stream:
        streamed = await stream.get_final_message()
    assert (streamed.stop_reason, streamed.stop_sequence) == ("stop_sequence", "omega")
    assert isinstance(streamed.content[0], TextBlock) and streamed.content[0].text == "alpha "


async def test_max_tokens_cuts_the_answer(claude: AsyncAnthropic, emulator: Emulator) -> None:
    emulator.script(["word " * 200])
    message = await claude.messages.create(model="kimi", max_tokens=5, messages=[{"role": "user", "content": "Go"}])
    assert message.stop_reason == "max_tokens"
    assert isinstance(message.content[0], TextBlock) and 0 < len(message.content[0].text) <= 5 * 4


async def test_count_tokens(claude: AsyncAnthropic, emulator: Emulator) -> None:
    messages: Any = [{"role": "user", "content": "How many tokens is this?"}]
    bare = await claude.messages.count_tokens(model="kimi", messages=messages)
    with_tools = await claude.messages.count_tokens(model="claude-sonnet-4-5", messages=messages, tools=[WEATHER])
    with_system = await claude.messages.count_tokens(model="kimi", messages=messages, system="Be brief. " * 50)
    assert 0 < bare.input_tokens < with_tools.input_tokens
    assert with_system.input_tokens > bare.input_tokens + 50
    message = await claude.messages.create(model="kimi", max_tokens=32, messages=messages)
    assert message.usage.input_tokens == bare.input_tokens
    assert emulator.state.requests["chat"] == 1  # counting sent nothing to Kimi


async def test_models_in_anthropics_shape(claude: AsyncAnthropic) -> None:
    page = await claude.models.list()
    ids = [model.id for model in page.data]
    assert "kimi" in ids and "kimi-thinking" in ids
    assert all(model.type == "model" and model.display_name for model in page.data)
    first = await claude.models.list(limit=1)
    assert [model.id for model in first.data] == ids[:1] and first.has_more
    rest = await claude.models.list(after_id=ids[0], limit=1000)
    assert [model.id for model in rest.data] == ids[1:]
    model = await claude.models.retrieve("claude-opus-5-5")
    assert model.id == "claude-opus-5-5" and model.type == "model"


async def test_images_and_documents(
    gateway_factory: GatewayFactory, account: Account, emulator: Emulator, tmp_path: Any
) -> None:
    server = FileServer(files={"photo.png": png(seed=3)})
    await server.start()
    try:
        gateway = await gateway_factory(allow_loopback_fetch=True)
        content: Any = [
            {"type": "text", "text": "Look at these."},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png()).decode()},
            },
            {"type": "image", "source": {"type": "url", "url": f"{server.url}/f/photo.png"}},
            {
                "type": "document",
                "title": "report.pdf",
                "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf()).decode()},
            },
            {
                "type": "document",
                "title": "notes.txt",
                "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes."},
            },
            {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "Inline words."}]}},
        ]
        async with anthropic_client(gateway, api_key=account.refresh_token) as claude:
            message = await claude.messages.create(
                model="kimi", max_tokens=256, messages=[{"role": "user", "content": content}]
            )
    finally:
        await server.stop()
    sizes = sorted(file.size for file in emulator.state.files.values())
    assert sizes == sorted([len(png()), len(png(seed=3)), len(pdf()), len(b"Plain notes.")])
    names = {file.name for file in emulator.state.files.values()}
    assert "report.pdf" in names and "notes.txt" in names
    [prompt] = sent_prompts(emulator)
    assert "Look at these." in prompt and "Inline words." in prompt
    assert isinstance(message.content[0], TextBlock) and "File: report.pdf" in message.content[0].text
    assert json.dumps(server.hits).count("photo.png") == 1


async def test_json_output_format(claude: AsyncAnthropic, emulator: Emulator) -> None:
    emulator.script(['```json\n{"answer": 42}\n```'])
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    async with claude.messages.stream(
        model="kimi",
        max_tokens=64,
        messages=[{"role": "user", "content": "The answer?"}],
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}},
    ) as stream:
        message = await stream.get_final_message()
    assert isinstance(message.content[0], TextBlock) and json.loads(message.content[0].text) == {"answer": 42}
    assert '"required":["answer"]' in sent_prompts(emulator)[0]


async def test_sdk_stream_with_thinking(claude: AsyncAnthropic, emulator: Emulator) -> None:
    async with claude.messages.stream(
        model="kimi",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think aloud"}],
    ) as stream:
        kinds = [event.type async for event in stream]
        message = await stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds and "text" in kinds
    thought, text = message.content
    assert isinstance(thought, ThinkingBlock) and thought.thinking == expected_thinking("Think aloud", emulator.config)
    assert thought.signature and isinstance(text, TextBlock)


async def test_refused_content_ends_with_refusal(claude: AsyncAnthropic, emulator: Emulator) -> None:
    emulator.add_fault(Fault(kind="content_filter", after_events=4, times=2))
    message = await claude.messages.create(model="kimi", max_tokens=256, messages=[{"role": "user", "content": "Hmm"}])
    assert message.stop_reason == "refusal"
    async with claude.messages.stream(
        model="kimi", max_tokens=256, messages=[{"role": "user", "content": "Hmm"}]
    ) as stream:
        streamed = await stream.get_final_message()
    assert streamed.stop_reason == "refusal"
    assert isinstance(streamed.content[0], TextBlock)  # what was streamed before Kimi refused
    assert expected_answer("Hmm", emulator.config).startswith(streamed.content[0].text)


async def test_search_sources(claude: AsyncAnthropic, emulator: Emulator) -> None:
    hits = search_hits("Latest news", emulator.config)
    message = await claude.messages.create(
        model="kimi-search", max_tokens=1024, messages=[{"role": "user", "content": "Latest news"}]
    )
    [block] = message.content
    assert isinstance(block, TextBlock) and all(hit.url in block.text for hit in hits)  # the source list at the end
    async with claude.messages.stream(
        model="kimi",
        max_tokens=1024,
        messages=[{"role": "user", "content": "Latest news"}],
        tools=[{"type": "web_search_20250305", "name": "web_search"}],  # Anthropic's web search tool: Kimi's search
    ) as stream:
        streamed = await stream.get_final_message()
    assert emulator.state.chat_requests[-1]["tools"][0]["type"] == "TOOL_TYPE_SEARCH"
    assert isinstance(streamed.content[0], TextBlock) and hits[0].url in streamed.content[0].text
