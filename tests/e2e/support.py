"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from openai import AsyncOpenAI


@dataclass
class Gateway:
    url: str
    runner: web.AppRunner

    @property
    def app(self) -> web.Application:
        return self.runner.app

    async def stop(self) -> None:
        await self.runner.cleanup()


GatewayFactory = Callable[..., Awaitable[Gateway]]


def openai_client(gateway: Gateway, api_key: str) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=gateway.url + "/v1",
        api_key=api_key,
        max_retries=0,
        timeout=30,
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Background cleanup runs after the response: wait for its effect instead of sleeping a fixed time."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def spawn_gateway(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """`kimi-free-api serve` as a real process on a free loopback port; answers (process, base URL) once it is up."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kimi_free_api",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env={**os.environ, "LOG_LEVEL": "WARNING", **env},
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url + "/healthz"):
                    return process, url
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    process.kill()
    raise AssertionError("the gateway did not start")


async def run_cli(*args: str, env: dict[str, str] | None = None, timeout_s: float = 30) -> tuple[int, str, str]:
    """`kimi-free-api ARGS` run to its end: (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kimi_free_api",
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
