"""Answers whose shape the gateway enforces: tool calls and JSON output, with one repair round.

Kimi's reply is checked once it is complete: tool calls must name a declared tool and carry a JSON object valid
against its schema, a forced tool must be called, JSON output must parse (and match its schema). When it is not
usable, Kimi is told what was wrong in a second turn of the same chat, once. What still fails after that is an
`InvalidModelOutput` error, except mismatches with a schema the client did not mark `strict`: those pass, as
OpenAI's own non-strict output can.

Prose is shown while it arrives only where it cannot turn out wrong: tools declared with `tool_choice` auto (or
none) and no JSON format. Then the call block is held back (`BlockGate`) and never shown as text. Otherwise the
answer is held until it is checked. Thinking and search results always pass straight through.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

import orjson

from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.errors import InvalidModelOutput
from kimi_free_api.core.events import ChatEvent, Finished, FinishReason, TextDelta
from kimi_free_api.core.guided.json_output import check_json
from kimi_free_api.core.guided.jsonschema import schema_errors
from kimi_free_api.core.guided.persona import is_persona_call, persona_problem
from kimi_free_api.core.guided.reply import SYNTAXES, read_reply
from kimi_free_api.core.guided.tool_protocol import BlockGate, ParsedReply, repair_request
from kimi_free_api.core.guided.tools import JsonOutput, ToolSet
from kimi_free_api.core.ports import WaitHook
from kimi_free_api.core.request import ToolCall

log = logging.getLogger(__name__)


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(slots=True)
class ToolCallsMade:
    """The answer ends in these calls (always after the last `TextDelta`)."""

    calls: tuple[ToolCall, ...]


GuidedEvent = ChatEvent | ToolCallsMade


@dataclass(slots=True, frozen=True)
class _Verdict:
    content: str
    calls: tuple[ToolCall, ...] = ()
    problems: tuple[str, ...] = ()
    # Whether the answer may still be used as it is: the only problems are mismatches with non-strict schemas.
    tolerable: bool = True
    # Whether the reply tried to call tools (the repair request then asks for calls).
    calling: bool = False


class GuidedAnswer:
    def __init__(
        self,
        run: ChatRun,
        tools: ToolSet | None,
        output: JsonOutput | None,
        *,
        live: bool,
        new_id: Callable[[], str] = new_call_id,
    ) -> None:
        self.run = run
        self._live = live
        self._tools = tools
        self._output = output
        self._new_id = new_id
        # Everything sent to and written by Kimi for this answer, repair included: what usage counts.
        self.prompts = [run.prompt]
        self.replies: list[str] = []
        # How many characters of the first reply's prose were passed on while it arrived.
        self._shown = 0
        self.reason: FinishReason = "stop"

    @property
    def prompt(self) -> str:
        """Every prompt of the answer, as usage counts them."""
        return "\n\n".join(self.prompts)

    @property
    def written(self) -> str:
        """Everything Kimi wrote for the answer, as usage counts it."""
        return "".join(self.replies)

    @property
    def streams_prose(self) -> bool:
        """Whether text is passed on as it arrives (`live` answers that cannot turn out wrong), else once checked."""
        return self._live and self._output is None and (self._tools is None or not self._tools.must_call)

    async def batches(self, on_wait: WaitHook | None = None) -> AsyncGenerator[list[GuidedEvent], None]:
        """The answer as events; text comes only as the checked content. Raises `InvalidModelOutput`."""
        live = self.streams_prose
        gate = BlockGate(SYNTAXES) if live and self._tools is not None else None
        shown = False
        async for batch in self._read(live, gate):
            shown = shown or any(type(event) is TextDelta for event in batch)
            yield batch
        verdict = self._judge(self.replies[-1])
        if not verdict.problems:
            yield self._ending(self._unshown(verdict, live), verdict)
            return
        log.info("Kimi's answer broke the output format (%d problem(s)); asking it to repair", len(verdict.problems))
        log.debug("output problems: %s", verdict.problems)
        self.run = await self.run.follow_up(repair_request(verdict.problems, calling=verdict.calling), on_wait)
        self.prompts.append(self.run.prompt)
        async for batch in self._read(False, None):
            yield batch
        verdict = self._judge(self.replies[-1])
        if verdict.problems and not verdict.tolerable:
            raise InvalidModelOutput(
                "Kimi's answer did not follow the required output format, even after a repair request: "
                + "; ".join(verdict.problems)
            )
        yield self._ending(self._repaired_tail(verdict, shown), verdict)

    def _unshown(self, verdict: _Verdict, live: bool) -> str:
        """The checked content not passed on yet (the gate shows a prefix of it, held-back text being the rest)."""
        if not live:
            return verdict.content
        return verdict.content[self._shown :] if verdict.content.startswith(self.replies[-1][: self._shown]) else ""

    @staticmethod
    def _repaired_tail(verdict: _Verdict, shown: bool) -> str:
        if not shown:
            return verdict.content
        # The first reply's prose is out already: the repaired one adds its text only when it calls nothing.
        return "" if verdict.calls or not verdict.content else "\n\n" + verdict.content

    async def _read(self, live: bool, gate: BlockGate | None) -> AsyncIterator[list[GuidedEvent]]:
        """One reply: thinking and search pass through; text too when `live`, as far as `gate` (if any) lets it."""
        text: list[str] = []
        async for batch in self.run.batches():
            out: list[GuidedEvent] = []
            for event in batch:
                if type(event) is TextDelta:
                    text.append(event.text)
                    shown = gate.feed(event.text) if gate is not None else event.text if live else ""
                    if shown:
                        self._shown += len(shown)
                        out.append(TextDelta(shown))
                elif type(event) is Finished:
                    self.reason = event.reason
                else:
                    out.append(event)
            if out:
                yield out
        self.replies.append("".join(text))

    def _ending(self, content: str, verdict: _Verdict) -> list[GuidedEvent]:
        ending: list[GuidedEvent] = []
        if content:
            ending.append(TextDelta(content))
        if verdict.calls:
            ending.append(ToolCallsMade(verdict.calls))
        ending.append(Finished(self.reason))
        return ending

    def _judge(self, reply: str) -> _Verdict:
        tools, output = self._tools, self._output
        content = reply
        if tools is not None:
            parsed = read_reply(reply)
            if parsed.has_block and tools.choice != "none":
                return self._judge_calls(parsed, tools)
            content = parsed.content  # with tool_choice none, a call Kimi wrote anyway is dropped
            if tools.must_call:
                wanted = f"the tool `{tools.forced}`" if tools.forced else "at least one tool"
                return _Verdict(
                    "", problems=(f"the reply must call {wanted}, but it calls none",), tolerable=False, calling=True
                )
        if output is None:
            return _Verdict(content)
        checked = check_json(content, output)
        return _Verdict(checked.text, problems=checked.problems, tolerable=checked.schema_only and not output.strict)

    def _judge_calls(self, parsed: ParsedReply, tools: ToolSet) -> _Verdict:
        drafts = parsed.calls if tools.parallel else parsed.calls[:1]
        problems: list[str] = []
        calls: list[ToolCall] = []
        tolerable = bool(drafts)
        if not drafts:
            problems.append("the reply starts a tool call but holds no complete <tool_call> element")
        for draft in drafts:
            tool = tools.by_name.get(draft.name)
            if draft.problem:
                problems.append(draft.problem)
            elif tool is None and is_persona_call(draft.name, draft.arguments):
                # Kimi's own sandbox tools: asked once to use the declared ones, then dropped, never passed on.
                problems.append(persona_problem(draft.name, tools.by_name))
                continue
            elif tool is None:
                known = ", ".join(f"`{name}`" for name in tools.by_name)
                problems.append(f"there is no tool named `{draft.name}`; the tools are {known}")
            elif tools.forced and draft.name != tools.forced:
                problems.append(f"the reply must call `{tools.forced}`, not `{draft.name}`")
            else:
                errors = schema_errors(draft.arguments, tool.parameters) if tool.parameters is not None else []
                problems += [f"the arguments of `{draft.name}` do not match its schema at {error}" for error in errors]
                tolerable = tolerable and not (errors and tool.strict)
                arguments = orjson.dumps(draft.arguments).decode()
                calls.append(ToolCall(id=self._new_id(), name=draft.name, arguments=arguments))
                continue
            tolerable = False
        tolerable = tolerable and (bool(calls) or not tools.must_call)
        return _Verdict(parsed.content, tuple(calls), tuple(problems), tolerable, calling=True)
