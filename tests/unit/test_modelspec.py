"""Model names: `kimi` plus flags, Kimi+ agent ids, compatibility aliases and upstream catalog ids."""

from __future__ import annotations

import time

import pytest

from kimi_free_api.core.errors import InvalidRequest, ModelNotFound
from kimi_free_api.core.models.modelspec import (
    COMPAT_ALIASES,
    DEFAULT_MODEL,
    CatalogModel,
    ModelSpec,
    catalog_id,
    listed_model_ids,
    resolve_model,
    split_flags,
)

K26 = CatalogModel(id="kimi-k2.6", display_name="K2.6", scenario="SCENARIO_K2D5")
K26_THINKING = CatalogModel(id="kimi-k2.6-thinking", display_name="K2.6", scenario="SCENARIO_K2D5", thinking=True)
AGENT = CatalogModel(
    id="kimi-ok-computer",
    display_name="OK Computer",
    scenario="SCENARIO_OK_COMPUTER",
    kimiplus_id="coo6l3pkqq4ri39f36bg",
    agent_mode="TYPE_ULTRA",
)
CATALOG = {m.id: m for m in (K26, K26_THINKING, AGENT)}


def test_default_model() -> None:
    assert DEFAULT_MODEL == "kimi"
    assert resolve_model("kimi", {}) == ModelSpec(name="kimi")


@pytest.mark.parametrize(
    ("model", "search", "silent", "research", "thinking"),
    [
        ("kimi-search", True, False, False, False),
        ("kimi-silent", False, True, False, False),
        ("kimi-search-silent", True, True, False, False),
        ("kimi-silent-search", True, True, False, False),
        ("kimi-research", False, False, True, False),
        ("kimi-k1", False, False, False, True),
        ("kimi-thinking", False, False, False, True),
        ("kimi-thinking-search", True, False, False, True),
        ("kimi-search-k1-silent", True, True, False, True),
        ("kimi-research-search-silent-thinking", True, True, True, True),
        ("kimi-search-search", True, False, False, False),
    ],
)
def test_flags(model: str, search: bool, silent: bool, research: bool, thinking: bool) -> None:
    assert resolve_model(model, {}) == ModelSpec(
        name=model, search=search, silent=silent, research=research, thinking=thinking
    )


def test_name_is_kept_as_written_but_matched_case_insensitively() -> None:
    spec = resolve_model("  KIMI-Search  ", {})
    assert spec == ModelSpec(name="KIMI-Search", search=True)


@pytest.mark.parametrize("model", ["kimi-math", "kimi-search-math", "kimi-math-silent", "moonshot-v1-math"])
def test_math_flag_is_refused(model: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        resolve_model(model, {})
    assert caught.value.param == "model"
    assert caught.value.code == "model_not_supported"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "search",
        "kimi-",
        "kimi-search-x",
        "kimi-turbo",
        "crm40ee9e5jvhsn7ptc",  # 19 characters
        "crm40ee9e5jvhsn7ptcgg",  # 21 characters
        "crm40ee9e5jvhsn7ptcw",  # 'w' is outside the base32hex alphabet
        "crm40ee9e5jvhsn7ptcg-search",
        "gpt-4o-math",
    ],
)
def test_unknown_models(model: str) -> None:
    with pytest.raises(ModelNotFound) as caught:
        resolve_model(model, {})
    error = caught.value
    assert (error.param, error.code, error.status) == ("model", "model_not_found", 404)
    assert f"`{model}`" in error.message
    # The hint lists the usable flags, not the refused `-math`.
    assert "(-search, -silent, -research, -thinking, -k1)" in error.message


@pytest.mark.parametrize("agent", ["crm40ee9e5jvhsn7ptcg", "coo6l3pkqq4ri39f36bg", "0123456789abcdefghiv"])
def test_agent_ids(agent: str) -> None:
    assert resolve_model(agent, {}) == ModelSpec(name=agent, agent_id=agent)


def test_agent_id_is_lowercased_and_takes_search_and_thinking() -> None:
    spec = resolve_model("CRM40EE9E5JVHSN7PTCG", {}, use_search=True, thinking=True)
    assert spec == ModelSpec(name="CRM40EE9E5JVHSN7PTCG", search=True, thinking=True, agent_id="crm40ee9e5jvhsn7ptcg")
    assert resolve_model("crm40ee9e5jvhsn7ptcg", {}, thinking=False).thinking is False


@pytest.mark.parametrize("alias", sorted(COMPAT_ALIASES))
def test_compat_aliases_mean_plain_kimi(alias: str) -> None:
    assert resolve_model(alias, {}) == ModelSpec(name=alias)


def test_compat_alias_with_flags() -> None:
    assert resolve_model("moonshot-v1-8k-search", {}) == ModelSpec(name="moonshot-v1-8k-search", search=True)
    assert resolve_model("moonshot-v1-thinking", {}).thinking


def test_catalog_ids() -> None:
    assert resolve_model("kimi-k2.6", CATALOG) == ModelSpec(name="kimi-k2.6", scenario="SCENARIO_K2D5")
    assert resolve_model("kimi-k2.6-thinking", CATALOG) == ModelSpec(
        name="kimi-k2.6-thinking", thinking=True, scenario="SCENARIO_K2D5"
    )
    assert resolve_model("kimi-ok-computer", CATALOG) == ModelSpec(
        name="kimi-ok-computer",
        agent_id="coo6l3pkqq4ri39f36bg",
        scenario="SCENARIO_OK_COMPUTER",
        agent_mode="TYPE_ULTRA",
    )


def test_catalog_ids_with_flags() -> None:
    assert resolve_model("kimi-k2.6-search-silent", CATALOG) == ModelSpec(
        name="kimi-k2.6-search-silent", search=True, silent=True, scenario="SCENARIO_K2D5"
    )
    assert resolve_model("Kimi-K2.6-K1", CATALOG) == ModelSpec(
        name="Kimi-K2.6-K1", thinking=True, scenario="SCENARIO_K2D5"
    )
    spec = resolve_model("kimi-ok-computer-search", CATALOG)
    assert (spec.search, spec.agent_id, spec.scenario) == (True, "coo6l3pkqq4ri39f36bg", "SCENARIO_OK_COMPUTER")


def test_catalog_id_that_looks_like_a_flagged_name_matches_whole() -> None:
    catalog = {"kimi-research": CatalogModel(id="kimi-research", display_name="Research", scenario="SCENARIO_RESEARCH")}
    assert resolve_model("kimi-research", catalog) == ModelSpec(name="kimi-research", scenario="SCENARIO_RESEARCH")


def test_unknown_base_with_catalog() -> None:
    with pytest.raises(ModelNotFound):
        resolve_model("kimi-k9-search", CATALOG)


def test_use_search() -> None:
    assert resolve_model("kimi", {}, use_search=True).search
    assert resolve_model("kimi-k2.6", CATALOG, use_search=True).search
    assert resolve_model("kimi-search", {}, use_search=False).search


@pytest.mark.parametrize(
    ("model", "catalog", "thinking", "expected"),
    [
        ("kimi", {}, None, False),
        ("kimi", {}, True, True),
        ("kimi", {}, False, False),
        ("kimi-thinking", {}, None, True),
        ("kimi-thinking", {}, False, True),  # the name's flag is kept
        ("kimi-k1", {}, False, True),
        ("kimi-search", {}, True, True),
        ("kimi-k2.6", CATALOG, True, True),
        ("kimi-k2.6", CATALOG, False, False),
        ("kimi-k2.6-thinking", CATALOG, None, True),
        ("kimi-k2.6-thinking", CATALOG, False, True),  # a thinking-only catalog model stays thinking
    ],
)
def test_explicit_thinking(model: str, catalog: dict[str, CatalogModel], thinking: bool | None, expected: bool) -> None:
    assert resolve_model(model, catalog, thinking=thinking).thinking is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kimi", ("kimi", frozenset())),
        ("kimi-search-silent", ("kimi", frozenset({"search", "silent"}))),
        ("kimi-k2.6-thinking-search", ("kimi-k2.6", frozenset({"thinking", "search"}))),
        ("kimi-search-x", ("kimi-search-x", frozenset())),
        ("search", ("search", frozenset())),
        ("search-silent", ("search", frozenset({"silent"}))),
        ("kimi-math", ("kimi", frozenset({"math"}))),
        ("kimi-", ("kimi-", frozenset())),
        ("", ("", frozenset())),
    ],
)
def test_split_flags(name: str, expected: tuple[str, frozenset[str]]) -> None:
    assert split_flags(name) == expected


@pytest.mark.parametrize(
    ("display", "thinking", "expected"),
    [
        ("K2.6", False, "kimi-k2.6"),
        ("K2.6", True, "kimi-k2.6-thinking"),
        ("Kimi K2 Thinking", True, "kimi-k2-thinking"),
        ("Kimi", False, "kimi"),
        ("  OK Computer!  ", False, "kimi-ok-computer"),
        ("K2.5 思考", True, "kimi-k2.5-thinking"),
        ("Deep_Research", False, "kimi-deep-research"),
    ],
)
def test_catalog_id(display: str, thinking: bool, expected: str) -> None:
    assert catalog_id(display, thinking) == expected


def test_catalog_id_of_a_non_ascii_display_name_is_usable() -> None:
    first, second = catalog_id("长思考", False), catalog_id("深度研究", False)
    assert not first.endswith("-")
    assert first != second


def test_listed_model_ids_without_catalog() -> None:
    assert listed_model_ids({}) == [
        "kimi",
        "kimi-search",
        "kimi-search-silent",
        "kimi-research",
        "kimi-thinking",
        "kimi-k1",
    ]


def test_listed_model_ids_with_catalog_deduplicates_and_keeps_order() -> None:
    catalog = {"kimi-k2.6": K26, "kimi": CatalogModel(id="kimi", display_name="Kimi", scenario="SCENARIO_K2")}
    assert listed_model_ids(catalog) == [
        "kimi",
        "kimi-search",
        "kimi-search-silent",
        "kimi-research",
        "kimi-thinking",
        "kimi-k1",
        "kimi-k2.6",
        "kimi-k2.6-search",
    ]


def test_every_listed_id_resolves_with_a_full_catalog() -> None:
    for model_id in listed_model_ids(CATALOG):
        resolve_model(model_id, CATALOG)


def test_every_listed_id_resolves_with_a_thinking_only_catalog() -> None:
    catalog = {K26_THINKING.id: K26_THINKING}
    for model_id in listed_model_ids(catalog):
        spec = resolve_model(model_id, catalog)
        assert spec.thinking or model_id in listed_model_ids({})


def test_a_long_run_of_flags_is_split_in_linear_time() -> None:
    # Issue 11: a ~280 KB name froze every client for 4.9 s; stripping flags re-joined the name once per flag.
    name = "kimi" + "-search" * 40_000
    started = time.perf_counter()
    assert split_flags(name, CATALOG) == ("kimi", frozenset({"search"}))
    assert time.perf_counter() - started < 0.5


def test_model_names_are_capped() -> None:
    assert resolve_model("kimi-" + "search-" * 35 + "silent", {}).search  # 256 characters still work
    started = time.perf_counter()
    with pytest.raises(InvalidRequest) as caught:
        resolve_model("kimi" + "-search" * 40_000, CATALOG)
    assert time.perf_counter() - started < 0.1
    assert (caught.value.param, caught.value.code) == ("model", "model_name_too_long")
    assert "256" in caught.value.message


LEVELS = ("REASONING_EFFORT_NONE", "REASONING_EFFORT_LOW", "REASONING_EFFORT_MEDIUM", "REASONING_EFFORT_HIGH")
K3 = CatalogModel(
    id="k3", display_name="K3", scenario="SCENARIO_K3", model="k3", efforts=LEVELS[1:], default_effort=LEVELS[1]
)
INSTANT = CatalogModel(
    id="k2d6-chat", display_name="K2.6 Instant", scenario="SCENARIO_CHAT", model="k2d6-chat", efforts=LEVELS[:1]
)
EFFORT_CATALOG = {m.id: m for m in (K3, INSTANT)}


@pytest.mark.parametrize(
    ("model", "thinking", "effort", "level"),
    [
        ("k3", None, None, "REASONING_EFFORT_LOW"),
        ("k3", True, None, "REASONING_EFFORT_LOW"),
        ("k3", None, "high", "REASONING_EFFORT_HIGH"),
        ("k3-thinking", None, None, "REASONING_EFFORT_LOW"),
        ("k2d6-chat", None, None, "REASONING_EFFORT_NONE"),
        ("k2d6-chat", False, "minimal", "REASONING_EFFORT_NONE"),
    ],
)
def test_effort_levels(model: str, thinking: bool | None, effort: str | None, level: str) -> None:
    spec = resolve_model(model, EFFORT_CATALOG, thinking=thinking, effort=effort)
    assert (spec.model, spec.reasoning_effort, spec.thinking) == (
        model.removesuffix("-thinking"),
        level,
        level != "REASONING_EFFORT_NONE",
    )


@pytest.mark.parametrize(
    ("model", "thinking", "effort", "param"),
    [
        ("k3", False, None, "thinking"),
        ("k3", None, "none", "reasoning_effort"),
        ("k2d6-chat", None, "low", "reasoning_effort"),
    ],
)
def test_a_level_not_offered_is_refused(model: str, thinking: bool | None, effort: str | None, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        resolve_model(model, EFFORT_CATALOG, thinking=thinking, effort=effort)
    assert (caught.value.param, caught.value.code) == (param, "unsupported_value")


def test_an_effort_on_an_entry_without_levels_only_switches_thinking() -> None:
    spec = resolve_model("kimi-k2.6", CATALOG, thinking=True, effort="high")
    assert (spec.thinking, spec.model, spec.reasoning_effort) == (True, "", "")
