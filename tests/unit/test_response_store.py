"""Stored responses: the transcript codec and the SQLite store's keeping of the most recently used."""

from __future__ import annotations

from pathlib import Path

from kimi_free_api.core.conversation.response_store import StoredResponse, decode_transcript, encode_transcript
from kimi_free_api.core.request import AttachmentRef, Message, ToolCall
from kimi_free_api.state.responses import SqliteResponseStore
from kimi_free_api.state.sqlite import SqliteStore

TRANSCRIPT = (
    Message(
        role="user",
        content="What is in this file, 你好?",
        attachments=(AttachmentRef("file_id", "file-abc", "a.pdf", "input[0].content[1]", 17),),
    ),
    Message(role="assistant", content="", tool_calls=(ToolCall("call_1", "look", '{"q": "x"}'),)),
    Message(role="tool", content="found", tool_call_id="call_1", name="look"),
    Message(role="assistant", content="It says hello."),
)


def test_a_transcript_survives_its_encoding() -> None:
    assert decode_transcript(encode_transcript(TRANSCRIPT)) == TRANSCRIPT
    assert decode_transcript(encode_transcript(())) == ()


async def test_the_sqlite_store_keeps_the_most_recently_used(tmp_path: Path) -> None:
    store = SqliteResponseStore(SqliteStore.in_dir(str(tmp_path)), capacity=2)
    for n in range(2):
        await store.put(StoredResponse(f"resp_{n}", "owner", TRANSCRIPT, b'{"id": "resp_%d"}' % n))
    assert await store.get("resp_0") is not None  # used: now resp_1 is the oldest
    await store.put(StoredResponse("resp_2", "owner", (), b"{}"))
    assert await store.get("resp_1") is None
    kept = await store.get("resp_0")
    assert kept == StoredResponse("resp_0", "owner", TRANSCRIPT, b'{"id": "resp_0"}')
    assert await store.delete("resp_0")
    assert not await store.delete("resp_0")
    assert await store.get("resp_0") is None

    reopened = SqliteResponseStore(SqliteStore.in_dir(str(tmp_path)), capacity=2)
    assert await reopened.get("resp_2") == StoredResponse("resp_2", "owner", (), b"{}")
