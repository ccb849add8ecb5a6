"""The doctor's live script: the few calls that exercise every protocol assumption, and what each one showed.

Token exchange, catalog, a plain answer, a thinking answer, a searched answer, a tiny upload answered about, a
cancelled answer, and the deletion of every chat the script opened. Nothing is judged here (that is `checks.py`);
a step that cannot run leaves its observation empty, which the checks report as "could not be tested".
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from kimi_free_api.config import Settings
from kimi_free_api.core.credentials import credential_id
from kimi_free_api.core.ports import CachedAccess, TokenCache
from kimi_free_api.doctor.wire import (
    AVAILABLE_MODELS,
    CANCEL_CHAT,
    DELETE_CHAT,
    PARSE_PROGRESS,
    Reply,
    Stream,
    Wire,
)
from kimi_free_api.upstream import jwt

PROMPTS = {
    "plain": "Reply with one short friendly sentence.",
    "thinking": "Think briefly, then answer: what is 17 + 25?",
    "search": "Search the web: what is the tallest building in the world?",
    "upload": "What does the attached file say? Answer in one sentence.",
    "cancel": "Write a long essay, at least two thousand words, about the history of tea.",
}
UPLOAD_NAME = "doctor.txt"
UPLOAD_BYTES = b"kimi-free-api doctor: a tiny file to check uploads.\n"
# How long the uploaded file may take to be parsed, and how long a cancelled answer may take to stop.
PARSE_WAIT_S = 30.0
CANCEL_WAIT_S = 15.0
_POLL_S = 0.25


@dataclass
class Observations:
    token_kind: str = ""  # "refresh" or "access"
    refresh: Reply | None = None
    legacy_refresh: Reply | None = None
    sent_refresh_token: str = ""
    new_refresh_token: str = ""
    access_claims: dict[str, Any] = field(default_factory=dict)
    # Why nothing past the token exchange could run, when that is so.
    fatal: str = ""
    catalog: Reply | None = None
    streams: dict[str, Stream] = field(default_factory=dict)
    upload: Reply | None = None
    parse_statuses: list[str] = field(default_factory=list)
    cancel: Reply | None = None
    # Seconds from the CancelChat answer to the end of the stream; None when it did not end in time.
    cancel_to_end_s: float | None = None
    cancel_sent: bool = False
    deletes: list[Reply] = field(default_factory=list)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def chat_payload(settings: Settings, prompt: str, *, thinking: bool = False, search: bool = False) -> dict[str, Any]:
    """The smallest Chat request the 2026 clients agree on (evidence rows 29-33)."""
    scenario = settings.kimi_scenario
    return {
        "scenario": scenario,
        "tools": [{"type": "TOOL_TYPE_SEARCH", "search": {}}] if search else [],
        "message": {"role": "user", "blocks": [{"message_id": "", "text": {"content": prompt}}], "scenario": scenario},
        "options": {"thinking": thinking},
    }


def chat_id(stream: Stream) -> str:
    for frame in stream.frames:
        chat = frame.get("chat")
        if isinstance(chat, dict) and _text(chat.get("id")):
            return _text(chat.get("id"))
    return ""


def assistant_id(stream: Stream) -> str:
    for frame in stream.frames:
        message = frame.get("message")
        if isinstance(message, dict) and message.get("role") == "assistant" and _text(message.get("id")):
            return _text(message.get("id"))
    return ""


class Script:
    def __init__(self, wire: Wire, settings: Settings, tokens: TokenCache | None = None) -> None:
        """`tokens` is the gateway's token cache: the newest refresh token of a rotated credential is read from it
        and written back to it, so the doctor and the gateway stay one holder (see README, one holder per account).
        """
        self._wire = wire
        self._settings = settings
        self._tokens = tokens
        self.seen = Observations()

    async def run(self, token: str) -> Observations:
        if not await self._exchange(token):
            return self.seen
        try:
            if not await self._catalog():
                return self.seen
            for step in ("plain", "thinking", "search"):
                await self._answer(step, thinking=step == "thinking", search=step == "search")
            await self._upload()
            await self._cancel()
        finally:
            await self._delete()
        return self.seen

    async def _exchange(self, token: str) -> bool:
        seen = self.seen
        self._wire.begin("exchange")
        claims = jwt.claims(token)
        if jwt.is_access_token(claims):
            seen.token_kind, seen.access_claims = "access", claims
            self._wire.use(token)
            return True
        cached = await self._tokens.load(credential_id(token)) if self._tokens is not None else None
        newest = cached.refresh_token if cached is not None and cached.refresh_token else token
        seen.token_kind, seen.sent_refresh_token = "refresh", newest
        seen.refresh = await self._wire.refresh(newest)
        reply = seen.refresh
        if not reply.ok:
            # The 2026 call failed: the older one may still give an access token for the rest of the script.
            seen.legacy_refresh = reply = await self._wire.legacy_refresh(newest)
        access = _text(reply.field("accessToken", "access_token"))
        if not reply.ok or not access:
            seen.fatal = "the token was not accepted" if reply.status in (401, 403) else "no token exchange worked"
            return False
        seen.new_refresh_token = _text(reply.field("refreshToken", "refresh_token"))
        seen.access_claims = jwt.claims(access)
        self._wire.use(access)
        if self._tokens is not None:
            # "" while the token given is still the newest, as the gateway's own token cache keeps it.
            latest = seen.new_refresh_token or newest
            expires = jwt.expiry(seen.access_claims) or time.time() + self._settings.token_default_ttl_s
            entry = CachedAccess(access, expires, latest if latest != token else "")
            await self._tokens.save(credential_id(token), entry)
        return True

    async def _catalog(self) -> bool:
        """The first call with the access token: whether the rest of the script can run at all."""
        self._wire.begin("catalog")
        reply = self.seen.catalog = await self._wire.unary(AVAILABLE_MODELS, {})
        if reply.failure:
            self.seen.fatal = f"Kimi could not be reached: {reply.failure}"
        elif reply.status in (401, 403):
            self.seen.fatal = "the token was not accepted"
        return not self.seen.fatal

    async def _answer(self, step: str, **switches: bool) -> None:
        self._wire.begin(step)
        self.seen.streams[step] = await self._wire.chat(chat_payload(self._settings, PROMPTS[step], **switches))

    async def _upload(self) -> None:
        wire, seen = self._wire, self.seen
        wire.begin("upload")
        seen.upload = await wire.upload(UPLOAD_NAME, UPLOAD_BYTES, "text/plain")
        file = seen.upload.field("file")
        file_id = _text(file.get("id")) if isinstance(file, dict) else ""
        if not file_id:
            return
        deadline = asyncio.get_running_loop().time() + PARSE_WAIT_S
        status = ""
        while status != "PROCESS_STATUS_SUCCESS" and asyncio.get_running_loop().time() < deadline:
            progress = await wire.unary(PARSE_PROGRESS, {"file_ids": [file_id]})
            entries = progress.field("progresses")
            entry = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
            status = _text(entry.get("status"))
            if not seen.parse_statuses or seen.parse_statuses[-1] != status:
                seen.parse_statuses.append(status)
            if "FAIL" in status or not progress.ok:
                return
            await asyncio.sleep(_POLL_S)
        if status != "PROCESS_STATUS_SUCCESS":
            return
        payload = chat_payload(self._settings, PROMPTS["upload"])
        payload["message"]["blocks"].append(
            {"message_id": "", "file": {"id": file_id, "status": "PROCESS_STATUS_SUCCESS"}}
        )
        seen.streams["upload"] = await wire.chat(payload)

    async def _cancel(self) -> None:
        wire, seen = self._wire, self.seen
        wire.begin("cancel")
        frames: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        cancelled_at = 0.0

        async def cancel_on_first_text(frame: dict[str, Any]) -> bool:
            nonlocal cancelled_at
            frames.append(frame)
            if seen.cancel_sent:
                return loop.time() - cancelled_at <= CANCEL_WAIT_S
            if frame.get("op") == "append":
                partial = Stream(200, frames=frames)
                seen.cancel_sent = True
                ids = {"chat_id": chat_id(partial), "message_id": assistant_id(partial)}
                seen.cancel = await wire.unary(CANCEL_CHAT, ids)
                cancelled_at = loop.time()
            return True

        stream = await wire.chat(chat_payload(self._settings, PROMPTS["cancel"]), cancel_on_first_text)
        seen.streams["cancel"] = stream
        if seen.cancel_sent and stream.opened and not stream.abandoned:
            seen.cancel_to_end_s = loop.time() - cancelled_at

    async def _delete(self) -> None:
        self._wire.begin("delete")
        for stream in self.seen.streams.values():
            opened = chat_id(stream)
            if opened:
                self.seen.deletes.append(await self._wire.unary(DELETE_CHAT, {"chat_id": opened}))
