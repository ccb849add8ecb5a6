"""MODEL_ALIASES: both spellings of the setting, the default map, first-match order, and names left alone."""

from __future__ import annotations

import pytest

from kimi_free_api.config import Settings, SettingsError
from kimi_free_api.core.models.aliases import ModelAliases
from kimi_free_api.core.models.modelspec import resolve_model


def aliases(text: str) -> ModelAliases:
    return ModelAliases(Settings(model_aliases=text).validated().model_alias_rules)


@pytest.mark.parametrize(
    ("requested", "model"),
    [
        ("claude-opus-5-5", "kimi-thinking"),
        ("claude-sonnet-4-5-20250929", "kimi-thinking"),
        ("Claude-3-5-Haiku-Latest", "kimi"),
        ("claude-haiku-4-5", "kimi"),
        ("gpt-4o", "kimi"),
        ("gpt-4o-mini", "kimi"),
        ("gpt-5-mini", "kimi"),
        ("gpt-5", "kimi-thinking"),
        ("gpt-5.1-codex", "kimi-thinking"),
        ("o3", "kimi-thinking"),
        ("o4-mini", "kimi-thinking"),
        ("chatgpt-4o-latest", "kimi"),
        # Names no rule matches are resolved as they are: Kimi's own, and unknown ones (which then 404).
        ("kimi-search", "kimi-search"),
        ("llama-3-70b", "llama-3-70b"),
        ("openai/gpt-4o", "openai/gpt-4o"),
        ("gpt-17-ultra", "gpt-17-ultra"),
    ],
)
def test_the_default_map(requested: str, model: str) -> None:
    assert ModelAliases(Settings().model_alias_rules).target(requested) == model


def test_every_default_target_is_a_model_that_resolves() -> None:
    for _, model in Settings().model_alias_rules:
        assert resolve_model(model, {}).name == model


def test_pairs_and_json_spellings() -> None:
    assert aliases("my-*=kimi-search, *-fast = kimi").rules == (("my-*", "kimi-search"), ("*-fast", "kimi"))
    assert aliases('{"My-Model": "kimi-research", "x*": "kimi"}').rules == (
        ("my-model", "kimi-research"),
        ("x*", "kimi"),
    )
    assert aliases("").rules == ()


def test_the_first_matching_rule_wins() -> None:
    rules = aliases("claude-*-fast=kimi,claude-*=kimi-thinking")
    assert rules.target("claude-x-fast") == "kimi"
    assert rules.target("claude-x") == "kimi-thinking"


@pytest.mark.parametrize("text", ["claude-*", "=kimi", "claude-*=", '{"a": 1}', "{broken", '["a", "b"]'])
def test_malformed_maps_are_refused_at_start(text: str) -> None:
    with pytest.raises(SettingsError, match="MODEL_ALIASES"):
        Settings.from_env({"MODEL_ALIASES": text})
