"""Prometheus metrics of the bot and the workers (prometheus-client).

Every process counts what it does itself (ticks, Concourse/GitHub/Slack calls, decisions) in
the default registry; the active monitors are read from Redis when the metrics are scraped, so
any process reports the same numbers for the whole deployment. The bot serves them on
`GET /metrics` of its HTTP port; a worker (or a Socket Mode bot) serves them on
`--metrics-port` / `DEPLOY_MONITOR_METRICS_PORT` when set.

Labels stay low-cardinality: routes are templates (`/api/v1/builds/{id}`), never ids, SHAs or
names, and Slack methods and error codes come from a small fixed vocabulary.

It lives with the engine and imports nothing else of the project, so the clients in
`workers/` can import it without a cycle.
"""

from __future__ import annotations

import functools
import re
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import REGISTRY, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import make_wsgi_app, start_http_server
from prometheus_client.registry import Collector

PREFIX = "deploy_monitor"

# The `*_created` timestamp series double the series count and no dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Ticks are a few API calls; a long tail means Concourse is slow or a log tail is streaming.
TICK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# What an active monitor is doing, as the `state` label of the active-monitors gauge.
MONITOR_STATES = ("waiting_pickup", "running", "awaiting_decision", "unreachable")

TICKS = Counter(
    f"{PREFIX}_ticks",
    "Ticks run, by outcome (ticked, stale, busy, rate-limited, deployed, completed, stopped, "
    "error).",
    ["outcome"],
)
TICK_SECONDS = Histogram(
    f"{PREFIX}_tick_duration_seconds",
    "How long one tick took (observe, transition, save, notify).",
    buckets=TICK_BUCKETS,
)
CONCOURSE_REQUESTS = Counter(
    f"{PREFIX}_concourse_requests",
    "Requests to the Concourse API by method, route template and HTTP status ('error' when no "
    "response came).",
    ["method", "route", "status"],
)
GITHUB_REQUESTS = Counter(
    f"{PREFIX}_github_requests",
    "Requests to the GitHub API by method, route template and HTTP status ('error' when no "
    "response came).",
    ["method", "route", "status"],
)
API_SECONDS = Histogram(
    f"{PREFIX}_api_request_duration_seconds",
    "Duration of requests to Concourse, GitHub and Slack (until the response headers).",
    ["service"],
    buckets=REQUEST_BUCKETS,
)
# Counted by the bot's Slack client (bot/slack/client.py): the engine itself speaks no Slack.
SLACK_CALLS = Counter(
    f"{PREFIX}_slack_calls",
    "Slack Web API calls by method and outcome: ok, Slack's error code, or 'exception'.",
    ["method", "outcome"],
)
SLACK_RETRIES = Counter(
    f"{PREFIX}_slack_retries",
    "Slack Web API retries by method and reason (rate_limited, server_error, connection_error).",
    ["method", "reason"],
)
DECISIONS = Counter(
    f"{PREFIX}_decisions",
    "Continue/stop answers to a failure by choice, source (button, reaction) and result (taken, "
    "refused).",
    ["choice", "source", "result"],
)
COMMANDS = Counter(
    f"{PREFIX}_slash_commands",
    "/deploy-monitor commands by kind (follow, help, list, stop, where, status, subscribe,"
    " unsubscribe, subscriptions, link, dm, use, usage).",
    ["kind"],
)


# -- httpx: one place per client ---------------------------------------------------------------


class MeteredTransport(httpx.BaseTransport):
    """Wraps a transport and counts every request it sends by route template and status.

    A transport sees each request on the wire: logins and retries of an auth flow, redirects,
    and streams (counted once their headers arrive), and its own errors, which response event
    hooks would miss.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        service: str,
        route: Callable[[str], str],
        counter: Counter,
    ) -> None:
        self.inner = inner
        self._service = service
        self._route = route
        self._counter = counter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send, then count `(method, route, status)` and observe the duration."""
        route = self._route(request.url.path)
        started = time.perf_counter()
        status = "error"
        try:
            response = self.inner.handle_request(request)
            status = str(response.status_code)
            return response
        finally:
            API_SECONDS.labels(self._service).observe(time.perf_counter() - started)
            self._counter.labels(request.method, route, status).inc()

    def close(self) -> None:
        """Close the wrapped transport."""
        self.inner.close()


def concourse_transport(url: str, inner: httpx.BaseTransport | None = None) -> MeteredTransport:
    """The transport of `ConcourseClient` (to `url`), counted in `CONCOURSE_REQUESTS`."""
    return MeteredTransport(
        inner or network_transport(url),
        service="concourse",
        route=concourse_route,
        counter=CONCOURSE_REQUESTS,
    )


def github_transport(url: str, inner: httpx.BaseTransport | None = None) -> MeteredTransport:
    """The transport of `GitHubClient` (to `url`), counted in `GITHUB_REQUESTS`."""
    return MeteredTransport(
        inner or network_transport(url),
        service="github",
        route=github_route,
        counter=GITHUB_REQUESTS,
    )


def network_transport(url: str) -> httpx.HTTPTransport:
    """httpx's own transport, through the proxy the environment names for `url`.

    A client given a transport no longer reads `HTTPS_PROXY`/`NO_PROXY` itself, so the
    metered clients would otherwise lose them.
    """
    host = urlsplit(url).hostname
    proxies = urllib.request.getproxies()
    proxy = proxies.get(urlsplit(url).scheme) or proxies.get("all")
    if not host or not proxy or urllib.request.proxy_bypass(host):
        return httpx.HTTPTransport(verify=_tls_context())
    return httpx.HTTPTransport(
        verify=_tls_context(), proxy=proxy if "://" in proxy else f"http://{proxy}"
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One client TLS context per process (httpx's default: certifi, or SSL_CERT_FILE/DIR):
    loading the CA bundle costs tens of milliseconds for every client otherwise."""
    return httpx.create_ssl_context()


# The name after each of these collection words is a variable part of a Concourse route.
_CONCOURSE_NAMES = {
    "teams": "{team}",
    "pipelines": "{pipeline}",
    "jobs": "{job}",
    "resources": "{resource}",
    "versions": "{version_id}",
    "builds": "{id}",
}
_CONCOURSE_FIXED = frozenset({"/sky/issuer/token", "/sky/logout"})


def concourse_route(path: str) -> str:
    """`/api/v1/teams/dev/pipelines/p/jobs/j/builds` → `/api/v1/teams/{team}/pipelines/
    {pipeline}/jobs/{job}/builds`; build ids, version ids and names never reach a label."""
    if path in _CONCOURSE_FIXED:
        return path
    if not path.startswith("/api/v1/"):
        return "other"
    parts = path.rstrip("/").split("/")
    out = parts[:3]
    for segment in parts[3:]:
        collection = out[-1]
        # Only a segment that follows a literal collection word is a name (a pipeline called
        # "builds" becomes {pipeline}, and the word after it is then read literally).
        if collection in _CONCOURSE_NAMES:
            placeholder = _CONCOURSE_NAMES[collection]
            if collection == "builds" and out[-2] == "{job}":
                placeholder = "{name}"  # a job's build by name: "57", "57.1", "latest"
            out.append(placeholder)
        else:
            out.append(segment)
    return "/".join(out)


_GITHUB_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (r".*/graphql", "/graphql"),
        (r".*/repos/[^/]+/[^/]+/commits/[^/]+", "/repos/{owner}/{repo}/commits/{ref}"),
        (r".*/repos/[^/]+/[^/]+/commits/?", "/repos/{owner}/{repo}/commits"),
        (r".*/repos/[^/]+/[^/]+/git/ref/heads/.+", "/repos/{owner}/{repo}/git/ref/heads/{branch}"),
        (r".*/repos/[^/]+/[^/]+/compare/.+", "/repos/{owner}/{repo}/compare/{basehead}"),
        (r".*/repos/[^/]+/[^/]+/pulls/\d+/merge", "/repos/{owner}/{repo}/pulls/{number}/merge"),
        (r".*/repos/[^/]+/[^/]+/pulls/\d+", "/repos/{owner}/{repo}/pulls/{number}"),
        (r".*/repos/[^/]+/[^/]+", "/repos/{owner}/{repo}"),
        (r".*/user", "/user"),
        (r".*/rate_limit", "/rate_limit"),
    )
)


def github_route(path: str) -> str:
    """The route template of a GitHub API path (a GHES `/api/v3` prefix is dropped)."""
    for pattern, template in _GITHUB_ROUTES:
        if pattern.fullmatch(path):
            return template
    return "other"


# -- active monitors, read from Redis at scrape time ------------------------------------------


# Active monitors by state (see MONITOR_STATES) and how many are overdue: the engine provides it
# (`Engine.census`), so this module needs nothing of the project.
Census = Callable[[], tuple[dict[str, int], int]]


class MonitorCollector:
    """`deploy_monitor_active_monitors{state}`, `deploy_monitor_overdue_monitors` and
    `deploy_monitor_redis_up`, read from the engine's Redis on every scrape.

    Every process of a deployment reports the same values: aggregate with max(), not sum().
    """

    def __init__(self, census: Census) -> None:
        self.census = census

    def collect(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            f"{PREFIX}_active_monitors",
            "Monitors being followed, by state (read from Redis at scrape time).",
            labels=["state"],
        )
        overdue = GaugeMetricFamily(
            f"{PREFIX}_overdue_monitors",
            "Active monitors whose next tick is late by more than two poll intervals "
            "(the reaper re-kicks them).",
        )
        up = GaugeMetricFamily(f"{PREFIX}_redis_up", "1 when Redis answered this scrape.")
        try:
            counts, late = self.census()
        except Exception:  # a scrape must not fail because Redis is down: say so instead
            up.add_metric([], 0.0)
            yield up
            return
        for state in MONITOR_STATES:
            active.add_metric([state], float(counts.get(state, 0)))
        overdue.add_metric([], float(late))
        up.add_metric([], 1.0)
        yield from (active, overdue, up)


def monitor_state(monitor: Any) -> str:
    """The `state` label of an active monitor (see MONITOR_STATES)."""
    if monitor.unreachable:
        return "unreachable"
    if monitor.prompt is not None:
        return "awaiting_decision"
    if not monitor.picked_up:
        return "waiting_pickup"
    return "running"


class _Exposed:
    """The default registry (this process's counters) plus the deployment-wide gauges."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposed(census: Census) -> Collector:
    """What `/metrics` shows: this process's counters and the deployment's census."""
    return _Exposed(REGISTRY, MonitorCollector(census))


def wsgi_app(census: Census) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering with the metrics (text or OpenMetrics, gzip when asked)."""
    app: Callable[..., Iterable[bytes]] = make_wsgi_app(exposed(census))
    return app


def serve(census: Census, port: int, addr: str = "0.0.0.0") -> threading.Thread:
    """Serve `/metrics` on `port` from a daemon thread (for processes without HTTP)."""
    _, thread = start_http_server(port, addr=addr, registry=exposed(census))
    return thread
