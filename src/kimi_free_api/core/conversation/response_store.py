"""What `previous_response_id` refers to: the conversation a Responses API answer ended; and the response object
itself, for `GET /v1/responses/{id}`.

Kimi's web chat keeps no server-side state the gateway could point at, so a response is remembered as its whole
transcript (input items and output, without `instructions`, which OpenAI does not carry over either). A request
naming it is answered as if it had sent that transcript itself; the conversation continuity of
core/conversation/continuity.py then continues the Kimi chat that holds it, on the account that owns it, whenever that
chat is still kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson

from kimi_free_api.core.request import AttachmentRef, Message, ToolCall

# How many responses a store keeps (the most recently used): older ones can no longer be retrieved or continued.
CAPACITY = 4096


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    # Who may continue it: a digest of the credentials that created it, so ids cannot cross between clients.
    owner: str
    messages: tuple[Message, ...]
    # The response object as the client received it (JSON).
    body: bytes = b""


class ResponseStore(Protocol):
    async def put(self, response: StoredResponse) -> None: ...

    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def delete(self, response_id: str) -> bool: ...


def encode_transcript(messages: tuple[Message, ...]) -> bytes:
    """A stored response's messages as JSON, for the stores that keep them outside this process."""
    return orjson.dumps([asdict(message) for message in messages])


def decode_transcript(data: bytes) -> tuple[Message, ...]:
    return tuple(_message(item) for item in orjson.loads(data))


def _message(item: dict[str, Any]) -> Message:
    return Message(
        role=item["role"],
        content=item["content"],
        name=item["name"],
        tool_calls=tuple(ToolCall(**call) for call in item["tool_calls"]),
        tool_call_id=item["tool_call_id"],
        attachments=tuple(AttachmentRef(**ref) for ref in item["attachments"]),
    )
