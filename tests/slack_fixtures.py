"""Machinery shared by the Slack end-to-end suites (test_slack_app, test_faults, test_security).

- `slack_world` (each suite's `sw` fixture): the real Bolt app served by waitress in this
  process, driven by signed requests
  (`SlackRequestSender`), a real `deploy-monitor worker` process posting to the Slack simulator,
  and the GitHub and Concourse simulators of the `world` fixture behind them.
- `Process`: `deploy-monitor bot` / `worker` as separate processes with their output captured.
- `expected_thread` / `thread_record`: the replies a monitor's event log calls for, and what the
  Slack simulator holds, both as (message key, text) pairs, so a test can say "nothing missing,
  nothing repeated" in one comparison.

"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import waitress
from waitress.server import BaseWSGIServer

from bot.slack.app import MAX_BODY_BYTES, create_app, wsgi_app
from bot.slack.face import SlackFace, build_face
from bot.slack.notifier import METADATA_EVENT_TYPE
from bot.slack.render import thread_reply
from bot.slack.settings import BotSettings
from simulators.lana_bank import JobPlan, Journey
from simulators.slack import DEFAULT_TOKEN, Message, SlackSimulator
from simulators.slack_client import SlackRequestSender
from tests.conftest import World, wait_for
from workers.engine import Engine

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
CHANNEL = "C0DEPLOYS"
ALICE, BOB, ADMIN = "U0ALICE", "U0BOB", "U0ADMIN"
BACKEND = ["core/credit/src/fee.rs"]


def fast(**plans: JobPlan) -> Journey:
    return Journey(plans=dict(plans), default_duration=0.3, check_delay=0.2, handoff_delay=0.2)


@dataclass
class SlackWorld:
    world: World
    slack: SlackSimulator
    sender: SlackRequestSender
    face: SlackFace
    url: str

    def channel(self) -> list[Any]:
        return self.slack.messages(CHANNEL)

    def parents(self) -> list[Message]:
        return [m for m in self.channel() if m.thread_ts in (None, m.ts)]

    def parent(self) -> Any:
        parents = self.parents()
        assert len(parents) == 1, [m.text for m in parents]
        return parents[0]

    def replies(self) -> list[Any]:
        if not self.channel():
            return []  # not posted yet
        parent = self.parent()
        return [m for m in self.slack.thread(CHANNEL, parent.ts) if m.ts != parent.ts]

    def reply_texts(self) -> list[str]:
        return [m.text for m in self.replies()]

    def ephemeral_texts(self) -> list[str]:
        return [str(p.payload.get("text", "")) for p in self.slack.webhook_posts]

    def command(self, text: str, user: str = ALICE, channel: str = CHANNEL) -> str:
        response = self.sender.slash_command(text, user_id=user, channel_id=channel)
        assert response.status_code == 200, response.text
        return ack_text(response)

    def wait_reply(self, needle: str, timeout: float = 45.0) -> Any:
        wait_for(lambda: any(needle in t for t in self.reply_texts()), timeout=timeout)
        return next(m for m in self.replies() if needle in m.text)


def ack_text(response: httpx.Response) -> str:
    """The text of a slash command's ack: Bolt answers text-only acks as text/plain."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return str(response.json().get("text", ""))
    return response.text


@contextlib.contextmanager
def serve_bot(face: SlackFace) -> Iterator[str]:
    """The real WSGI app (Bolt behind /slack/events) under waitress on a free port."""
    server = waitress.create_server(
        wsgi_app(face, create_app(face)),
        host="127.0.0.1",
        port=0,
        threads=8,
        max_request_body_size=MAX_BODY_BYTES,
    )
    assert isinstance(server, BaseWSGIServer)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()


def slack_env(world: World, slack: SlackSimulator, **extra: str) -> None:
    """Point the world's settings (hence its workers) at the Slack simulator."""
    world.env.update(
        {
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "DEPLOY_MONITOR_ADMINS": ADMIN,
            **extra,
        }
    )


@contextlib.contextmanager
def slack_world(world: World) -> Iterator[SlackWorld]:
    """What the `sw` fixture of each Slack suite yields (a three-line fixture in each suite,
    so no plugin registration is needed)."""
    slack = SlackSimulator(token=DEFAULT_TOKEN)
    slack.start()
    slack.add_channel(CHANNEL, "deploys")
    slack_env(world, slack)
    face = build_face(BotSettings.model_validate(world.env))
    with serve_bot(face) as url:
        sender = SlackRequestSender(url, SIGNING_SECRET, response_url_base=slack.url + "/hooks")
        world.start_worker()
        try:
            yield SlackWorld(world=world, slack=slack, sender=sender, face=face, url=url)
        finally:
            sender.close()
            slack.stop()


def button_value(message: Any, action_id: str) -> str:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button")


# -- what a thread should hold, and what it holds ---------------------------------------------


def post_key(message: Message) -> str | None:
    """The key a message was posted under (`event:7`, `dm`, …), from its metadata."""
    metadata = message.metadata or {}
    if metadata.get("event_type") != METADATA_EVENT_TYPE:
        return None
    return str(metadata["event_payload"]["key"])


def expected_thread(engine: Engine, monitor_id: str) -> list[tuple[str, str]]:
    """(key, text) of every reply the monitor's event log calls for, in order."""
    monitor = engine.store.load(monitor_id)
    assert monitor is not None, monitor_id
    expected = []
    for _, event in engine.events(monitor_id):
        reply = thread_reply(event, monitor)
        if reply is not None:
            expected.append((f"event:{event.seq}", reply.text))
    return expected


def thread_record(
    slack: SlackSimulator, channel: str, parent_ts: str, *, events_only: bool = True
) -> list[tuple[str, str]]:
    """(key, text) of every reply in a thread, in order (deleted ones excluded)."""
    record = []
    for message in slack.thread(channel, parent_ts):
        key = post_key(message) or "?"
        if events_only and not key.startswith("event:"):
            continue
        record.append((key, message.text))
    return record


# -- deploy-monitor as separate processes ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    """One `deploy-monitor …` process in its own process group, output to `log`."""

    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    _handle: Any = field(default=None, repr=False)

    def start(self) -> Process:
        self._handle = open(self.log, "ab")  # noqa: SIM115 (closed in stop/kill)
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bot", *self.args],
            env={**os.environ, **self.env},
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its scheduler dies with it
        )
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the process group, as an OOM kill or a lost node would."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)
        self._close()

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            self._close()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_healthy(url: str, timeout: float = 20.0) -> None:
    """Wait until a bot process answers /healthz with 200."""

    def healthy() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=timeout, interval=0.1)


def wait_worker_ready(worker: Process | Path, timeout: float = 20.0) -> None:
    """Wait until a worker process (or the one logging to a path) listens on its queue (RQ
    logs it at INFO)."""
    log = worker.log if isinstance(worker, Process) else worker

    def listening() -> bool:
        return log.exists() and "Listening on" in log.read_text(errors="replace")

    wait_for(listening, timeout=timeout, interval=0.05)


def poll_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    """Like wait_for, but returns False on timeout instead of failing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
