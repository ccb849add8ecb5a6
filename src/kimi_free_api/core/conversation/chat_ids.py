"""Kimi's chat ids, in the two shapes seen on the wire, wherever a client hands one back.

Until late 2025 chats had 20-character xid-style ids (base32hex); since then Kimi mints 36-character UUID-style
ids (8-4-4-4-12 hex). Both keep working: old chats still exist, and a client may hold either.
"""

from __future__ import annotations

import re

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_XID = r"[0-9a-zA-Z]{20}"
# The seed accepted an id embedded in a longer string (e.g. "conv-<id>"); an id is never part of a longer word.
_EMBEDDED = re.compile(rf"(?<![0-9A-Za-z])(?:{_UUID}|{_XID})(?![0-9A-Za-z])")
# `conversation_id` values that keep the chat without continuing one (the seed's convention).
_KEEP_ONLY = frozenset({"", "none"})


def chat_id_in(conversation_id: str | None) -> str:
    """The Kimi chat id a `conversation_id` carries, or "" when it carries none."""
    if not conversation_id:
        return ""
    match = _EMBEDDED.search(conversation_id)
    return match.group(0) if match else ""


def asks_new_chat(conversation_id: str) -> bool:
    """`"none"` (or empty) keeps a new chat instead of naming one to continue."""
    return conversation_id.strip().lower() in _KEEP_ONLY
