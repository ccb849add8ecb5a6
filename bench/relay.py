"""Relay benchmark: the same load through the gateway and straight to the emulator, in one run.

    .venv/bin/python bench/relay.py            # full run (under a minute on 2 cores); refreshes docs/benchmarks.md
    .venv/bin/python bench/relay.py --quick    # smaller smoke variant; leaves the docs alone

The emulator and the gateway run as separate subprocesses on loopback ports, so /proc can tell their CPU time and
memory apart from the load generator's (this process). Phases:

1. relay CPU: concurrent streams of many answer frames 1 ms apart; gateway CPU per content chunk relayed;
2. zero-delay bursts: the same streams with no pacing, every one must arrive whole;
3. sequential non-streamed requests, each paired with the same upstream calls made directly: added latency;
4. hundreds of concurrent streams: first-content latency both ways and the gateway's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import aiohttp
import orjson

from kimi_free_api.emulator.answers import expected_answer
from kimi_free_api.emulator.config import EmulatorConfig
from kimi_free_api.upstream import jwt
from kimi_free_api.upstream.headers import browser_headers, identity_headers
from relay_clients import (
    DirectClient,
    Reply,
    chat_request,
    gateway_complete,
    gateway_stream,
    gather_bounded,
)
from relay_procs import (
    Service,
    cpu_seconds,
    cpu_split,
    free_port,
    raise_fd_limit,
    reset_peak_rss,
    spawn,
    status_kb,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION_BEGIN = "<!-- relay-bench:begin (written by bench/relay.py) -->"
SECTION_END = "<!-- relay-bench:end -->"
PROMPT = "relay bench: say something"
PHASE_TIMEOUT_S = 240.0
CLEAN_TIMEOUT_S = 30.0

# Targets
MAX_CPU_US_PER_CHUNK = 12.0
MAX_ADDED_MS_PER_REQUEST = 1.0
MAX_ADDED_P99_MS = 50.0
MAX_PEAK_RSS_MB = 80.0


@dataclass(frozen=True)
class Sizes:
    streams: int = 32
    events: int = 2000
    delay_ms: float = 1
    sequential: int = 300
    warmup: int = 30
    short_events: int = 8
    many: int = 500
    many_events: int = 100
    many_delay_ms: float = 20


QUICK = Sizes(streams=8, events=1000, sequential=60, warmup=10, many=100, many_events=30)


@dataclass
class Load:
    """One batch of concurrent replies along one path, with the CPU each process spent on it."""

    replies: list[Reply]
    expected: str
    events: int
    wall_s: float
    cpu_s: dict[str, float]

    @property
    def complete(self) -> int:
        return sum(r.ok and r.chunks == self.events and r.text == self.expected for r in self.replies)

    @property
    def chunks(self) -> int:
        return sum(r.chunks for r in self.replies)

    @property
    def first_ms(self) -> list[float]:
        return [r.first_content_s * 1000 for r in self.replies if r.first_content_s is not None]

    def us_per_chunk(self, process: str) -> float:
        return self.cpu_s[process] * 1e6 / max(self.chunks, 1)

    def cores(self) -> str:
        """How much of one core each process used meanwhile: the machine has only a couple to share."""
        return "/".join(f"{self.cpu_s[name] / self.wall_s:.2f}" for name in ("gateway", "emulator", "bench"))

    def failures(self) -> list[str]:
        seen: dict[str, int] = {}
        for r in self.replies:
            if not (r.ok and r.chunks == self.events and r.text == self.expected):
                reason = r.error or f"{r.chunks} chunks / text {'matches' if r.text == self.expected else 'differs'}"
                seen[reason] = seen.get(reason, 0) + 1
        return [f"{count}x {reason}" for reason, count in seen.items()]


@dataclass
class Row:
    metric: str
    gateway: str
    direct: str = ""
    target: str = ""
    verdict: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, gateway: str, direct: str = "", target: str = "", ok: bool | None = None) -> None:
        self.rows.append(Row(metric, gateway, direct, target, "" if ok is None else ("pass" if ok else "FAIL")))


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Bench:
    def __init__(
        self, session: aiohttp.ClientSession, emulator: Service, gateway: Service, sizes: Sizes, report: Report
    ) -> None:
        self.session = session
        self.emulator = emulator
        self.gateway = gateway
        self.sizes = sizes
        self.report = report
        self.token = ""
        self.payload: dict[str, Any] = {}
        self.direct: DirectClient | None = None

    # The emulator's control surface

    async def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = orjson.dumps(body) if body is not None else None
        async with self.session.request(method, f"{self.emulator.base_url}/_emulator/{path}", data=data) as resp:
            raw = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"/_emulator/{path} answered {resp.status}: {raw[:300]!r}")
            return orjson.loads(raw)

    async def configure(self, **changes: Any) -> None:
        # After a reset: the defaults refuse a second stream per account, and every stream here shares one.
        await self._control("POST", "reset")
        await self._control("POST", "config", {"enforce_single_stream": False, **changes})

    async def wait_clean(self) -> None:
        """Waits until no stream runs and every chat is deleted: the gateway deletes in the background."""
        deadline = time.monotonic() + CLEAN_TIMEOUT_S
        while True:
            state = await self._control("GET", "state")
            if state["live_chats"] == 0 and not any(state["active_streams"].values()):
                return
            if time.monotonic() > deadline:
                self.report.notes.append(f"emulator not clean after {CLEAN_TIMEOUT_S:g} s: {state['live_chats']} chats")
                return
            await asyncio.sleep(0.02)

    async def setup(self) -> None:
        self.token = (await self._control("POST", "accounts", {"name": "bench"}))["access_token"]
        await self.configure(event_count=self.sizes.short_events, event_delay_ms=0)
        # The direct client replays the very Chat body the gateway sent, and the gateway's kind of headers.
        warm = await gateway_stream(self.session, self.gateway.base_url, self.token, chat_request(PROMPT, True))
        if not warm.ok:
            raise RuntimeError(f"the gateway cannot relay a chat: {warm.error}")
        self.payload = (await self._control("GET", "requests"))[-1]
        headers = browser_headers(self.emulator.base_url, "zh-CN", "Asia/Shanghai")
        headers.update(identity_headers(jwt.claims(self.token)))
        headers["Authorization"] = f"Bearer {self.token}"
        self.direct = DirectClient(self.session, self.emulator.base_url, headers)
        direct = await self.direct.answer(self.payload)
        if not direct.ok or direct.text != warm.text:
            raise RuntimeError(f"direct and relayed answers differ: {direct.error or 'text'}")
        await self.wait_clean()

    # Loads

    def _cpu(self) -> dict[str, float]:
        gw_user, gw_sys = cpu_split(self.gateway.pid)
        return {
            "gateway": gw_user + gw_sys,
            "gateway_sys": gw_sys,
            "emulator": cpu_seconds(self.emulator.pid),
            "bench": time.process_time(),
        }

    async def _load(
        self, make: Callable[[], Coroutine[Any, Any, Reply]], count: int, events: int, spread_s: float = 0
    ) -> Load:
        async def later(delay_s: float) -> Reply:
            # Each reply times itself from its own request, so the wait before it is not counted.
            await asyncio.sleep(delay_s)
            return await make()

        await self.wait_clean()
        before = self._cpu()
        start = perf_counter()
        calls = [later(i * spread_s / count) if spread_s else make() for i in range(count)]
        replies = await gather_bounded(calls, PHASE_TIMEOUT_S)
        wall = perf_counter() - start
        # Deleting the chat is part of the gateway's work per answer, so CPU is read once that is done.
        await self.wait_clean()
        after = self._cpu()
        cpu = {name: after[name] - before[name] for name in before}
        expected = expected_answer(PROMPT, EmulatorConfig(event_count=events))
        return Load(replies, expected, events, wall, cpu)

    async def relayed(self, count: int, events: int, spread_s: float = 0) -> Load:
        body = chat_request(PROMPT, True)
        return await self._load(
            lambda: gateway_stream(self.session, self.gateway.base_url, self.token, body), count, events, spread_s
        )

    async def straight(self, count: int, events: int, spread_s: float = 0) -> Load:
        assert self.direct is not None
        direct, payload = self.direct, self.payload
        return await self._load(lambda: direct.answer(payload), count, events, spread_s)

    # Phases

    async def relay_cpu(self) -> None:
        s = self.sizes
        await self.configure(event_count=s.events, event_delay_ms=s.delay_ms)
        gw = await self.relayed(s.streams, s.events)
        direct = await self.straight(s.streams, s.events)
        title = f"{s.streams} streams x {s.events} events, {s.delay_ms:g} ms apart"
        print(f"\n[1] relay CPU: {title}")
        for name, load in (("gateway", gw), ("direct", direct)):
            print(
                f"  {name:8} complete {load.complete}/{s.streams}  chunks {load.chunks}  wall {load.wall_s:.2f} s  "
                f"CPU us/chunk: gateway {load.us_per_chunk('gateway'):.2f}  emulator "
                f"{load.us_per_chunk('emulator'):.2f}  bench {load.us_per_chunk('bench'):.2f}  "
                f"chunks/read {load.chunks / max(sum(r.reads for r in load.replies), 1):.2f}"
            )
            self._note_failures(f"[1] {name}", load)
        cpu = gw.us_per_chunk("gateway")
        r = self.report
        r.add(f"[1] {title}: complete", f"{gw.complete}/{s.streams}", f"{direct.complete}/{s.streams}")
        r.add(
            "[1] gateway CPU per relayed chunk",
            f"{cpu:.2f} us",
            "",
            f"<= {MAX_CPU_US_PER_CHUNK:g} us",
            cpu <= MAX_CPU_US_PER_CHUNK,
        )
        r.add("[1] of which kernel (sys) time", f"{gw.us_per_chunk('gateway_sys'):.2f} us")
        r.add(
            "[1] emulator CPU per answer frame (scale)",
            f"{gw.us_per_chunk('emulator'):.2f} us",
            f"{direct.us_per_chunk('emulator'):.2f} us",
        )
        r.add(
            "[1] load generator CPU per chunk",
            f"{gw.us_per_chunk('bench'):.2f} us",
            f"{direct.us_per_chunk('bench'):.2f} us",
        )
        r.add("[1] wall time", f"{gw.wall_s:.2f} s", f"{direct.wall_s:.2f} s")

    async def bursts(self) -> None:
        s = self.sizes
        await self.configure(event_count=s.events, event_delay_ms=0)
        gw = await self.relayed(s.streams, s.events)
        direct = await self.straight(s.streams, s.events)
        print(f"\n[2] zero-delay bursts: {s.streams} streams x {s.events} events")
        for name, load in (("gateway", gw), ("direct", direct)):
            print(
                f"  {name:8} complete {load.complete}/{s.streams}  wall {load.wall_s:.2f} s  "
                f"gateway CPU {load.us_per_chunk('gateway'):.2f} us/chunk  "
                f"chunks/read {load.chunks / max(sum(r.reads for r in load.replies), 1):.1f}"
            )
            self._note_failures(f"[2] {name}", load)
        r = self.report
        r.add(
            "[2] zero-delay bursts complete",
            f"{gw.complete}/{s.streams}",
            f"{direct.complete}/{s.streams}",
            f"{s.streams}/{s.streams}",
            gw.complete == s.streams,
        )
        r.add("[2] burst wall time", f"{gw.wall_s:.2f} s", f"{direct.wall_s:.2f} s")
        r.add("[2] gateway CPU per chunk in bursts", f"{gw.us_per_chunk('gateway'):.2f} us")

    async def sequential(self) -> None:
        s = self.sizes
        assert self.direct is not None
        direct, payload = self.direct, self.payload
        await self.configure(event_count=s.short_events, event_delay_ms=0)
        await self.wait_clean()
        expected = expected_answer(PROMPT, EmulatorConfig(event_count=s.short_events))
        body = chat_request(PROMPT, False)
        deletes: set[asyncio.Task[bool]] = set()

        async def via_gateway() -> Reply:
            return await gateway_complete(self.session, self.gateway.base_url, self.token, body)

        async def straight() -> Reply:
            reply = await direct.chat(payload)
            if reply.chat_id:
                # The gateway answers first and deletes the chat afterwards in the background; so does this.
                task = asyncio.create_task(direct.delete(reply.chat_id))
                deletes.add(task)
                task.add_done_callback(deletes.discard)
            return reply

        gw_ms: list[float] = []
        direct_ms: list[float] = []
        diffs: list[float] = []
        failed = 0
        gw_before = cpu_seconds(self.gateway.pid)
        emu_before = cpu_seconds(self.emulator.pid)
        for index in range(s.warmup + s.sequential):
            # Alternating the order gives both paths the same share of the other's trailing DeleteChat.
            first, second = (via_gateway, straight) if index % 2 == 0 else (straight, via_gateway)
            one = await first()
            two = await second()
            gw, dr = (one, two) if first is via_gateway else (two, one)
            if not (gw.ok and dr.ok and gw.text == expected == dr.text):
                failed += 1
                self.report.notes.append(f"[3] request {index} failed: {gw.error or dr.error or 'text differs'}")
                continue
            if index >= s.warmup:
                gw_ms.append(gw.total_s * 1000)
                direct_ms.append(dr.total_s * 1000)
                diffs.append((gw.total_s - dr.total_s) * 1000)
        if deletes:
            await asyncio.wait(set(deletes))
        await self.wait_clean()
        gw_cpu = cpu_seconds(self.gateway.pid) - gw_before
        emu_cpu = cpu_seconds(self.emulator.pid) - emu_before
        added = statistics.median(diffs) if diffs else float("nan")
        print(f"\n[3] sequential non-streamed requests: {len(diffs)} measured pairs after {s.warmup} warm-up pairs")
        print(
            f"  gateway mean {statistics.fmean(gw_ms):.3f} ms  p50 {percentile(gw_ms, 0.5):.3f} ms   "
            f"direct mean {statistics.fmean(direct_ms):.3f} ms  p50 {percentile(direct_ms, 0.5):.3f} ms"
        )
        print(
            f"  added: median of pair differences {added:.3f} ms, mean {statistics.fmean(diffs):.3f} ms, "
            f"p50 gap {percentile(gw_ms, 0.5) - percentile(direct_ms, 0.5):.3f} ms; failures {failed}"
        )
        r = self.report
        r.add(
            "[3] non-streamed request, mean",
            f"{statistics.fmean(gw_ms):.3f} ms",
            f"{statistics.fmean(direct_ms):.3f} ms",
        )
        r.add(
            "[3] non-streamed request, p50", f"{percentile(gw_ms, 0.5):.3f} ms", f"{percentile(direct_ms, 0.5):.3f} ms"
        )
        r.add(
            "[3] added per request (median of pair diffs)",
            f"{added:.3f} ms",
            "",
            f"<= {MAX_ADDED_MS_PER_REQUEST:g} ms",
            added <= MAX_ADDED_MS_PER_REQUEST and failed == 0,
        )
        pairs = max(s.warmup + s.sequential, 1)
        # Each pair costs the emulator two answers (one per path), each with its DeleteChat.
        r.add(
            "[3] CPU per request, gateway / emulator",
            f"{gw_cpu * 1e6 / pairs:.0f} us",
            f"{emu_cpu * 1e6 / pairs / 2:.0f} us",
        )

    async def many(self) -> None:
        s = self.sizes
        await self.configure(event_count=s.many_events, event_delay_ms=s.many_delay_ms)
        await self.wait_clean()
        baseline_kb = status_kb(self.gateway.pid, "VmRSS")
        peak_reset = reset_peak_rss(self.gateway.pid)
        spread_s = s.many_events * s.many_delay_ms / 2000
        title = f"{s.many} streams x {s.many_events} events, {s.many_delay_ms:g} ms apart"
        print(f"\n[4] {title}")
        # 1: every connection pool is cold (new client connections and, through the gateway, new upstream ones);
        # 2: the same burst again on the kept-alive connections, the steady state of a busy gateway;
        # 3: starts spread over half a stream's length, so all still overlap but do not arrive in one instant.
        rounds = [
            ("cold pools, one burst", 0.0),
            ("warm pools, one burst", 0.0),
            (f"starts over {spread_s:g} s", spread_s),
        ]
        results: list[tuple[str, Load, Load]] = []
        for label, spread in rounds:
            gw = await self.relayed(s.many, s.many_events, spread)
            direct = await self.straight(s.many, s.many_events, spread)
            results.append((label, gw, direct))
            for name, load in (("gateway", gw), ("direct", direct)):
                firsts = load.first_ms
                print(
                    f"  {label:22} {name:8} complete {load.complete}/{s.many}  first content p50 "
                    f"{percentile(firsts, 0.5):.1f} ms  p99 {percentile(firsts, 0.99):.1f} ms  "
                    f"max {max(firsts, default=float('nan')):.1f} ms  wall {load.wall_s:.2f} s  "
                    f"cores busy {load.cores()}"
                )
                self._note_failures(f"[4] {label}, {name}", load)
        peak_mb = status_kb(self.gateway.pid, "VmHWM") / 1024
        r = self.report
        for label, gw, direct in results:
            g, d = gw.first_ms, direct.first_ms
            add50 = percentile(g, 0.5) - percentile(d, 0.5)
            add99 = percentile(g, 0.99) - percentile(d, 0.99)
            r.add(
                f"[4] {label}: complete",
                f"{gw.complete}/{s.many}",
                f"{direct.complete}/{s.many}",
                f"{s.many}/{s.many}",
                gw.complete == s.many,
            )
            r.add(f"[4] {label}: cores busy (gw/emu/bench)", gw.cores(), direct.cores())
            r.add(f"[4] {label}: first content p50", f"{percentile(g, 0.5):.1f} ms", f"{percentile(d, 0.5):.1f} ms")
            r.add(f"[4] {label}: first content p99", f"{percentile(g, 0.99):.1f} ms", f"{percentile(d, 0.99):.1f} ms")
            r.add(
                f"[4] {label}: added p50 / p99",
                f"{add50:.1f} / {add99:.1f} ms",
                "",
                f"p99 <= {MAX_ADDED_P99_MS:g} ms",
                add99 <= MAX_ADDED_P99_MS,
            )
        which = "all three rounds" if peak_reset else "whole run (clear_refs unavailable)"
        r.add(
            f"[4] gateway peak RSS ({which})",
            f"{peak_mb:.1f} MB",
            "",
            f"<= {MAX_PEAK_RSS_MB:g} MB",
            peak_mb <= MAX_PEAK_RSS_MB,
        )
        r.add("[4] gateway RSS before the phase", f"{baseline_kb / 1024:.1f} MB")

    def _note_failures(self, label: str, load: Load) -> None:
        for failure in load.failures()[:5]:
            self.report.notes.append(f"{label}: {failure}")


def format_table(rows: list[Row], markdown: bool) -> str:
    header = Row("metric", "gateway", "direct", "target", "result")
    cells = [[row.metric, row.gateway, row.direct, row.target, row.verdict] for row in (header, *rows)]
    if markdown:
        lines = ["| " + " | ".join(cells[0]) + " |", "|---|---:|---:|---|---|"]
        lines += ["| " + " | ".join(c or " " for c in row) + " |" for row in cells[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(5)]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i in (0, 3, 4) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    )


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def docs_section(report: Report, sizes: Sizes, elapsed_s: float) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = "".join(f"- {note}\n" for note in report.notes) or "- none\n"
    return f"""{SECTION_BEGIN}
## Relay benchmark (`bench/relay.py`)

Command: `make bench` (runs `.venv/bin/python bench/relay.py`; `--quick` is a smaller smoke run that leaves this
file alone). Last full run: {when}, {elapsed_s:.0f} s, on {machine()}.

The emulator and the gateway run as two subprocesses on loopback; this script is the load generator (aiohttp,
standard asyncio loop). "direct" is the same load sent straight to the emulator, making the same upstream calls
the gateway makes per answer (the Chat stream with the gateway's own body and headers, then DeleteChat). CPU is
user+sys from `/proc/<pid>/stat`, read before a load and after the emulator reports every chat deleted; peak RSS
is `VmHWM` from `/proc/<pid>/status`, reset through `clear_refs` before phase 4.

What runs (`--help` shows the flags that change the sizes):

1. {sizes.streams} concurrent streams x {sizes.events} answer events {sizes.delay_ms:g} ms apart: gateway CPU per
   content chunk the clients received (the emulator's per frame, for scale);
2. the same with no delay between events: every stream must arrive whole (exact expected text);
3. {sizes.sequential} sequential `stream:false` requests ({sizes.short_events} events, no delay) after {sizes.warmup}
   warm-up ones, each paired with a direct request, in alternating order; added = median of the per-pair
   differences (send to last byte);
4. {sizes.many} concurrent streams x {sizes.many_events} events {sizes.many_delay_ms:g} ms apart, in three rounds:
   one burst on cold connection pools, the same burst on warm ones, then starts spread over half a stream's length.
   First content = the first non-empty `delta.content` chunk (gateway) or `block.text.content` frame (direct),
   timed from sending the request. "cores busy" = each process's CPU time over the round's wall time.

{format_table(report.rows, markdown=True)}

Notes from the run:
{notes}
Noise: this is a shared 2-core machine running three busy processes (load generator, gateway, emulator), so
absolute numbers move by tens of percent between runs, and CPU per chunk falls when the machine is saturated
(more frames arrive per socket read and are relayed as one batch). Compare the gateway with the direct path and
the ratios within one run, not numbers across runs.
{SECTION_END}
"""


def write_docs(section: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    if SECTION_BEGIN in text and SECTION_END in text:
        head, _, rest = text.partition(SECTION_BEGIN)
        _, _, tail = rest.partition(SECTION_END)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


async def run(sizes: Sizes, phases: set[int], profile_to: str | None, env: dict[str, str]) -> Report:
    report = Report()
    raise_fd_limit()
    emulator_port = gateway_port = free_port()
    while gateway_port == emulator_port:
        gateway_port = free_port()
    emulator = spawn("emulator", ["emulator"], emulator_port)
    gateway: Service | None = None
    try:
        gateway = spawn(
            "gateway",
            ["serve"],
            gateway_port,
            {
                "KIMI_BASE_URL": emulator.base_url,
                "LOG_LEVEL": "WARNING",
                "DATA_DIR": tempfile.mkdtemp(prefix="kfa-bench-"),
                # One emulated account carries every stream: lift the per-account pacing the pool applies to
                # real Kimi accounts, so the relay itself is measured. Chats are deleted after each answer.
                "MAX_IN_FLIGHT_PER_ACCOUNT": "100000",
                "MIN_START_INTERVAL_S": "0",
                "CONVERSATION_TTL_S": "0",
                **env,
            },
            profile_to,
        )
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await wait_ready(session, emulator, "/_emulator/config")
            await wait_ready(session, gateway, "/healthz")
            bench = Bench(session, emulator, gateway, sizes, report)
            await bench.setup()
            steps: list[tuple[int, Callable[[], Awaitable[None]]]] = [
                (1, bench.relay_cpu),
                (2, bench.bursts),
                (3, bench.sequential),
                (4, bench.many),
            ]
            for number, step in steps:
                if number in phases:
                    await step()
            for service in (gateway, emulator):
                if service.process.poll() is not None:
                    report.notes.append(f"{service.name} exited early:\n{service.log_tail()}")
    finally:
        if gateway is not None:
            gateway.stop()
        emulator.stop()
    return report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    parser.add_argument("--phases", default="1234", help="which phases to run, e.g. 13 (default: all)")
    parser.add_argument("--streams", type=int, help="[1,2] concurrent streams (32)")
    parser.add_argument("--events", type=int, help="[1,2] answer events per stream (2000)")
    parser.add_argument("--delay-ms", type=float, help="[1] delay between events (1)")
    parser.add_argument("--sequential", type=int, help="[3] measured request pairs (300)")
    parser.add_argument("--warmup", type=int, help="[3] unmeasured request pairs first (30)")
    parser.add_argument("--short-events", type=int, help="[3] answer events per request (8)")
    parser.add_argument("--many", type=int, help="[4] concurrent streams (500)")
    parser.add_argument("--many-events", type=int, help="[4] answer events per stream (100)")
    parser.add_argument("--many-delay-ms", type=float, help="[4] delay between events (20)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument(
        "--profile-gateway",
        metavar="FILE",
        help="run the gateway under cProfile and write its stats to FILE (CPU numbers are then inflated)",
    )
    parser.add_argument(
        "--gateway-env",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="a setting for the gateway, e.g. REQUEST_LOG_MAX_ENTRIES=0 to compare without the request log",
    )
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--docs", dest="docs", action="store_true", default=None, help="refresh docs/benchmarks.md")
    docs.add_argument("--no-docs", dest="docs", action="store_false", help="leave docs/benchmarks.md alone")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    names = [f.name for f in dataclasses.fields(Sizes)]
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    sizes = dataclasses.replace(sizes, **overrides)
    phases = {int(c) for c in args.phases if c in "1234"}
    print(f"relay bench on {machine()}; sizes {sizes}")
    started = perf_counter()
    env = dict(item.partition("=")[::2] for item in args.gateway_env)
    report = asyncio.run(run(sizes, phases, args.profile_gateway, env))
    elapsed = perf_counter() - started
    print("\n" + format_table(report.rows, markdown=False))
    for note in report.notes:
        print(f"note: {note}")
    print(f"\nfinished in {elapsed:.0f} s")
    # Only a full-size run of every phase describes the documented benchmark.
    full = not args.quick and not overrides and phases == {1, 2, 3, 4} and not args.profile_gateway and not env
    if args.docs if args.docs is not None else full:
        write_docs(docs_section(report, sizes, elapsed))
        print(f"wrote {DOCS.relative_to(ROOT)}")
    failed = any(row.verdict == "FAIL" for row in report.rows)
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
