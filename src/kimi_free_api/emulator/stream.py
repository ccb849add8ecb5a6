"""One G3 Chat reply, written frame by frame: preamble, thinking, search, answer, then the end of the stream.

Frames are built as they are sent, so a long reply costs its text, not its frames, in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.emulator import frames
from kimi_free_api.emulator.answers import (
    AttachedFile,
    answer_deltas,
    research_question,
    search_hits,
    thinking_deltas,
)
from kimi_free_api.emulator.casing import snake_keys
from kimi_free_api.emulator.faults import BEFORE_REPLY_KINDS, BLOCK_EXCEPTION_KINDS, TRAILER_KINDS, Fault
from kimi_free_api.emulator.framing import end_stream, envelope, frame, utf8_cuts
from kimi_free_api.emulator.guided import guided_answer
from kimi_free_api.emulator.ids import new_id
from kimi_free_api.emulator.runtime import Runtime
from kimi_free_api.emulator.script import scripted_deltas
from kimi_free_api.emulator.state import Chat, Generation, Message
from kimi_free_api.emulator.turn import Turn

CONNECT_JSON = "application/connect+json"
STALL_LIMIT_S = 300.0
_STALL_POLL_S = 0.05
_MAX_LAG_S = 0.05
# Pauses at least this long end early when the answer is cancelled.
_WATCHED_PAUSE_S = 0.1
_SPLIT_PAUSE_S = 0.001  # long enough for the reader to see each piece of a split frame on its own
_HEARTBEAT = frame(frames.HEARTBEAT)
_FAILED = "MESSAGE_STATUS_FAILED"  # the emulator's own marker, only visible in /_emulator/state


class _Ended(Exception):
    """The reply stopped on purpose (an injected fault) before its normal end."""


def _same(obj: dict[str, Any]) -> Any:
    return obj


class ChatStream:
    def __init__(
        self,
        request: web.Request,
        runtime: Runtime,
        *,
        user_id: str,
        chat: Chat,
        turn: Turn,
        fault: Fault | None,
        files: tuple[AttachedFile, ...] = (),
    ) -> None:
        self._request = request
        self._runtime = runtime
        self._config = runtime.config  # the settings this reply started with
        self._user_id = user_id
        self._chat = chat
        self._turn = turn
        self._fault = fault
        self._response = web.StreamResponse(headers={"Content-Type": CONNECT_JSON})
        self._case: Callable[[dict[str, Any]], Any] = snake_keys if self._config.casing == "snake" else _same
        self._offset = 0
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time()
        self._blocks = 0
        scripted = runtime.script.take()
        if scripted is None and self._config.guided_answers:
            scripted = guided_answer(turn.prompt)
        if scripted is None:
            self._answer = answer_deltas(turn.prompt, self._config, search=turn.search, files=files)
        else:
            self._answer = scripted_deltas(scripted, self._config)
        self._answered = 0
        self._streaming = True  # counted among the account's generations in progress
        parent = turn.parent_id or (chat.messages[-1].id if chat.messages else "")
        self._question = Message(new_id(), "user", turn.prompt, parent, frames.COMPLETED)
        self._reply = Message(new_id(), "assistant", "", self._question.id, frames.GENERATING)
        self._generation = Generation(self._reply.id)
        chat.messages += [self._question, self._reply]
        chat.generation = self._generation

    async def run(self) -> web.StreamResponse:
        state = self._runtime.state
        state.stream_opened(self._user_id)
        try:
            await self._response.prepare(self._request)
            await self._stream()
        except _Ended:
            pass
        except ConnectionError:
            state.disconnects += 1
        except asyncio.CancelledError:
            # Only servers run with handler_cancellation cancel a handler when its client goes away.
            if not self._runtime.closing.is_set():
                state.disconnects += 1
            raise
        finally:
            if self._streaming:
                state.stream_closed(self._user_id)
            if self._chat.generation is self._generation:
                self._chat.generation = None
            self._reply.content = "".join(self._answer[: self._answered])
            if self._reply.status not in (frames.COMPLETED, frames.ASK_USER_STATUS):
                self._reply.status = _FAILED
            self._chat.updated = time.time()
        return self._response

    async def _stream(self) -> None:
        scenario = self._turn.scenario
        await self._pause(self._config.first_event_delay_ms)
        await self._op(frames.chat(self._chat))
        await self._op(frames.message(self._question, scenario, frames.contextual_request(self._turn.prompt)))
        await self._op(frames.message(self._reply, scenario, None))
        if self._config.stray_envelopes:
            await self._write(envelope(b"") + envelope(b"\x00 not json"))
        if self._fault is not None and self._fault.kind in BEFORE_REPLY_KINDS:
            await self._strike(self._fault)
        if self._turn.thinking:
            await self._think()
        if self._turn.search and not self._generation.cancelled:
            await self._search()
        if not self._generation.cancelled:
            await self._write_answer()
        if self._turn.research and self._config.research_asks_user and not self._generation.cancelled:
            await self._ask_user()
        await self._op(frames.message_status(self._reply.id, frames.COMPLETED))
        await self._send(frames.DONE)
        self._reply.status = frames.COMPLETED
        await self._write(end_stream(self._config.end_stream))

    # Frames and their timing: only text frames (what a reader waits for) are paced; the rest follow at once.

    async def _op(self, update: dict[str, Any]) -> None:
        self._offset += 1
        update["eventOffset"] = self._offset
        await self._send(update)

    async def _send(self, obj: dict[str, Any]) -> None:
        await self._write(frame(self._case(obj)))

    async def _pause(self, milliseconds: float) -> None:
        """Wait until `milliseconds` after the previous frame was due, not after it went out.

        Keeping to the schedule stops timer overshoot from piling up (2,000 frames 1 ms apart take about 2 s).
        A reply that fell far behind, e.g. on an overloaded machine, starts a new schedule instead of bursting.
        """
        if milliseconds <= 0:
            return
        now = self._loop.time()
        self._due = max(self._due + milliseconds / 1000, now - _MAX_LAG_S)
        seconds = self._due - now
        beat = self._config.heartbeat_ms / 1000
        while beat and seconds > beat:
            await self._sleep(beat)
            seconds -= beat
            await self._write(_HEARTBEAT)
        if seconds > 0:
            await self._sleep(seconds)

    async def _sleep(self, seconds: float) -> None:
        if seconds < _WATCHED_PAUSE_S:
            await asyncio.sleep(seconds)  # the common case, kept cheap: cancellation is noticed at the next frame
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._generation.stopped.wait(), seconds)

    async def _write(self, data: bytes) -> None:
        if not self._config.split_utf8:
            await self._response.write(data)
            return
        for index, piece in enumerate(utf8_cuts(data)):
            if index:
                await asyncio.sleep(_SPLIT_PAUSE_S)
            await self._response.write(piece)

    def _new_block(self) -> str:
        block_id = f"0_{self._blocks}"
        self._blocks += 1
        return block_id

    # The parts of a reply

    async def _think(self) -> None:
        pieces = thinking_deltas(self._turn.prompt, self._config)
        if not pieces:
            return
        style = self._config.thinking_style
        stage = self._new_block() if style in ("stage", "think_stage") else ""
        opened, closed = (
            (frames.STAGE_START, frames.STAGE_END)
            if self._config.stage_statuses == "start_end"
            else (frames.STAGE_RUNNING, frames.STAGE_COMPLETED)
        )
        if stage:
            await self._op(frames.stage(stage, self._reply.id, opened))
        if style in ("think_block", "think_stage"):
            await self._text_block("think", {}, pieces, answer=False)
        else:
            flags = {"flags": "thinking"} if style == "text_flags" else {}
            await self._text_block("text", flags, pieces, answer=False)
        if stage:
            await self._op(frames.stage(stage, self._reply.id, closed))

    async def _search(self) -> None:
        hits = search_hits(self._turn.prompt, self._config)
        block_id = self._new_block()
        if self._config.search_style == "web_pages":
            await self._op(frames.web_pages(block_id, self._reply.id, hits))
            return
        query = self._turn.prompt[:40]
        for update in frames.search_tool(block_id, self._reply.id, new_id(), query, hits):
            await self._op(update)

    async def _write_answer(self) -> None:
        flags = {"flags": "answer"} if self._config.thinking_style == "text_flags" else {}
        await self._text_block(self._config.answer_block, flags, self._answer, answer=True)

    async def _text_block(self, kind: str, flags: dict[str, str], pieces: list[str], *, answer: bool) -> None:
        """A `block.text` or `block.think` block: `set` with empty content, then one `append` per piece."""
        block_id = self._new_block()
        await self._op(frames.block("set", f"block.{kind}", block_id, {kind: {"content": "", **flags}}, self._reply.id))
        mask = f"block.{kind}.content"
        cumulative = self._config.append_mode == "cumulative"
        so_far = ""
        for index, piece in enumerate(pieces):
            await self._pause(self._config.event_delay_ms)
            if answer:
                await self._fault_point(index)
            if self._generation.cancelled:
                return
            if cumulative:
                so_far += piece
            content = so_far if cumulative else piece
            await self._op(frames.block("append", mask, block_id, {kind: {"content": content}}))
            if answer:
                self._answered += 1
        if answer:
            await self._fault_point(len(pieces))

    # Injected faults

    async def _fault_point(self, answered: int) -> None:
        """Strike when `after_events` answer frames are out (or after the last one, if there are fewer)."""
        fault = self._fault
        if fault is None or fault.kind in BEFORE_REPLY_KINDS or answered != min(fault.after_events, len(self._answer)):
            return
        await self._strike(fault)

    async def _strike(self, fault: Fault) -> None:
        if fault.kind == "stall":
            await self._stall()
        elif fault.kind == "disconnect":
            self._abort()
        elif fault.kind in BLOCK_EXCEPTION_KINDS:
            reason, message = fault.block_exception()
            await self._op(frames.exception(self._new_block(), self._reply.id, reason, message))
            await self._send(frames.DONE)
            await self._write(end_stream(self._config.end_stream))
        else:
            await self._send_error(fault.stream_error().to_json(), in_trailer=fault.kind in TRAILER_KINDS)
        raise _Ended

    async def _ask_user(self) -> None:
        """Deep Research stops on a question: the ask-user tool, the chat's parked status, then silence while the
        stream stays open, until the client leaves (or the emulator stops, or 300 s pass)."""
        args = orjson.dumps(research_question(self._turn.prompt)).decode()
        for update in frames.ask_user(self._new_block(), self._reply.id, new_id(), args, pieces=3):
            await self._op(update)
        await self._op(frames.chat_status(self._chat.id, frames.ASK_USER_STATUS))
        self._reply.status = frames.ASK_USER_STATUS
        # Waiting for the user is not generating: the account may start another answer meanwhile.
        self._runtime.state.stream_closed(self._user_id)
        self._streaming = False
        deadline = self._loop.time() + STALL_LIMIT_S
        stopped = self._generation.stopped
        while not self._client_gone() and not self._runtime.closing.is_set() and self._loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), _STALL_POLL_S)
            if stopped.is_set():
                break  # CancelChat
        raise _Ended

    async def _send_error(self, error: dict[str, Any], *, in_trailer: bool = False) -> None:
        style = self._config.end_stream
        if (in_trailer or self._config.error_style == "trailer") and style != "none":
            await self._write(end_stream(style, error))
            return
        await self._send(frames.error(error))
        await self._write(end_stream(style))

    def _client_gone(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()

    def _abort(self) -> None:
        if self._request.transport is not None:
            self._request.transport.abort()

    async def _stall(self) -> None:
        """Send nothing more; hold the connection until the client leaves, the emulator stops, or 300 s pass."""
        closing = self._runtime.closing
        deadline = self._loop.time() + STALL_LIMIT_S
        while not self._client_gone() and not closing.is_set() and self._loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), _STALL_POLL_S)
        if self._client_gone():
            raise ConnectionResetError("the client left a stalled stream")
        self._abort()
