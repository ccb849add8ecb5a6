"""`kimi-free-api doctor` as a user runs it: the real CLI against a real emulator process, both on loopback."""

from __future__ import annotations

import asyncio
import re
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from openai import AsyncOpenAI

from tests.e2e.support import free_port, run_cli, spawn_gateway, stop_process
from tests.proxies import Socks5Proxy

# The 2026 catalog entry shape (evidence row 47): an `id`, reasoning-effort options, no `thinking` flag.
CATALOG_2026 = [
    {
        "id": "k2d6-chat",
        "key": "k2d6-chat",
        "scenario": "SCENARIO_K2D5",
        "displayName": "K2.6 Instant",
        "agentMode": "TYPE_NORMAL",
        "kimiPlusId": "",
        "reasoningEffortOptions": ["REASONING_EFFORT_NONE", "REASONING_EFFORT_LOW"],
        "defaultReasoningEffort": "REASONING_EFFORT_LOW",
    }
]
# The settings by which an emulator that defaults to the 2026 shapes offers the older ones.
OLDER_CHOICES = {
    "stage_statuses": "running_completed",
    "citation_style": "private_use",
    "chat_id_style": "xid",
    "catalog_shape": "legacy",
}
SECRET = "Plum7-kestrel-secret-in-the-answer"
_RESULT = re.compile(r"^(held|DIFFERS|untested)\s+(\S+)")


@asynccontextmanager
async def _emulator(*args: str) -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kimi_free_api",
        "emulator",
        "--port",
        str(port),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(url + "/_emulator/state"):
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        yield url
    finally:
        await stop_process(process)


async def _control(url: str, path: str, body: dict[str, Any]) -> Any:
    async with aiohttp.ClientSession() as session, session.post(f"{url}/_emulator/{path}", json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _get(url: str, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_emulator/{path}") as response:
        return await response.json()


async def _refresh_token(url: str) -> str:
    token: str = (await _control(url, "accounts", {}))["refresh_token"]
    return token


async def _doctor(url: str, token: str, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    args = ("doctor", "--base-url", url, "--token-file", str(token_file), *extra)
    return await run_cli(*args, env={"DATA_DIR": str(tmp_path / "data")}, timeout_s=100)


def _results(table: str) -> dict[str, str]:
    found = {}
    for line in table.splitlines():
        match = _RESULT.match(line)
        if match:
            found[match.group(2)] = match.group(1).lower()
    return found


def _differing(table: str) -> set[str]:
    return {name for name, result in _results(table).items() if result == "differs"}


def _shapes(trace: Path) -> dict[str, list[str]]:
    """Per doctor step, what was sent and answered: kinds, calls, statuses and shapes, in order."""
    steps: dict[str, list[str]] = {}
    for line in trace.read_bytes().splitlines():
        entry = orjson.loads(line)
        if entry["kind"] in ("request", "answer", "frame", "end"):
            shape = orjson.dumps(entry.get("shape"), option=orjson.OPT_SORT_KEYS).decode()
            key = f"{entry['kind']} {entry.get('call', '')} {entry.get('status', '')} {shape}"
            steps.setdefault(entry.get("step", ""), []).append(key)
    return steps


async def test_against_the_2026_shape_everything_holds(tmp_path: Path) -> None:
    async with _emulator() as url:
        await _control(url, "config", {"rotate_refresh_tokens": True, "models": CATALOG_2026})
        token = await _refresh_token(url)
        status, out, err = await _doctor(url, token, tmp_path, "--save-token", str(tmp_path / "new-token"))
    results = _results(out)
    differing = _differing(out)
    assert not differing, out
    assert status == (1 if differing else 0), out + err
    for name in ("refresh.connect", "refresh.rotation", "token.access", "catalog.entries", "chat.text", "chat.done"):
        assert results[name] == "held", out
    for name in ("upload.direct", "upload.parse", "upload.chat", "cancel.call", "delete.call", "chat.frames"):
        assert results[name] == "held", out
    assert results["stream.exception"] == "untested"
    assert len(results) >= 24
    # One holder per account: the rotated refresh token is kept, for the owner only, and the old one is not printed.
    saved = tmp_path / "new-token"
    assert saved.read_text().strip() not in ("", token)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert token not in out + err
    assert "the new one is kept in the gateway's token cache" in out


async def test_a_rotated_token_stays_usable_by_the_doctor_and_the_gateway(tmp_path: Path) -> None:
    async with _emulator() as url:
        # Access tokens too short-lived to reuse: the gateway has to refresh, with the newest refresh token.
        await _control(url, "config", {"rotate_refresh_tokens": True, "access_token_ttl_s": 30})
        token = await _refresh_token(url)
        # The token given is revoked by the first run; the second finds the newest one in the token cache.
        for _ in range(2):
            _, out, _ = await _doctor(url, token, tmp_path)
            assert _results(out)["refresh.rotation"] == "held", out
        process, gateway = await spawn_gateway({"KIMI_BASE_URL": url, "DATA_DIR": str(tmp_path / "data")})
        try:
            async with AsyncOpenAI(base_url=gateway + "/v1", api_key=token, max_retries=0) as client:
                reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "hi"}])
        finally:
            await stop_process(process)
        refreshes = (await _get(url, "state"))["refreshes"]
    assert (reply.choices[0].message.content or "").startswith("Echo: hi")
    assert refreshes == 3  # two doctor runs and the gateway, each with the token the one before it received


async def test_an_older_shape_is_named_exactly(tmp_path: Path) -> None:
    async with _emulator() as url:
        # The 2025 shapes: non-rotating refresh, the old catalog, xid ids, the old stage statuses and lone
        # private-use citation characters.
        old = {"rotate_refresh_tokens": False, "thinking_style": "stage", "citation_markers": True}
        # Emulators that speak the 2026 shapes by default name the older ones with these settings.
        known = await _get(url, "config")
        old |= {key: value for key, value in OLDER_CHOICES.items() if key in known}
        await _control(url, "config", old)
        status, out, _ = await _doctor(url, await _refresh_token(url), tmp_path)
    assert status == 1
    assert _differing(out) == {
        "refresh.rotation",
        "catalog.entries",
        "chat.id_format",
        "thinking.stage",
        "search.markers",
    }, out
    assert "the same refresh token came back" in out
    assert "STAGE_STATUS_RUNNING then STAGE_STATUS_COMPLETED" in out
    assert "lone private-use characters U+E001" in out
    assert "a 20-character id of [0-9a-z]" in out
    assert "kimi-free-api doctor --record" in out  # what to send with a report


async def test_the_trace_has_shapes_but_no_text_ids_or_tokens(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    async with _emulator() as url:
        await _control(url, "script", {"answers": [f"{SECRET} number {n}" for n in range(6)]})
        token = await _refresh_token(url)
        status, out, err = await _doctor(url, token, tmp_path, "--record", str(trace))
        other = await _control(url, "accounts", {})  # an id minted by the same emulator
    text = trace.read_text()
    assert SECRET not in text and SECRET not in out + err
    assert token not in text and "eyJ" not in text
    assert other["user_id"] not in text
    assert not re.search(r"[0-9a-v]{20}", text), "an id leaked into the trace"
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert lines[0] == {"kind": "trace", "format": "kimi-free-api-trace/1"}
    masks = {line["shape"].get("mask") for line in lines if line["kind"] == "frame"}
    assert {"block.text", "block.text.content", "block.think.content", "block.search.webPages"} <= masks
    verdicts = {line["check"]: line["result"] for line in lines if line["kind"] == "verdict"}
    assert verdicts == _results(out)
    assert status == 0


async def test_a_replayed_trace_reproduces_the_same_shapes(tmp_path: Path) -> None:
    recorded, replayed = tmp_path / "recorded.jsonl", tmp_path / "replayed.jsonl"
    async with _emulator() as url:
        await _control(url, "config", {"search_style": "tool", "thinking_style": "text_flags", "models": CATALOG_2026})
        _, first, _ = await _doctor(url, await _refresh_token(url), tmp_path, "--record", str(recorded))
    async with _emulator("--replay", str(recorded)) as url:
        _, second, _ = await _doctor(url, await _refresh_token(url), tmp_path, "--record", str(replayed))
    # How many text frames slip out before a cancel lands is a matter of timing, not of shape.
    recorded_steps, replayed_steps = _shapes(recorded), _shapes(replayed)
    assert set(replayed_steps) == set(recorded_steps)
    for step in recorded_steps.keys() - {"cancel"}:
        assert replayed_steps[step] == recorded_steps[step], step
    # Citation markers and id formats live in values, which a trace erases (its verdict lines keep what was seen).
    by_values = {"search.markers", "chat.id_format"}
    first_results, second_results = _results(first), _results(second)
    assert {k: v for k, v in second_results.items() if k not in by_values} == {
        k: v for k, v in first_results.items() if k not in by_values
    }


async def test_a_users_trace_becomes_a_gateway_test(tmp_path: Path) -> None:
    recorded, gateway_trace = tmp_path / "recorded.jsonl", tmp_path / "gateway.jsonl"
    async with _emulator() as url:
        await _control(url, "script", {"answers": [SECRET] * 6})
        await _doctor(url, await _refresh_token(url), tmp_path, "--record", str(recorded))
    async with _emulator("--replay", str(recorded)) as url:
        token = await _refresh_token(url)
        process, gateway = await spawn_gateway(
            {"KIMI_BASE_URL": url, "DATA_DIR": str(tmp_path / "gw"), "KIMI_TRACE_FILE": str(gateway_trace)}
        )
        try:
            async with AsyncOpenAI(base_url=gateway + "/v1", api_key=token, max_retries=0) as client:
                reply = await client.chat.completions.create(
                    model="kimi", messages=[{"role": "user", "content": "hello"}]
                )
        finally:
            await stop_process(process)
    content = reply.choices[0].message.content or ""
    assert "fill the shape of a recorded frame" in content  # the emulator's own words in the recorded shape
    assert SECRET not in content
    # The gateway's own trace (KIMI_TRACE_FILE) of that answer has the recorded shapes again, end envelope included.
    wanted = [key for key in _shapes(recorded)["plain"] if key.startswith(("frame", "end"))]
    assert _shapes(gateway_trace)[""] == wanted


async def test_a_refused_token_exits_3_without_showing_it(tmp_path: Path) -> None:
    async with _emulator() as url:
        token = "eyJhbGciOiJIUzI1NiJ9.eyJ0eXAiOiJyZWZyZXNoIn0.not-a-valid-signature"
        status, out, err = await _doctor(url, token, tmp_path)
    assert status == 3
    assert "could not run the script: the token was not accepted" in out
    assert _results(out)["chat.text"] == "untested"
    assert token not in out + err


async def test_doctor_without_a_token_is_a_usage_error(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path), "KIMI_TOKENS": "", "KIMI_TOKENS_FILE": ""}
    status, _, stderr = await run_cli("doctor", "--base-url", "http://127.0.0.1:9", env=env)
    assert status == 2
    assert "doctor needs a Kimi token" in stderr


async def test_the_emulator_refuses_a_file_that_is_not_a_trace(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text('{"kind": "frame", "shape": {}}\n')
    status, _, stderr = await run_cli("emulator", "--port", str(free_port()), "--replay", str(bogus))
    assert status == 2
    assert "not a kimi-free-api trace" in stderr


async def test_an_unreachable_kimi_exits_3_and_the_servers_account_is_used(tmp_path: Path) -> None:
    access = "eyJhbGciOiJIUzI1NiJ9.eyJ0eXAiOiJhY2Nlc3MifQ.c2lnbmF0dXJl"  # typ=access: no exchange is tried
    env = {"DATA_DIR": str(tmp_path), "KIMI_TOKENS": access}
    status, stdout, _ = await run_cli("doctor", "--base-url", f"http://127.0.0.1:{free_port()}", env=env, timeout_s=60)
    assert status == 3
    assert "could not run the script: Kimi could not be reached" in stdout


async def test_the_doctor_goes_the_gateways_way_through_a_socks_kimi_proxy(tmp_path: Path) -> None:
    proxy = await Socks5Proxy().start()
    try:
        async with _emulator() as url:
            token = await _refresh_token(url)
            token_file = tmp_path / "token"
            token_file.write_text(token)
            env = {"DATA_DIR": str(tmp_path / "data"), "KIMI_PROXY": proxy.url}
            status, out, err = await run_cli(
                "doctor", "--base-url", url, "--token-file", str(token_file), env=env, timeout_s=100
            )
    finally:
        await proxy.stop()
    assert status == 0, out + err
    assert _results(out)["chat.text"] == "held", out
    port = url.rsplit(":", 1)[1]
    assert proxy.relayed and {(c.mode, c.target) for c in proxy.relayed} == {("socks5", f"127.0.0.1:{port}")}
