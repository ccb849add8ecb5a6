"""Model names: what a requested `model` string asks the upstream to do.

The seed's conventions carry over: `kimi` plus combinable suffix flags (`-search`, `-silent`, `-research`,
`-k1`/`-thinking`, `-math`), a 20-character Kimi+ agent id used as the model, and catalog names published by the
upstream (e.g. `kimi-k2.6`), which may take the same flags.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from kimi_free_api.core.errors import InvalidRequest, ModelNotFound

DEFAULT_MODEL = "kimi"
FLAGS = ("search", "silent", "research", "thinking", "k1", "math")
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


def split_flags(name: str, catalog: dict[str, CatalogModel] | None = None) -> tuple[str, frozenset[str]]:
    """`kimi-search-silent` -> (`kimi`, {search, silent}); flags are only taken from the end of the name.

    With a catalog, stripping stops at the first name the catalog knows, so `kimi-k2.6-thinking-search` finds a
    catalog entry named `kimi-k2.6-thinking`.
    """
    parts = name.split("-")
    flags: set[str] = set()
    while len(parts) > 1 and parts[-1] in FLAGS:
        if catalog and "-".join(parts) in catalog:
            break
        flags.add(parts.pop())
    return "-".join(parts), frozenset(flags)


def resolve_model(
    requested: str,
    catalog: dict[str, CatalogModel],
    *,
    use_search: bool = False,
    thinking: bool | None = None,
) -> ModelSpec:
    name = requested.strip()
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
    return ModelSpec(
        name=name,
        search="search" in flags or use_search,
        silent="silent" in flags,
        research="research" in flags,
        thinking=wants_thinking or bool(entry and entry.thinking),
        agent_id=entry.kimiplus_id if entry else "",
        scenario=entry.scenario if entry else "",
        agent_mode=entry.agent_mode if entry else "",
    )


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
