"""Recognising that a request continues a conversation this gateway answered.

Ordinary clients resend the whole history every turn. Each history prefix that ends with one of our replies gets a
key: a hash chained message by message over a normalised form (role, name, text with outer whitespace trimmed,
tool calls, attachments), so any edit of an earlier message changes every later key. After answering, the key of
"history + our reply" is stored with the Kimi chat that holds it; a later request whose history has that key as a
prefix is continued in that chat with only the messages after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from kimi_free_api.core.request import Message


def _normal(message: Message) -> bytes:
    calls = [[c.name, c.arguments.strip()] for c in message.tool_calls]
    # An attachment counts by its content's hash: the same text with another file is another conversation.
    files = [
        [a.kind, hashlib.sha256(a.value.encode()).hexdigest(), a.filename or "", a.offset] for a in message.attachments
    ]
    return orjson.dumps([message.role, message.name or "", message.content.strip(), calls, message.tool_call_id, files])


def chained_keys(messages: Sequence[Message]) -> list[str]:
    """keys[i] identifies messages[: i + 1]."""
    keys: list[str] = []
    state = hashlib.sha256(b"kimi-free-api/conversation/v1")
    for message in messages:
        state.update(hashlib.sha256(_normal(message)).digest())
        keys.append(state.copy().hexdigest())
    return keys


@dataclass(frozen=True, slots=True)
class Resumption:
    """Where a request's history meets a stored conversation."""

    key: str
    # Messages after our last reply: what the continued Kimi chat has not seen.
    new_messages: tuple[Message, ...]


def resumption_points(messages: Sequence[Message]) -> list[Resumption]:
    """Candidate prefixes to look up, most recent first: each ends with an assistant reply and leaves new messages."""
    keys = chained_keys(messages)
    points: list[Resumption] = []
    for index in range(len(messages) - 2, -1, -1):
        if messages[index].role == "assistant":
            points.append(Resumption(keys[index], tuple(messages[index + 1 :])))
    return points


def reply_key(messages: Sequence[Message], reply: Message) -> str:
    return chained_keys([*messages, reply])[-1]
