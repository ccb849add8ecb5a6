"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from openai import AsyncOpenAI


@dataclass
class Gateway:
    url: str
    app: web.Application


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
