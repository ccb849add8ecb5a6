"""The emulator's behaviour settings, validated whether they come from Python or from `POST /_emulator/config`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kimi_free_api.emulator.ids import CHAT_ID_STYLES
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


def _legacy_model(scenario: str, name: str, thinking: bool, agent_mode: str = "TYPE_NORMAL") -> dict[str, Any]:
    """A catalog entry of the bucket served until mid-2026 (and still to clients sending no `X-Msh-Version`)."""
    return {
        "scenario": scenario,
        "displayName": name,
        "thinking": thinking,
        "kimiPlusId": "",
        "agentMode": agent_mode,
        "description": f"{name} (emulated)",
        "inputPlaceholder": "Ask Kimi",
    }


def _legacy_models() -> list[dict[str, Any]]:
    return [
        _legacy_model("SCENARIO_K2D5", "K2.6", thinking=False),
        _legacy_model("SCENARIO_K2D5", "K2.6 Thinking", thinking=True),
        _legacy_model("SCENARIO_K2", "K2", thinking=False),
        _legacy_model("SCENARIO_OK_COMPUTER", "K2.6 Agent", thinking=True, agent_mode="TYPE_ULTRA"),
    ]


NO_EFFORT = "REASONING_EFFORT_NONE"
_EFFORTS = ("REASONING_EFFORT_LOW", "REASONING_EFFORT_MEDIUM", "REASONING_EFFORT_HIGH")


def _model(
    model_id: str, name: str, scenario: str, efforts: tuple[str, ...], agent_mode: str = "TYPE_NORMAL"
) -> dict[str, Any]:
    """A catalog entry of the current bucket (2026-08/09 captures): an id, effort levels, no `thinking` flag."""
    return {
        "key": model_id,
        "id": model_id,
        "displayName": name,
        "scenario": scenario,
        "kimiPlusId": "",
        "agentMode": agent_mode,
        "reasoningEffortOptions": list(efforts),
        # Thinking models default to their lowest effort; an Instant model offers only NONE.
        "defaultReasoningEffort": ([e for e in efforts if e != NO_EFFORT] or [NO_EFFORT])[0],
        "contextLengthOptions": ["CONTEXT_LENGTH_128K", "CONTEXT_LENGTH_256K"],
        "switchableTo": [],
        "description": f"{name} (emulated)",
    }


def _default_models() -> list[dict[str, Any]]:
    """K3 and K2.8 share scenario, agent and mode and differ only in `id`; K3 offers no REASONING_EFFORT_NONE."""
    return [
        _model("k2d6-chat", "K2.6 Instant", "SCENARIO_CHAT", (NO_EFFORT,)),
        _model("k2d6-thinking", "K2.6 Thinking", "SCENARIO_CHAT", (NO_EFFORT, *_EFFORTS)),
        _model("k2d8", "K2.8", "SCENARIO_K3", (NO_EFFORT, *_EFFORTS)),
        _model("k3", "K3", "SCENARIO_K3", _EFFORTS),
        _model("k3-agent", "K3 Agent", "SCENARIO_OK_COMPUTER", _EFFORTS[:1], agent_mode="TYPE_ULTRA"),
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
    "chat_id_style": CHAT_ID_STYLES,
    "refresh_endpoints": ("both", "connect", "rest"),
    "catalog_shape": ("current", "legacy"),
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
    "usage_stats",
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
    # Answer every refresh with a new refresh token and revoke the used one: both tokens rotate (2026 captures).
    rotate_refresh_tokens: bool = True
    # Which refresh calls are served: the auth host's Connect RefreshToken, the legacy REST GET, or both (a
    # disabled one answers 404, as retired endpoints do).
    refresh_endpoints: str = "both"
    # Chat ids: "uuid" (36 characters, as minted since late 2025) or "xid" (the 20-character form before).
    chat_id_style: str = "uuid"
    # GetAvailableModels: "current" (entries with `id` and effort levels; only to callers sending
    # X-Msh-Version, as Kimi serves a stale bucket without it) or "legacy" (the `thinking`-flag entries) always.
    catalog_shape: str = "current"
    # File uploads: the wait before an upload is answered, and from upload until the file counts as parsed.
    upload_delay_ms: float = 0
    parse_delay_ms: float = 50
    # A recorded trace (doctor --record, KIMI_TRACE_FILE) to replay: Chat replies and the catalog take its shapes.
    replay: str = ""
    # Whether GetSubscriptionStats exists (its usage windows are invented: the real fields are not documented).
    usage_stats: bool = True
    models: list[dict[str, Any]] = field(default_factory=_default_models)
    # Answer prompts that declare tools or ask for JSON with a call or a JSON value built from their schemas
    # (emulator/guided.py), as the demo does; off, they get the usual echo like any prompt.
    guided_answers: bool = False
    legacy_models: list[dict[str, Any]] = field(default_factory=_legacy_models)

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
        _check_models("models", self.models)
        _check_models("legacy_models", self.legacy_models)
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


def _check_models(param: str, models: object) -> None:
    if not isinstance(models, list) or not models:
        raise InvalidSetting(param, "must be a non-empty list of model objects")
    for model in models:
        if not isinstance(model, dict) or not isinstance(model.get("scenario"), str):
            raise InvalidSetting(param, f"every model needs a string `scenario`, got {model!r}")
