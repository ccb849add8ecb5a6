"""Ids in Kimi's formats.

Chats get UUID-style ids (36 characters, 8-4-4-4-12 hex), as Kimi mints them since late 2025. The older
20-character xid form (`[0-9a-v]`, the base32hex text of 12 bytes, laid out like `rs/xid`) is still used for the
other ids, and for chats with `chat_id_style="xid"`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import secrets
import time
import uuid

_MACHINE = secrets.token_bytes(3)
_PROCESS = (os.getpid() & 0xFFFF).to_bytes(2, "big")
_COUNTER = itertools.count(secrets.randbelow(1 << 24))
CHAT_ID_STYLES = ("uuid", "xid")


def _encode(raw: bytes) -> str:
    return base64.b32hexencode(raw).decode("ascii").lower()[:20]


def new_id() -> str:
    """A fresh id: a 4-byte timestamp, machine and process bytes, and a 3-byte counter, as in `rs/xid`."""
    stamp = int(time.time()).to_bytes(4, "big")
    count = (next(_COUNTER) & 0xFFFFFF).to_bytes(3, "big")
    return _encode(stamp + _MACHINE + _PROCESS + count)


def new_uuid_id() -> str:
    """11 hex digits of Unix milliseconds, then random ones: captured ids start with the time they were made."""
    value = (time.time_ns() // 1_000_000) % (1 << 44) << 84 | secrets.randbits(84)
    return str(uuid.UUID(int=value))


def new_chat_id(style: str) -> str:
    return new_uuid_id() if style == "uuid" else new_id()


def stable_id(text: str) -> str:
    """The same id for the same text, e.g. a user id for an arbitrary bearer string in open-accounts mode."""
    return _encode(hashlib.sha256(text.encode()).digest()[:12])


def digits(text: str, prefix: str, length: int) -> str:
    """A stable decimal string of `length` characters starting with `prefix` (Kimi's device and session ids)."""
    number = int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
    return (prefix + str(number))[:length]
