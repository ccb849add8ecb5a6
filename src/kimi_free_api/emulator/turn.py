"""What a Chat request asks for, read from its JSON (snake_case or camelCase field names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kimi_free_api.emulator.casing import pick
from kimi_free_api.emulator.errors import invalid_argument

DEFAULT_SCENARIO = "SCENARIO_K2"
RESEARCH_AGENT = "deep-researcher"


def _optional_str(obj: dict[str, Any], name: str) -> str:
    value = pick(obj, name)
    if value is not None and not isinstance(value, str):
        raise invalid_argument(f"`{name}` must be a string")
    return value or ""


@dataclass(frozen=True)
class Turn:
    prompt: str
    chat_id: str
    parent_id: str
    scenario: str
    search: bool
    thinking: bool
    # Attached files: `message.blocks[].file.id` entries, or a top-level `refs` list of ids.
    file_ids: tuple[str, ...] = ()
    # Deep Research as the 2026 web app starts it: the deep-researcher agent with the ask-user tool declared.
    research: bool = False

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Turn:
        message = body.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("blocks"), list):
            raise invalid_argument("`message.blocks` is required")
        texts = [
            block["text"]["content"]
            for block in message["blocks"]
            if isinstance(block, dict)
            and isinstance(block.get("text"), dict)
            and isinstance(block["text"].get("content"), str)
        ]
        prompt = "\n".join(texts)
        if not prompt.strip():
            raise invalid_argument("the message has no text (`message.blocks[].text.content`)")
        tools = body.get("tools")
        declared = tools if isinstance(tools, list) else []
        tool_types = {tool.get("type") for tool in declared if isinstance(tool, dict)}
        options = body.get("options")
        blocks = [block.get("file") for block in message["blocks"] if isinstance(block, dict)]
        refs = body.get("refs")
        file_ids = [file["id"] for file in blocks if isinstance(file, dict) and isinstance(file.get("id"), str)]
        file_ids += [ref for ref in refs if isinstance(ref, str)] if isinstance(refs, list) else []
        return cls(
            prompt=prompt,
            chat_id=_optional_str(body, "chat_id"),
            parent_id=_optional_str(message, "parent_id"),
            scenario=_optional_str(body, "scenario") or _optional_str(message, "scenario") or DEFAULT_SCENARIO,
            search="TOOL_TYPE_SEARCH" in tool_types,
            thinking=isinstance(options, dict) and bool(options.get("thinking")),
            file_ids=tuple(file_ids),
            research=_optional_str(body, "kimiplus_id") == RESEARCH_AGENT and "TOOL_TYPE_ASK_USER" in tool_types,
        )
