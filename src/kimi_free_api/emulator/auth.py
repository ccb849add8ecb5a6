"""Token refresh: the REST call on www.kimi.com and the Connect call of the auth.kimi.ai variant."""

from __future__ import annotations

from aiohttp import web

from kimi_free_api.emulator.casing import pick
from kimi_free_api.emulator.errors import UNAUTHENTICATED, ConnectError, invalid_argument, json_response
from kimi_free_api.emulator.runtime import Runtime, bearer, read_json_object

REST_REFRESH = "/api/auth/token/refresh"
CONNECT_REFRESH = "/api/account.gateway.v1.AuthService/RefreshToken"


class AuthRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def routes(self) -> list[web.RouteDef]:
        return [web.get(REST_REFRESH, self.rest_refresh), web.post(CONNECT_REFRESH, self.connect_refresh)]

    def _exchange(self, refresh_token: str) -> tuple[str, str]:
        """A new access token, and the refresh token to use next time.

        By default the refresh token stays valid, since kimi-free-api's clients reuse it (protocol document §1.2);
        with `rotate_refresh_tokens` each exchange answers a new one and revokes the one used.
        """
        runtime = self._runtime
        user_id = runtime.user_for_refresh(refresh_token)
        if user_id is None or refresh_token in runtime.revoked:
            raise UNAUTHENTICATED.error("the refresh token is invalid")
        runtime.check_fault("refresh", user_id)
        runtime.state.refreshes += 1
        if runtime.config.rotate_refresh_tokens:
            runtime.revoked.add(refresh_token)
            refresh_token = runtime.tokens.refresh_token(user_id)
        return runtime.access_token(user_id), refresh_token

    async def rest_refresh(self, request: web.Request) -> web.Response:
        self._runtime.state.count("refresh")
        token = bearer(request)
        try:
            access_token, refresh_token = self._exchange(token)
        except ConnectError as exc:
            return exc.legacy_response()
        return json_response(200, {"access_token": access_token, "refresh_token": refresh_token})

    async def connect_refresh(self, request: web.Request) -> web.Response:
        self._runtime.state.count("refresh")
        try:
            token = pick(await read_json_object(request), "refresh_token")
            if not isinstance(token, str):
                raise invalid_argument("`refresh_token` is required")
            access_token, refresh_token = self._exchange(token)
        except ConnectError as exc:
            return exc.response()
        return json_response(200, {"accessToken": access_token, "refreshToken": refresh_token})
