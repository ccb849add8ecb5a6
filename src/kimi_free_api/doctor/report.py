"""The doctor's table: one line per assumption, and the exit status a script can act on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from kimi_free_api.doctor.checks import DIFFERS, HELD, UNTESTED, Check, Verdict

# 0: nothing differs; 1: the protocol drifted; 3: the script could not run (token refused, Kimi unreachable).
EXIT_HELD, EXIT_DRIFT, EXIT_NOT_RUN = 0, 1, 3
_LABELS = {HELD: "held", DIFFERS: "DIFFERS", UNTESTED: "untested"}
REPORT_HINT = (
    "Kimi's protocol differs from what the gateway expects. Please open an issue with this table and a trace:\n"
    "  kimi-free-api doctor --record trace.jsonl\n"
    "A trace holds the shape of every call and frame (keys and protocol words), never text, ids or tokens."
)


def table(results: Sequence[tuple[Check, Verdict]]) -> str:
    width = max(len(item.name) for item, _ in results)
    lines = [f"{'result':<9} {'check':<{width}}  row  assumption"]
    for item, verdict in results:
        row = f"#{item.row}" if item.row else "-"
        lines.append(f"{_LABELS[verdict.result]:<9} {item.name:<{width}}  {row:<4} {item.assumption}")
        if verdict.observed:
            lines.append(
                f"{'':<9} {'':<{width}}       {'observed' if verdict.result != UNTESTED else 'why'}: {verdict.observed}"
            )
    return "\n".join(lines)


def summary(results: Sequence[tuple[Check, Verdict]]) -> str:
    counts = Counter(verdict.result for _, verdict in results)
    return f"{counts[HELD]} held, {counts[DIFFERS]} differ, {counts[UNTESTED]} could not be tested"


def exit_status(results: Sequence[tuple[Check, Verdict]]) -> int:
    return EXIT_DRIFT if any(verdict.result == DIFFERS for _, verdict in results) else EXIT_HELD
