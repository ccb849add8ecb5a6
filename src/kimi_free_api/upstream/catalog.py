"""Kimi's model catalog (GetAvailableModels), in both bucket shapes, and what a Chat request sends to pick a model.

The current bucket (captured 2026-08/09, served to callers sending `X-Msh-Version`) has entries with `key`/`id`,
`reasoningEffortOptions`, `defaultReasoningEffort`, `contextLengthOptions` and `switchableTo`, and no `thinking`
flag; entries of one scenario (K2.8 and K3) differ only in the id sent as `options.model`. The older bucket has
`displayName`, `scenario` and a `thinking` flag. Either may use snake_case field names.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kimi_free_api.core.models.modelspec import NO_EFFORT, CatalogModel, catalog_id
from kimi_free_api.core.ports import UpstreamChat


def _text(entry: dict[str, Any], camel: str, snake: str) -> str:
    value = entry.get(camel, entry.get(snake))
    return value if isinstance(value, str) else ""


def _efforts(entry: dict[str, Any]) -> tuple[str, ...]:
    raw = entry.get("reasoningEffortOptions", entry.get("reasoning_effort_options"))
    return tuple(item for item in raw if isinstance(item, str) and item) if isinstance(raw, list) else ()


def catalog_entry(entry: object) -> CatalogModel | None:
    """One entry of either shape, or None for one that names no scenario.

    The captures list `defaultScenario {scenario, model}` among the current bucket's fields without saying on which
    level; where an entry has it and lacks its own `scenario` or `id`, the entry's scenario and id are read from it."""
    if not isinstance(entry, dict):
        return None
    nested = entry.get("defaultScenario", entry.get("default_scenario"))
    fallback = nested if isinstance(nested, dict) else {}
    scenario = _text(entry, "scenario", "scenario") or _text(fallback, "scenario", "scenario")
    model = _text(entry, "id", "id") or _text(entry, "key", "key") or _text(fallback, "model", "model")
    name = _text(entry, "displayName", "display_name") or model or scenario
    if not scenario or not name:
        return None
    base = CatalogModel(
        id="",
        display_name=name,
        scenario=scenario,
        kimiplus_id=_text(entry, "kimiPlusId", "kimi_plus_id"),
        agent_mode=_text(entry, "agentMode", "agent_mode"),
        description=_text(entry, "description", "description"),
    )
    if model:
        efforts = _efforts(entry)
        default = _text(entry, "defaultReasoningEffort", "default_reasoning_effort")
        return replace(
            base,
            id=model.lower(),
            model=model,
            efforts=efforts,
            default_effort=default if default in efforts else "",
            thinking=default in efforts and default != NO_EFFORT,
        )
    thinking = bool(entry.get("thinking"))
    return replace(base, id=catalog_id(name, thinking, scenario), thinking=thinking)


def parse_catalog(data: dict[str, Any]) -> list[CatalogModel]:
    entries = data.get("availableModels", data.get("available_models"))
    found = (catalog_entry(entry) for entry in entries) if isinstance(entries, list) else ()
    return [model for model in found if model is not None]


def chat_options(request: UpstreamChat) -> dict[str, Any]:
    """`options`: the thinking switch always; a current catalog entry's id and effort level where chosen."""
    options: dict[str, Any] = {"thinking": request.thinking}
    if request.model:
        options["model"] = request.model
    if request.reasoning_effort:
        options["reasoning_effort"] = request.reasoning_effort
    return options
