"""The metering transport of the Concourse and GitHub clients (`workers.metrics`)."""

from __future__ import annotations

import httpcore
import httpx
import pytest
from prometheus_client import REGISTRY

from tests.unit.workers.test_concourse_client import FakeConcourse
from workers import metrics
from workers.github import GitHubClient


def count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def concourse_count(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return count("deploy_monitor_concourse_requests_total", **labels)


def test_every_request_on_the_wire_is_counted_logins_and_retries_included() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer access-1":
            return httpx.Response(401, text="not authorized")
        return httpx.Response(200, json={"id": 7, "name": "7", "status": "started"})

    route = "/api/v1/builds/{id}"
    before = {status: concourse_count("GET", route, status) for status in ("200", "401")}
    logins = concourse_count("POST", "/sky/issuer/token", "200")
    seconds = count("deploy_monitor_api_request_duration_seconds_count", service="concourse")

    FakeConcourse(api).client().build(7)

    assert concourse_count("GET", route, "401") == before["401"] + 1
    assert concourse_count("GET", route, "200") == before["200"] + 1
    assert concourse_count("POST", "/sky/issuer/token", "200") == logins + 2
    after = count("deploy_monitor_api_request_duration_seconds_count", service="concourse")
    assert after == seconds + 4


def test_a_transport_error_counts_as_error_and_propagates() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    labels = {"method": "GET", "route": "/repos/{owner}/{repo}", "status": "error"}
    before = count("deploy_monitor_github_requests_total", **labels)
    transport = metrics.github_transport("https://api.example.test", httpx.MockTransport(refuse))
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get("https://api.example.test/repos/o/r")
    assert count("deploy_monitor_github_requests_total", **labels) == before + 1


def test_the_github_client_is_metered() -> None:
    labels = {"method": "GET", "route": "/repos/{owner}/{repo}/git/ref/heads/{branch}"}
    before = count("deploy_monitor_github_requests_total", **labels, status="200")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": {"sha": "a" * 40}})

    client = GitHubClient(repository="o/r", token=None, transport=httpx.MockTransport(handler))
    assert client.latest_commit_sha() == "a" * 40
    assert count("deploy_monitor_github_requests_total", **labels, status="200") == before + 1


def test_closing_the_client_closes_the_wrapped_transport() -> None:
    closed: list[bool] = []

    class Inner(httpx.MockTransport):
        def close(self) -> None:
            closed.append(True)

    inner = Inner(lambda request: httpx.Response(200))
    httpx.Client(transport=metrics.concourse_transport("https://ci", inner)).close()
    assert closed == [True]


def test_the_network_transport_keeps_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "ci.internal")
    proxied = metrics.network_transport("https://api.github.com")
    direct = metrics.network_transport("https://ci.internal")
    assert isinstance(proxied._pool, httpcore.HTTPProxy)  # httpx keeps its pool private
    assert not isinstance(direct._pool, httpcore.HTTPProxy)
