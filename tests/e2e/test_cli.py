"""The commands a newcomer runs: `kimi-free-api serve --emulator` and `kimi-free-api emulator`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI

from kimi_free_api.state.sqlite import SqliteStore
from tests.e2e.support import free_port, run_cli, stop_process
from tests.e2e.test_tools import function_calls


@asynccontextmanager
async def _running(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kimi_free_api",
        *args,
        env={**os.environ, "DATA_DIR": tempfile.mkdtemp(prefix="kfa-cli-"), **(env or {})},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        await stop_process(process)


async def _wait_until_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never came up")


async def test_serve_with_emulator_answers_any_token() -> None:
    port = free_port()
    async with _running("serve", "--emulator", "--host", "127.0.0.1", "--port", str(port)) as process:
        await _wait_until_up(f"http://127.0.0.1:{port}/ping")
        async with AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="demo", max_retries=0) as client:
            reply = await client.chat.completions.create(
                model="kimi-search", messages=[{"role": "user", "content": "demo"}]
            )
        assert (reply.choices[0].message.content or "").startswith("Echo: demo")
        assert process.returncode is None
    assert process.returncode in {0, -signal.SIGINT}


async def test_emulator_command_serves_the_protocol() -> None:
    port = free_port()
    async with _running("emulator", "--port", str(port)):
        await _wait_until_up(f"http://127.0.0.1:{port}/_emulator/state")
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/_emulator/accounts", json={}) as response:
                account = await response.json()
            async with session.get(
                f"http://127.0.0.1:{port}/api/auth/token/refresh",
                headers={"Authorization": f"Bearer {account['refresh_token']}"},
            ) as response:
                assert response.status == 200
                assert (await response.json())["access_token"]


async def test_settings_come_from_the_environment() -> None:
    port = free_port()
    async with _running("serve", "--emulator", env={"HOST": "127.0.0.1", "PORT": str(port)}):
        await _wait_until_up(f"http://127.0.0.1:{port}/healthz")


async def test_invalid_setting_is_reported() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kimi_free_api",
        "serve",
        env={**os.environ, "PORT": "not-a-port"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode != 0
    assert b"PORT" in stderr


async def _cli(*args: str, data_dir: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    return await run_cli(*args, env={"DATA_DIR": data_dir, **(env or {})})


async def test_accounts_are_added_listed_masked_and_removed() -> None:
    data_dir = tempfile.mkdtemp(prefix="kfa-cli-")
    token = "a-kimi-refresh-token-for-the-cli-test"
    status, out, _ = await _cli("accounts", "add", token, "--label", "alice", data_dir=data_dir)
    assert status == 0
    account = out.split()[2]
    status, out, _ = await _cli("accounts", "list", data_dir=data_dir)
    assert status == 0
    assert account in out
    assert "alice" in out
    assert token not in out
    assert (await _cli("accounts", "remove", account, data_dir=data_dir))[0] == 0
    status, _, err = await _cli("accounts", "remove", account, data_dir=data_dir)
    assert status == 2
    assert f"no stored account {account}" in err
    status, _, err = await _cli("accounts", "add", "kfa-not-a-kimi-token-at-all", data_dir=data_dir)
    assert status == 2
    assert "gateway API key" in err


async def test_an_account_keeps_its_proxy_shown_without_the_password() -> None:
    data_dir = tempfile.mkdtemp(prefix="kfa-cli-")
    token = "a-kimi-refresh-token-behind-a-proxy"
    proxy = "socks5://user:s3cret-pass@127.0.0.1:1080"
    status, out, _ = await _cli("accounts", "add", token, "--proxy", proxy, data_dir=data_dir)
    assert status == 0
    assert "via socks5://user:***@127.0.0.1:1080" in out
    status, out, _ = await _cli("accounts", "list", data_dir=data_dir)
    assert "socks5://user:***@127.0.0.1:1080" in out
    assert "s3cret" not in out
    assert [stored.proxy for stored in SqliteStore.in_dir(data_dir).list_accounts()] == [proxy]
    status, _, err = await _cli("accounts", "add", token, "--proxy", "ftp://127.0.0.1:21", data_dir=data_dir)
    assert status == 2
    assert "--proxy: a proxy URL must start with one of" in err


def test_a_store_from_before_proxies_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, token TEXT NOT NULL, label TEXT NOT NULL DEFAULT '',"
        " added REAL NOT NULL)"
    )
    old.execute("INSERT INTO accounts VALUES ('a1', 'tok', 'old', 1.0)")
    old.commit()
    old.close()
    assert [(a.id, a.proxy) for a in SqliteStore(path).list_accounts()] == [("a1", "")]


async def test_keys_are_created_once_listed_by_id_and_revoked() -> None:
    data_dir = tempfile.mkdtemp(prefix="kfa-cli-")
    status, out, _ = await _cli("keys", "create", "--name", "laptop", data_dir=data_dir)
    assert status == 0
    key_id, key = out.split()[2], out.splitlines()[-1]
    assert key.startswith("kfa-")
    status, out, _ = await _cli("keys", "list", data_dir=data_dir)
    assert f"{key_id}  laptop" in out
    assert key not in out
    assert (await _cli("keys", "revoke", key_id, data_dir=data_dir))[0] == 0
    assert (await _cli("keys", "revoke", key_id, data_dir=data_dir))[0] == 2


async def test_bad_arguments_exit_with_usage() -> None:
    status, _, err = await _cli("serve", "--port", "eighty", data_dir=tempfile.mkdtemp(prefix="kfa-cli-"))
    assert status == 2
    assert "--port" in err
    status, out, _ = await _cli(data_dir=tempfile.mkdtemp(prefix="kfa-cli-"))
    assert status == 0
    assert "serve" in out
    assert "accounts" in out


@pytest.mark.parametrize(
    ("token", "said"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Bearer a-kimi-refresh-token", "without the `Bearer `"),
        ("token-one,token-two", "one account at a time"),
        ("token one", "no spaces"),
    ],
)
async def test_accounts_add_refuses_what_cannot_be_a_token(token: str, said: str) -> None:
    data_dir = tempfile.mkdtemp(prefix="kfa-cli-")
    status, out, err = await _cli("accounts", "add", token, data_dir=data_dir)
    assert (status, out) == (2, "")
    assert said in err and len(err.splitlines()) == 1, err
    assert (await _cli("accounts", "list", data_dir=data_dir))[1] == "", "nothing was stored"


@pytest.mark.parametrize("command", ["serve", "emulator"])
async def test_a_taken_port_is_one_line_and_a_failure(command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, out, err = await _cli(
            command,
            *("--host", "127.0.0.1", "--port", str(port)),
            data_dir=tempfile.mkdtemp(prefix="kfa-cli-"),
            env={"LOG_LEVEL": "WARNING"},  # the start-up's own INFO lines are not the failure
        )
    assert status != 0
    assert err.splitlines() == [err.strip()] and f"cannot listen on 127.0.0.1:{port}" in err, err
    assert "Traceback" not in err + out


async def test_the_demo_answers_the_readme_tool_example_and_keeps_its_state_apart() -> None:
    data_dir = tempfile.mkdtemp(prefix="kfa-cli-")
    port = free_port()
    env = {"DATA_DIR": data_dir}
    weather: Any = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    async with _running("serve", "--emulator", "--host", "127.0.0.1", "--port", str(port), env=env):
        await _wait_until_up(f"http://127.0.0.1:{port}/healthz")
        async with AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="demo", max_retries=0) as client:
            reply = await client.chat.completions.create(
                model="kimi",
                messages=[{"role": "user", "content": "What's the weather in Paris?"}],
                tools=[weather],
                tool_choice="required",
            )
            [call] = function_calls(reply.choices[0].message)
            assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
            await client.chat.completions.create(
                model="kimi", messages=[{"role": "user", "content": "keep"}], extra_body={"conversation_id": "none"}
            )
    assert os.listdir(data_dir) == ["demo"]
    assert "kimi-free-api.sqlite3" in os.listdir(os.path.join(data_dir, "demo"))
