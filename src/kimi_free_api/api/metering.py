"""Per-key limits and the request log, on every surface: the key check admits a request, the answer path holds
an answer slot, and a middleware writes down each API request once it is answered.

Costs on the hot path are a few attribute writes per request: the log entry is handed to a background writer
(core/access/requestlog.py), and an unlimited key never reaches the limiter.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from aiohttp import web

from kimi_free_api.api.context import METRICS
from kimi_free_api.core.access.callers import (
    Caller,
    KeyLimiter,
    current_caller,
    model_refused,
    rate_limited,
    too_many_answers,
)
from kimi_free_api.core.access.requestlog import LogEntry, LogWriter, current_entry
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.request import ChatRequest

LIMITER = web.AppKey("key_limiter", KeyLimiter)
REQUEST_LOG = web.AppKey("request_log", LogWriter)


class Labelled(Protocol):
    @property
    def label(self) -> str: ...


class AccountLookup(Protocol):
    """The pool's accounts by id, for the log's account labels."""

    def get(self, account_id: str, /) -> Labelled | None: ...


ACCOUNTS = web.AppKey("labelled_accounts", AccountLookup)

# Not API requests: the console itself, health checks, the welcome page.
_UNLOGGED_PREFIXES = ("/admin", "/healthz", "/ping", "/favicon")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    writer = request.app.get(REQUEST_LOG)
    if (
        writer is None
        or request.method == "OPTIONS"
        or request.path == "/"
        or request.path.startswith(_UNLOGGED_PREFIXES)
    ):
        return await handler(request)
    entry = LogEntry(method=request.method, path=request.path)
    token = current_entry.set(entry)
    try:
        response = await handler(request)
        entry.status = entry.status or response.status
        return response
    except web.HTTPException as exc:
        entry.status = exc.status
        raise
    except BaseException:
        entry.status = 499  # the client left (nginx's name for it) or the server is stopping
        raise
    finally:
        current_entry.reset(token)
        entry.duration_ms = entry.since_start_ms()
        writer.add(entry)


async def admit(request: web.Request, caller: Caller) -> None:
    """The request authenticated with this key: it is counted against the key's requests per minute."""
    current_caller.set(caller)
    entry = current_entry.get()
    if entry is not None:
        entry.key_id, entry.key_name = caller.key_id, caller.name
    if caller.limits.rpm:
        wait_s = await request.app[LIMITER].admit(caller.key_id, caller.limits.rpm)
        if wait_s > 0:
            raise rate_limited(caller, wait_s)


@contextlib.asynccontextmanager
async def answer_slot(request: web.Request, chat: ChatRequest) -> AsyncIterator[None]:
    """While an answer is in progress: its key's model list and concurrent-answer limit apply."""
    entry = current_entry.get()
    if entry is not None:
        entry.model = chat.model
    caller = current_caller.get()
    if caller is None or not (caller.limits.models or caller.limits.concurrent):
        yield
        return
    if not caller.limits.allows(chat.model):
        raise model_refused(caller, chat.model)
    if not caller.limits.concurrent:
        yield
        return
    limiter = request.app[LIMITER]
    slot = uuid.uuid4().hex
    if not await limiter.hold(caller.key_id, caller.limits.concurrent, slot):
        raise too_many_answers(caller)
    try:
        yield
    finally:
        await limiter.release(caller.key_id, slot)


def failed_in_stream(request: web.Request, error: GatewayError) -> None:
    """A stream that failed after its 200 went out is logged and counted with the status of the error it ended
    with, so the log's status filter and the metrics' `status` label find it among the failures."""
    request.app[METRICS].failed_after_headers(error.status)
    entry = current_entry.get()
    if entry is not None:
        entry.status = error.status


def answer_started(request: web.Request, run: ChatRun) -> None:
    """The answer's first content is in: which account answers, and how long that took."""
    entry = current_entry.get()
    if entry is None:
        return
    entry.first_content_ms = entry.since_start_ms()
    if run.fell_back:
        entry.model = run.spec.name
    entry.account_id = run.account_id
    account = request.app[ACCOUNTS].get(run.account_id)
    entry.account_label = account.label if account is not None else ""
    writer = request.app.get(REQUEST_LOG)
    if writer is not None and writer.keep_prompts:
        entry.prompt = run.prompt
