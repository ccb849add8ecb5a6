"""What `previous_response_id` refers to: the conversation a Responses API answer ended; and the response object
itself, for `GET /v1/responses/{id}`.

Kimi's web chat keeps no server-side state the gateway could point at, so a response is remembered as its whole
transcript (input items and output, without `instructions`, which OpenAI does not carry over either). A request
naming it is answered as if it had sent that transcript itself; the conversation continuity of core/continuity.py
then continues the Kimi chat that holds it, on the account that owns it, whenever that chat is still kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from kimi_free_api.core.request import Message


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    # Who may continue it: a digest of the credentials that created it, so ids cannot cross between clients.
    owner: str
    messages: tuple[Message, ...]
    # The response object as the client received it (JSON).
    body: bytes = b""


class ResponseStore(Protocol):
    async def put(self, response: StoredResponse) -> None: ...

    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def delete(self, response_id: str) -> bool: ...


class InMemoryResponseStore:
    """The most recent `capacity` responses of this process; a restart forgets them."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._responses: OrderedDict[str, StoredResponse] = OrderedDict()

    async def put(self, response: StoredResponse) -> None:
        self._responses[response.id] = response
        self._responses.move_to_end(response.id)
        while len(self._responses) > self._capacity:
            self._responses.popitem(last=False)

    async def get(self, response_id: str) -> StoredResponse | None:
        found = self._responses.get(response_id)
        if found is not None:
            self._responses.move_to_end(response_id)
        return found

    async def delete(self, response_id: str) -> bool:
        return self._responses.pop(response_id, None) is not None
