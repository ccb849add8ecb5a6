"""The G3 Chat stream's frames as JSON objects, in camelCase (the stream converts them for `casing=snake`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from kimi_free_api.emulator.answers import SearchHit
from kimi_free_api.emulator.ids import stable_id
from kimi_free_api.emulator.state import Chat, Message

HEARTBEAT: dict[str, Any] = {"heartbeat": {}}
DONE: dict[str, Any] = {"done": {}}
COMPLETED = "MESSAGE_STATUS_COMPLETED"
GENERATING = "MESSAGE_STATUS_GENERATING"
# The thinking stage's lifecycle as 2026 captures show it, and the older guess (setting `stage_statuses`).
STAGE_START = "STAGE_STATUS_START"
STAGE_END = "STAGE_STATUS_END"
STAGE_RUNNING = "STAGE_STATUS_RUNNING"
STAGE_COMPLETED = "STAGE_STATUS_COMPLETED"
ASK_USER_STATUS = "STATUS_ASK_USER_QUESTION"
ASK_USER_TOOL = "ask_user"
OVERLOADED = "REASON_COMPLETION_OVERLOADED"
TOOL_RUNNING = "TOOL_STATUS_RUNNING"
TOOL_COMPLETED = "TOOL_STATUS_COMPLETED"


def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def contextual_request(prompt: str) -> str:
    """Kimi echoes the user's text wrapped like this, server-side (protocol document §4)."""
    return (
        "<contextual_request><system_instruction></system_instruction><chat_history/>"
        f"<current_user_query>{prompt}</current_user_query></contextual_request>"
    )


def chat(record: Chat) -> dict[str, Any]:
    times = {"createTime": rfc3339(record.created), "updateTime": rfc3339(record.updated)}
    return {"op": "set", "chat": {"id": record.id, "name": record.name, **times}}


def message(msg: Message, scenario: str, text: str | None) -> dict[str, Any]:
    """A whole message; `text` becomes its one text block (the user's), None leaves it without blocks."""
    blocks = [] if text is None else [{"id": "0_0", "parentId": msg.id, "text": {"content": text}}]
    body = {
        "id": msg.id,
        "parentId": msg.parent_id,
        "role": msg.role,
        "status": msg.status,
        "scenario": scenario,
        "blocks": blocks,
        "createTime": rfc3339(msg.created),
    }
    return {"op": "set", "mask": "message", "message": body}


def message_status(message_id: str, status: str) -> dict[str, Any]:
    return {"op": "set", "mask": "message.status", "message": {"id": message_id, "status": status}}


def block(op: str, mask: str, block_id: str, content: dict[str, Any], parent_id: str = "") -> dict[str, Any]:
    """A block update; `set` frames name the block's parent (the assistant message), `append` frames do not."""
    body = {"id": block_id, "parentId": parent_id, **content} if parent_id else {"id": block_id, **content}
    return {"op": op, "mask": mask, "block": body}


def stage(block_id: str, parent_id: str, status: str) -> dict[str, Any]:
    stages = {"stages": [{"name": "STAGE_NAME_THINKING", "status": status}]}
    return block("set", "block.multiStage", block_id, {"multiStage": stages}, parent_id)


def _page(hit: SearchHit) -> dict[str, Any]:
    return {
        "title": hit.title,
        "url": hit.url,
        "siteName": hit.site_name,
        "iconUrl": f"https://{hit.site_name}/favicon.ico",
        "snippet": hit.snippet,
        "publishTime": hit.publish_time,
    }


def web_pages(block_id: str, parent_id: str, hits: list[SearchHit]) -> dict[str, Any]:
    pages = [{**_page(hit), "siteQuality": 3} for hit in hits]
    return block("set", "block.search.webPages", block_id, {"search": {"webPages": pages}}, parent_id)


def search_results(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [{"searchResult": {"id": stable_id(hit.url), "refIndex": hit.ref_index, "base": _page(hit)}} for hit in hits]


def search_tool(block_id: str, parent_id: str, call_id: str, query: str, hits: list[SearchHit]) -> list[dict[str, Any]]:
    """The 2026 search shape: a `$web_search` tool block, then the same hits as the message's search chunks."""
    results = search_results(hits)
    running = {"toolCallId": call_id, "name": "$web_search", "status": TOOL_RUNNING}
    args = orjson.dumps({"queries": [query]}).decode()
    return [
        block("set", "block.tool", block_id, {"tool": running}, parent_id),
        block("append", "block.tool.args", block_id, {"tool": {"args": args}}),
        block("set", "block.tool.contents", block_id, {"tool": {"contents": results, "status": TOOL_COMPLETED}}),
        {
            "op": "set",
            "mask": "message.refs.searchChunks",
            "message": {"id": parent_id, "refs": {"searchChunks": results}},
        },
    ]


def error(details: dict[str, Any]) -> dict[str, Any]:
    return {"error": details}


def exception(block_id: str, parent_id: str, reason: str, message: str) -> dict[str, Any]:
    """A failure inside the answer (evidence row 48): Kimi retracts the block and says why."""
    error = {
        "reason": reason,
        "severity": "SEVERITY_BLOCK_RETRACT",
        "localizedMessage": {"locale": "en-US", "message": message},
    }
    return block("set", "block.exception", block_id, {"exception": {"error": error}}, parent_id)


def ask_user(block_id: str, parent_id: str, call_id: str, args: str, pieces: int) -> list[dict[str, Any]]:
    """A research run's question: the tool block, its JSON arguments in fragments, then the chat's parked status."""
    running = {"toolCallId": call_id, "name": ASK_USER_TOOL, "status": TOOL_RUNNING}
    size = len(args)
    fragments = [args[i * size // pieces : (i + 1) * size // pieces] for i in range(pieces)]
    return [
        block("set", "block.tool", block_id, {"tool": running}, parent_id),
        *(block("append", "block.tool.args", block_id, {"tool": {"args": fragment}}) for fragment in fragments),
    ]


def chat_status(chat_id: str, status: str) -> dict[str, Any]:
    return {"op": "set", "mask": "chat.status", "chat": {"id": chat_id, "status": status}}
