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


async def test_catalog_model_selects_its_scenario(client: AsyncOpenAI, emulator: Emulator) -> None:
    listed = await client.models.list()
    entry = emulator.config.models[0]
    scenario = entry["scenario"]
    candidates = [m.id for m in listed.data if m.id.startswith("kimi-") and m.id not in ("kimi-search",)]
    assert candidates
    for model_id in candidates:
        await _ask(client, model_id)
    assert scenario in {req["scenario"] for req in emulator.state.chat_requests}
