"""What Claude Code needs: its ~50 KB streamed request accepted and answered (a tool call, then the answer to the
tool's result), and `ping` events while Kimi is silent."""

from __future__ import annotations

import orjson

from kimi_free_api.core.conversation.prompt import PREAMBLE
from kimi_free_api.emulator import Account, Emulator
from tests.e2e.anthropic_support import parse_sse, post_messages, sent_prompts
from tests.e2e.claude_code_body import HEADERS, claude_code_body
from tests.e2e.support import Gateway, GatewayFactory


async def test_a_claude_code_request_is_accepted(gateway: Gateway, account: Account, emulator: Emulator) -> None:
    body = claude_code_body()
    assert 45_000 < len(orjson.dumps(body)) < 60_000 and len(body["tools"]) == 12
    emulator.script(
        ['I will read it first.\n<tool_call name="Read">{"file_path": "/home/dev/project/README.md"}</tool_call>']
    )
    headers = {**HEADERS, "x-api-key": account.refresh_token}
    status, raw, _ = await post_messages(gateway, body, headers, "/v1/messages?beta=true")
    assert status == 200, raw[:500]
    events = [data for name, data in parse_sse(raw) if name != "ping"]
    assert events[0]["type"] == "message_start" and events[0]["message"]["model"] == "claude-opus-5-5"
    # The whole conversation as Kimi gets it, the 12 declarations compacted (core/guided/compaction.py).
    assert events[0]["message"]["usage"]["input_tokens"] > 3_000
    blocks = [event["content_block"] for event in events if event["type"] == "content_block_start"]
    assert [block["type"] for block in blocks] == ["thinking", "text", "tool_use"]  # Opus maps to Kimi with thinking
    use = blocks[-1]
    assert use["name"] == "Read" and use["id"].startswith("toolu_")
    assert events[-2]["delta"]["stop_reason"] == "tool_use" and events[-1]["type"] == "message_stop"
    [prompt] = sent_prompts(emulator)
    assert "You are a coding agent running in a terminal." in prompt and '"name":"TodoWrite"' in prompt
    assert emulator.state.chat_requests[0]["options"]["thinking"] is True

    # The next turn: the tool's result, the assistant turn echoed back with its thinking signature.
    emulator.script(["The README describes the project."])
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Reading first.", "signature": "c2lnbmF0dXJl"},
            {"type": "text", "text": "I will read it first."},
            {
                "type": "tool_use",
                "id": use["id"],
                "name": "Read",
                "input": {"file_path": "/home/dev/project/README.md"},
            },
        ],
    }
    result = {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": use["id"],
                "content": "# Project\nA demo.",
                "cache_control": {"type": "ephemeral"},
            }
        ],
    }
    body["messages"] += [assistant, result]
    status, raw, _ = await post_messages(gateway, body, headers, "/v1/messages?beta=true")
    assert status == 200
    text = "".join(data["delta"].get("text", "") for name, data in parse_sse(raw) if name == "content_block_delta")
    assert text == "The README describes the project."


async def test_pings_while_kimi_is_silent(
    gateway_factory: GatewayFactory, account: Account, emulator: Emulator
) -> None:
    gateway = await gateway_factory(keepalive_s=0.05)
    emulator.configure(first_event_delay_ms=400, event_delay_ms=250, event_count=2)
    body = {"model": "kimi", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "Slowly"}]}
    status, raw, _ = await post_messages(gateway, body, {"x-api-key": account.refresh_token})
    assert status == 200
    names = [name for name, _ in parse_sse(raw)]
    assert names[0] == "message_start" and names[1] == "ping"  # the wait for Kimi's first words
    first_delta = names.index("content_block_delta")
    assert set(names[1 : names.index("content_block_start")]) == {"ping"}
    second_delta = names.index("content_block_delta", first_delta + 1)
    assert "ping" in names[first_delta:second_delta]  # and the silence between two deltas
    assert names[-2:] == ["message_delta", "message_stop"]
    assert b"keep-alive" not in raw  # Anthropic's own events, never SSE comments


async def test_an_agent_loop_continues_the_kimi_chat(
    gateway_factory: GatewayFactory, account: Account, emulator: Emulator
) -> None:
    # With conversation continuity on (the default), each turn of a tool loop sends Kimi only what is new (and the
    # tool declarations), however large the resent history; the thinking blocks clients echo back do not break it.
    gateway = await gateway_factory(conversation_ttl_s=60)
    emulator.script(['<tool_call name="Read">{"file_path": "a.py"}</tool_call>', "Done."])
    body = claude_code_body()
    headers = {**HEADERS, "x-api-key": account.refresh_token}
    _, raw, _ = await post_messages(gateway, body, headers, "/v1/messages?beta=true")
    blocks: list[dict[str, object]] = []
    for name, data in parse_sse(raw):
        if name == "content_block_start":
            blocks.append(dict(data["content_block"]))
        elif name == "content_block_delta" and data["delta"]["type"] == "thinking_delta":
            blocks[-1]["thinking"] = str(blocks[-1]["thinking"]) + data["delta"]["thinking"]
        elif name == "content_block_delta" and data["delta"]["type"] == "signature_delta":
            blocks[-1]["signature"] = data["delta"]["signature"]
        elif name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            blocks[-1]["input"] = orjson.loads(data["delta"]["partial_json"])
    use_id = blocks[-1]["id"]
    body["messages"] += [
        {"role": "assistant", "content": blocks},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use_id, "content": "print(1)"}]},
    ]
    status, raw, _ = await post_messages(gateway, body, headers, "/v1/messages?beta=true")
    assert status == 200
    first, second = emulator.state.chat_requests
    assert "chat_id" not in first and second["chat_id"]
    prompt = second["message"]["blocks"][0]["text"]["content"]
    assert prompt.startswith(f'{PREAMBLE}\n\n<tool tool_call_id="{use_id}">\nprint(1)\n</tool>')
    assert "You are a coding agent" not in prompt  # the system prompt and the first turn are not sent again
