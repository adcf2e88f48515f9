"""The one way the bot reaches Slack: its Web API client, built once from settings, and what a
failed call means.

- `web_client(settings)`: the WebClient every Slack-speaking part uses (the face and Bolt, the
  notifier, commands, `check`): the bot token, `SLACK_API_URL`, the HTTP timeout of the
  settings, and slack_sdk's retry handlers for rate limits (waiting out `Retry-After`), 5xx
  answers and broken connections. Every call is counted by method and outcome, every retry by
  method and reason (`deploy_monitor_slack_calls`, `deploy_monitor_slack_retries`).
- `without_retries(client)`: the same client for calls that must not be retried blindly (a
  post whose answer was lost may be stored already).
- `webhook_client(url, settings)`: answers to the requester through a `response_url`.
- `classify(exc)`: the one reading of a failed call, `SlackFailure`: rate limited, uncertain
  (may have taken effect) or refused, with Slack's error code and how long to wait.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from bot.slack.payloads import ErrorAnswer
from bot.slack.settings import BotSettings
from workers.errors import ConfigError
from workers.metrics import API_SECONDS, SLACK_CALLS, SLACK_RETRIES

# How often each kind of trouble is retried inside one call.
CONNECTION_RETRIES = 2
RATE_LIMIT_RETRIES = 4
SERVER_ERROR_RETRIES = 2
# Waited after a 429 that names no Retry-After.
DEFAULT_RETRY_AFTER_SECONDS = 1.0
# `ok: false` answers that do not say whether the call took effect.
UNCERTAIN_ERRORS = frozenset({"internal_error", "fatal_error", "request_timeout"})
RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})
# Slack's error codes are short words; anything else (a proxy's page) is trimmed for labels.
MAX_ERROR_LABEL_CHARS = 40

FailureKind = Literal["rate_limited", "uncertain", "refused"]


@dataclass(frozen=True)
class SlackFailure:
    """What a failed Slack call means.

    `kind`: `rate_limited` (nothing was done; try again after `retry_after` seconds),
    `uncertain` (a 5xx, an odd answer or a broken connection: the call may or may not have
    taken effect; retryable, but a post only after looking it up), or `refused` (Slack said
    no and did nothing; permanent for this request). `error` is Slack's error code, `status`
    the HTTP status (None when no answer came).
    """

    kind: FailureKind
    error: str | None = None
    status: int | None = None
    retry_after: float = DEFAULT_RETRY_AFTER_SECONDS

    @property
    def label(self) -> str:
        """The `outcome` label of `deploy_monitor_slack_calls`."""
        if self.status == 429:
            return "ratelimited"
        if self.error:
            return self.error[:MAX_ERROR_LABEL_CHARS]
        if self.status is None:
            return "exception"
        return f"http_{self.status}"


def classify(exc: Exception) -> SlackFailure:
    """Read a failed call: a `SlackApiError` by its status and error code; any other error
    (urllib's, a timeout) as a call of unknown outcome."""
    if not isinstance(exc, SlackApiError):
        return SlackFailure("uncertain")
    response = exc.response
    error = ErrorAnswer.of(response).error
    status = response.status_code
    retry_after = _retry_after(response.headers)
    if status == 429 or error in RATE_LIMIT_ERRORS:
        return SlackFailure("rate_limited", error, status, retry_after)
    if status == 200 and error and error not in UNCERTAIN_ERRORS:
        return SlackFailure("refused", error, status, retry_after)
    return SlackFailure("uncertain", error, status, retry_after)


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value[0] if isinstance(value, list) else value))
            except (TypeError, ValueError, IndexError):
                break
    return DEFAULT_RETRY_AFTER_SECONDS


# -- the client ----------------------------------------------------------------------------


def web_client(settings: BotSettings) -> WebClient:
    """The bot's WebClient: token, API URL and timeout from `settings`; 429s waited out, 5xx and
    connection errors retried; every call and retry counted."""
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    return MeteredWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=timeout_seconds(settings),
        retry_handlers=retry_handlers(),
    )


def timeout_seconds(settings: BotSettings) -> int:
    """slack_sdk takes whole seconds: the settings' HTTP timeout, at least one."""
    return max(1, round(settings.http_timeout))


def retry_handlers() -> list[RetryHandler]:
    """Connection errors, rate limits and 5xx answers, each retry counted."""
    return count_retries(
        [
            ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
            RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
        ]
    )


def without_retries(client: WebClient) -> WebClient:
    """The same client (token, URL, timeout, metering) without retry handlers."""
    bare = copy.copy(client)
    bare.retry_handlers = []
    return bare


def webhook_client(response_url: str, settings: BotSettings) -> WebhookClient:
    """A client posting to a command's `response_url`, with the settings' timeout."""
    return WebhookClient(response_url, timeout=timeout_seconds(settings))


class MeteredWebClient(WebClient):
    """A WebClient that counts each API call by method and outcome (`SlackFailure.label`).

    Retries happen inside one `api_call` (slack_sdk's retry handlers); `CountingRetryHandler`
    counts those separately.
    """

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        """Call, then count `(method, outcome)` and observe the duration."""
        started = time.perf_counter()
        outcome = "exception"
        try:
            response = super().api_call(api_method, **kwargs)
            outcome = "ok"
            assert isinstance(response, SlackResponse)  # a sync client never returns a Future
            return response
        except SlackApiError as exc:
            outcome = classify(exc).label
            raise
        finally:
            API_SECONDS.labels("slack").observe(time.perf_counter() - started)
            SLACK_CALLS.labels(api_method, outcome).inc()


_RETRY_REASONS = {
    RateLimitErrorRetryHandler: "rate_limited",
    ServerErrorRetryHandler: "server_error",
    ConnectionErrorRetryHandler: "connection_error",
}


class CountingRetryHandler(RetryHandler):
    """Wraps a slack_sdk retry handler and counts each retry it decides to make."""

    def __init__(self, inner: RetryHandler) -> None:
        super().__init__(
            max_retry_count=inner.max_retry_count, interval_calculator=inner.interval_calculator
        )
        self.inner = inner
        self.reason = _RETRY_REASONS.get(type(inner), type(inner).__name__)

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        """As the wrapped handler decides."""
        return self.inner.can_retry(state=state, request=request, response=response, error=error)

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        """Count the retry under the API method's name, then wait as the wrapped handler does."""
        SLACK_RETRIES.labels(request.url.rstrip("/").rsplit("/", 1)[-1], self.reason).inc()
        self.inner.prepare_for_next_attempt(
            state=state, request=request, response=response, error=error
        )


def count_retries(handlers: Iterable[RetryHandler]) -> list[RetryHandler]:
    """The same retry handlers, each counting the retries it makes."""
    return [CountingRetryHandler(handler) for handler in handlers]
