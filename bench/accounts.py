"""Cold against warm server accounts: the first burst of a pool whose refresh tokens are not exchanged yet.

    .venv/bin/python bench/accounts.py            # 500 accounts, one stream each (about 20 s on 2 cores)
    .venv/bin/python bench/accounts.py --accounts 100

Three first bursts, each on fresh connections: straight to the emulator with every account's access token (the
floor), through a gateway started with TOKEN_WARMUP_CONCURRENCY=0 (each request pays its account's exchange), and
through a gateway that exchanged every token at start-up (the default). Prints first-content percentiles and what
the gateway adds to them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from kimi_free_api.upstream import jwt
from kimi_free_api.upstream.headers import browser_headers, identity_headers
from relay_clients import DirectClient, Reply, chat_request, gateway_stream, gather_bounded
from relay_procs import Service, free_port, raise_fd_limit, spawn, wait_ready

API_KEY = "bench-accounts-key-0123456789"
PROMPT = "accounts bench: say something"
TIMEOUT_S = 120.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def control(session: aiohttp.ClientSession, emulator: Service, path: str, body: Any = None) -> Any:
    method = "GET" if body is None else "POST"
    async with session.request(method, f"{emulator.base_url}/_emulator/{path}", json=body) as response:
        return orjson.loads(await response.read())


async def burst(label: str, calls: list[Any]) -> list[float]:
    replies: list[Reply] = await gather_bounded(calls, TIMEOUT_S)
    failed = [r.error for r in replies if not r.ok]
    firsts = [r.first_content_s * 1000 for r in replies if r.first_content_s is not None]
    print(
        f"  {label:34} ok {len(replies) - len(failed)}/{len(replies)}  first content p50 "
        f"{percentile(firsts, 0.5):7.1f} ms  p99 {percentile(firsts, 0.99):7.1f} ms"
    )
    for error in failed[:3]:
        print(f"    failed: {error}")
    return firsts


async def through_gateway(
    emulator: Service, tokens_file: Path, count: int, warmup: str, session: aiohttp.ClientSession
) -> tuple[list[float], Service]:
    port = free_port()
    env = {
        "KIMI_BASE_URL": emulator.base_url,
        "LOG_LEVEL": "WARNING",
        "DATA_DIR": tempfile.mkdtemp(prefix="kfa-bench-accounts-"),
        "KIMI_TOKENS_FILE": str(tokens_file),
        "API_KEYS": API_KEY,
        "MIN_START_INTERVAL_S": "0",
        "CONVERSATION_TTL_S": "0",
        "TOKEN_WARMUP_CONCURRENCY": warmup,
    }
    exchanged = (await control(session, emulator, "state"))["refreshes"]
    gateway = spawn("gateway", ["serve"], port, env)
    await wait_ready(session, gateway, "/healthz")
    if warmup != "0":
        before = time.monotonic()
        while (await control(session, emulator, "state"))["refreshes"] < exchanged + count:
            if time.monotonic() - before > TIMEOUT_S:
                raise RuntimeError("the gateway never finished exchanging its accounts' tokens")
            await asyncio.sleep(0.05)
        print(f"  (start-up exchange of {count} tokens took {time.monotonic() - before:.2f} s)")
    body = chat_request(PROMPT, True)
    # One request first, unmeasured, so what a just-started process does once is not counted (it exchanges one
    # account's token at most).
    if not (await gateway_stream(session, gateway.base_url, API_KEY, body)).ok:
        raise RuntimeError(f"the gateway cannot answer:\n{gateway.log_tail()}")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as fresh:
        label = "gateway, cold accounts" if warmup == "0" else "gateway, accounts exchanged at start"
        firsts = await burst(label, [gateway_stream(fresh, gateway.base_url, API_KEY, body) for _ in range(count)])
    return firsts, gateway


async def run(count: int, events: int, delay_ms: float) -> int:
    raise_fd_limit()
    emulator = spawn("emulator", ["emulator"], free_port())
    gateways: list[Service] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await wait_ready(session, emulator, "/_emulator/config")
            # Two gateways hold the same accounts in turn: with rotation the second would hold revoked tokens.
            config = {"event_count": events, "event_delay_ms": delay_ms, "rotate_refresh_tokens": False}
            await control(session, emulator, "config", config)
            accounts = [await control(session, emulator, "accounts", {"name": f"a{n}"}) for n in range(count)]
            tokens_file = Path(tempfile.mkdtemp(prefix="kfa-bench-tokens-")) / "tokens.txt"
            tokens_file.write_text("\n".join(a["refresh_token"] for a in accounts) + "\n")
            print(f"{count} accounts, one stream each, {events} events {delay_ms:g} ms apart; first bursts:")

            cold, gateway = await through_gateway(emulator, tokens_file, count, "0", session)
            gateways.append(gateway)
            payload = (await control(session, emulator, "requests"))[-1]
            gateway.stop()
            warm, gateway = await through_gateway(emulator, tokens_file, count, "8", session)
            gateways.append(gateway)

            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as fresh:
                clients = []
                for account in accounts:
                    headers = browser_headers(emulator.base_url, "zh-CN", "Asia/Shanghai", "2.0.0")
                    headers.update(identity_headers(jwt.claims(account["access_token"])))
                    headers["Authorization"] = f"Bearer {account['access_token']}"
                    clients.append(DirectClient(fresh, emulator.base_url, headers))
                direct = await burst("direct to the emulator", [client.answer(payload) for client in clients])
    finally:
        for gateway in gateways:
            gateway.stop()
        emulator.stop()
    for label, firsts in (("cold accounts", cold), ("warm accounts", warm)):
        added = [percentile(firsts, q) - percentile(direct, q) for q in (0.5, 0.99)]
        print(f"  added by the gateway, {label:13}  p50 {added[0]:+7.1f} ms  p99 {added[1]:+7.1f} ms")
    return 0 if len(cold) == len(warm) == len(direct) == count else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=500, help="server accounts, one stream each (500)")
    parser.add_argument("--events", type=int, default=20, help="answer events per stream (20)")
    parser.add_argument("--delay-ms", type=float, default=5, help="delay between events (5)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.accounts, args.events, args.delay_ms))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
