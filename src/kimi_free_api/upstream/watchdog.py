"""Abandoning upstream streams that went silent.

One sweeper per process looks at every running stream's last activity once a period, instead of re-arming a timer
on every network read (which is what a per-read socket timeout costs).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol


class Watched(Protocol):
    def idle_since(self) -> float | None:
        """Loop time of the last activity, or None while the stream is deliberately not reading."""
        ...

    def expire(self) -> None: ...


class IdleWatchdog:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._period = min(1.0, timeout_s / 4)
        self._streams: set[Watched] = set()
        self._task: asyncio.Task[None] | None = None

    def watch(self, stream: Watched) -> None:
        self._streams.add(stream)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sweep(), name="idle-watchdog")

    def unwatch(self, stream: Watched) -> None:
        self._streams.discard(stream)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self._streams:
            await asyncio.sleep(self._period)
            deadline = loop.time() - self.timeout_s
            for stream in list(self._streams):
                since = stream.idle_since()
                if since is not None and since < deadline:
                    self._streams.discard(stream)
                    stream.expire()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
