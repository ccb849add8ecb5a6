"""METRICS_ENABLED=false: the same calls, counting nothing, and without loading prometheus-client (about 1.4 MB)."""

from __future__ import annotations

from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.ports import FailurePhase
from kimi_free_api.core.usage.usage import Usage


class NoMetrics:
    """METRICS_ENABLED=false: nothing is counted and there is no /metrics."""

    key = ""

    def started(self, model: str, waited_s: float) -> None:
        pass

    def upstream_failed(self, error: GatewayError, phase: FailurePhase) -> None:
        pass

    def counted(self, usage: Usage) -> None:
        pass

    def failed_after_headers(self, status: int) -> None:
        pass

    def exposition(self) -> tuple[bytes, str] | None:
        return None
