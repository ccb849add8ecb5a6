"""Failures, each already classified the way an OpenAI client needs to see it.

The core and the adapters raise these; the API layer turns them into `{"error": {...}}` bodies with `status`.
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    type = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed if sent again (clients' SDKs retry 429 and 5xx)."""
        return self.status == 429 or self.status >= 500


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_value"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Unauthorized(GatewayError):
    """The client sent no usable credential, or Kimi rejected the token it sent."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class AccountBusy(RateLimited):
    """Kimi refuses a second overlapping stream on one account (chat.user_stream_pushing)."""

    code = "account_busy"


class QuotaExceeded(RateLimited):
    code = "insufficient_quota"

    @property
    def retryable(self) -> bool:
        # Kimi's usage windows last hours: an SDK's automatic retry a second later cannot succeed.
        return False


class ContentFiltered(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "content_filter"


class ChatNotFound(NotFound):
    code = "conversation_not_found"


class UpstreamError(GatewayError):
    """Kimi answered with something we could not use."""

    status = 502
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "service_unavailable"


class FreeTierOverloaded(UpstreamUnavailable):
    """Kimi refuses free accounts at peak hours (REASON_SERVER_OVERLOADED_FOR_FREE_USER): service-wide, not one
    account's limit, so another free account gets the same answer. 503, like an overloaded engine elsewhere: the
    client is not over any rate, and SDKs retry it after `Retry-After`."""

    code = "kimi_overloaded"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "timeout"


class InvalidModelOutput(UpstreamError):
    """Kimi's answer broke the tool-call or JSON format the request asked for, even after a repair request."""

    code = "invalid_model_output"


class AnswerFormatChanged(UpstreamError):
    """Kimi's answer ended with nothing the adapter recognised: most likely its wire format moved on."""

    code = "upstream_format_changed"
