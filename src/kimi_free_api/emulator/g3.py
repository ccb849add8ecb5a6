"""G3 routes: the `/apiv2` Connect-RPC services the gateway calls on www.kimi.com."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kimi_free_api.emulator import frames
from kimi_free_api.emulator.casing import pick
from kimi_free_api.emulator.errors import (
    CHAT_NOT_FOUND,
    STREAM_BUSY,
    ConnectError,
    invalid_argument,
    json_response,
)
from kimi_free_api.emulator.faults import IN_STREAM_KINDS
from kimi_free_api.emulator.files import attached_files
from kimi_free_api.emulator.framing import FramingError, parse_request
from kimi_free_api.emulator.ids import new_chat_id
from kimi_free_api.emulator.replay import Filler
from kimi_free_api.emulator.replay_stream import ReplayStream
from kimi_free_api.emulator.runtime import Runtime, bearer, read_json_object
from kimi_free_api.emulator.state import Chat
from kimi_free_api.emulator.stream import CONNECT_JSON, ChatStream
from kimi_free_api.emulator.turn import Turn, check_model_options

CHAT = "/apiv2/kimi.gateway.chat.v1.ChatService/Chat"
CANCEL_CHAT = "/apiv2/kimi.gateway.chat.v1.ChatService/CancelChat"
DELETE_CHAT = "/apiv2/kimi.chat.v1.ChatService/DeleteChat"
LIST_CHATS = "/apiv2/kimi.chat.v1.ChatService/ListChats"
AVAILABLE_MODELS = "/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels"
SUBSCRIPTION = "/apiv2/kimi.gateway.order.v1.SubscriptionService/GetSubscription"

Unary = Callable[[str, dict[str, Any]], dict[str, Any]]


class G3Routes:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(CHAT, self.chat),
            web.post(DELETE_CHAT, self._unary("delete", self._delete)),
            web.post(CANCEL_CHAT, self._unary("cancel", self._cancel)),
            web.post(LIST_CHATS, self._unary("list_chats", self._list_chats)),
            web.post(AVAILABLE_MODELS, self.models),
            web.post(SUBSCRIPTION, self._unary("subscription", self._subscription)),
        ]

    # The server-streaming Chat call

    async def chat(self, request: web.Request) -> web.StreamResponse:
        runtime = self._runtime
        runtime.state.count("chat")
        try:
            body = await self._envelope(request)
            user_id = runtime.user_for_access(bearer(request))
            fault = runtime.faults.take("chat", user_id)
            if fault is not None and fault.kind not in IN_STREAM_KINDS:
                raise fault.refusal()
            turn = Turn.parse(body)
            check_model_options(turn, runtime.config.models)
            files = attached_files(runtime, turn.file_ids, user_id)
            chat = self._lookup(turn.chat_id, user_id) if turn.chat_id else None
            if runtime.config.enforce_single_stream and runtime.state.active_streams.get(user_id):
                raise STREAM_BUSY.error()
        except ConnectError as exc:
            return exc.response()
        trace = runtime.replay()
        recorded = trace.pick(thinking=turn.thinking, search=turn.search, files=bool(files)) if trace else None
        if recorded is not None and recorded.refusal is not None:
            status, shape = recorded.refusal
            return json_response(status, Filler("", "", "").value(shape))
        if chat is None:
            chat = Chat(new_chat_id(runtime.config.chat_id_style), user_id)
            runtime.state.chats[chat.id] = chat
        options: dict[str, Any] = {"user_id": user_id, "chat": chat, "turn": turn, "fault": fault, "files": files}
        if recorded is not None:
            return await ReplayStream(request, runtime, recorded=recorded, **options).run()
        return await ChatStream(request, runtime, **options).run()

    async def _envelope(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != CONNECT_JSON:
            raise ConnectError(
                "invalid_argument", f"Content-Type must be {CONNECT_JSON}, got {request.content_type}", status=415
            )
        if request.headers.get("Connect-Protocol-Version") != "1":
            raise invalid_argument("the Connect-Protocol-Version: 1 header is required")
        try:
            body = parse_request(await request.read())
        except FramingError as exc:
            raise invalid_argument(str(exc)) from exc
        self._runtime.state.chat_requests.append(body)
        return body

    def _lookup(self, chat_id: str, user_id: str) -> Chat:
        chat = self._runtime.state.owned_chat(chat_id, user_id)
        if chat is None:
            raise CHAT_NOT_FOUND.error()
        return chat

    # Unary calls

    def _served_models(self, request: web.Request) -> list[dict[str, Any]]:
        """The bucket a caller gets: without `X-Msh-Version` Kimi serves the stale one (S4, 2026-08)."""
        config = self._runtime.config
        if config.catalog_shape == "legacy" or not request.headers.get("X-Msh-Version"):
            return config.legacy_models
        return config.models

    def _unary(self, endpoint: str, answer: Unary) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await self._answer(request, endpoint, answer)

        return handle

    async def _answer(self, request: web.Request, endpoint: str, answer: Unary) -> web.Response:
        runtime = self._runtime
        runtime.state.count(endpoint)
        try:
            user_id = runtime.user_for_access(bearer(request))
            runtime.check_fault(endpoint, user_id)
            result = answer(user_id, await read_json_object(request))
        except ConnectError as exc:
            return exc.response()
        return json_response(200, runtime.cased(result))

    async def models(self, request: web.Request) -> web.Response:
        served = self._served_models(request)
        return await self._answer(request, "models", lambda user_id, body: self._catalog_answer(served))

    def _owned_chat(self, user_id: str, body: dict[str, Any]) -> Chat:
        chat_id = pick(body, "chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            raise invalid_argument("`chat_id` is required")
        return self._lookup(chat_id, user_id)

    def _delete(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        chat = self._owned_chat(user_id, body)
        del self._runtime.state.chats[chat.id]
        self._runtime.state.deleted += 1
        return {}

    def _cancel(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        generation = self._owned_chat(user_id, body).generation
        if generation is not None and not generation.cancelled:
            generation.cancel()
            self._runtime.state.cancelled += 1
        return {}

    def _list_chats(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        owned = [chat for chat in self._runtime.state.chats.values() if chat.owner == user_id]
        owned.sort(key=lambda chat: chat.updated, reverse=True)
        return {
            "chats": [
                {
                    "id": chat.id,
                    "name": chat.name,
                    "messageContent": chat.messages[-1].content if chat.messages else "",
                    "createTime": frames.rfc3339(chat.created),
                    "updateTime": frames.rfc3339(chat.updated),
                }
                for chat in owned
            ]
        }

    def _catalog_answer(self, served: list[dict[str, Any]]) -> dict[str, Any]:
        trace = self._runtime.replay()
        recorded = trace.answers.get("GetAvailableModels") if trace else None
        if isinstance(recorded, dict):
            replayed: dict[str, Any] = Filler("", "", "").value(recorded)
            return replayed
        return _catalog(served)

    def _subscription(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        # The real fields are unknown; clients only use this call to check that a token works.
        return {"subscription": {"userId": user_id, "level": "LEVEL_FREE", "status": "SUBSCRIPTION_STATUS_ACTIVE"}}


def _catalog(models: list[dict[str, Any]]) -> dict[str, Any]:
    first = models[0]
    if "id" in first:
        default = {"scenario": first["scenario"], "model": first["id"]}
    else:
        default = {"scenario": first["scenario"], "thinking": bool(first.get("thinking"))}
    return {"availableModels": models, "defaultScenario": default}
