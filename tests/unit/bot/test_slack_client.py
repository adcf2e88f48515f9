"""The bot's Slack client: `classify` reads every kind of failed call the way the notifier,
the metrics and `check` need it; the factory's client has the settings' timeout and the retry
handlers, and counts calls and retries (against the Slack simulator, no mocks)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.error import URLError

import pytest
from prometheus_client import REGISTRY
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web import SlackResponse

from bot.slack.client import (
    CountingRetryHandler,
    MeteredWebClient,
    SlackFailure,
    classify,
    count_retries,
    web_client,
    webhook_client,
    without_retries,
)
from bot.slack.settings import BotSettings
from simulators.slack import SlackSimulator
from workers.errors import ConfigError

NO_WAIT = FixedValueRetryIntervalCalculator(0.0)


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator() as simulator:
        simulator.add_channel("C1", "deploys")
        yield simulator


def settings_for(sim: SlackSimulator, **env: str) -> BotSettings:
    return BotSettings.model_validate(
        {"SLACK_BOT_TOKEN": sim.token, "SLACK_API_URL": sim.api_url, **env}
    )


def failure_of(client: WebClient, method: str = "chat.postMessage", **args: Any) -> SlackFailure:
    with pytest.raises(SlackApiError) as caught:
        client.api_call(method, json={"channel": "C1", "text": "x", **args})
    return classify(caught.value)


def response(status: int, data: Any, headers: dict[str, Any] | None = None) -> SlackApiError:
    answer = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.postMessage",
        req_args={},
        data=data,
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError("failed", answer)


def calls(method: str, outcome: str) -> float:
    labels = {"method": method, "outcome": outcome}
    return REGISTRY.get_sample_value("deploy_monitor_slack_calls_total", labels) or 0.0


def retries(method: str, reason: str) -> float:
    labels = {"method": method, "reason": reason}
    return REGISTRY.get_sample_value("deploy_monitor_slack_retries_total", labels) or 0.0


# -- classify ------------------------------------------------------------------------------


def test_a_429_is_rate_limited_with_its_retry_after(sim: SlackSimulator) -> None:
    sim.rate_limit_next("chat.postMessage", retry_after=7)
    failure = failure_of(sim.web_client())
    assert failure == SlackFailure("rate_limited", "ratelimited", 429, 7.0)
    assert failure.label == "ratelimited"


def test_a_ratelimited_error_code_is_rate_limited_too(sim: SlackSimulator) -> None:
    sim.error_next("chat.postMessage", "ratelimited")
    failure = failure_of(sim.web_client())
    assert (failure.kind, failure.status, failure.retry_after) == ("rate_limited", 200, 1.0)


def test_a_clear_no_is_refused(sim: SlackSimulator) -> None:
    failure = failure_of(sim.web_client(), channel="C404")
    assert failure == SlackFailure("refused", "channel_not_found", 200)
    assert failure.label == "channel_not_found"


@pytest.mark.parametrize("error", ["internal_error", "fatal_error", "request_timeout"])
def test_an_ok_false_that_does_not_say_whether_it_happened_is_uncertain(
    sim: SlackSimulator, error: str
) -> None:
    sim.error_next("chat.postMessage", error)
    assert failure_of(sim.web_client()) == SlackFailure("uncertain", error, 200)


def test_a_5xx_is_uncertain(sim: SlackSimulator) -> None:
    sim.fail_next("chat.postMessage", status=503)
    failure = failure_of(sim.web_client())
    assert (failure.kind, failure.status, failure.label) == ("uncertain", 503, "internal_error")


def test_a_5xx_without_an_error_code_is_uncertain_and_labelled_by_status() -> None:
    failure = classify(response(502, {"ok": False}))
    assert failure == SlackFailure("uncertain", None, 502)
    assert failure.label == "http_502"


def test_a_proxy_page_is_uncertain() -> None:
    # What slack_sdk makes of a body that is not JSON: its own words as the error.
    words = "Received a response in a non-JSON format: <html>Bad Gateway</html>"
    failure = classify(response(502, {"ok": False, "error": words}))
    assert (failure.kind, failure.status, failure.label) == ("uncertain", 502, words[:40])


@pytest.mark.parametrize("error", [OSError("refused"), URLError("down"), TimeoutError()])
def test_no_answer_at_all_is_uncertain(error: Exception) -> None:
    failure = classify(error)
    assert failure == SlackFailure("uncertain")
    assert failure.label == "exception"


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": ["2"]}, 2.0),
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": "soon"}, 1.0),
        ({"Retry-After": []}, 1.0),
        ({}, 1.0),
    ],
)
def test_retry_after_is_read_leniently(headers: dict[str, Any], wait: float) -> None:
    assert classify(response(429, {"ok": False}, headers)).retry_after == wait


def test_a_long_error_code_is_trimmed_for_the_label() -> None:
    failure = classify(response(200, {"ok": False, "error": "e" * 100}))
    assert failure.kind == "refused" and failure.error == "e" * 100
    assert failure.label == "e" * 40


# -- the factory ---------------------------------------------------------------------------


def test_the_factory_client_has_the_settings_token_url_and_timeout(sim: SlackSimulator) -> None:
    client = web_client(settings_for(sim, DEPLOY_MONITOR_HTTP_TIMEOUT="3.4"))
    assert isinstance(client, MeteredWebClient)
    assert (client.token, client.base_url, client.timeout) == (sim.token, sim.api_url, 3)
    # slack_sdk takes whole seconds; a sub-second setting still waits one.
    assert web_client(settings_for(sim, DEPLOY_MONITOR_HTTP_TIMEOUT="0.2")).timeout == 1


def test_the_factory_client_retries_connections_rate_limits_and_5xx(sim: SlackSimulator) -> None:
    handlers = web_client(settings_for(sim)).retry_handlers
    assert all(isinstance(h, CountingRetryHandler) for h in handlers)
    inner = [(type(h.inner), h.max_retry_count) for h in handlers]  # type: ignore[attr-defined]
    assert inner == [
        (ConnectionErrorRetryHandler, 2),
        (RateLimitErrorRetryHandler, 4),
        (ServerErrorRetryHandler, 2),
    ]


def test_the_factory_needs_a_bot_token() -> None:
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        web_client(BotSettings.model_validate({"SLACK_BOT_TOKEN": None}))


def test_without_retries_is_the_same_client_minus_retries(sim: SlackSimulator) -> None:
    client = web_client(settings_for(sim))
    bare = without_retries(client)
    assert isinstance(bare, MeteredWebClient) and bare.retry_handlers == []
    assert (bare.token, bare.base_url, bare.timeout) == (client.token, client.base_url, 10)
    assert len(client.retry_handlers) == 3


def test_the_response_url_client_has_the_settings_timeout(sim: SlackSimulator) -> None:
    hooks = webhook_client(sim.url + "/hooks/x", settings_for(sim, DEPLOY_MONITOR_HTTP_TIMEOUT="4"))
    assert hooks.timeout == 4
    assert hooks.send(text="hi", response_type="ephemeral").status_code == 200
    assert sim.webhook_posts[-1].payload["text"] == "hi"


# -- metering ------------------------------------------------------------------------------


def test_calls_are_counted_by_method_and_outcome(sim: SlackSimulator) -> None:
    client = web_client(settings_for(sim))
    ok, missing = calls("chat.postMessage", "ok"), calls("chat.postMessage", "channel_not_found")
    client.chat_postMessage(channel="C1", text="x")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C404", text="x")
    assert calls("chat.postMessage", "ok") == ok + 1
    assert calls("chat.postMessage", "channel_not_found") == missing + 1


def test_a_rate_limit_waited_out_is_one_call_and_one_retry(sim: SlackSimulator) -> None:
    client = web_client(settings_for(sim))
    ok, waited = calls("chat.update", "ok"), retries("chat.update", "rate_limited")
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]
    sim.rate_limit_next("chat.update", retry_after=0)
    client.chat_update(channel="C1", ts=ts, text="y")
    updated = sim.message("C1", ts)
    assert updated is not None and updated.text == "y"
    assert calls("chat.update", "ok") == ok + 1
    assert retries("chat.update", "rate_limited") == waited + 1


def test_server_errors_retried_are_counted_and_then_the_failure(sim: SlackSimulator) -> None:
    client = MeteredWebClient(
        token=sim.token,
        base_url=sim.api_url,
        retry_handlers=count_retries([ServerErrorRetryHandler(1, NO_WAIT)]),
    )
    before = retries("reactions.add", "server_error")
    failed = calls("reactions.add", "internal_error")
    sim.fail_next("reactions.add", n=2, status=500)
    with pytest.raises(SlackApiError):
        client.reactions_add(channel="C1", timestamp="1.000100", name="x")
    assert retries("reactions.add", "server_error") == before + 1
    assert calls("reactions.add", "internal_error") == failed + 1


def test_a_connection_error_is_retried_counted_and_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    client = MeteredWebClient(
        token="xoxb-x",
        base_url=f"http://127.0.0.1:{port}/api/",
        retry_handlers=count_retries([ConnectionErrorRetryHandler(2, NO_WAIT)]),
    )
    before = retries("auth.test", "connection_error")
    failed = calls("auth.test", "exception")
    with pytest.raises(URLError):
        client.auth_test()
    assert retries("auth.test", "connection_error") == before + 2
    assert calls("auth.test", "exception") == failed + 1
