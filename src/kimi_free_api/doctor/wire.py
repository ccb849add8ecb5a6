"""The doctor's own client of Kimi's wire: plain HTTP calls and raw frames, each one recorded in the trace.

The doctor judges the protocol, not the adapter, so it does not go through `upstream/web.py`: what it sees is what
Kimi sent, before any translation. It borrows only the pieces that are wire facts themselves (envelopes, the
browser's headers, reading JWT claims).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from kimi_free_api.config import Settings
from kimi_free_api.core.errors import UpstreamError
from kimi_free_api.upstream import jwt
from kimi_free_api.upstream.connect import END_FLAGS, EnvelopeDecoder, encode_envelope
from kimi_free_api.upstream.headers import browser_headers, identity_headers
from kimi_free_api.upstream.proxies import unreachable, unreachable_reason
from kimi_free_api.upstream.trace import TraceRecorder

CHAT = "/apiv2/kimi.gateway.chat.v1.ChatService/Chat"
CANCEL_CHAT = "/apiv2/kimi.gateway.chat.v1.ChatService/CancelChat"
DELETE_CHAT = "/apiv2/kimi.chat.v1.ChatService/DeleteChat"
AVAILABLE_MODELS = "/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels"
UPLOAD = "/apiv2-files/file/upload"
PARSE_PROGRESS = "/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress"
CONNECT_REFRESH = "/api/account.gateway.v1.AuthService/RefreshToken"
LEGACY_REFRESH = "/api/auth/token/refresh"
# Every 2026 client sends a web-client version; without one the catalog is said to come from a stale bucket
# (evidence row 15). 2.0.0 is the value the two newest named clients send.
MSH_VERSION = "2.0.0"
# A doctor run must end even when a stream never does.
STREAM_LIMIT_S = 90.0

# Sees each frame as it arrives; answering False stops reading the stream.
FrameHook = Callable[[dict[str, Any]], Awaitable[bool]]


def refresh_url(settings: Settings) -> str:
    """Where the web app refreshes today: the auth host beside the site (www.kimi.com -> auth.kimi.com), or the
    site itself for any other origin (the emulator serves both on one)."""
    if settings.kimi_refresh_url:
        return settings.kimi_refresh_url
    parts = urlsplit(settings.kimi_base_url.rstrip("/"))
    host = parts.netloc
    if host.startswith("www.kimi."):
        host = "auth." + host.removeprefix("www.")
    return urlunsplit((parts.scheme, host, CONNECT_REFRESH, "", ""))


def _no_answer() -> tuple[type[Exception], ...]:
    """What a call raises when Kimi could not be reached or did not answer in time (the gateway's list, so a SOCKS
    proxy's failures count too)."""
    return (*unreachable(), TimeoutError)


@dataclass
class Reply:
    """A unary answer: its HTTP status and decoded JSON body (None when it was not JSON), or a transport error."""

    status: int
    body: Any = None
    failure: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and isinstance(self.body, dict)

    def field(self, *names: str) -> Any:
        if not isinstance(self.body, dict):
            return None
        for name in names:
            if name in self.body:
                return self.body[name]
        return None


@dataclass
class Stream:
    """One Chat stream as it arrived: its frames (data envelopes), its end envelopes and anything undecodable."""

    status: int
    frames: list[dict[str, Any]] = field(default_factory=list)
    ends: list[tuple[int, Any]] = field(default_factory=list)
    not_json: int = 0
    # The reader stopped before the stream ended (the frame hook asked it to).
    abandoned: bool = False
    body: Any = None
    failure: str = ""

    @property
    def opened(self) -> bool:
        return self.status == 200 and not self.failure


class Wire:
    def __init__(self, session: aiohttp.ClientSession, settings: Settings, trace: TraceRecorder | None) -> None:
        self._session = session
        self._settings = settings
        self._base = settings.kimi_base_url.rstrip("/")
        self._trace = trace
        self._timeout = aiohttp.ClientTimeout(total=settings.connect_timeout_s)
        self._headers = self._browser({})

    def _browser(self, claims: dict[str, Any]) -> dict[str, str]:
        headers = browser_headers(self._base, self._settings.kimi_language, self._settings.kimi_timezone)
        headers.update(identity_headers(claims))
        headers["X-Msh-Version"] = MSH_VERSION
        return headers

    def use(self, access_token: str) -> None:
        """Calls from now on carry this access token, and the identity headers its claims name."""
        self._headers = self._browser(jwt.claims(access_token))
        self._headers["Authorization"] = f"Bearer {access_token}"

    def begin(self, step: str) -> None:
        if self._trace is not None:
            self._trace.begin(step)

    def _note(self, kind: str, value: Any, **labels: str | int) -> None:
        if self._trace is not None:
            self._trace.note(kind, value, **labels)

    async def _send(self, name: str, request: Awaitable[aiohttp.ClientResponse]) -> Reply:
        try:
            async with await request as response:
                raw = await response.read()
                status = response.status
        except _no_answer() as exc:
            self._note("answer", None, call=name, status=0)
            return Reply(0, failure=f"no answer ({unreachable_reason(exc)})")
        # An empty unary body means {} in Connect's JSON codec.
        body = _json(raw) if raw.strip() else {}
        self._note("answer", body, call=name, status=status)
        return Reply(status, body)

    async def refresh(self, refresh_token: str) -> Reply:
        """The 2026 web app's refresh: a Connect call with the token in the body and no Authorization."""
        body = {"refresh_token": refresh_token}
        self._note("request", body, call="RefreshToken")
        headers = self._browser(jwt.claims(refresh_token))
        headers.update({"Content-Type": "application/json", "Connect-Protocol-Version": "1"})
        request = self._session.post(
            refresh_url(self._settings), data=orjson.dumps(body), headers=headers, timeout=self._timeout
        )
        return await self._send("RefreshToken", request)

    async def legacy_refresh(self, refresh_token: str) -> Reply:
        """The older REST refresh, with the refresh token as bearer."""
        headers = self._browser(jwt.claims(refresh_token))
        headers["Authorization"] = f"Bearer {refresh_token}"
        request = self._session.get(self._base + LEGACY_REFRESH, headers=headers, timeout=self._timeout)
        return await self._send("token/refresh", request)

    async def unary(self, path: str, body: dict[str, Any]) -> Reply:
        name = path.rsplit("/", 1)[-1]
        self._note("request", body, call=name)
        headers = {**self._headers, "Content-Type": "application/json", "Connect-Protocol-Version": "1"}
        request = self._session.post(self._base + path, data=orjson.dumps(body), headers=headers, timeout=self._timeout)
        return await self._send(name, request)

    async def upload(self, name: str, data: bytes, content_type: str) -> Reply:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type=content_type)
        self._note("request", {"file": {"name": name, "size": len(data)}}, call="upload")
        request = self._session.post(self._base + UPLOAD, data=form, headers=self._headers, timeout=self._timeout)
        return await self._send("upload", request)

    async def chat(self, payload: dict[str, Any], on_frame: FrameHook | None = None) -> Stream:
        """Reads the whole stream (or until STREAM_LIMIT_S), handing each frame to `on_frame` as it arrives."""
        self._note("request", payload, call="Chat")
        headers = {**self._headers, "Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"}
        limits = aiohttp.ClientTimeout(total=STREAM_LIMIT_S, sock_connect=self._settings.connect_timeout_s)
        body = encode_envelope(orjson.dumps(payload))
        try:
            async with self._session.post(self._base + CHAT, data=body, headers=headers, timeout=limits) as response:
                if response.status != 200:
                    error = await self._send_error(response)
                    return Stream(response.status, body=error)
                stream = Stream(200)
                decoder = EnvelopeDecoder()
                async for data in response.content.iter_any():
                    for flags, message in decoder.feed(data):
                        if not await self._envelope(stream, flags, message, on_frame):
                            stream.abandoned = True
                            return stream
                return stream
        except _no_answer() as exc:
            self._note("answer", None, call="Chat", status=0)
            return Stream(0, failure=f"the stream broke off ({unreachable_reason(exc)})")
        except (UpstreamError, OSError, EOFError) as exc:  # an envelope the decoder refuses (oversized, bad gzip)
            self._note("answer", None, call="Chat", status=0)
            return Stream(0, failure=f"undecodable stream ({type(exc).__name__})")

    async def _send_error(self, response: aiohttp.ClientResponse) -> Any:
        body = _json(await response.read())
        self._note("answer", body, call="Chat", status=response.status)
        return body

    async def _envelope(self, stream: Stream, flags: int, message: bytes, on_frame: FrameHook | None) -> bool:
        if self._trace is not None:
            self._trace.envelope(flags, message)
        value = _json(message)
        if flags & END_FLAGS:
            stream.ends.append((flags, value))
            return True
        if not isinstance(value, dict):
            stream.not_json += 1
            return True
        stream.frames.append(value)
        return on_frame is None or await on_frame(value)


def _json(raw: bytes) -> Any:
    """The decoded JSON, or None for anything else (an empty or HTML body, a gRPC-web trailer)."""
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
