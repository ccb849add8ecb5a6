"""What a request declares about the shape of the answer: the tools the model may call, and JSON output.

Protocol-neutral: chat completions (`tools`, `tool_choice`, `response_format`) and the Responses API (flat tools,
`text.format`) both parse into these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ChoiceMode = Literal["auto", "none", "required", "function"]


@dataclass(slots=True, frozen=True)
class FunctionTool:
    name: str
    description: str = ""
    # JSON Schema of the arguments object; None: any object.
    parameters: Mapping[str, Any] | None = None
    # The caller relies on arguments matching the schema exactly (OpenAI's strict mode).
    strict: bool = False


@dataclass(slots=True, frozen=True)
class ToolSet:
    tools: tuple[FunctionTool, ...]
    # "function": the tool named `forced` must be called; "required": some tool must be.
    choice: ChoiceMode = "auto"
    forced: str = ""
    parallel: bool = True
    # Declared through the deprecated `functions` field: the answer takes the deprecated `function_call` shape.
    legacy: bool = False
    by_name: Mapping[str, FunctionTool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {tool.name: tool for tool in self.tools})

    @property
    def must_call(self) -> bool:
        return self.choice in ("required", "function")


@dataclass(slots=True, frozen=True)
class JsonOutput:
    """The answer must be one JSON value: any JSON object, or one valid against `schema`."""

    schema: Mapping[str, Any] | None = None
    name: str = ""
    strict: bool = False
