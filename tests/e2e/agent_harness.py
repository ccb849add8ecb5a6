"""Runs a real agent CLI against the gateway and the emulator, all three inside one network namespace that has
only a loopback interface (when `unshare -n` is available), so the CLI provably cannot reach anything else.

`python -m tests.e2e.agent_harness` reads a JSON spec on stdin:

    {"script": [answers], "command": [argv], "env": {…}, "files": {path: text}, "cwd": dir, "timeout_s": n,
     "data_dir": dir, "settings": {gateway setting overrides}, "emulator": {emulator settings}}

`{gateway}` in the env, files, command and cwd becomes the gateway's URL and `{token}` a Kimi token of an
emulator account. It answers one JSON object on stdout: the CLI's `returncode`, `stdout`, `stderr`, the Chat
request bodies the emulator recorded (`chat_requests`) and the scripted answers left unused (`unused`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from kimi_free_api.app import create_app
from kimi_free_api.config import Settings
from kimi_free_api.emulator import Emulator, EmulatorConfig

HARNESS = "tests.e2e.agent_harness"


def isolated_command() -> list[str]:
    """How to start the harness with only loopback networking, or [] when this machine cannot."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        return []
    probe = subprocess.run([unshare, "-n", ip, "link", "set", "lo", "up"], capture_output=True, check=False)
    if probe.returncode != 0:
        return []
    inner = f"{ip} link set lo up && exec {sys.executable} -m {HARNESS}"
    return [unshare, "-n", "sh", "-c", inner]


def _fill(value: str, values: dict[str, str]) -> str:
    for key, text in values.items():
        value = value.replace("{" + key + "}", text)
    return value


def _write_files(files: dict[str, str], values: dict[str, str]) -> None:
    for path, text in files.items():
        target = Path(_fill(path, values))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_fill(text, values), encoding="utf-8")


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    emulator = Emulator(EmulatorConfig(event_count=8))
    await emulator.start("127.0.0.1", 0)
    account = emulator.create_account("agent")
    emulator.configure(**spec.get("emulator", {}))
    emulator.script(spec.get("script", []))
    settings = Settings(
        host="127.0.0.1",
        kimi_base_url=emulator.base_url,
        data_dir=spec["data_dir"],
        min_start_interval_s=0.0,
        conversation_ttl_s=0.0,
    ).with_overrides(**spec.get("settings", {}))
    runner = web.AppRunner(create_app(settings), handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    values = {"gateway": f"http://{host}:{port}", "token": account.refresh_token}
    try:
        await asyncio.to_thread(_write_files, spec.get("files", {}), values)
        env = {key: _fill(value, values) for key, value in spec.get("env", {}).items()}
        process = await asyncio.create_subprocess_exec(
            *(_fill(arg, values) for arg in spec["command"]),
            cwd=_fill(spec.get("cwd", "."), values),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), spec.get("timeout_s", 120))
        except TimeoutError:
            process.kill()
            out, err = await process.communicate()
            err += b"\n[harness: the command timed out]"
        return {
            "returncode": process.returncode,
            "stdout": out.decode(errors="replace"),
            "stderr": err.decode(errors="replace"),
            "chat_requests": list(emulator.state.chat_requests),
            "unused": list(emulator.scripted),
        }
    finally:
        await runner.cleanup()
        await emulator.stop()


def main() -> None:
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(_run(spec))
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
