"""One Chat reply played from a recorded trace (`replay.py`): the chat and its messages are the emulator's own, so
CancelChat, DeleteChat and continuation work on it as on any other reply."""

from __future__ import annotations

from typing import Any

import orjson

from kimi_free_api.emulator import frames
from kimi_free_api.emulator.framing import FLAG_END_STREAM, end_stream, envelope, frame
from kimi_free_api.emulator.replay import Filler, RecordedStream
from kimi_free_api.emulator.stream import ChatStream


class ReplayStream(ChatStream):
    def __init__(self, *args: Any, recorded: RecordedStream, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recorded = recorded

    async def _stream(self) -> None:
        filler = Filler(self._chat.id, self._question.id, self._reply.id)
        await self._pause(self._config.first_event_delay_ms)
        offset = 0
        for shape in self._recorded.frames:
            appending = isinstance(shape, dict) and shape.get("op") == "append"
            if appending:
                if self._generation.cancelled:
                    continue  # a cancelled answer keeps its other frames (status, done) but gets no more text
                await self._pause(self._config.event_delay_ms)
            if isinstance(shape, dict) and "eventOffset" in shape:
                offset += 1
            await self._write(frame(filler.frame(shape, offset)))
        self._reply.status = frames.COMPLETED
        end = self._recorded.end
        if end is None:
            return
        flags, shape = end
        if flags & FLAG_END_STREAM:
            await self._write(envelope(orjson.dumps(filler.value(shape) if shape is not None else {}), flags))
        else:
            await self._write(end_stream("grpc-web"))
