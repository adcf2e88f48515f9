"""ops/healthcheck.py, the image's HEALTHCHECK: the bot by /healthz, a worker by its metrics."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest

from tests.slack_fixtures import free_port
from tests.unit.ops.promql import ROOT


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "ops" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = load()


class Answers:
    """What the fake process answers: path → (status, body)."""

    routes: dict[str, tuple[int, bytes]] = {}


@pytest.fixture
def server() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = Answers.routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll: shutdown() waits for it (0.5 s by default, for every test).
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["/opt/venv/bin/python", "/opt/venv/bin/deploy-monitor", "bot"], "bot"),
        (["/opt/venv/bin/python3", "/opt/venv/bin/deploy-monitor", "worker"], "worker"),
        (["python", "-m", "bot", "worker", "--burst"], "worker"),
        (["python", "-m", "simulators.stack"], None),
        (["/sbin/docker-init", "--", "deploy-monitor", "bot"], "bot"),
        (["redis-server", "*:6379"], None),
    ],
)
def test_the_command_is_read_from_the_process_arguments(
    args: list[str], command: str | None
) -> None:
    assert healthcheck.command_of(args) == command


def test_the_bot_is_healthy_when_healthz_answers_200(
    server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.setenv("PORT", str(server))
    Answers.routes = {"/healthz": (200, b"ok\n")}
    assert healthcheck.healthy("bot")
    Answers.routes = {"/healthz": (503, b"redis unreachable\n")}
    assert not healthcheck.healthy("bot")
    monkeypatch.setenv("PORT", str(free_port()))  # nothing listens
    assert not healthcheck.healthy("bot")


def test_a_worker_is_healthy_while_its_metrics_say_redis_answers(
    server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_MONITOR_METRICS_PORT", str(server))
    Answers.routes = {"/metrics": (200, b"deploy_monitor_redis_up 1.0\n")}
    assert healthcheck.healthy("worker")
    Answers.routes = {"/metrics": (200, b"deploy_monitor_redis_up 0.0\n")}
    assert not healthcheck.healthy("worker")
    # A Socket Mode bot has no /healthz: its metrics port speaks for it.
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    assert not healthcheck.healthy("bot")


def test_without_anything_to_probe_it_is_healthy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPLOY_MONITOR_METRICS_PORT", raising=False)
    assert healthcheck.healthy("worker")
    assert healthcheck.healthy(None)
    assert healthcheck.healthy("check")
