"""Streams through a real nginx (Debian's package), started by the test with its own prefix and config in a
temporary directory, on a loopback port: once with nothing but `proxy_pass` (nginx then speaks HTTP/1.0 to the
gateway and buffers responses), once with the seed README's suggested settings, once with README's snippet.
Chunks must arrive as they are produced, keep-alive comments must pass, and the body must hold nothing else."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.rawhttp import sse_events, streamed_text
from tests.e2e.support import GatewayFactory, free_port

_NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
pytestmark = pytest.mark.skipif(_NGINX is None, reason="nginx is not installed (.ci/run installs Debian's package)")

# Each: what goes in nginx's `http` block besides the server, and the `location` body. GATEWAY is replaced by the
# gateway's loopback address.
PROXY_SETTINGS = {
    "default": ("", "proxy_pass http://GATEWAY;"),
    # The seed README's "Nginx反代优化" block, which leaves nginx proxying with HTTP/1.0.
    "seed": (
        "",
        """
        proxy_pass http://GATEWAY;
        proxy_buffering off;
        chunked_transfer_encoding on;
        tcp_nopush on;
        tcp_nodelay on;
        keepalive_timeout 120;
        """,
    ),
    # README's snippet ("Behind nginx"): HTTP/1.1 with kept-alive upstream connections.
    "readme": (
        """
        upstream kimi_free_api {
            server GATEWAY;
            keepalive 16;
        }
        """,
        """
        proxy_pass http://kimi_free_api;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_read_timeout 300s;
        """,
    ),
}

Nginx = Callable[[str, str], Awaitable[str]]


def _config(prefix: Path, port: int, upstream: str, proxy: str) -> str:
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    http_extra, location = (part.replace("GATEWAY", upstream) for part in PROXY_SETTINGS[proxy])
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 128; }}
http {{
    access_log off;
{temp}
{http_extra}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 100m;
        location / {{
{location}
        }}
    }}
}}
"""


@pytest.fixture
async def nginx(tmp_path: Path) -> AsyncIterator[Nginx]:
    processes: list[asyncio.subprocess.Process] = []

    async def start(gateway_url: str, proxy: str) -> str:
        assert _NGINX is not None
        prefix = tmp_path / f"nginx{len(processes)}"
        prefix.mkdir()
        port = free_port()
        upstream = gateway_url.removeprefix("http://")
        (prefix / "nginx.conf").write_text(_config(prefix, port, upstream, proxy))
        # -e: even the log nginx opens before reading its config is in the prefix, so no root is needed.
        arguments = ("-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "startup.log"))
        check = await asyncio.create_subprocess_exec(_NGINX, "-t", *arguments, stderr=asyncio.subprocess.PIPE)
        _, errors = await check.communicate()
        assert check.returncode == 0, errors.decode()
        process = await asyncio.create_subprocess_exec(_NGINX, *arguments, stderr=asyncio.subprocess.DEVNULL)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(url + "/healthz") as response:
                        if response.status == 200:
                            return url
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.025)
        raise AssertionError("nginx did not start: " + (prefix / "error.log").read_text())

    yield start
    for process in processes:
        process.terminate()
        await process.wait()


async def _stream(url: str, token: str, prompt: str) -> list[tuple[float, bytes]]:
    """Each read of the streamed body through nginx, with its arrival time after the request was sent."""
    loop = asyncio.get_running_loop()
    body = {"model": "kimi", "messages": [{"role": "user", "content": prompt}], "stream": True}
    reads: list[tuple[float, bytes]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        sent = loop.time()
        async with session.post(
            url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            async for chunk in response.content.iter_any():
                reads.append((loop.time() - sent, chunk))
    return reads


@pytest.mark.parametrize("proxy", list(PROXY_SETTINGS))
async def test_chunks_arrive_as_produced(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, nginx: Nginx, proxy: str
) -> None:
    emulator.configure(event_delay_ms=250, event_count=5)
    gateway = await gateway_factory()
    url = await nginx(gateway.url, proxy)
    reads = await _stream(url, account.refresh_token, "through nginx")
    body = b"".join(chunk for _, chunk in reads)
    events = sse_events(body)  # nothing but SSE events: no chunk-size lines, no stray bytes
    assert streamed_text(events) == expected_answer("through nginx", emulator.config)
    # Produced over about a second, so delivered over about a second: nginx did not hold the body back.
    content_reads = [at for at, chunk in reads if b'"content"' in chunk]
    assert len(content_reads) >= 4
    assert content_reads[-1] - content_reads[0] >= 0.6


@pytest.mark.parametrize("proxy", list(PROXY_SETTINGS))
async def test_keepalives_pass(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, nginx: Nginx, proxy: str
) -> None:
    emulator.configure(first_event_delay_ms=1200, event_count=2)
    gateway = await gateway_factory(keepalive_s=0.3)
    url = await nginx(gateway.url, proxy)
    reads = await _stream(url, account.refresh_token, "silent first")
    events = sse_events(b"".join(chunk for _, chunk in reads))
    assert events[0] == b": keep-alive"
    assert events.count(b": keep-alive") >= 3
    # Each comment reached the client while Kimi was still silent, not all together at the end.
    first_content = next(at for at, chunk in reads if b'"content"' in chunk)
    early = [at for at, chunk in reads if b": keep-alive" in chunk and at < first_content]
    assert early and early[0] <= 0.3 + 0.25
    assert streamed_text(events) == expected_answer("silent first", emulator.config)


@pytest.mark.parametrize("proxy", list(PROXY_SETTINGS))
async def test_plain_completion_and_errors_pass(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, nginx: Nginx, proxy: str
) -> None:
    gateway = await gateway_factory()
    url = await nginx(gateway.url, proxy)
    body = {"model": "kimi", "messages": [{"role": "user", "content": "whole"}]}
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {account.refresh_token}"}
        async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as response:
            answer = await response.json()
        assert answer["choices"][0]["message"]["content"] == expected_answer("whole", emulator.config)
        async with session.post(url + "/v1/chat/completions", data=b"{", headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "invalid_json"
