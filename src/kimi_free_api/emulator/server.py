"""The Emulator: an aiohttp server speaking Kimi's G3 protocol, plus its control surface."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from kimi_free_api.emulator.auth import AuthRoutes
from kimi_free_api.emulator.config import EmulatorConfig
from kimi_free_api.emulator.control import ControlRoutes
from kimi_free_api.emulator.faults import Fault
from kimi_free_api.emulator.files import FileRoutes
from kimi_free_api.emulator.g3 import G3Routes
from kimi_free_api.emulator.runtime import Runtime
from kimi_free_api.emulator.state import Account, State
from kimi_free_api.emulator.subscription import SubscriptionRoutes

MAX_REQUEST_BYTES = 16 * 1024 * 1024  # flattened conversations can be long
SHUTDOWN_TIMEOUT_S = 1.0  # streams still running when stop() is called are cut after this
# Like a real server's, and like the gateway's: a burst of hundreds of new connections is not partly refused.
LISTEN_BACKLOG = 1024


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self._runtime = Runtime(config or EmulatorConfig())
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.base_url = ""

    def make_app(self) -> web.Application:
        """The emulator as an application, to serve with any aiohttp runner; all of them share this state."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        for routes in (AuthRoutes, G3Routes, FileRoutes, SubscriptionRoutes, ControlRoutes):
            app.add_routes(routes(self._runtime).routes())
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        """Listen on a real socket, with TLS when given a context; port 0 picks a free one. `port` and `base_url`
        tell where. The URLs the emulator hands out (signed uploads, object storage) follow the request's scheme."""
        self._runtime.closing.clear()
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG, ssl_context=ssl_context).start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        scheme = "https" if ssl_context is not None else "http"
        self.base_url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def stop(self) -> None:
        self._runtime.closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def config(self) -> EmulatorConfig:
        return self._runtime.config

    @property
    def state(self) -> State:
        return self._runtime.state

    def configure(self, **changes: Any) -> EmulatorConfig:
        """A partial update of the settings (the keys of EmulatorConfig); streams already running keep theirs."""
        self._runtime.config = self._runtime.config.updated(changes)
        return self._runtime.config

    def create_account(self, name: str | None = None) -> Account:
        return self._runtime.create_account(name)

    def revoke_access_tokens(self, user_id: str) -> None:
        """Reject every access token of the user issued so far, expired or not (refresh tokens keep working)."""
        self._runtime.revoke_access_tokens(user_id)

    def add_fault(self, fault: Fault) -> None:
        self._runtime.faults.add(fault)

    def clear_faults(self) -> None:
        self._runtime.faults.clear()

    def script(self, answers: Sequence[str]) -> None:
        """Queues answers: each following Chat request answers with the next one, word for word (emulator/script.py)."""
        self._runtime.script.add(answers)

    @property
    def scripted(self) -> list[str]:
        """The scripted answers not used yet."""
        return self._runtime.script.pending()

    def reset(self) -> None:
        """Forget chats, counters, recorded requests, faults and scripted answers; go back to the starting settings."""
        self._runtime.reset()


def run(host: str, port: int, config: EmulatorConfig) -> None:
    """Serve the emulator until interrupted (the `kimi-free-api emulator` command)."""
    emulator = Emulator(config)
    web.run_app(
        emulator.make_app(),
        host=host,
        port=port,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        backlog=LISTEN_BACKLOG,
        print=lambda _: print(f"Kimi emulator listening on http://{host}:{port}", flush=True),
    )
