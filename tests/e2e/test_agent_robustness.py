"""Agent-loop robustness end to end (real `openai` client → gateway → emulator, Kimi's answers scripted): calls in
Kimi's native markup, its web-agent persona, echoes of the protocol example, and a history past one message's
limit travelling as an uploaded file."""

from __future__ import annotations

import json
from typing import Any

from openai import AsyncOpenAI

from kimi_free_api.core.conversation.oversize import HISTORY_FILE
from kimi_free_api.emulator import Emulator
from tests.e2e.support import eventually

READ: Any = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "Reads a file of the project",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
}
ASK: Any = [{"role": "user", "content": "What is in notes.txt?"}]
NATIVE = (
    "I will read it.\n<|tool_calls_section_begin|>\n"
    '<|tool_call_begin|>functions.read_file:0<|tool_call_argument_begin|>{"path": "notes.txt"}<|tool_call_end|>\n'
    "<|tool_calls_section_end|>"
)


def sent_texts(emulator: Emulator) -> list[str]:
    return [body["message"]["blocks"][0]["text"]["content"] for body in emulator.state.chat_requests]


async def test_native_markup_becomes_a_tool_call(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script([NATIVE])
    reply = await client.chat.completions.create(model="kimi", messages=ASK, tools=[READ])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "I will read it."
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "read_file"
    assert json.loads(call.function.arguments) == {"path": "notes.txt"}
    assert len(emulator.state.chat_requests) == 1  # read as it is: no repair round


async def test_native_markup_streamed_in_many_pieces(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(event_count=60)  # the markers arrive cut at arbitrary places
    emulator.script([NATIVE])
    stream = await client.chat.completions.create(model="kimi", messages=ASK, tools=[READ], stream=True)
    content, arguments, names, finish = "", "", [], None
    async for chunk in stream:
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for piece in delta.tool_calls or []:
            if piece.function and piece.function.name:
                names.append(piece.function.name)
            arguments += (piece.function.arguments or "") if piece.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert content == "I will read it." and "<|" not in content
    assert names == ["read_file"] and json.loads(arguments) == {"path": "notes.txt"}
    assert finish == "tool_calls"


async def test_an_echo_of_the_protocol_example_streams_as_prose(client: AsyncOpenAI, emulator: Emulator) -> None:
    echo = 'Tools are called like <tool_call name="TOOL_NAME">{"argument": "value"}</tool_call>; none is needed.'
    emulator.script([echo])
    stream = await client.chat.completions.create(model="kimi", messages=ASK, tools=[READ], stream=True)
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == echo
    assert not any(c.choices[0].delta.tool_calls for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len(emulator.state.chat_requests) == 1


async def test_a_persona_call_is_repaired_into_a_declared_tool(client: AsyncOpenAI, emulator: Emulator) -> None:
    persona = '<tool_call name="ipython">{"code": "open(\'/mnt/agents/notes.txt\').read()"}</tool_call>'
    emulator.script([persona, '<tool_call name="read_file">{"path": "notes.txt"}</tool_call>'])
    reply = await client.chat.completions.create(model="kimi", messages=ASK, tools=[READ])
    [call] = reply.choices[0].message.tool_calls or []
    assert call.type == "function" and call.function.name == "read_file"
    first, repair = sent_texts(emulator)
    assert "no code interpreter (ipython" in first
    assert "`ipython` is not available" in repair and "`read_file`" in repair


async def test_an_insistent_persona_never_reaches_the_client_as_a_call(client: AsyncOpenAI, emulator: Emulator) -> None:
    persona = '<tool_call name="ipython">{"code": "print(1)"}</tool_call>'
    emulator.script(["Reading it. " + persona, "Let me try again. " + persona])
    stream = await client.chat.completions.create(model="kimi", messages=ASK, tools=[READ], stream=True)
    chunks = [chunk async for chunk in stream]
    assert not any(c.choices[0].delta.tool_calls for c in chunks)
    # The persona calls are dropped; what Kimi wrote around them is the answer.
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Reading it.\n\nLet me try again."
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_a_history_past_the_limit_is_sent_as_an_uploaded_file(client: AsyncOpenAI, emulator: Emulator) -> None:
    history: Any = [
        {"role": "system", "content": "You are a careful agent."},
        *(
            message
            for n in range(30)
            for message in (
                {"role": "user", "content": f"Part {n}: " + "lorem ipsum " * 600},
                {"role": "assistant", "content": f"Noted part {n}."},
            )
        ),
        {"role": "user", "content": "Which part came first?"},
    ]
    assert sum(len(m["content"]) for m in history) > 200_000
    emulator.script(["Part 0."])
    reply = await client.chat.completions.create(model="kimi", messages=history, tools=[READ])
    assert reply.choices[0].message.content == "Part 0."
    [body] = emulator.state.chat_requests
    blocks = body["message"]["blocks"]
    text = "\n".join(block["text"]["content"] for block in blocks if "text" in block)
    ids = [block["file"]["id"] for block in blocks if "file" in block] + body.get("refs", [])
    [uploaded] = [emulator.state.files[file_id] for file_id in ids]
    assert uploaded.name == HISTORY_FILE and uploaded.kind == "file" and uploaded.size > 200_000
    assert len(text) < 200_000 and HISTORY_FILE in text
    assert '"name":"read_file"' in text  # the tool declarations stay in the message
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_a_history_within_the_limit_stays_in_the_message(client: AsyncOpenAI, emulator: Emulator) -> None:
    history: Any = [{"role": "user", "content": "lorem ipsum " * 15_000}, {"role": "user", "content": "Done?"}]
    emulator.script(["Yes."])
    await client.chat.completions.create(model="kimi", messages=history)
    [body] = emulator.state.chat_requests
    assert not [block for block in body["message"]["blocks"] if "file" in block] and not body.get("refs")
    assert emulator.state.files == {}


FLAT_READ: Any = {"type": "function", **READ["function"]}


async def test_native_markup_on_the_responses_surface_streamed(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(event_count=40)
    emulator.script([NATIVE])
    stream = await client.responses.create(model="kimi", input="What is in notes.txt?", tools=[FLAT_READ], stream=True)
    events = [event async for event in stream]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "I will read it."
    [done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(done.arguments) == {"path": "notes.txt"}
    final = events[-1]
    assert final.type == "response.completed"
    assert [item.type for item in final.response.output] == ["message", "function_call"]


async def test_a_persona_call_on_the_responses_surface_is_repaired(client: AsyncOpenAI, emulator: Emulator) -> None:
    native_persona = '<|tool_call_begin|>functions.ipython:0<|tool_call_argument_begin|>{"code": "ls /mnt/agents"}'
    emulator.script([native_persona, '<tool_call name="read_file">{"path": "notes.txt"}</tool_call>'])
    response = await client.responses.create(model="kimi", input="What is in notes.txt?", tools=[FLAT_READ])
    [item] = response.output
    assert item.type == "function_call" and item.name == "read_file"
    assert "`ipython` is not available" in sent_texts(emulator)[1]
