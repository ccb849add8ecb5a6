"""The protocol-neutral chat request that the API layer hands to the core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kimi_free_api.core.guided.tools import JsonOutput, ToolSet

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True, frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(slots=True, frozen=True)
class AttachmentRef:
    """An attachment part of a user message: where its bytes are, and where in the message it sat."""

    # "url": an http(s) or data: URL; "base64": bare base64 file data; "file_id": an id from POST /v1/files.
    kind: Literal["url", "base64", "file_id"]
    value: str
    filename: str | None = None
    # The part's place in the request, e.g. "messages[0].content[1]", for error messages.
    param: str = ""
    # Where the part sat in the message's `content` (a character offset), so the transcript keeps the order.
    offset: int = 0


@dataclass(slots=True, frozen=True)
class Message:
    role: Role
    content: str
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()


@dataclass(slots=True, frozen=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    tokens: tuple[str, ...]
    stream: bool = False
    include_usage: bool = False
    use_search: bool = False
    # None: follow the model name; True/False: the client asked for thinking explicitly.
    thinking: bool | None = None
    # OpenAI's `reasoning_effort` (none, minimal, low, medium, high …), for models offering effort levels.
    reasoning_effort: str | None = None
    # The seed's conversation_id: any value keeps the upstream chat; a Kimi chat id continues it.
    conversation_id: str | None = None
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    # The client's tools, and JSON output: the answer's shape is then enforced (core/guided/guided.py).
    tools: ToolSet | None = None
    output: JsonOutput | None = None
    # Who owns the chats and files this request uses (core/owners.py): "" with the client's own Kimi tokens.
    owner: str = ""

    @property
    def guided(self) -> bool:
        return self.tools is not None or self.output is not None
