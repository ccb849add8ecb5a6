"""Model names select upstream features: what reaches Kimi's Chat request for each flag."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError

from kimi_free_api.emulator import Account, Emulator
from tests.e2e.support import GatewayFactory, openai_client


def _last_request(emulator: Emulator) -> dict[str, Any]:
    return emulator.state.chat_requests[-1]


async def _ask(client: AsyncOpenAI, model: str, **extra: Any) -> None:
    await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "flags"}], extra_body=extra or None
    )


@pytest.mark.parametrize(
    ("model", "search", "thinking"),
    [
        ("kimi", False, False),
        ("kimi-search", True, False),
        ("kimi-search-silent", True, False),
        ("kimi-silent-search", True, False),
        ("kimi-thinking", False, True),
        ("kimi-k1", False, True),
        ("kimi-search-thinking", True, True),
        ("moonshot-v1-8k", False, False),
    ],
)
async def test_flags_reach_the_upstream(
    client: AsyncOpenAI, emulator: Emulator, model: str, search: bool, thinking: bool
) -> None:
    await _ask(client, model)
    sent = _last_request(emulator)
    assert bool(sent.get("tools")) is search
    if search:
        assert sent["tools"][0]["type"] == "TOOL_TYPE_SEARCH"
    assert sent["options"]["thinking"] is thinking


async def test_research_is_the_deep_researcher_agent(client: AsyncOpenAI, emulator: Emulator) -> None:
    await _ask(client, "kimi-research")
    sent = _last_request(emulator)
    assert (sent["scenario"], sent["kimiplus_id"]) == ("SCENARIO_OK_COMPUTER", "deep-researcher")
    assert [tool["type"] for tool in sent["tools"]] == ["TOOL_TYPE_SEARCH", "TOOL_TYPE_ASK_USER"]
    assert sent["options"]["enable_plugin"] is True


async def test_research_with_the_older_scenario(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    gateway = await gateway_factory(kimi_research_scenario="SCENARIO_RESEARCH", kimi_research_agent="")
    account = emulator.create_account("older")
    async with openai_client(gateway, account.refresh_token) as client:
        await _ask(client, "kimi-research")
    sent = _last_request(emulator)
    assert sent["scenario"] == "SCENARIO_RESEARCH" and "kimiplus_id" not in sent


async def test_agent_id_as_model(client: AsyncOpenAI, emulator: Emulator) -> None:
    await _ask(client, "coo6l3pkqq4ri39f36bg")
    assert _last_request(emulator)["kimiplusId"] == "coo6l3pkqq4ri39f36bg"


async def test_use_search_field(client: AsyncOpenAI, emulator: Emulator) -> None:
    await _ask(client, "kimi", use_search=True)
    assert _last_request(emulator)["tools"][0]["type"] == "TOOL_TYPE_SEARCH"


async def test_unknown_model_is_404_and_math_is_400(client: AsyncOpenAI, emulator: Emulator) -> None:
    with pytest.raises(NotFoundError) as missing:
        await _ask(client, "gpt-17-ultra")
    assert missing.value.code == "model_not_found"
    with pytest.raises(BadRequestError) as math:
        await _ask(client, "kimi-math")
    assert math.value.param == "model"
    assert emulator.state.requests["chat"] == 0


async def test_models_list_includes_the_upstream_catalog(
    http: aiohttp.ClientSession, emulator: Emulator, account: Account
) -> None:
    async with http.get("/v1/models") as response:
        anonymous = await response.json()
    assert anonymous["object"] == "list"
    assert {m["id"] for m in anonymous["data"]} >= {"kimi", "kimi-search", "kimi-thinking"}
    assert emulator.state.requests["models"] == 0

    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    for _ in range(3):
        async with http.get("/v1/models", headers=headers) as response:
            listed = await response.json()
    assert emulator.state.requests["models"] == 1  # cached
    ids = {m["id"] for m in listed["data"]}
    catalog_ids = ids - {m["id"] for m in anonymous["data"]}
    assert catalog_ids, "the catalog's models are listed"
    for model in listed["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}

    catalog_model = sorted(catalog_ids)[0]
    async with http.get(f"/v1/models/{catalog_model}", headers=headers) as response:
        assert response.status == 200
        assert (await response.json())["id"] == catalog_model
    async with http.get("/v1/models/nope-model", headers=headers) as response:
        assert response.status == 404


async def test_legacy_catalog_models_select_their_scenario(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(catalog_shape="legacy")
    listed = {m.id for m in (await client.models.list()).data}
    assert {"kimi-k2.6", "kimi-k2.6-thinking", "kimi-k2", "kimi-k2.6-agent-thinking"} <= listed
    await _ask(client, "kimi-k2.6-thinking")
    sent = _last_request(emulator)
    assert (sent["scenario"], sent["options"]) == ("SCENARIO_K2D5", {"thinking": True}), "no model or effort"
    await _ask(client, "kimi-k2")
    assert _last_request(emulator)["scenario"] == "SCENARIO_K2"


@pytest.mark.parametrize(
    ("model", "scenario", "options", "agent_mode"),
    [
        ("k3", "SCENARIO_K3", {"thinking": True, "model": "k3", "reasoning_effort": "REASONING_EFFORT_LOW"}, None),
        ("k2d8", "SCENARIO_K3", {"thinking": True, "model": "k2d8", "reasoning_effort": "REASONING_EFFORT_LOW"}, None),
        (
            "k2d6-chat",
            "SCENARIO_CHAT",
            {"thinking": False, "model": "k2d6-chat", "reasoning_effort": "REASONING_EFFORT_NONE"},
            None,
        ),
        (
            "k3-agent",
            "SCENARIO_OK_COMPUTER",
            {"thinking": True, "model": "k3-agent", "reasoning_effort": "REASONING_EFFORT_LOW"},
            "TYPE_ULTRA",
        ),
    ],
)
async def test_current_catalog_entries_are_listed_and_selected_by_id(
    client: AsyncOpenAI, emulator: Emulator, model: str, scenario: str, options: dict[str, Any], agent_mode: str | None
) -> None:
    listed = {m.id for m in (await client.models.list()).data}
    assert {"k3", "k3-agent", "k2d6-chat", "k2d6-thinking", "k2d8"} <= listed, "served only with X-Msh-Version"
    await _ask(client, model)
    sent = _last_request(emulator)
    assert (sent["scenario"], sent["options"]) == (scenario, options)
    assert sent.get("agentMode") == (agent_mode or "TYPE_NORMAL")


@pytest.mark.parametrize(
    ("model", "extra", "effort"),
    [
        ("k2d6-thinking", {"reasoning_effort": "high"}, "REASONING_EFFORT_HIGH"),
        ("k2d6-thinking", {"reasoning_effort": "medium"}, "REASONING_EFFORT_MEDIUM"),
        ("k2d6-thinking", {"reasoning_effort": "none"}, "REASONING_EFFORT_NONE"),
        ("k2d6-thinking", {"reasoning_effort": "minimal"}, "REASONING_EFFORT_NONE"),
        ("k2d6-thinking", {"thinking": {"type": "disabled"}}, "REASONING_EFFORT_NONE"),
        ("k2d6-thinking", {}, "REASONING_EFFORT_LOW"),
        ("k3", {"reasoning_effort": "high"}, "REASONING_EFFORT_HIGH"),
        ("k2d6-chat", {}, "REASONING_EFFORT_NONE"),
    ],
)
async def test_reasoning_effort_maps_to_the_levels_a_model_offers(
    client: AsyncOpenAI, emulator: Emulator, model: str, extra: dict[str, Any], effort: str
) -> None:
    await _ask(client, model, **extra)
    options = _last_request(emulator)["options"]
    assert options["reasoning_effort"] == effort
    assert options["thinking"] is (effort != "REASONING_EFFORT_NONE")


@pytest.mark.parametrize(
    ("model", "extra", "param"),
    [
        ("k3", {"reasoning_effort": "none"}, "reasoning_effort"),
        ("k3", {"thinking": {"type": "disabled"}}, "thinking"),
        ("k2d6-chat", {"reasoning_effort": "high"}, "reasoning_effort"),
        ("k2d6-chat-thinking", {}, "thinking"),
    ],
)
async def test_a_level_the_model_does_not_offer_is_400(
    client: AsyncOpenAI, emulator: Emulator, model: str, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(BadRequestError) as refused:
        await _ask(client, model, **extra)
    assert (refused.value.param, refused.value.code) == (param, "unsupported_value")
    assert "REASONING_EFFORT_" in refused.value.message
    assert emulator.state.requests["chat"] == 0, "refused before Kimi was asked"


async def test_a_huge_model_name_is_a_quick_400(client: AsyncOpenAI, emulator: Emulator) -> None:
    with pytest.raises(BadRequestError) as refused:
        await _ask(client, "kimi" + "-search" * 40_000)
    assert (refused.value.param, refused.value.code) == ("model", "model_name_too_long")
    assert emulator.state.requests["chat"] == 0
