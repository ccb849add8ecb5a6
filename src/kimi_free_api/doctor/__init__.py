"""`kimi-free-api doctor`: a short live script against Kimi that tells which protocol assumptions still hold.

`script.py` makes the calls (through `wire.py`, which sees raw frames), `checks.py` judges each assumption of the
2026 evidence, `report.py` prints the table. With a trace file, every call and frame is recorded as its shape
(`upstream/trace.py`), and each verdict is appended to it, so a user can attach the file to a bug report and the
emulator can replay it (`emulator/replay.py`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from kimi_free_api.config import Settings
from kimi_free_api.core.ports import TokenCache
from kimi_free_api.doctor.checks import judge
from kimi_free_api.doctor.report import EXIT_NOT_RUN, REPORT_HINT, exit_status, summary, table
from kimi_free_api.doctor.script import Script
from kimi_free_api.doctor.wire import Wire
from kimi_free_api.upstream.proxies import ProxyRoutes
from kimi_free_api.upstream.trace import TraceRecorder

Print = Callable[[str], None]


def _save_token(path: str, token: str) -> None:
    """The rotated refresh token, readable by its owner only: the one the doctor was given no longer works."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)  # an older file keeps its mode otherwise
        file.write(token + "\n")


def _keep_rotated(rotated: str, save_token: str, *, kept: bool) -> str:
    """Writes the rotated token where asked; answers where it is kept, for the user."""
    # One holder per account: from now on only the new token refreshes, so it must not be lost.
    where = ["the gateway's token cache, under the token given"] if kept else []
    if save_token:
        _save_token(save_token, rotated)
        where.append(save_token)
    if not where:
        return "Kimi rotated the refresh token and the new one was not kept: the token given will stop working."
    return f"Kimi rotated the refresh token; the new one is kept in {' and '.join(where)}."


async def diagnose(
    settings: Settings,
    token: str,
    *,
    tokens: TokenCache | None = None,
    record: str = "",
    save_token: str = "",
    say: Print = print,
) -> int:
    """Runs the script with `token` and prints the table; answers the exit status.

    A refresh token Kimi rotates is kept in `tokens` (the gateway's token cache) and, if asked, in `save_token`.
    """
    trace = TraceRecorder(record, fresh=True) if record else None
    say(f"kimi-free-api doctor: {settings.kimi_base_url}")
    try:
        # The gateway's own route to Kimi (KIMI_PROXY, HTTP or SOCKS, and KIMI_CA_FILE), so what the doctor finds
        # holds for the server too.
        routes = ProxyRoutes(settings.kimi_proxy, ca_file=settings.kimi_ca_file)
        try:
            seen = await Script(Wire(routes.kimi(token), settings, trace), settings, tokens).run(token)
        finally:
            await routes.close()
        results = judge(seen)
        if trace is not None:
            trace.begin("")
            for item, verdict in results:
                trace.mark("verdict", check=item.name, row=item.row, result=verdict.result, observed=verdict.observed)
    finally:
        if trace is not None:
            trace.close()
    say(table(results))
    say(summary(results))
    if seen.new_refresh_token and seen.new_refresh_token != seen.sent_refresh_token:
        say(_keep_rotated(seen.new_refresh_token, save_token, kept=tokens is not None))
    if record:
        say(f"trace written to {Path(record)}")
    if seen.fatal:
        say(f"could not run the script: {seen.fatal}")
        return EXIT_NOT_RUN
    status = exit_status(results)
    if status:
        say(REPORT_HINT)
    return status
