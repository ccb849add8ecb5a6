"""The question a research run stops on (evidence row 37, P6).

Deep Research may call its ask-user tool and then wait, with the stream still open, until the user answers; Kimi
marks that state with the chat status `STATUS_ASK_USER_QUESTION`. The tool block is set once with the tool's name,
then its JSON arguments arrive in `append` fragments: `{"questions": [{"question", "type", "options": [{"option",
"description", "recommended"}]}]}` (or a single `question`). The gateway ends the turn with the question as the
answer, so the client can answer it in its next message.
"""

from __future__ import annotations

from typing import Any

import orjson

ASK_USER_STATUS = "STATUS_ASK_USER_QUESTION"


def is_ask_user_tool(tool: dict[str, Any]) -> bool:
    name = str(tool.get("name") or "").lower()
    return "ask_user" in name or tool.get("type") == "TOOL_TYPE_ASK_USER"


def _option(option: Any) -> str:
    if not isinstance(option, dict):
        return f"- {option}"
    line = f"- {option.get('option') or option.get('label') or ''}"
    if option.get("description"):
        line += f": {option['description']}"
    return line + (" (recommended)" if option.get("recommended") else "")


def _render(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    text = str(entry.get("question") or entry.get("prompt") or entry.get("message") or "")
    options = entry.get("options")
    lines = [_option(option) for option in options] if isinstance(options, list) else []
    return "\n".join([text, *lines]) if text or lines else ""


class AskUserTool:
    """One ask-user tool block: its arguments collected from `set` and `append` frames."""

    __slots__ = ("_args",)

    def __init__(self) -> None:
        self._args = ""

    def update(self, op: Any, tool: dict[str, Any]) -> None:
        args = tool.get("args")
        if isinstance(args, str):
            self._args = self._args + args if op == "append" else args
        elif isinstance(args, dict):
            self._args = orjson.dumps(args).decode()

    def question(self) -> str:
        """The question as readable text: each question, then its options, one per line."""
        raw = self._args.strip()
        try:
            parsed = orjson.loads(raw) if raw.startswith("{") else raw
        except orjson.JSONDecodeError:
            return raw
        if not isinstance(parsed, dict):
            return str(parsed)
        questions = parsed.get("questions")
        if isinstance(questions, list) and questions:
            rendered = [_render(entry) for entry in questions]
            if len(rendered) == 1:
                return rendered[0]
            return "\n\n".join(f"{n}. {text}" for n, text in enumerate(rendered, 1))
        return _render(parsed) or raw
