"""Everything the route modules share: settings, state, faults and the token mint."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.emulator.casing import snake_keys
from kimi_free_api.emulator.config import EmulatorConfig
from kimi_free_api.emulator.errors import UNAUTHENTICATED, invalid_argument
from kimi_free_api.emulator.faults import FaultBook
from kimi_free_api.emulator.ids import new_id, stable_id
from kimi_free_api.emulator.replay import Trace, load_trace
from kimi_free_api.emulator.script import AnswerScript
from kimi_free_api.emulator.state import Account, State
from kimi_free_api.emulator.tokens import TokenMint, is_expired


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """A unary call's JSON body; an empty body counts as `{}`."""
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise invalid_argument(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise invalid_argument("the body must be a JSON object")
    return body


def bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Runtime:
    def __init__(self, config: EmulatorConfig) -> None:
        self.defaults = config
        self.config = config
        self.state = State()
        self.faults = FaultBook()
        self.script = AnswerScript()
        self.tokens = TokenMint()
        self.revoked: set[str] = set()  # refresh tokens replaced by rotation
        # Access tokens minted before a user's current generation are rejected, though not expired.
        self.generations: dict[str, int] = {}
        self.storage_key = secrets.token_bytes(32)  # signs presigned upload URLs
        self.closing = asyncio.Event()  # set by Emulator.stop so held-open streams let go
        self._replay: tuple[str, Trace] | None = None

    def reset(self) -> None:
        self.config = self.defaults
        self.state.clear()
        self.faults.clear()
        self.script.clear()

    def replay(self) -> Trace | None:
        """The trace being replayed (`config.replay`), read once per path."""
        path = self.config.replay
        if not path:
            return None
        if self._replay is None or self._replay[0] != path:
            self._replay = (path, load_trace(path))
        return self._replay[1]

    def create_account(self, name: str | None = None) -> Account:
        user_id = new_id()
        account = Account(
            user_id=user_id,
            refresh_token=self.tokens.refresh_token(user_id),
            access_token=self.access_token(user_id),
            name=name,
        )
        self.state.accounts[user_id] = account
        return account

    def access_token(self, user_id: str) -> str:
        return self.tokens.access_token(user_id, self.config.access_token_ttl_s, self.generations.get(user_id, 0))

    def revoke_access_tokens(self, user_id: str) -> None:
        self.generations[user_id] = self.generations.get(user_id, 0) + 1

    def _owner(self, token: str, typ: str) -> str | None:
        """The user a token of type `typ` stands for; in open-accounts mode any foreign string is a user."""
        if not token:
            return None
        claims: dict[str, Any] | None = self.tokens.claims(token)
        if claims is None:
            return stable_id(token) if self.config.open_accounts else None
        user_id = claims.get("sub")
        known = user_id in self.state.accounts or self.config.open_accounts
        if claims.get("typ") != typ or is_expired(claims) or not known or not isinstance(user_id, str):
            return None
        if typ == "access" and claims.get("gen", 0) != self.generations.get(user_id, 0):
            return None
        return user_id

    def user_for_access(self, token: str) -> str:
        user_id = self._owner(token, "access")
        if user_id is None:
            raise UNAUTHENTICATED.error()
        return user_id

    def user_for_refresh(self, token: str) -> str | None:
        return self._owner(token, "refresh")

    def cased(self, body: dict[str, Any]) -> Any:
        """A unary `/apiv2` answer in the configured casing."""
        return snake_keys(body) if self.config.casing == "snake" else body

    def check_fault(self, endpoint: str, user_id: str | None) -> None:
        fault = self.faults.take(endpoint, user_id)
        if fault is not None:
            raise fault.refusal()
