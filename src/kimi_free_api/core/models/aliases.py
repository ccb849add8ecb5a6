"""Model names that clients hard-code (`claude-sonnet-4-5`, `gpt-4o`, `o3` …) mapped to Kimi model names.

Agents such as Claude Code or Codex send the vendor's own names and often cannot be told otherwise. The map is an
ordered list of (glob pattern, Kimi model) rules, matched case-insensitively against the whole requested name; the
first match wins and a name no rule matches is resolved as it is (so an unknown name keeps its clear 404). The
rules come from the `MODEL_ALIASES` setting (`Settings.model_alias_rules`).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase


class ModelAliases:
    __slots__ = ("rules",)

    def __init__(self, rules: Sequence[tuple[str, str]] = ()) -> None:
        self.rules = tuple((pattern.lower(), model) for pattern, model in rules)

    def target(self, requested: str) -> str:
        """The Kimi model a requested name stands for; the name itself when no rule matches it."""
        lowered = requested.strip().lower()
        for pattern, model in self.rules:
            if fnmatchcase(lowered, pattern):
                return model
        return requested
