"""The G3 adapter: Kimi's current web protocol (www.kimi.com/apiv2, Connect-RPC with the JSON codec)."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson

from kimi_free_api.config import Settings
from kimi_free_api.core.access.plan import AccountPlan
from kimi_free_api.core.attachments.files import LoadedFile
from kimi_free_api.core.errors import NotFound, Unauthorized, UpstreamError, UpstreamTimeout
from kimi_free_api.core.models.modelspec import CatalogModel
from kimi_free_api.core.ports import TokenCache, UpstreamChat
from kimi_free_api.upstream import jwt
from kimi_free_api.upstream.auth import Access, TokenResolver
from kimi_free_api.upstream.catalog import chat_options, parse_catalog
from kimi_free_api.upstream.connect import encode_envelope
from kimi_free_api.upstream.errors import classify_response
from kimi_free_api.upstream.files import KimiFiles, refer_to_files
from kimi_free_api.upstream.frames import FrameTranslator
from kimi_free_api.upstream.plan import SUBSCRIPTION_STATS, parse_plan
from kimi_free_api.upstream.proxies import ProxyRoutes, unreachable, unreachable_reason
from kimi_free_api.upstream.stream import WebChatStream
from kimi_free_api.upstream.trace import TraceRecorder
from kimi_free_api.upstream.watchdog import IdleWatchdog

log = logging.getLogger(__name__)

CHAT = "/apiv2/kimi.gateway.chat.v1.ChatService/Chat"
CANCEL_CHAT = "/apiv2/kimi.gateway.chat.v1.ChatService/CancelChat"
DELETE_CHAT = "/apiv2/kimi.chat.v1.ChatService/DeleteChat"
AVAILABLE_MODELS = "/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels"
SUBSCRIPTION = "/apiv2/kimi.gateway.order.v1.SubscriptionService/GetSubscription"
# A request body: JSON or an envelope, or a multipart form for file uploads.
Body = bytes | aiohttp.MultipartWriter


def chat_payload(request: UpstreamChat, settings: Settings) -> dict[str, Any]:
    """The Chat request body, in the field names the web client sends (protocol document §4)."""
    scenario = request.scenario or (settings.kimi_research_scenario if request.research else settings.kimi_scenario)
    payload: dict[str, Any] = {
        "scenario": scenario,
        "tools": [{"type": "TOOL_TYPE_SEARCH", "search": {}}] if request.search else [],
        "message": {
            "role": "user",
            "blocks": [{"message_id": "", "text": {"content": request.prompt}}],
            "scenario": scenario,
        },
        "options": chat_options(request),
    }
    if request.chat_id:
        payload["chat_id"] = request.chat_id
        if request.parent_id:
            payload["message"]["parent_id"] = request.parent_id
    if request.agent_id:
        payload["kimiplusId"] = request.agent_id
    elif request.research and settings.kimi_research_agent:
        research_agent(payload, settings.kimi_research_agent)
    if request.agent_mode:
        payload["agentMode"] = request.agent_mode
    refer_to_files(payload, request.files, settings.kimi_file_ref_style)
    return payload


def research_agent(payload: dict[str, Any], agent: str) -> None:
    """Deep Research as the web app starts it: an agent that searches and may stop to ask the user (P6)."""
    payload["kimiplus_id"] = agent
    payload["tools"] = [{"type": "TOOL_TYPE_SEARCH", "search": {}}, {"type": "TOOL_TYPE_ASK_USER"}]
    payload["options"]["enable_plugin"] = True


class KimiWebAdapter:
    def __init__(self, routes: ProxyRoutes, settings: Settings, *, token_cache: TokenCache | None = None) -> None:
        """`routes` gives each account's sessions (its own proxy or the global one), Kimi's and the cookie-less
        one for uploads to object storage, which must never see Kimi's credentials."""
        self._routes = routes
        self._settings = settings
        self._base = settings.kimi_base_url.rstrip("/")
        self.auth = TokenResolver(routes.kimi, settings, token_cache)
        # sock_read bounds the wait for Kimi's first bytes; after that the watchdog takes over.
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.connect_timeout_s, sock_read=settings.stream_idle_timeout_s
        )
        self.watchdog = IdleWatchdog(settings.stream_idle_timeout_s)
        self._unary_timeout = aiohttp.ClientTimeout(total=settings.connect_timeout_s)
        self.files = KimiFiles(self._unary, self._post_with_refresh, routes.storage, settings)
        self._trace = TraceRecorder(settings.kimi_trace_file) if settings.kimi_trace_file else None

    async def _post(
        self,
        access: Access,
        path: str,
        body: Body,
        content_type: str,
        limits: aiohttp.ClientTimeout,
        *,
        session: aiohttp.ClientSession,
    ) -> aiohttp.ClientResponse:
        headers = dict(access.headers)
        headers["Content-Type"] = content_type
        headers["Connect-Protocol-Version"] = "1"
        try:
            return await session.post(self._base + path, data=body, headers=headers, timeout=limits)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"Kimi did not answer in time ({path.rsplit('/', 1)[-1]})") from exc
        except unreachable() as exc:
            raise UpstreamError(f"Could not reach Kimi: {unreachable_reason(exc)}") from exc

    async def _post_with_refresh(
        self, token: str, path: str, body: Body, content_type: str, limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """On 401 a refreshable token is exchanged again, once: the cached access token may have been revoked."""
        session = self._routes.kimi(token)
        access = await self.auth.access(token)
        response = await self._post(access, path, body, content_type, limits, session=session)
        if response.status == 401 and access.refreshable:
            response.release()
            self.auth.invalidate(token, access.token)
            access = await self.auth.access(token)
            response = await self._post(access, path, body, content_type, limits, session=session)
        if response.status != 200:
            async with response:
                raise classify_response(response.status, await response.read(), response.headers.get("Retry-After"))
        return response

    async def _unary(self, token: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self._post_with_refresh(
            token, path, orjson.dumps(payload), "application/json", self._unary_timeout
        )
        async with response:
            try:
                data = orjson.loads(await response.read())
            except (orjson.JSONDecodeError, aiohttp.ClientError, TimeoutError) as exc:
                raise UpstreamError(f"Kimi answered {path.rsplit('/', 1)[-1]} with an unreadable body") from exc
        return data if isinstance(data, dict) else {}

    async def chat(self, token: str, request: UpstreamChat) -> WebChatStream:
        body = encode_envelope(orjson.dumps(chat_payload(request, self._settings)))
        response = await self._post_with_refresh(token, CHAT, body, "application/connect+json", self._stream_timeout)
        connection = response.connection
        if connection is not None and connection.protocol is not None:
            # From here the idle watchdog guards the stream; a per-read timer would be re-armed on every frame.
            connection.protocol.read_timeout = None
        translator = FrameTranslator(
            cumulative=self._settings.kimi_append_mode == "cumulative",
            strip_markers=self._settings.strip_citation_markers,
            footnotes=self._settings.citation_footnotes,
            overload_retry_after_s=self._settings.overload_retry_after_s,
        )
        observer = self._trace.envelope if self._trace is not None else None
        return WebChatStream(
            response, translator, self.watchdog, self._settings.relay_coalesce_ms / 1000, observer=observer
        )

    async def upload_file(self, token: str, file: LoadedFile) -> str:
        return await self.files.upload(token, file)

    async def cancel_chat(self, token: str, chat_id: str, message_id: str) -> None:
        payload = {"chat_id": chat_id, "message_id": message_id} if message_id else {"chat_id": chat_id}
        await self._unary(token, CANCEL_CHAT, payload)

    async def delete_chat(self, token: str, chat_id: str) -> None:
        try:
            await self._unary(token, DELETE_CHAT, {"chat_id": chat_id})
        except NotFound:
            log.info("chat %s was already gone upstream", chat_id)

    async def available_models(self, token: str) -> list[CatalogModel]:
        return parse_catalog(await self._unary(token, AVAILABLE_MODELS, {}))

    async def keep_fresh(self, token: str, within_s: float) -> None:
        await self.auth.access(token, margin_s=within_s)

    async def renew_access(self, token: str, rejected_since: float) -> bool:
        return await self.auth.renew(token, rejected_since)

    async def plan(self, token: str) -> AccountPlan:
        """The account's plan (GetSubscription) and usage windows (GetSubscriptionStats, when Kimi answers it)."""
        subscription = await self._unary(token, SUBSCRIPTION, {})
        try:
            stats: dict[str, Any] | None = await self._unary(token, SUBSCRIPTION_STATS, {})
        except (NotFound, UpstreamError) as exc:
            log.info("no usage windows for this account: %s", exc.message)
            stats = None
        return parse_plan(subscription, stats)

    async def check_token(self, token: str) -> bool:
        """Live means Kimi accepts it now: a refresh token must exchange, an access token must open a call."""
        if not jwt.is_access_token(jwt.claims(token)):
            return await self.auth.check(token)
        try:
            await self._unary(token, SUBSCRIPTION, {})
        except Unauthorized:
            return False
        return True
