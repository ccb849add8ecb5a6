"""Real coding agents, end to end: Codex CLI over /v1/responses and Claude Code over /v1/messages, each doing a
small task with its own tools while Kimi's side is scripted in the emulator.

The CLIs are the npm packages `.ci/run` installs into `.ci/node/` (pinned in `.ci/agents.txt`). Each run happens in
`tests/e2e/agent_harness.py`, which starts the emulator and the gateway beside the CLI inside a network namespace
that has only loopback (`unshare -n`), so a CLI that tried to reach the internet would fail the task, not leak.
Without the binaries the tests skip, except under `.ci/run` (KIMI_AGENT_CLIS_REQUIRED=1), where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent_harness import HARNESS, isolated_command

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".ci" / "node" / "bin"
# Kimi's private-use citation characters (U+E000…U+F8FF), which the gateway strips from answers.
MARKERS = "\ue001\ue002"


def agent(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        reason = f"{path} is not installed: `.ci/run` installs the agent CLIs (or see .ci/agents.txt)"
        if os.environ.get("KIMI_AGENT_CLIS_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


async def run_agent(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs the harness (isolated when the machine allows it) and answers its report."""
    command = isolated_command() or [sys.executable, "-m", HARNESS]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(json.dumps(spec).encode()), 240)
    assert process.returncode == 0, err.decode(errors="replace")[-4000:]
    report: dict[str, Any] = json.loads(out)
    return report


def prompts(report: dict[str, Any]) -> list[str]:
    return [body["message"]["blocks"][0]["text"]["content"] for body in report["chat_requests"]]


def described(report: dict[str, Any]) -> str:
    return f"exit {report['returncode']}\nstdout:\n{report['stdout'][-3000:]}\nstderr:\n{report['stderr'][-3000:]}"


def base_env(home: Path) -> dict[str, str]:
    # A throw-away HOME: nothing of the machine's own configuration or credentials is read.
    return {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


CODEX_CONFIG = """\
model = "kimi"
model_provider = "gateway"
check_for_update_on_startup = false

[model_providers.gateway]
name = "kimi-free-api"
base_url = "{gateway}/v1"
wire_api = "responses"
env_key = "KIMI_FREE_API_KEY"

# Plugins sync a marketplace from github.com at start-up; the task needs none.
[features]
plugins = false

[analytics]
enabled = false

[feedback]
enabled = false
"""


async def test_codex_runs_a_shell_command_and_answers(tmp_path: Path) -> None:
    codex = agent("codex")
    work, codex_home = tmp_path / "work", tmp_path / "codex"
    report = await run_agent(
        {
            "script": [
                '<tool_call name="exec_command">{"cmd": "cat answer.txt"}</tool_call>',
                f"The file says forty-two.{MARKERS[0]} So the answer is 42.{MARKERS[1]} That is all.",
            ],
            "command": [
                str(codex),
                "exec",
                "--skip-git-repo-check",
                "--sandbox",
                "danger-full-access",
                "What does answer.txt say? Run a shell command to find out.",
            ],
            "env": {**base_env(tmp_path / "home"), "CODEX_HOME": str(codex_home), "KIMI_FREE_API_KEY": "{token}"},
            "files": {str(codex_home / "config.toml"): CODEX_CONFIG, str(work / "answer.txt"): "forty-two (42)\n"},
            "cwd": str(work),
            "data_dir": str(tmp_path / "data"),
            "timeout_s": 120,
        }
    )
    assert report["returncode"] == 0, described(report)
    assert report["stdout"].strip() == "The file says forty-two. So the answer is 42. That is all.", described(report)
    assert report["unused"] == []
    first, second = prompts(report)
    assert '"name":"exec_command"' in first and "What does answer.txt say?" in first
    # The command ran: its output came back to Kimi as the tool's result.
    assert '<tool tool_call_id="call_' in second and "forty-two (42)" in second
    # Codex declares the hosted web_search tool: Kimi's search is on for its requests.
    assert all({"type": "TOOL_TYPE_SEARCH", "search": {}} in body.get("tools", []) for body in report["chat_requests"])


CLAUDE_ANSWER = "The secret word in notes.txt is pelican."


async def test_claude_code_reads_a_file_with_its_tool_and_answers(tmp_path: Path) -> None:
    claude = agent("claude")
    work = tmp_path / "work"
    notes = work / "notes.txt"
    report = await run_agent(
        {
            "script": [
                f'Let me read the file. <tool_call name="Read">{json.dumps({"file_path": str(notes)})}</tool_call>',
                CLAUDE_ANSWER,
            ],
            "command": [
                str(claude),
                "-p",
                "What is the secret word in notes.txt? Read the file.",
                "--output-format",
                "json",
                "--allowedTools",
                "Read",
                # A model name the gateway knows; Claude Code only warns that it does not know it.
                "--model",
                "kimi",
            ],
            "env": {
                **base_env(tmp_path / "home"),
                "ANTHROPIC_BASE_URL": "{gateway}",
                "ANTHROPIC_API_KEY": "{token}",
                # No update checks, telemetry or error reporting: only the model calls leave the CLI.
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
            },
            "files": {str(notes): "The secret word is pelican.\n"},
            "cwd": str(work),
            "data_dir": str(tmp_path / "data"),
            "timeout_s": 180,
        }
    )
    assert report["returncode"] == 0, described(report)
    # The result is the last line; a warning about the model name may come before it.
    result = json.loads(report["stdout"].strip().splitlines()[-1])
    assert result["is_error"] is False and result["result"] == CLAUDE_ANSWER, described(report)
    # Two model calls (seen against a stand-in of the Anthropic API): the Read call, then the answer after the
    # file's content came back as the tool's result.
    first, second = prompts(report)
    assert '"name":"Read"' in first and "notes.txt" in first
    assert "The secret word is pelican." in second
    assert report["unused"] == []
