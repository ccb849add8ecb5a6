"""GetAvailableModels in both bucket shapes, from the field names the 2026 captures list (evidence rows 15, 47)."""

from __future__ import annotations

from kimi_free_api.core.models.modelspec import CatalogModel
from kimi_free_api.core.ports import UpstreamChat
from kimi_free_api.upstream.catalog import chat_options, parse_catalog

EFFORTS = ["REASONING_EFFORT_LOW", "REASONING_EFFORT_MEDIUM", "REASONING_EFFORT_HIGH"]


def test_the_current_bucket() -> None:
    data = {
        "availableModels": [
            {
                "key": "k3",
                "id": "k3",
                "displayName": "K3",
                "scenario": "SCENARIO_K3",
                "kimiPlusId": "",
                "agentMode": "TYPE_NORMAL",
                "reasoningEffortOptions": EFFORTS,
                "defaultReasoningEffort": "REASONING_EFFORT_LOW",
                "contextLengthOptions": ["CONTEXT_LENGTH_256K"],
                "switchableTo": ["k3-agent"],
            },
            # Only a `key`, snake_case, no display name: the id stands in for it.
            {
                "key": "K2D6-Chat",
                "scenario": "SCENARIO_CHAT",
                "reasoning_effort_options": ["REASONING_EFFORT_NONE"],
                "default_reasoning_effort": "REASONING_EFFORT_NONE",
            },
            {"id": "k3-agent", "scenario": "SCENARIO_OK_COMPUTER", "agentMode": "TYPE_ULTRA"},
            {"id": "no-scenario"},
            "not an object",
        ],
        "defaultScenario": {"scenario": "SCENARIO_CHAT", "model": "k2d6-chat"},
    }
    k3, instant, agent = parse_catalog(data)
    assert k3 == CatalogModel(
        id="k3",
        display_name="K3",
        scenario="SCENARIO_K3",
        thinking=True,
        agent_mode="TYPE_NORMAL",
        model="k3",
        efforts=tuple(EFFORTS),
        default_effort="REASONING_EFFORT_LOW",
    )
    assert (instant.id, instant.model, instant.display_name, instant.thinking) == (
        "k2d6-chat",
        "K2D6-Chat",
        "K2D6-Chat",
        False,
    )
    assert instant.efforts == ("REASONING_EFFORT_NONE",)
    assert (agent.id, agent.agent_mode, agent.efforts, agent.thinking) == ("k3-agent", "TYPE_ULTRA", (), False)


def test_the_older_bucket() -> None:
    data = {
        "available_models": [
            {"scenario": "SCENARIO_K2D5", "display_name": "K2.6 Thinking", "thinking": True, "kimi_plus_id": "x"},
            {"scenario": "SCENARIO_K2D5", "displayName": "K2.6", "thinking": False},
        ]
    }
    thinking, plain = parse_catalog(data)
    assert (thinking.id, thinking.thinking, thinking.kimiplus_id, thinking.model) == (
        "kimi-k2.6-thinking",
        True,
        "x",
        "",
    )
    assert (plain.id, plain.thinking, plain.efforts) == ("kimi-k2.6", False, ())
    assert parse_catalog({}) == [] and parse_catalog({"availableModels": "nope"}) == []


def test_chat_options() -> None:
    assert chat_options(UpstreamChat(prompt="p")) == {"thinking": False}
    chosen = UpstreamChat(prompt="p", thinking=True, model="k3", reasoning_effort="REASONING_EFFORT_HIGH")
    assert chat_options(chosen) == {"thinking": True, "model": "k3", "reasoning_effort": "REASONING_EFFORT_HIGH"}


def test_an_entry_that_names_its_scenario_and_id_only_in_its_default_scenario() -> None:
    # The captures name `defaultScenario {scenario, model}` among the current entries' fields, level unstated.
    data = {
        "availableModels": [
            {
                "displayName": "K3",
                "defaultScenario": {"scenario": "SCENARIO_K3", "model": "k3"},
                "reasoningEffortOptions": EFFORTS,
                "defaultReasoningEffort": "REASONING_EFFORT_LOW",
            },
            {"key": "k2d8", "default_scenario": {"scenario": "SCENARIO_K3", "model": "ignored: the key wins"}},
            {"id": "own", "scenario": "SCENARIO_CHAT", "defaultScenario": {"scenario": "SCENARIO_K3"}},
            {"displayName": "nothing to go by", "defaultScenario": "not an object"},
        ]
    }
    k3, k2d8, own = parse_catalog(data)
    assert (k3.id, k3.model, k3.scenario, k3.thinking) == ("k3", "k3", "SCENARIO_K3", True)
    assert (k2d8.id, k2d8.scenario) == ("k2d8", "SCENARIO_K3")
    assert own.scenario == "SCENARIO_CHAT"
