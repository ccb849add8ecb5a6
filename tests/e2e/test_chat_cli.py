"""`kimi-free-api chat` as a user runs it: a real process, against a gateway on loopback or straight at the
emulator with a token; one-shot (argument or piped stdin) and interactive on a terminal (a pseudo-terminal here)."""

from __future__ import annotations

import asyncio
import os
import pty
import sys

from kimi_free_api.emulator import Account, Emulator
from tests.e2e.support import Gateway


async def _chat(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kimi_free_api",
        "chat",
        *args,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(stdin or b""), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_a_gateway_answer_shows_thinking_apart(gateway: Gateway, account: Account) -> None:
    status, out, err = await _chat(
        "--url", gateway.url, "--key", account.refresh_token, "--model", "kimi-thinking", "what", "is", "up?"
    )
    assert status == 0, err
    assert out.startswith("[thinking]\nThinking about: what is up?")
    assert out.index("\n[/thinking]\n") < out.index("Echo: what is up?")
    assert out.endswith("\n")


async def test_a_token_asks_kimi_directly_from_stdin_and_cleans_up(emulator: Emulator, account: Account) -> None:
    status, out, err = await _chat(
        "--token", account.refresh_token, stdin=b"a piped question\n", env={"KIMI_BASE_URL": emulator.base_url}
    )
    assert status == 0, err
    assert out.startswith("Echo: a piped question")
    assert "[thinking]" not in out
    assert emulator.state.deleted == 1
    assert not emulator.state.chats  # a quick try leaves nothing in the account's history


async def test_a_refused_request_is_one_line_on_stderr(gateway: Gateway) -> None:
    status, out, err = await _chat("--url", gateway.url, "--key", "not-a-valid-kimi-token-at-all", "hi")
    assert status == 1
    assert out == ""
    assert err.startswith("error: HTTP 401: ")
    assert "not-a-valid" not in err


async def test_a_terminal_gets_a_conversation(emulator: Emulator, account: Account) -> None:
    controller, terminal = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kimi_free_api",
        "chat",
        "--token",
        account.refresh_token,
        env={**os.environ, "KIMI_BASE_URL": emulator.base_url},
        stdin=terminal,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(terminal)
    assert process.stdout is not None
    try:
        seen = b""
        for turn in (b"first turn", b"second turn"):
            os.write(controller, turn + b"\n")
            while b"Echo: " + turn not in seen:
                seen += await asyncio.wait_for(process.stdout.read(4096), 30)
        os.write(controller, b"/exit\n")
        seen += await asyncio.wait_for(process.stdout.read(), 30)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        os.close(controller)
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert seen.count(b"you> ") == 3
    first, second = emulator.state.chat_requests
    assert "chat_id" not in first
    assert second["chat_id"]  # the second turn continued the first's chat
    assert emulator.state.deleted == 1  # which is deleted once the conversation ends
    assert not emulator.state.chats
