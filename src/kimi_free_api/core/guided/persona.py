"""Text that looks like a call but is not one: Kimi's web-agent persona, and echoes of our own protocol example.

Kimi's web chat is also an agent with its own sandbox: a code interpreter called `ipython`, files under
`/mnt/agents/`, a browser. With an agentic prompt it sometimes slips into that persona and "calls" those tools.
The prompt tells it that it has none of them (`PERSONA_RULE`); a call to one of them that the client did not
declare is never passed on as a call: Kimi is asked once to use the declared tools instead, and if it insists the
call is dropped. A reply that quotes the example of the protocol (`TOOL_NAME`) is prose, not a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PERSONA_RULE = (
    "You are a function-calling model here, not an agent with a sandbox: you have no code interpreter (ipython, "
    "python), no shell, browser or file system of your own (there is no /mnt/agents/ or /mnt/data/). The tools "
    "declared above are the only tools: to act, call one of them."
)

# The placeholder name of the call example in the prompt (core/guided/tool_protocol.py, `tools_directive`).
ECHO_NAME = "TOOL_NAME"

# Names of the web agent's own tools, as Kimi writes them (lowercase).
_PERSONA_TOOLS = frozenset(
    {"ipython", "python", "code_interpreter", "browser", "web_browser", "web_search", "search", "shell", "bash"}
)
_PERSONA_PATHS = ("/mnt/agents", "/mnt/data", "/mnt/okcomputer")


def _mentions_sandbox(value: Any) -> bool:
    if isinstance(value, str):
        return any(path in value for path in _PERSONA_PATHS)
    if isinstance(value, Mapping):
        return any(_mentions_sandbox(item) for item in value.values())
    if isinstance(value, list):
        return any(_mentions_sandbox(item) for item in value)
    return False


def is_persona_call(name: str, arguments: Any) -> bool:
    """Whether an undeclared call is the web agent's own tool (by its name or a sandbox path in its arguments)."""
    bare = name.lower().removeprefix("functions.")
    return bare in _PERSONA_TOOLS or _mentions_sandbox(arguments)


def persona_problem(name: str, declared: Mapping[str, object]) -> str:
    known = ", ".join(f"`{tool}`" for tool in declared)
    return (
        f"`{name}` is not available: you have no sandbox, code interpreter or file system of your own here; "
        f"use only the declared tools ({known})"
    )
