"""`/_emulator/*`: the control surface for tests and demos (not part of Kimi). JSON in and out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kimi_free_api.emulator.config import InvalidSetting, require_optional_str
from kimi_free_api.emulator.errors import ConnectError, json_response
from kimi_free_api.emulator.faults import Fault
from kimi_free_api.emulator.runtime import Runtime, read_json_object

PREFIX = "/_emulator"
Call = Callable[[web.Request], Awaitable[Any]]


def _json_call(call: Call) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Answers the call's result as JSON, or 400 with an error object naming the bad field."""

    async def handle(request: web.Request) -> web.Response:
        try:
            result = await call(request)
        except ConnectError as exc:  # the body was not a JSON object
            param, code, message = None, "invalid_json", exc.message
        except InvalidSetting as exc:
            param, code, message = exc.param, "invalid_value", str(exc)
        else:
            return json_response(200, result)
        error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
        return json_response(400, {"error": error})

    return handle


class ControlRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def routes(self) -> list[web.RouteDef]:
        calls: list[tuple[str, str, Call]] = [
            ("POST", "accounts", self._create_account),
            ("GET", "state", self._state),
            ("GET", "requests", self._requests),
            ("GET", "config", self._config),
            ("POST", "config", self._configure),
            ("GET", "faults", self._faults),
            ("POST", "faults", self._add_fault),
            ("DELETE", "faults", self._clear_faults),
            ("POST", "reset", self._reset),
            ("GET", "script", self._script),
            ("POST", "script", self._add_script),
            ("DELETE", "script", self._clear_script),
        ]
        return [web.route(method, f"{PREFIX}/{path}", _json_call(call)) for method, path, call in calls]

    async def _create_account(self, request: web.Request) -> Any:
        name = (await read_json_object(request)).get("name")
        require_optional_str("name", name)
        return self._runtime.create_account(name).to_json()

    async def _state(self, request: web.Request) -> Any:
        return self._runtime.state.snapshot()

    async def _requests(self, request: web.Request) -> Any:
        return list(self._runtime.state.chat_requests)

    async def _config(self, request: web.Request) -> Any:
        return self._runtime.config.to_json()

    async def _configure(self, request: web.Request) -> Any:
        self._runtime.config = self._runtime.config.updated(await read_json_object(request))
        return self._runtime.config.to_json()

    async def _faults(self, request: web.Request) -> Any:
        return {"faults": self._runtime.faults.to_json()}

    async def _add_fault(self, request: web.Request) -> Any:
        self._runtime.faults.add(Fault.from_json(await read_json_object(request)))
        return await self._faults(request)

    async def _clear_faults(self, request: web.Request) -> Any:
        self._runtime.faults.clear()
        return await self._faults(request)

    async def _script(self, request: web.Request) -> Any:
        return {"answers": self._runtime.script.pending()}

    async def _add_script(self, request: web.Request) -> Any:
        answers = (await read_json_object(request)).get("answers")
        if not isinstance(answers, list):
            raise InvalidSetting("answers", "must be an array of strings")
        self._runtime.script.add(answers)
        return await self._script(request)

    async def _clear_script(self, request: web.Request) -> Any:
        self._runtime.script.clear()
        return await self._script(request)

    async def _reset(self, request: web.Request) -> Any:
        self._runtime.reset()
        return self._runtime.state.snapshot()
