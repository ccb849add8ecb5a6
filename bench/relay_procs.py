"""The emulator and the gateway as subprocesses, and what /proc says about them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiohttp

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


def free_port() -> int:
    # Racy in theory (another process could take the port before the child binds it); harmless on a bench box.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process so far (resolution: one clock tick, usually 10 ms)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces and parentheses: the fixed fields start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    user, system = cpu_split(pid)
    return user + system


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def reset_peak_rss(pid: int) -> bool:
    """Makes VmHWM start again from the current RSS (Linux >= 4.0), so a phase's peak is its own."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def raise_fd_limit() -> None:
    # Hundreds of streams need sockets on three processes; children inherit the raised soft limit.
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    except (ImportError, ValueError, OSError):
        pass


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: IO[bytes]
    interrupt_first: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None and self.interrupt_first:
            # cProfile writes its output only when the program ends normally; SIGINT lets `serve` return.
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT_S)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self.log.close()


def spawn(
    name: str, args: list[str], port: int, env: dict[str, str] | None = None, profile_to: str | None = None
) -> Service:
    """Starts `python -m kimi_free_api ARGS` on a loopback port, optionally under cProfile."""
    # A file, not a pipe: nobody reads the child's output while it runs, and a full pipe would block it.
    # It lives as long as the child, so Service.stop closes it, not a with block.
    log = tempfile.TemporaryFile(prefix=f"bench-{name}-")  # noqa: SIM115
    profiler = ["-m", "cProfile", "-o", profile_to] if profile_to else []
    process = subprocess.Popen(
        [sys.executable, *profiler, "-m", "kimi_free_api", *args, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Service(name, process, f"http://127.0.0.1:{port}", log, interrupt_first=bool(profile_to))


async def wait_ready(session: aiohttp.ClientSession, service: Service, path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}")
        try:
            async with session.get(service.base_url + path) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} did not answer within {STARTUP_TIMEOUT_S:g} s:\n{service.log_tail()}")
        await asyncio.sleep(0.05)
