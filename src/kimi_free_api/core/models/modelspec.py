"""Model names: what a requested `model` string asks the upstream to do.

The seed's conventions carry over: `kimi` plus combinable suffix flags (`-search`, `-silent`, `-research`,
`-k1`/`-thinking`, `-math`), a 20-character Kimi+ agent id used as the model, and catalog names published by the
upstream (e.g. `kimi-k2.6`, or the current catalog's ids such as `k3`), which may take the same flags.

Current catalog entries offer reasoning-effort levels; a request's thinking switch or OpenAI `reasoning_effort`
becomes one of them (`REASONING_EFFORT_*`), refused with a 400 where the model does not offer it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from kimi_free_api.core.errors import InvalidRequest, ModelNotFound

DEFAULT_MODEL = "kimi"
FLAGS = ("search", "silent", "research", "thinking", "k1", "math")
# Longer names are refused before any parsing: real ones are a few dozen characters.
MAX_MODEL_NAME = 256
NO_EFFORT = "REASONING_EFFORT_NONE"
LOW_EFFORT = "REASONING_EFFORT_LOW"
# OpenAI's `reasoning_effort` values and Kimi's levels; Kimi's web offers no level above HIGH that is known.
_EFFORT_LEVELS = {
    "none": NO_EFFORT,
    "minimal": NO_EFFORT,
    "low": LOW_EFFORT,
    "medium": "REASONING_EFFORT_MEDIUM",
    "high": "REASONING_EFFORT_HIGH",
    "xhigh": "REASONING_EFFORT_HIGH",
    "max": "REASONING_EFFORT_HIGH",
}
_AGENT_ID = re.compile(r"^[0-9a-v]{20}$")
# Names other kimi-free-api versions and forks accepted; they all meant plain Kimi.
COMPAT_ALIASES = frozenset(
    {
        "moonshot-v1",
        "moonshot-v1-8k",
        "moonshot-v1-32k",
        "moonshot-v1-128k",
        "moonshot-v1-vision",
        "moonshot-v1-auto",
        "kimi-latest",
    }
)


@dataclass(slots=True, frozen=True)
class CatalogModel:
    """One entry of the upstream's published model catalog (GetAvailableModels)."""

    id: str
    display_name: str
    scenario: str
    thinking: bool = False
    kimiplus_id: str = ""
    agent_mode: str = ""
    description: str = ""
    # The current catalog's fields: the entry's id (sent as `options.model`), its effort levels and default.
    model: str = ""
    efforts: tuple[str, ...] = ()
    default_effort: str = ""


@dataclass(slots=True, frozen=True)
class ModelSpec:
    name: str
    search: bool = False
    silent: bool = False
    research: bool = False
    thinking: bool = False
    agent_id: str = ""
    scenario: str = ""
    agent_mode: str = ""
    # `options.model` and `options.reasoning_effort`, for current catalog entries.
    model: str = ""
    reasoning_effort: str = ""


def split_flags(name: str, catalog: dict[str, CatalogModel] | None = None) -> tuple[str, frozenset[str]]:
    """`kimi-search-silent` -> (`kimi`, {search, silent}); flags are only taken from the end of the name.

    With a catalog, stripping stops at the first name the catalog knows, so `kimi-k2.6-thinking-search` finds a
    catalog entry named `kimi-k2.6-thinking`.
    """
    # One pass from the end over the dash positions; a prefix is looked up only when it could be a catalog id, so
    # a long run of flags costs its length, not its length squared.
    longest = max(map(len, catalog), default=0) if catalog else 0
    flags: set[str] = set()
    end = len(name)
    while True:
        dash = name.rfind("-", 0, end)
        if dash < 0 or name[dash + 1 : end] not in FLAGS:
            break
        if end <= longest and catalog and name[:end] in catalog:
            break
        flags.add(name[dash + 1 : end])
        end = dash
    return name[:end], frozenset(flags)


def resolve_model(
    requested: str,
    catalog: dict[str, CatalogModel],
    *,
    use_search: bool = False,
    thinking: bool | None = None,
    effort: str | None = None,
) -> ModelSpec:
    """`thinking`: the client's explicit switch; `effort`: its OpenAI `reasoning_effort` (none … high)."""
    name = requested.strip()
    if len(name) > MAX_MODEL_NAME:
        raise InvalidRequest(
            f"`model` is {len(name)} characters long; model names have at most {MAX_MODEL_NAME}.",
            param="model",
            code="model_name_too_long",
        )
    lowered = name.lower()
    if _AGENT_ID.match(lowered):
        return ModelSpec(name=name, search=use_search, thinking=bool(thinking), agent_id=lowered)

    base, flags = split_flags(lowered, catalog)
    entry = catalog.get(base)
    if entry is None and base not in (DEFAULT_MODEL, *COMPAT_ALIASES):
        raise ModelNotFound(
            f"The model `{requested}` does not exist. Use `kimi` with optional flags "
            f"({', '.join('-' + f for f in FLAGS if f != 'math')}), a Kimi+ agent id, or an id from GET /v1/models.",
            param="model",
        )
    if "math" in flags:
        raise InvalidRequest(
            "The `-math` flag needs the legacy Kimi protocol; today's Kimi web protocol has no math mode.",
            param="model",
            code="model_not_supported",
        )
    wants_thinking = "thinking" in flags or "k1" in flags
    if thinking is not None and not wants_thinking:
        wants_thinking = thinking
    spec = ModelSpec(
        name=name,
        search="search" in flags or use_search,
        silent="silent" in flags,
        research="research" in flags,
        thinking=wants_thinking or bool(entry and entry.thinking),
        agent_id=entry.kimiplus_id if entry else "",
        scenario=entry.scenario if entry else "",
        agent_mode=entry.agent_mode if entry else "",
    )
    if entry is None or not entry.efforts:
        return spec
    level = _effort_level(entry, wants_thinking, thinking, effort)
    return replace(spec, thinking=level != NO_EFFORT, model=entry.model, reasoning_effort=level)


def _effort_level(entry: CatalogModel, wants_thinking: bool, thinking: bool | None, effort: str | None) -> str:
    """The entry's level for what the request asked; the entry's default when it asked nothing."""
    param = "reasoning_effort" if effort in _EFFORT_LEVELS else "thinking"
    if effort in _EFFORT_LEVELS:
        level = _EFFORT_LEVELS[effort]
    elif wants_thinking:
        # Thinking on: the entry's own default level when that is one, else LOW (or the lowest it offers).
        levels = [e for e in entry.efforts if e != NO_EFFORT]
        level = entry.default_effort if entry.default_effort in levels else levels[0] if levels else LOW_EFFORT
        if LOW_EFFORT in levels and entry.default_effort not in levels:
            level = LOW_EFFORT
    elif thinking is False:
        level = NO_EFFORT
    else:
        return entry.default_effort or entry.efforts[0]
    if level not in entry.efforts:
        ending = "thinking cannot be turned off for it" if level == NO_EFFORT else "choose a level it offers"
        raise InvalidRequest(
            f"The model `{entry.id}` does not offer {level} (it offers {', '.join(entry.efforts)}); {ending}.",
            param=param,
            code="unsupported_value",
        )
    return level


def listed_model_ids(catalog: dict[str, CatalogModel]) -> list[str]:
    """The ids GET /v1/models shows: ones that work as written, without repeating every flag combination."""
    ids = ["kimi", "kimi-search", "kimi-search-silent", "kimi-research", "kimi-thinking", "kimi-k1"]
    for model_id in catalog:
        ids.append(model_id)
        ids.append(f"{model_id}-search")
    return list(dict.fromkeys(ids))


def catalog_id(display_name: str, thinking: bool, scenario: str = "") -> str:
    slug = re.sub(r"[^0-9a-z.]+", "-", display_name.strip().lower()).strip("-")
    if not slug:
        # A name without Latin letters or digits (e.g. "长思考"): the scenario keeps ids distinct.
        slug = re.sub(r"[^0-9a-z.]+", "-", scenario.lower().removeprefix("scenario_")).strip("-")
        slug = slug or "model-" + hashlib.sha256(display_name.encode()).hexdigest()[:8]
    if not slug.startswith("kimi"):
        slug = f"kimi-{slug}"
    if thinking and not slug.endswith("thinking"):
        slug += "-thinking"
    return slug
