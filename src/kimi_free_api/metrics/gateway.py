"""The gateway's Prometheus metrics: one registry per application, so several gateways in one process (the tests)
count apart.

Everything here runs once per request or once per scrape, never per relayed chunk: a middleware notes each
request's route, model, status and duration, and counts event streams while they are open; the core's answer
service reports first-content waits and upstream failures (core/ports.py `AnswerObserver`), the HTTP
layer the tokens (api/answering.py `counted`); the accounts' states are read from the pool only when scraped.
The model label is the request's resolved model, found through a context variable the middleware sets, so no
layer has to pass the request around.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.ports import FailurePhase
from kimi_free_api.core.usage.usage import Usage

_NO_MODEL = "-"
# nginx's name for a request whose client went away before the answer was whole (the handler is cancelled then).
_CLIENT_LEFT = 499
# Seconds. Answers take from well under a second (a cached short reply) to minutes (research).
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_FIRST_CONTENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
STATES = ("healthy", "busy", "cooling", "dead")


class _Request:
    """What is learnt about one request while it is answered."""

    __slots__ = ("failed_status", "model", "streaming")

    def __init__(self) -> None:
        # The resolved model (core/models/modelspec.py) the answer came from. Clients' own model names are never
        # labels: any string would make a new series.
        self.model = _NO_MODEL
        self.streaming = False
        # The status of the error a stream (or a kept-alive answer) ended with after its 200 went out.
        self.failed_status = 0


_CURRENT: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("metrics_request", default=None)


class AccountState(Protocol):
    @property
    def kind(self) -> str: ...

    def health(self, now: float) -> str: ...


class _Accounts(Collector):
    """Accounts by state and kind, read from the pool at scrape time: nothing to keep up to date meanwhile."""

    def __init__(self, accounts: Callable[[], Sequence[AccountState]]) -> None:
        self._accounts = accounts

    def collect(self) -> Iterable[Metric]:
        now = time.monotonic()  # the scheduler's clock (the event loop's)
        tally = Tally((account.health(now), account.kind) for account in self._accounts())
        family = GaugeMetricFamily("kimi_free_api_accounts", "Kimi accounts by state", labels=["state", "kind"])
        for kind in ("server", "client"):
            for state in STATES:
                family.add_metric([state, kind], tally[(state, kind)])
        yield family


def failure_kind(error: GatewayError) -> str:
    """`RateLimited` -> `rate_limited`: a small fixed set of labels, unlike the errors' messages."""
    name = type(error).__name__
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


class GatewayMetrics:
    def __init__(self, accounts: Callable[[], Sequence[AccountState]], key: str = "") -> None:
        """`key`: the bearer /metrics asks for ("" = open)."""
        self.key = key
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "kimi_free_api_requests", "HTTP requests answered", ["route", "model", "status"], registry=registry
        )
        self._duration = Histogram(
            "kimi_free_api_request_duration_seconds",
            "Time from a request's arrival to the end of its response (a stream's last byte)",
            ["route"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self._first_content = Histogram(
            "kimi_free_api_first_content_seconds",
            "Time from a chat request's arrival to the answer's first content (waits and failover included)",
            ["model"],
            buckets=_FIRST_CONTENT_BUCKETS,
            registry=registry,
        )
        self._tokens = Counter("kimi_free_api_tokens", "Tokens of answers", ["model", "kind"], registry=registry)
        self._failures = Counter(
            "kimi_free_api_upstream_failures",
            "Failed attempts to start an answer upstream, and answers broken off upstream",
            ["kind", "phase"],
            registry=registry,
        )
        self._streams = Gauge("kimi_free_api_streams_in_flight", "Streamed answers being written", registry=registry)
        registry.register(_Accounts(accounts))

    # --- the core's answer service (core/ports.py `AnswerObserver`) ---

    def started(self, model: str, waited_s: float) -> None:
        current = _CURRENT.get()
        if current is not None:
            current.model = model
        self._first_content.labels(model).observe(waited_s)

    def upstream_failed(self, error: GatewayError, phase: FailurePhase) -> None:
        self._failures.labels(failure_kind(error), phase).inc()

    # --- the HTTP layer (api/context.py `AnswerMetrics`) ---

    def counted(self, usage: Usage) -> None:
        current = _CURRENT.get()
        model = current.model if current is not None else _NO_MODEL
        self._tokens.labels(model, "prompt").inc(usage.prompt_tokens)
        self._tokens.labels(model, "completion").inc(usage.completion_tokens)

    def failed_after_headers(self, status: int) -> None:
        current = _CURRENT.get()
        if current is not None:
            current.failed_status = status

    # --- HTTP ---

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Outermost, so it sees the status the error middleware chose."""
        started = time.perf_counter()
        status = 500
        current = _Request()
        reset = _CURRENT.set(current)
        try:
            response = await handler(request)
            status = current.failed_status or response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = _CLIENT_LEFT
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            self._requests.labels(route, current.model, str(status)).inc()
            self._duration.labels(route).observe(time.perf_counter() - started)
            if current.streaming:
                self._streams.dec()
            _CURRENT.reset(reset)

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """An event stream (any surface's) is in flight from its headers until its handler returns."""
        current = _CURRENT.get()
        if current is not None and not current.streaming and response.content_type == "text/event-stream":
            current.streaming = True
            self._streams.inc()

    def exposition(self) -> tuple[bytes, str] | None:
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
