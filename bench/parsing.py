"""Parsing benchmark: the cost per KB of every parser, matcher and counter that runs on a request or a reply.

    .venv/bin/python bench/parsing.py            # about half a minute on 2 cores
    .venv/bin/python bench/parsing.py --quick    # 1 KB and 100 KB only

Part 1 times each operation in this process on hostile input of 1 KB, 100 KB and 1 MB and prints microseconds per
KB: the figure must stay flat (at 1 MB at most `MAX_GROWTH` times the 1 KB one). An operation that grows more than
`SKIP_GROWTH` times from 1 KB to 100 KB is super-linear, and its 1 MB run, which would take minutes, is skipped.

Part 2 sends the same hostile inputs (100 KB) through a gateway, against the emulator, both subprocesses on
loopback ports, while this process asks for /ping every 10 ms: the slowest /ping must stay under `MAX_PING_MS`.
Exit status 1 if a figure grows or a /ping is too slow.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp

from kimi_free_api.api.openai.schemas import parse_chat_request
from kimi_free_api.core.answer.limits import OutputLimit
from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.guided.json_output import find_json
from kimi_free_api.core.guided.jsonschema import schema_errors
from kimi_free_api.core.guided.tool_protocol import BlockGate, parse_reply
from kimi_free_api.core.models.modelspec import CatalogModel, resolve_model
from kimi_free_api.core.usage.tokenizer import BpeCounter
from kimi_free_api.core.usage.usage import estimate_tokens
from relay_procs import Service, free_port, spawn, wait_ready

KB = 1024
SIZES = (KB, 100 * KB, 1024 * KB)
MAX_GROWTH = 3.0
SKIP_GROWTH = 10.0
MAX_PING_MS = 50.0
PING_EVERY_S = 0.01
REQUEST_TIMEOUT_S = 60.0
CATALOG = {"kimi-k2": CatalogModel(id="kimi-k2", display_name="K2", scenario="SCENARIO_K2")}
PATTERN_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def _model_name(size: int) -> str:
    return "kimi-k2" + "-search" * (size // 7)


def _tool_reply(size: int) -> str:
    # The shapes that were quadratic: a long word inside the tag, blanks inside a fenced body, unclosed tags.
    third = size // 3
    return (
        "<tool_call "
        + "a" * third
        + ' name="get_weather">```json\n'
        + " " * third
        + '{"city": "Paris"}\n```</tool_call>'
        + "<tool_call " * (third // 11)
    )


def _deltas(reply: str) -> list[str]:
    return [reply[start : start + 5] for start in range(0, len(reply), 5)]


def _stream_gate(deltas: list[str]) -> None:
    gate = BlockGate()
    for delta in deltas:
        gate.feed(delta)
    gate.flush()


def _stream_stops(deltas: list[str]) -> None:
    limit = OutputLimit(["\n\n" + "a" * 254, "b" * 256, "c" * 256, "d" * 256], None)
    for delta in deltas:
        limit.feed(delta)
    limit.flush()


def _refused_or_done(work: Callable[..., object], *args: Any) -> None:
    # A request the gateway refuses (a 400) is an outcome too: its cost is what is measured.
    with contextlib.suppress(GatewayError):
        work(*args)


class _RandomLetters:
    """Different stretches of random letters, one per timed call, so that no cache of the counter answers."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rng = random.Random(size)

    def many(self, count: int) -> list[str]:
        return ["".join(self.rng.choices(string.ascii_lowercase, k=self.size)) for _ in range(count)]


def _count_fresh(texts: list[str]) -> Callable[[], object]:
    remaining = iter(texts)
    return lambda: BpeCounter().count(next(remaining))


# Each entry makes the input for one size (untimed) and returns what is timed on it.
CASES: dict[str, Callable[[int], Callable[[], object]]] = {
    "model name (kimi-k2-search-search-…)": lambda n: partial(_refused_or_done, resolve_model, _model_name(n), CATALOG),
    "stop sequence in a request (400 above 256)": lambda n: partial(
        _refused_or_done,
        parse_chat_request,
        {"model": "kimi", "messages": [{"role": "user", "content": "hi"}], "stop": ["x" * n]},
        ("token",),
    ),
    "stop matcher, 4 × 256-character stops, 5-char deltas": lambda n: partial(_stream_stops, _deltas("a" * n)),
    "pattern ^(a+)+$ on a…ab": lambda n: partial(schema_errors, {"s": "a" * n + "b"}, PATTERN_SCHEMA),
    "uniqueItems on distinct objects": lambda n: partial(
        schema_errors, [{"i": i} for i in range(n // 8)], {"uniqueItems": True}
    ),
    "tool-call parser, hostile reply": lambda n: partial(parse_reply, _tool_reply(n)),
    "tool-call gate, hostile reply, 5-char deltas": lambda n: partial(_stream_gate, _deltas(_tool_reply(n))),
    "JSON output, blanks after a fence": lambda n: partial(find_json, "```\n" + " " * n + "x"),
    "BPE count, one repeated character": lambda n: partial(BpeCounter().count, "y" * n),
    "BPE count, one piece of random letters": lambda n: _count_fresh(_RandomLetters(n).many(_runs(n))),
    "token estimate (max_tokens budget)": lambda n: partial(estimate_tokens, "中a" * (n // 2)),
}


def _repeats(size: int) -> int:
    # Small inputs repeat until the total is long enough to time.
    return max(1, (64 * KB) // size)


def _runs(size: int) -> int:
    return _repeats(size) * (3 if size < SIZES[-1] else 1)


@dataclass
class Row:
    name: str
    per_kb_us: list[float | None]

    @property
    def growth(self) -> float:
        measured = [value for value in self.per_kb_us if value is not None]
        return measured[-1] / measured[0] if measured[0] else 1.0

    @property
    def flat(self) -> bool:
        return None not in self.per_kb_us and self.growth <= MAX_GROWTH


def _seconds(work: Callable[[], object], size: int) -> float:
    # CPU time of this process: the machine may be shared, and waiting for a core is not the parser's cost.
    best = float("inf")
    for _ in range(_runs(size) // _repeats(size)):
        started = time.process_time()
        for _ in range(_repeats(size)):
            work()
        best = min(best, (time.process_time() - started) / _repeats(size))
    return best


def measure_costs(sizes: tuple[int, ...]) -> list[Row]:
    BpeCounter().load()
    rows = []
    for name, make in CASES.items():
        per_kb: list[float | None] = []
        for size in sizes:
            if len(per_kb) >= 2 and per_kb[0] and (per_kb[-1] or 0) > SKIP_GROWTH * per_kb[0]:
                per_kb.append(None)
                continue
            per_kb.append(_seconds(make(size), size) / (size / KB) * 1e6)
        rows.append(Row(name, per_kb))
    return rows


def print_costs(rows: list[Row], sizes: tuple[int, ...]) -> None:
    heads = [f"{size // KB:,} KB" for size in sizes]
    print(f"{'µs per KB':56}" + "".join(f"{head:>12}" for head in heads) + f"{'growth':>9}")
    for row in rows:
        cells = "".join(f"{'skipped':>12}" if v is None else f"{v:12.1f}" for v in row.per_kb_us)
        verdict = f"{row.growth:8.1f}×" + ("" if row.flat else "  GROWS")
        print(f"{row.name:56}{cells}{verdict}")


# --- part 2: through the gateway ----------------------------------------------------------------------------------


@dataclass
class PingReport:
    latencies_ms: list[float]
    outcomes: dict[str, str]

    @property
    def worst_ms(self) -> float:
        return max(self.latencies_ms, default=0.0)


class Through:
    def __init__(self, session: aiohttp.ClientSession, emulator: Service, gateway: Service) -> None:
        self.session = session
        self.emulator = emulator
        self.gateway = gateway
        self.token = ""

    async def setup(self) -> None:
        async with self.session.post(self.emulator.base_url + "/_emulator/accounts", json={"name": "bench"}) as r:
            self.token = (await r.json())["access_token"]

    async def script(self, answers: list[str]) -> None:
        async with self.session.post(self.emulator.base_url + "/_emulator/script", json={"answers": answers}) as r:
            r.raise_for_status()

    async def chat(self, **fields: Any) -> str:
        body = {"model": "kimi", "messages": [{"role": "user", "content": "hi"}], **fields}
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        url = self.gateway.base_url + "/v1/chat/completions"
        async with self.session.post(url, json=body, headers=headers, timeout=timeout) as response:
            await response.read()
            return str(response.status)

    async def tool_reply(self, size: int) -> str:
        await self.script([_tool_reply(size)])
        return await self.chat(tools=[WEATHER])

    async def pattern_reply(self, size: int) -> str:
        await self.script(['{"s": "' + "a" * size + 'b"}', '{"s": "aa"}'])
        fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": PATTERN_SCHEMA}}
        return await self.chat(response_format=fmt)

    async def counted_prompt(self, size: int) -> str:
        return await self.chat(messages=[{"role": "user", "content": "x" * size}])

    async def model_name(self, size: int) -> str:
        return await self.chat(model=_model_name(size))

    async def stop_sequence(self, size: int) -> str:
        return await self.chat(stop=["x" * size])

    async def pinging(self, work: Awaitable[str]) -> tuple[str, list[float]]:
        task = asyncio.ensure_future(work)
        latencies: list[float] = []
        while not task.done():
            started = time.perf_counter()
            async with self.session.get(self.gateway.base_url + "/ping") as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(PING_EVERY_S)
        return await task, latencies


async def through_gateway(size: int) -> PingReport:
    emulator_port = gateway_port = free_port()
    while gateway_port == emulator_port:
        gateway_port = free_port()
    emulator = spawn("emulator", ["emulator"], emulator_port)
    env = {
        "KIMI_BASE_URL": emulator.base_url,
        "LOG_LEVEL": "WARNING",
        "DATA_DIR": tempfile.mkdtemp(prefix="kfa-bench-parsing-"),
        "MIN_START_INTERVAL_S": "0",
        "CONVERSATION_TTL_S": "0",
    }
    gateway = spawn("gateway", ["serve"], gateway_port, env)
    report = PingReport([], {})
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, emulator, "/_emulator/config")
            await wait_ready(session, gateway, "/healthz")
            through = Through(session, emulator, gateway)
            await through.setup()
            steps: dict[str, Callable[[int], Awaitable[str]]] = {
                "tool-call reply": through.tool_reply,
                "pattern on the reply (+ repair round)": through.pattern_reply,
                "prompt of one repeated character (usage)": through.counted_prompt,
                "model name": through.model_name,
                "stop sequence": through.stop_sequence,
            }
            for name, step in steps.items():
                status, latencies = await through.pinging(step(size))
                report.outcomes[name] = f"HTTP {status}, slowest /ping {max(latencies, default=0):.1f} ms"
                report.latencies_ms += latencies
    finally:
        gateway.stop()
        emulator.stop()
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 KB and 100 KB only")
    args = parser.parse_args(argv)
    sizes = SIZES[:2] if args.quick else SIZES
    rows = measure_costs(sizes)
    print_costs(rows, sizes)
    print(f"\nThrough the gateway, {SIZES[1] // KB} KB each, /ping every {PING_EVERY_S * 1000:.0f} ms:")
    pings = asyncio.run(through_gateway(SIZES[1]))
    for name, outcome in pings.outcomes.items():
        print(f"  {name:44} {outcome}")
    median = statistics.median(pings.latencies_ms) if pings.latencies_ms else 0.0
    print(f"  /ping: {len(pings.latencies_ms)} requests, median {median:.1f} ms, slowest {pings.worst_ms:.1f} ms")
    failed = [row.name for row in rows if not row.flat]
    if failed:
        print(f"\nNot flat (more than {MAX_GROWTH:g}× per KB from {sizes[0] // KB} KB to {sizes[-1] // KB:,} KB):")
        print("".join(f"  {name}\n" for name in failed), end="")
    if pings.worst_ms >= MAX_PING_MS:
        print(f"\nA /ping took {pings.worst_ms:.1f} ms, over {MAX_PING_MS:g} ms.")
    return 1 if failed or pings.worst_ms >= MAX_PING_MS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
