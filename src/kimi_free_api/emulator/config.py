"""The emulator's behaviour settings, validated whether they come from Python or from `POST /_emulator/config`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
    "thinking_style": ("think_block", "text_flags", "stage"),
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
    citation_markers: bool = False
    thinking_events: int = 4
    thinking_style: str = "think_block"
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
    # Whether GetSubscriptionStats exists (its usage windows are invented: the real fields are not documented).
    usage_stats: bool = True
    models: list[dict[str, Any]] = field(default_factory=_default_models)

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

    def updated(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        reject_unknown("setting", changes, {f.name for f in dataclasses.fields(self)})
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_models(models: object) -> None:
    if not isinstance(models, list) or not models:
        raise InvalidSetting("models", "must be a non-empty list of model objects")
    for model in models:
        if not isinstance(model, dict) or not isinstance(model.get("scenario"), str):
            raise InvalidSetting("models", f"every model needs a string `scenario`, got {model!r}")
