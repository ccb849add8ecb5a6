"""The emulator's behaviour settings, validated whether they come from Python or from `POST /_emulator/config`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kimi_free_api.emulator.replay import TraceError, load_trace


class InvalidSetting(ValueError):
    """A bad setting or fault field; `param` names it so the control API can point at it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


def require_int(param: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSetting(param, f"must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidSetting(param, f"must be at least {minimum}, got {value}")
    return value


def require_choice(param: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidSetting(param, f"must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def require_optional_str(param: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidSetting(param, f"must be a string or null, got {value!r}")


def reject_unknown(param_kind: str, given: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(given) - known)
    if unknown:
        raise InvalidSetting(unknown[0], f"unknown {param_kind}; known: {', '.join(sorted(known))}")


def _model(scenario: str, name: str, thinking: bool, agent_mode: str = "TYPE_NORMAL") -> dict[str, Any]:
    return {
        "scenario": scenario,
        "displayName": name,
        "thinking": thinking,
        "kimiPlusId": "",
        "agentMode": agent_mode,
        "description": f"{name} (emulated)",
        "inputPlaceholder": "Ask Kimi",
    }


def _default_models() -> list[dict[str, Any]]:
    return [
        _model("SCENARIO_K2D5", "K2.6", thinking=False),
        _model("SCENARIO_K2D5", "K2.6 Thinking", thinking=True),
        _model("SCENARIO_K2", "K2", thinking=False),
        _model("SCENARIO_OK_COMPUTER", "K2.6 Agent", thinking=True, agent_mode="TYPE_ULTRA"),
    ]


_CHOICES: dict[str, tuple[str, ...]] = {
    "append_mode": ("delta", "cumulative"),
    "end_stream": ("connect", "grpc-web", "none"),
    "search_style": ("web_pages", "tool"),
    "thinking_style": ("think_stage", "think_block", "text_flags", "stage"),
    "stage_statuses": ("start_end", "running_completed"),
    "citation_style": ("kimi", "tool", "private_use"),
    "answer_block": ("text", "novel"),
    "casing": ("camel", "snake"),
    "error_style": ("frame", "trailer"),
}
_COUNT_MINIMUMS = {"event_count": 1, "search_results": 0, "thinking_events": 0, "access_token_ttl_s": 0}
_MILLISECONDS = ("event_delay_ms", "first_event_delay_ms", "heartbeat_ms", "upload_delay_ms", "parse_delay_ms")
_FLAGS = (
    "citation_markers",
    "split_utf8",
    "enforce_single_stream",
    "open_accounts",
    "rotate_refresh_tokens",
    "research_asks_user",
    "stray_envelopes",
    "guided_answers",
)


@dataclass(frozen=True)
class EmulatorConfig:
    """Immutable: a running stream keeps the settings it started with, whatever `configure` does meanwhile."""

    event_count: int = 12
    event_delay_ms: float = 0
    first_event_delay_ms: float = 0
    append_mode: str = "delta"
    end_stream: str = "connect"
    search_results: int = 3
    search_style: str = "web_pages"
    # Searched answers cite their hits with markers, in the 2026 grammar by default (evidence row 46).
    citation_markers: bool = True
    citation_style: str = "kimi"
    thinking_events: int = 4
    # A STAGE_NAME_THINKING stage around a think block, opened and closed as 2026 captures show (evidence row 42).
    thinking_style: str = "think_stage"
    stage_statuses: str = "start_end"
    # Deep Research (kimiplus `deep-researcher`) stops on a question to the user and keeps the stream open.
    research_asks_user: bool = True
    # An empty and a non-JSON data envelope before the answer (evidence row 28: no capture shows them).
    stray_envelopes: bool = False
    # `novel` writes the answer in a block kind no client knows (`block.novel`): Kimi changing its format.
    answer_block: str = "text"
    casing: str = "camel"
    split_utf8: bool = False
    heartbeat_ms: float = 0
    enforce_single_stream: bool = True
    error_style: str = "frame"
    access_token_ttl_s: int = 900
    open_accounts: bool = False
    # Answer every refresh with a new refresh token and revoke the used one (unknown upstream behaviour [U]).
    rotate_refresh_tokens: bool = False
    # File uploads: the wait before an upload is answered, and from upload until the file counts as parsed.
    upload_delay_ms: float = 0
    parse_delay_ms: float = 50
    # A recorded trace (doctor --record, KIMI_TRACE_FILE) to replay: Chat replies and the catalog take its shapes.
    replay: str = ""
    models: list[dict[str, Any]] = field(default_factory=_default_models)
    # Answer prompts that declare tools or ask for JSON with a call or a JSON value built from their schemas
    # (emulator/guided.py), as the demo does; off, they get the usual echo like any prompt.
    guided_answers: bool = False

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            require_choice(name, getattr(self, name), choices)
        for name, minimum in _COUNT_MINIMUMS.items():
            require_int(name, getattr(self, name), minimum)
        for name in _MILLISECONDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidSetting(name, f"must be a non-negative number of milliseconds, got {value!r}")
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise InvalidSetting(name, f"must be true or false, got {getattr(self, name)!r}")
        _check_models(self.models)
        _check_replay(self.replay)

    def updated(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        reject_unknown("setting", changes, {f.name for f in dataclasses.fields(self)})
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_replay(path: object) -> None:
    if not isinstance(path, str):
        raise InvalidSetting("replay", f"must be the path of a trace file, got {path!r}")
    if path:
        try:
            load_trace(path)
        except TraceError as exc:
            raise InvalidSetting("replay", str(exc)) from exc


def _check_models(models: object) -> None:
    if not isinstance(models, list) or not models:
        raise InvalidSetting("models", "must be a non-empty list of model objects")
    for model in models:
        if not isinstance(model, dict) or not isinstance(model.get("scenario"), str):
            raise InvalidSetting("models", f"every model needs a string `scenario`, got {model!r}")
