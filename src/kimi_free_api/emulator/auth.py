"""Token refresh: the Connect RefreshToken call the web app makes on its auth host (auth.kimi.com, or auth.kimi.ai
for www.kimi.ai; here the emulator's own origin), and the legacy REST GET on www.kimi.com."""

from __future__ import annotations

from aiohttp import web

from kimi_free_api.emulator.casing import pick
from kimi_free_api.emulator.errors import UNAUTHENTICATED, ConnectError, Failure, invalid_argument, json_response
from kimi_free_api.emulator.runtime import Runtime, bearer, read_json_object

REST_REFRESH = "/api/auth/token/refresh"
CONNECT_REFRESH = "/api/account.gateway.v1.AuthService/RefreshToken"
_RETIRED = Failure("not_found", "404 page not found")


class AuthRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def routes(self) -> list[web.RouteDef]:
        return [web.get(REST_REFRESH, self.rest_refresh), web.post(CONNECT_REFRESH, self.connect_refresh)]

    def _exchange(self, refresh_token: str) -> tuple[str, str]:
        """A new access token, and the refresh token to use next time.

        With `rotate_refresh_tokens` (the default, as captured in 2026) each exchange answers a new refresh token and
        revokes the one used; without it the refresh token stays valid.
        """
        runtime = self._runtime
        user_id = runtime.user_for_refresh(refresh_token)
        if user_id is None or refresh_token in runtime.revoked:
            raise UNAUTHENTICATED.error("the refresh token is invalid")
        runtime.check_fault("refresh", user_id)
        runtime.state.refreshes += 1
        # A foreign string of open-accounts mode is nobody's refresh token to rotate: it stays the user's key.
        if runtime.config.rotate_refresh_tokens and runtime.tokens.claims(refresh_token) is not None:
            runtime.revoked.add(refresh_token)
            refresh_token = runtime.tokens.refresh_token(user_id)
        return runtime.access_token(user_id), refresh_token

    def _served(self, style: str) -> None:
        if self._runtime.config.refresh_endpoints not in ("both", style):
            raise _RETIRED.error()

    async def rest_refresh(self, request: web.Request) -> web.Response:
        self._runtime.state.count("refresh")
        token = bearer(request)
        try:
            self._served("rest")
            access_token, refresh_token = self._exchange(token)
        except ConnectError as exc:
            return exc.legacy_response()
        return json_response(200, {"access_token": access_token, "refresh_token": refresh_token})

    async def connect_refresh(self, request: web.Request) -> web.Response:
        self._runtime.state.count("refresh")
        try:
            self._served("connect")
            token = pick(await read_json_object(request), "refresh_token")
            if not isinstance(token, str):
                raise invalid_argument("`refresh_token` is required")
            access_token, refresh_token = self._exchange(token)
        except ConnectError as exc:
            return exc.response()
        return json_response(200, {"accessToken": access_token, "refreshToken": refresh_token})
