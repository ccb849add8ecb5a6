"""What a Chat request asks for, read from its JSON (snake_case or camelCase field names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kimi_free_api.emulator.casing import pick
from kimi_free_api.emulator.errors import invalid_argument

DEFAULT_SCENARIO = "SCENARIO_K2"
RESEARCH_AGENT = "deep-researcher"
NO_EFFORT = "REASONING_EFFORT_NONE"


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
    # The current catalog's selection: `options.model` (an entry's id) and `options.reasoning_effort`.
    model: str = ""
    reasoning_effort: str = ""

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
        if not isinstance(options, dict):
            options = {}
        effort = _optional_str(options, "reasoning_effort")
        blocks = [block.get("file") for block in message["blocks"] if isinstance(block, dict)]
        refs = body.get("refs")
        file_ids = [file["id"] for file in blocks if isinstance(file, dict) and isinstance(file.get("id"), str)]
        file_ids += [ref for ref in refs if isinstance(ref, str)] if isinstance(refs, list) else []
        return cls(
            prompt=prompt,
            chat_id=_optional_str(body, "chat_id"),
            parent_id=_optional_str(message, "parent_id"),
            scenario=_optional_str(body, "scenario") or _optional_str(message, "scenario") or DEFAULT_SCENARIO,
            search=isinstance(tools, list)
            and any(isinstance(tool, dict) and tool.get("type") == "TOOL_TYPE_SEARCH" for tool in tools),
            # An effort level, where sent, decides; the older boolean otherwise.
            thinking=effort != NO_EFFORT if effort else bool(options.get("thinking")),
            file_ids=tuple(file_ids),
            model=_optional_str(options, "model"),
            reasoning_effort=effort,
            research=_optional_str(body, "kimiplus_id") == RESEARCH_AGENT and "TOOL_TYPE_ASK_USER" in tool_types,
        )


def check_model_options(turn: Turn, models: list[dict[str, Any]]) -> None:
    """Refuses a selection the served catalog does not offer, as Kimi does (S4: K3 rejects thinking off)."""
    if not turn.model:
        return
    entry = next((m for m in models if m.get("id") == turn.model), None)
    if entry is None:
        raise invalid_argument(f"unknown model {turn.model!r}")
    if entry["scenario"] != turn.scenario:
        raise invalid_argument(f"model {turn.model!r} belongs to {entry['scenario']}, not {turn.scenario}")
    offered = entry.get("reasoningEffortOptions") or []
    if turn.reasoning_effort and turn.reasoning_effort not in offered:
        raise invalid_argument(f"model {turn.model!r} does not offer {turn.reasoning_effort}")
