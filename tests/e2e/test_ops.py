"""Operations: Prometheus metrics over HTTP (the bot's real WSGI app, and a real worker's
--metrics-port), structured JSON logs that say which monitor, commit and stage a line is about,
and secrets that never reach a log line."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from bot import logs
from bot.slack.face import SlackFace, build_face
from bot.slack.settings import BotSettings
from simulators.lana_bank import Journey
from simulators.slack import DEFAULT_TOKEN, SlackSimulator
from simulators.slack_client import SlackRequestSender
from tests.conftest import CONCOURSE_PASSWORD, GITHUB_TOKEN, REPOSITORY, World, wait_for
from tests.slack_fixtures import (
    ALICE,
    BACKEND,
    BOB,
    CHANNEL,
    SIGNING_SECRET,
    serve_bot,
    slack_env,
)
from workers import jobs
from workers.events import StageFailed
from workers.monitor import Monitor
from workers.target import parse_target, resolve_target


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET a /metrics URL and parse it: (sample name, labels) → value."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@dataclass
class Ops:
    world: World
    slack: SlackSimulator
    face: SlackFace
    sender: SlackRequestSender
    url: str

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return scrape(f"{self.url}/metrics")

    def start_monitor(self, requester: str = ALICE) -> Monitor:
        """A monitor for a new backend commit, started as `watch` would (no worker runs it)."""
        sha = self.world.github.add_commit("Add origination fee", BACKEND)
        engine = self.face.engine
        resolved = resolve_target(parse_target(sha, REPOSITORY), engine.github)
        monitor, created = engine.start_monitor(resolved, requester=requester)
        assert created
        return monitor


@pytest.fixture
def ops(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ops]:
    slack = SlackSimulator()
    slack.start()
    slack.add_channel(CHANNEL, "deploys")
    slack_env(world, slack)
    face = build_face(BotSettings.model_validate(world.env))
    monkeypatch.setattr(jobs, "_engine", face.engine)  # ticks run here, in this process
    with serve_bot(face) as url:
        sender = SlackRequestSender(url, SIGNING_SECRET, response_url_base=slack.url + "/hooks")
        yield Ops(world=world, slack=slack, face=face, sender=sender, url=url)
        sender.close()
    slack.stop()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes the root logger and structlog; put both back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every stderr line must be one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- metrics ----------------------------------------------------------------------------------


def test_metrics_move_after_a_command_and_a_tick(ops: Ops) -> None:
    before = ops.metrics()
    assert value(before, "deploy_monitor_redis_up") == 1.0
    assert value(before, "deploy_monitor_active_monitors", state="waiting_pickup") == 0.0

    assert ops.sender.slash_command("help", user_id=ALICE, channel_id=CHANNEL).status_code == 200
    monitor = ops.start_monitor()
    assert jobs.tick(monitor.id, monitor.seq) == "ticked"
    assert jobs.tick(monitor.id, monitor.seq) == "stale"  # the same seq again is fenced

    after = ops.metrics()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("deploy_monitor_slash_commands_total", kind="help") == 1
    assert delta("deploy_monitor_ticks_total", outcome="ticked") == 1
    assert delta("deploy_monitor_ticks_total", outcome="stale") == 1
    assert delta("deploy_monitor_tick_duration_seconds_count") == 2
    # The commit is not picked up yet: the tick asked Concourse for its version (after a login)
    # and GitHub resolved it first.
    versions = "/api/v1/teams/{team}/pipelines/{pipeline}/resources/{resource}/versions"
    assert (
        delta("deploy_monitor_concourse_requests_total", method="GET", route=versions, status="200")
        >= 1
    )
    assert (
        delta(
            "deploy_monitor_concourse_requests_total",
            method="POST",
            route="/sky/issuer/token",
            status="200",
        )
        == 1
    )
    commits = "/repos/{owner}/{repo}/commits/{ref}"
    assert (
        delta("deploy_monitor_github_requests_total", method="GET", route=commits, status="200")
        >= 1
    )
    assert delta("deploy_monitor_api_request_duration_seconds_count", service="concourse") >= 2
    assert value(after, "deploy_monitor_active_monitors", state="waiting_pickup") == 1
    assert value(after, "deploy_monitor_active_monitors", state="running") == 0
    assert value(after, "deploy_monitor_overdue_monitors") == 0
    # Low cardinality: no SHA, pipeline or resource name made it into a label.
    text = httpx.get(f"{ops.url}/metrics").text
    for leak in (monitor.sha, monitor.short_sha, "lana-bank", "test-integration", "pipelines/dev"):
        assert leak not in text


def test_slack_calls_retries_and_decisions_are_counted(ops: Ops) -> None:
    before = ops.metrics()
    monitor = ops.start_monitor(requester=ALICE)
    client = ops.face.client
    ops.slack.rate_limit_next("chat.postMessage", 1, retry_after=1)
    ts = str(client.chat_postMessage(channel=CHANNEL, text="test-bats failed")["ts"])
    failure = StageFailed(
        stage="tests",
        label="lana-bank tests",
        job="test-bats",
        build_name="1",
        build_url="http://ci/builds/1",
        status="failed",
        log_tail="not ok 2",
        prompt=1,
    )
    ops.face.threads.remember_prompt(monitor.id, failure, CHANNEL, ts)

    ops.sender.reaction_added(BOB, "octagonal_sign", CHANNEL, ts)  # not Bob's to decide
    wait_for(lambda: any(e.user == BOB for e in ops.slack.ephemerals), timeout=10)
    ops.sender.reaction_added(ALICE, "arrow_forward", CHANNEL, ts)
    wait_for(lambda: ops.face.engine.store.decision(monitor.id, 1) is not None, timeout=10)
    wait_for(
        lambda: (
            ops.slack.message(CHANNEL, ts) is not None and ops.slack.message(CHANNEL, ts).edited
        ),
        timeout=10,
    )  # type: ignore[union-attr]

    after = ops.metrics()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert (
        delta(
            "deploy_monitor_slack_retries_total", method="chat.postMessage", reason="rate_limited"
        )
        == 1
    )
    assert delta("deploy_monitor_slack_calls_total", method="chat.postMessage", outcome="ok") == 1
    assert delta("deploy_monitor_slack_calls_total", method="chat.postEphemeral", outcome="ok") == 1
    assert delta("deploy_monitor_slack_calls_total", method="chat.update", outcome="ok") == 1
    assert (
        delta("deploy_monitor_decisions_total", choice="stop", source="reaction", result="refused")
        == 1
    )
    assert (
        delta(
            "deploy_monitor_decisions_total", choice="continue", source="reaction", result="taken"
        )
        == 1
    )
    assert (
        delta("deploy_monitor_decisions_total", choice="continue", source="button", result="taken")
        == 0
    )


def test_a_slack_error_is_counted_by_its_code(ops: Ops) -> None:
    from slack_sdk.errors import SlackApiError

    before = ops.metrics()
    with pytest.raises(SlackApiError):
        ops.face.client.chat_postMessage(channel="C0NOWHERE", text="hi")
    after = ops.metrics()
    key = {"method": "chat.postMessage", "outcome": "channel_not_found"}
    assert (
        value(after, "deploy_monitor_slack_calls_total", **key)
        - value(before, "deploy_monitor_slack_calls_total", **key)
        == 1
    )


def test_metrics_say_when_redis_is_down_instead_of_failing(
    ops: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    def broken(*args: object, **kwargs: object) -> None:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(ops.face.engine.redis, "zrange", broken)
    samples = ops.metrics()
    assert value(samples, "deploy_monitor_redis_up") == 0.0
    assert ("deploy_monitor_active_monitors", frozenset({("state", "running")})) not in samples
    assert httpx.get(f"{ops.url}/healthz").status_code == 200  # healthz pings; zrange is not ping


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_serves_metrics_and_logs_json_with_monitor_and_commit(world: World) -> None:
    port = free_port()
    world.env["DEPLOY_MONITOR_METRICS_PORT"] = str(port)
    world.start_worker()
    engine = world.engine()
    sha = world.github.add_commit("Add origination fee", BACKEND)
    world.ci.deliver(
        [(sha, BACKEND)], Journey(default_duration=0.2, check_delay=0.2, handoff_delay=0.2)
    )
    resolved = resolve_target(parse_target(sha, REPOSITORY), engine.github)
    monitor, _ = engine.start_monitor(resolved, on_failure="stop")
    wait_for(lambda: (m := engine.store.load(monitor.id)) is not None and m.done, timeout=60)

    def worker_metrics() -> bool:
        try:
            samples = scrape(f"http://127.0.0.1:{port}/metrics")
        except httpx.HTTPError:
            return False
        return value(samples, "deploy_monitor_ticks_total", outcome="deployed") == 1

    wait_for(worker_metrics, timeout=10)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert (
        'deploy_monitor_concourse_requests_total{method="GET",route="/api/v1/builds/{id}/resources"'
        in text
    )

    lines = json_lines(world.worker_logs())  # stderr is a file, not a terminal: JSON
    ours = [line for line in lines if line.get("monitor_id") == monitor.id]
    assert ours, "no log line names the monitor"
    assert all(line["commit"] == sha[:7] for line in ours)
    assert {line.get("stage") for line in ours} >= {"tests", "staging"}
    assert all({"timestamp", "level", "logger", "event"} <= line.keys() for line in lines)
    assert any(
        line["logger"] == "httpx" and line["event"].startswith("HTTP Request:") for line in ours
    )
    for secret in (GITHUB_TOKEN, CONCOURSE_PASSWORD):
        assert secret not in world.worker_logs()


# -- logs -------------------------------------------------------------------------------------


def test_log_lines_during_a_tick_carry_monitor_commit_and_stage(
    ops: Ops, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    logs.configure_logging("INFO", json_lines=True)
    monitor = ops.start_monitor()
    capsys.readouterr()
    jobs.tick(monitor.id, monitor.seq)
    logging.getLogger("after").warning("after the tick")
    lines = json_lines(capsys.readouterr().err)
    during = [line for line in lines if line["logger"] == "httpx"]
    assert during, lines
    for line in during:
        assert line["monitor_id"] == monitor.id
        assert line["commit"] == monitor.short_sha
        assert line["stage"] == "tests"
        assert line["level"] == "info" and line["timestamp"].endswith("Z")
    after = next(line for line in lines if line["logger"] == "after")
    assert "monitor_id" not in after and "commit" not in after  # the context ends with the tick


def test_console_lines_on_a_terminal_json_otherwise(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    logs.configure_logging("INFO", json_lines=False)
    with structlog.contextvars.bound_contextvars(monitor_id="m-1", commit="abc1234"):
        logging.getLogger("workers.jobs").info("kicking %s", "m-1")
    line = capsys.readouterr().err.strip()
    assert not line.startswith("{")
    assert "kicking m-1" in line and "monitor_id=m-1" in line and "commit=abc1234" in line
    logs.configure_logging("WARNING", json_lines=True)
    logging.getLogger("workers.jobs").info("hidden below WARNING")
    structlog.get_logger("bot").warning("structlog too", monitor_id="m-2")
    (entry,) = json_lines(capsys.readouterr().err)
    assert entry["event"] == "structlog too" and entry["monitor_id"] == "m-2"
    assert entry["level"] == "warning" and entry["logger"] == "bot"


def test_secrets_never_reach_a_log_line(
    ops: Ops, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    settings = ops.face.settings
    logs.configure_logging("DEBUG", json_lines=True)  # the most talkative level
    logs.redact_settings(settings)
    log = logging.getLogger("tests.ops")

    monitor = ops.start_monitor()
    jobs.tick(monitor.id, monitor.seq)  # logs in to Concourse, asks GitHub
    ops.face.client.chat_postMessage(channel=CHANNEL, text="hello")  # slack_sdk logs at DEBUG
    access_token = ops.face.engine.concourse._auth._token  # the bearer the flow sends
    assert access_token
    log.warning("careless: github %s, password %s", GITHUB_TOKEN, CONCOURSE_PASSWORD)
    log.warning("header Authorization: Bearer %s", access_token)
    log.warning("slack %s secret %s", DEFAULT_TOKEN, SIGNING_SECRET)
    log.warning("job args ('1234', 'https://hooks.slack.com/commands/T0/1/AbCdEf123')")
    try:
        raise RuntimeError(f"request failed with token {GITHUB_TOKEN}")
    except RuntimeError:
        log.exception("with a traceback")
    structlog.get_logger("tests.ops").warning("as a field", token=GITHUB_TOKEN)

    err = capsys.readouterr().err
    lines = json_lines(err)
    assert any(line["event"].startswith("HTTP Request:") for line in lines)  # httpx: URLs only
    for secret in (
        GITHUB_TOKEN,
        CONCOURSE_PASSWORD,
        DEFAULT_TOKEN,
        SIGNING_SECRET,
        access_token,
        "AbCdEf123",
    ):
        assert secret not in err, secret
    careless = next(line for line in lines if line["event"].startswith("careless"))
    assert careless["event"] == "careless: github ***, password ***"
    assert any("Bearer ***" in line["event"] for line in lines)
    assert any("hooks.slack.com/commands/***" in line["event"] for line in lines)
    traceback = next(line for line in lines if line["event"] == "with a traceback")
    assert "RuntimeError: request failed with token ***" in traceback["exception"]


def test_the_redactor_catches_token_shapes_no_setting_names() -> None:
    redact = logs.Redactor()
    redact.add("short", None, 'pass"word\\with-quotes')
    assert redact("short is too short to redact") == "short is too short to redact"
    assert redact(json.dumps({"p": 'pass"word\\with-quotes'})) == '{"p": "***"}'
    assert redact("xoxb-1234-5678-abcdefgh and xapp-1-A0-123-abcdef") == "xoxb-*** and xapp-***"
    assert redact("ghp_0123456789abcdef github_pat_11ABC_def0123") == "ghp_*** github_pat_***"
    assert redact("redis://:hunter2hunter2@redis:6379/0") == "redis://:***@redis:6379/0"
    assert (
        redact("https://ci.example.com/api/v1/builds/1") == "https://ci.example.com/api/v1/builds/1"
    )
