"""How the Chat request refers to uploaded files, in each selectable style."""

from __future__ import annotations

from kimi_free_api.config import Settings
from kimi_free_api.core.ports import UpstreamChat
from kimi_free_api.upstream.web import chat_payload

FILES = UpstreamChat(prompt="Read [attachment 1: a.pdf]", files=("kimi-file-1", "kimi-file-2"))


def test_files_as_message_blocks_by_default() -> None:
    payload = chat_payload(FILES, Settings())
    assert payload["message"]["blocks"] == [
        {"message_id": "", "text": {"content": "Read [attachment 1: a.pdf]"}},
        # The 2026 captures (evidence row 36) name the parsed status in every file block.
        {"message_id": "", "file": {"id": "kimi-file-1", "status": "PROCESS_STATUS_SUCCESS"}},
        {"message_id": "", "file": {"id": "kimi-file-2", "status": "PROCESS_STATUS_SUCCESS"}},
    ]
    assert "refs" not in payload


def test_files_as_refs() -> None:
    payload = chat_payload(FILES, Settings(kimi_file_ref_style="refs"))
    assert payload["refs"] == ["kimi-file-1", "kimi-file-2"]
    assert len(payload["message"]["blocks"]) == 1


def test_no_files_no_trace() -> None:
    for style in ("block", "refs"):
        payload = chat_payload(UpstreamChat(prompt="Hi"), Settings(kimi_file_ref_style=style))
        assert "refs" not in payload and len(payload["message"]["blocks"]) == 1
