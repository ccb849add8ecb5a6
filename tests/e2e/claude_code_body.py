"""A request shaped like the ones Claude Code 2.1.x was seen to send (run offline against a stand-in server): one
streamed `POST /v1/messages?beta=true` of about 50 KB with an Opus model name, adaptive thinking,
`context_management`, `output_config`, `metadata`, cached system blocks and 12 tools.

Every word here is this project's own: the tools only carry the names and argument shapes such an agent uses, with
descriptions written for this fixture and padded with numbered usage notes to reach a realistic size.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "http://json-schema.org/draft-07/schema#"
CACHED = {"type": "ephemeral"}

HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": ",".join(
        (
            "claude-code-20250219",
            "oauth-2025-04-20",
            "interleaved-thinking-2025-05-14",
            "context-management-2025-06-27",
            "prompt-caching-scope-2026-01-05",
            "effort-2025-11-24",
            "fine-grained-tool-streaming-2025-05-14",
        )
    ),
    "anthropic-dangerous-direct-browser-access": "true",
    "x-app": "cli",
    "user-agent": "claude-cli/2.1.99 (external, cli)",
    "x-stainless-lang": "js",
    "x-stainless-retry-count": "0",
    "x-stainless-timeout": "600",
}


def _notes(topic: str, count: int) -> str:
    lines = [
        f"{n}. When working with {topic}, note {n}: prefer small, reversible steps, report what changed and why, "
        f"and stop to ask when the request is ambiguous or the step could lose the user's work."
        for n in range(1, count + 1)
    ]
    return "\n".join(lines)


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _tool(name: str, summary: str, properties: dict[str, Any], required: list[str], notes: int) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{summary}\n\nUsage notes:\n{_notes(name, notes)}",
        "input_schema": _object(properties, required),
    }


STRING = {"type": "string"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}

TOOLS = [
    _tool(
        "Task",
        "Hands a self-contained piece of work to a helper agent and returns its final report.",
        {"description": STRING, "prompt": STRING, "subagent_type": STRING},
        ["description", "prompt", "subagent_type"],
        20,
    ),
    _tool(
        "Bash",
        "Runs a shell command in a persistent session, with an optional timeout.",
        {"command": STRING, "timeout": NUMBER, "description": STRING, "run_in_background": BOOLEAN},
        ["command"],
        40,
    ),
    _tool(
        "Glob",
        "Finds files whose paths match a glob pattern, newest first.",
        {"pattern": STRING, "path": STRING},
        ["pattern"],
        10,
    ),
    _tool(
        "Grep",
        "Searches file contents with a regular expression.",
        {
            "pattern": STRING,
            "path": STRING,
            "glob": STRING,
            "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"]},
            "-i": BOOLEAN,
            "-n": BOOLEAN,
            "head_limit": NUMBER,
            "multiline": BOOLEAN,
        },
        ["pattern"],
        20,
    ),
    _tool("ExitPlanMode", "Ends planning and presents the plan for approval.", {"plan": STRING}, ["plan"], 8),
    _tool(
        "Read",
        "Reads a file from the local filesystem, optionally a range of lines.",
        {"file_path": STRING, "offset": NUMBER, "limit": NUMBER},
        ["file_path"],
        20,
    ),
    _tool(
        "Edit",
        "Replaces an exact string in a file with another.",
        {
            "file_path": STRING,
            "old_string": STRING,
            "new_string": STRING,
            "replace_all": {"type": "boolean", "default": False},
        },
        ["file_path", "old_string", "new_string"],
        16,
    ),
    _tool(
        "Write",
        "Writes a whole file, replacing what was there.",
        {"file_path": STRING, "content": STRING},
        ["file_path", "content"],
        10,
    ),
    _tool(
        "NotebookEdit",
        "Replaces, inserts or deletes one cell of a Jupyter notebook.",
        {
            "notebook_path": STRING,
            "cell_id": STRING,
            "new_source": STRING,
            "cell_type": {"type": "string", "enum": ["code", "markdown"]},
            "edit_mode": {"type": "string", "enum": ["replace", "insert", "delete"]},
        },
        ["notebook_path", "new_source"],
        8,
    ),
    _tool(
        "WebFetch",
        "Fetches a URL and answers a question about its content.",
        {"url": {"type": "string", "format": "uri"}, "prompt": STRING},
        ["url", "prompt"],
        10,
    ),
    _tool(
        "TodoWrite",
        "Keeps the structured task list of the session up to date.",
        {
            "todos": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "content": {"type": "string", "minLength": 1},
                        "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                        "activeForm": {"type": "string", "minLength": 1},
                    },
                    "required": ["content", "status", "activeForm"],
                    "additionalProperties": False,
                },
            }
        },
        ["todos"],
        30,
    ),
    _tool(
        "WebSearch",
        "Searches the web and returns result blocks.",
        {
            "query": {"type": "string", "minLength": 2},
            "allowed_domains": {"type": "array", "items": STRING},
            "blocked_domains": {"type": "array", "items": STRING},
        },
        ["query"],
        10,
    ),
]


def claude_code_body(question: str = "Read README.md and summarise it.") -> dict[str, Any]:
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.99; cc_entrypoint=cli"},
        {"type": "text", "text": "You are a coding agent running in a terminal.", "cache_control": CACHED},
        {
            "type": "text",
            "text": "Follow the user's instructions with care.\n\n" + _notes("the repository", 60),
            "cache_control": CACHED,
        },
    ]
    reminder = "<system-reminder>\nThe working directory is /home/dev/project. Today is a weekday.\n</system-reminder>"
    tools = [*TOOLS]
    tools[-1] = {**tools[-1], "cache_control": CACHED}
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 32000,
        "stream": True,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "user_0f3a_account__session_5b9c"},
        "system": system,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": reminder},
                    {"type": "text", "text": question, "cache_control": CACHED},
                ],
            }
        ],
        "tools": tools,
        "temperature": 1,
    }
