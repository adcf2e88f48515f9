"""Socket Mode end to end: `deploy-monitor bot` with an app-level token connects out to the
Socket Mode simulator (no HTTP server, no signing secret), receives slash commands, reactions
and button clicks as envelopes and acknowledges them; a real worker does the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from simulators.lana_bank import JobPlan
from simulators.slack import DEFAULT_TOKEN, Message, SlackSimulator
from simulators.socket_mode import DEFAULT_APP_TOKEN, SocketModeSimulator
from tests.conftest import World, wait_for
from tests.slack_fixtures import (
    ALICE,
    BACKEND,
    BOB,
    CHANNEL,
    Process,
    button_value,
    fast,
    slack_env,
)
from workers.monitor import monitor_id_for


@dataclass
class SocketWorld:
    world: World
    slack: SlackSimulator
    sockets: SocketModeSimulator
    bot: Process


@pytest.fixture
def socket_world(world: World, tmp_path: Path) -> Iterator[SocketWorld]:
    slack = SlackSimulator(token=DEFAULT_TOKEN)
    slack.start()
    slack.add_channel(CHANNEL, "deploys")
    sockets = SocketModeSimulator(slack)
    sockets.start()
    slack_env(world, slack)
    del world.env["SLACK_SIGNING_SECRET"]  # Socket Mode needs none
    world.env["SLACK_APP_TOKEN"] = sockets.app_token
    bot = Process(["bot"], dict(world.env), tmp_path / "bot.log").start()
    world.start_worker()
    try:
        sockets.wait_connected()
        yield SocketWorld(world=world, slack=slack, sockets=sockets, bot=bot)
    finally:
        bot.stop()
        sockets.stop()
        slack.stop()


# -- the simulator behaves like Slack's end -------------------------------------------------------


def test_only_an_app_token_opens_a_connection_and_each_url_works_once() -> None:
    slack = SlackSimulator()
    slack.start()
    sockets = SocketModeSimulator(slack)
    sockets.start()
    try:
        url = f"{slack.api_url}apps.connections.open"

        def open_with(token: str) -> dict[str, object]:
            answer = httpx.post(url, headers={"Authorization": f"Bearer {token}"})
            return dict(answer.json())

        assert open_with(DEFAULT_TOKEN) == {"ok": False, "error": "not_allowed_token_type"}
        assert open_with("xapp-1-someone-else") == {"ok": False, "error": "invalid_auth"}
        opened = open_with(DEFAULT_APP_TOKEN)
        assert opened["ok"] is True and str(opened["url"]).startswith("ws://127.0.0.1:")
        # The app token is for connections only.
        posted = httpx.post(
            f"{slack.api_url}chat.postMessage",
            headers={"Authorization": f"Bearer {DEFAULT_APP_TOKEN}"},
            data={"channel": CHANNEL, "text": "hi"},
        ).json()
        assert posted == {"ok": False, "error": "not_allowed_token_type"}
        with connect(str(opened["url"])) as client:
            hello = json.loads(client.recv(timeout=5))
            assert hello["type"] == "hello" and hello["connection_info"]["app_id"]
        with (
            pytest.raises(InvalidStatus) as refused,
            connect(str(opened["url"])) as client,
        ):
            client.recv(timeout=5)
        assert refused.value.response.status_code == 403
    finally:
        sockets.stop()
        slack.stop()


# -- the bot over Socket Mode ---------------------------------------------------------------------


def test_a_slash_command_over_socket_mode_merges_and_follows_to_staging(
    socket_world: SocketWorld,
) -> None:
    sw = socket_world
    github = sw.world.github
    github.add_pull_request(1234, "Add origination fee", BACKEND)
    sw.world.ci.follow_main(github, fast())
    ack = sw.sockets.slash_command("1234", user_id=ALICE, channel_id=CHANNEL)
    assert "Looking up PR #1234" in str(ack.get("text"))
    wait_for(lambda: len(github.merges) == 1, timeout=30)
    monitor_id = monitor_id_for(github.repository, github.merges[0][1])

    def final_reply() -> bool:
        parents = [m for m in sw.slack.messages(CHANNEL) if m.thread_ts is None]
        return bool(parents) and any(
            "Deployment complete!" in r.text for r in sw.slack.thread(CHANNEL, parents[0].ts)
        )

    wait_for(final_reply, timeout=90)
    assert len([m for m in sw.slack.messages(CHANNEL) if m.thread_ts is None]) == 1
    engine = sw.world.engine()
    monitor = engine.store.load(monitor_id)
    assert monitor is not None and monitor.status == "deployed"


def test_bad_input_gets_usage_in_the_ack(socket_world: SocketWorld) -> None:
    ack = socket_world.sockets.slash_command("two words", user_id=ALICE, channel_id=CHANNEL)
    text = str(ack.get("text"))
    assert "Give one target" in text and "Give one of" in text
    assert socket_world.world.github.merge_attempts == []


def test_a_failure_is_decided_by_reaction_and_button_over_socket_mode(
    socket_world: SocketWorld,
) -> None:
    sw = socket_world
    github = sw.world.github
    sha = github.add_commit("Flaky change", BACKEND)
    sw.world.ci.deliver(
        [(sha, BACKEND)],
        fast(**{"test-bats": JobPlan(0.5, "failed", "not ok 1 disbursal\n", rerun_after=60.0)}),
    )
    sw.sockets.slash_command(sha[:10], user_id=ALICE, channel_id=CHANNEL)

    def failure_message() -> Message | None:
        parents = [m for m in sw.slack.messages(CHANNEL) if m.thread_ts is None]
        for message in sw.slack.thread(CHANNEL, parents[0].ts) if parents else []:
            if "dm_stop" in str(message.blocks):
                return message
        return None

    wait_for(lambda: failure_message() is not None, timeout=60)
    message = failure_message()
    assert message is not None
    monitor_id = monitor_id_for(github.repository, sha)
    engine = sw.world.engine()
    # A stranger's reaction is refused (privately); the requester's button click stops it.
    sw.sockets.reaction_added(BOB, "octagonal_sign", CHANNEL, message.ts)
    wait_for(lambda: any(e.user == BOB for e in sw.slack.ephemerals), timeout=10)
    assert engine.store.decision(monitor_id, 1) is None
    sw.sockets.block_action(ALICE, "dm_stop", button_value(message, "dm_stop"), CHANNEL, message.ts)

    def stopped() -> bool:
        monitor = engine.store.load(monitor_id)
        return monitor is not None and monitor.status == "stopped"

    wait_for(stopped, timeout=30)
    decision = engine.store.decision(monitor_id, 1)
    assert decision is not None and decision.by == ALICE and decision.choice == "stop"


def test_the_bot_reconnects_when_slack_asks_it_to(socket_world: SocketWorld) -> None:
    sw = socket_world
    opened = sw.sockets.connections_opened
    sw.sockets.request_refresh()
    sw.sockets.wait_refreshed()
    assert sw.sockets.connections_opened == opened + 1  # through apps.connections.open again
    sw.sockets.wait_connected()
    ack = sw.sockets.slash_command("help", user_id=ALICE, channel_id=CHANNEL)
    assert "follows a commit" in str(ack.get("text"))
    assert sw.bot.alive
