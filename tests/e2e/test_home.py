"""The App Home end to end: the real Bolt app behind waitress, signed `app_home_opened` events
and Home clicks, a real worker delivering to the Slack simulator. Each person's Home shows
their own monitors only, keeps up as a stage changes, stops one with its button, lists the
journeys that ended, and its DM toggle turns the end-of-journey DM off."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.slack.render import HOME_DM_ACTION, HOME_STOP_ACTION
from simulators.lana_bank import JobPlan
from tests.conftest import World, wait_for
from tests.slack_fixtures import ALICE, BACKEND, BOB, CHANNEL, SlackWorld, fast, slack_world


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    with slack_world(world) as s:
        yield s


def home(sw: SlackWorld, user: str) -> dict[str, Any]:
    view = sw.slack.home_view(user)
    assert view is not None, f"no Home published for {user}"
    return view


def home_text(sw: SlackWorld, user: str) -> str:
    view = sw.slack.home_view(user)
    return json.dumps(view["blocks"], ensure_ascii=False) if view else ""


def stop_buttons(view: dict[str, Any]) -> list[str]:
    return [
        str(block["accessory"]["value"])
        for block in view["blocks"]
        if block.get("accessory", {}).get("action_id") == HOME_STOP_ACTION
    ]


def published_texts(sw: SlackWorld, user: str) -> list[str]:
    """Every Home published for `user`, oldest first, as text."""
    return [
        json.dumps(p.blocks, ensure_ascii=False)
        for p in sw.slack.published_views
        if p.user_id == user
    ]


def publishes(sw: SlackWorld, user: str) -> int:
    return sum(p.user_id == user for p in sw.slack.published_views)


def test_the_home_shows_the_viewers_monitors_only_and_stops_one(sw: SlackWorld) -> None:
    sw.world.ci.seed_deploys(sw.world.github, 3, since=time.time() - 4 * 3600)
    slow = fast(**{"test-integration": JobPlan(60.0)})
    mine = sw.world.github.add_commit("Alice's change", BACKEND)
    theirs = sw.world.github.add_commit("Bob's change", BACKEND)
    sw.world.ci.deliver([(mine, BACKEND), (theirs, BACKEND)], slow)
    sw.command(mine, user=ALICE)
    sw.command(theirs, user=BOB)
    wait_for(lambda: len(sw.parents()) == 2, timeout=20)
    # The board is posted just before its monitor is stored: the Home reads stored monitors.
    wait_for(lambda: len(sw.face.engine.store.active_ids()) == 2, timeout=20)

    before = publishes(sw, BOB)
    assert sw.sender.app_home_opened(BOB).status_code == 200
    wait_for(lambda: publishes(sw, BOB) > before, timeout=10)
    bobs = home(sw, BOB)
    assert "Bob's change" in home_text(sw, BOB) and "Alice's change" not in home_text(sw, BOB)
    (bob_monitor,) = stop_buttons(bobs)
    assert theirs[:12] in bob_monitor
    assert "slack.com/archives" in home_text(sw, BOB)  # the link to the thread
    # What staging runs (the seeded deploys), and when Bob's commit is expected there.
    assert "Staging runs" in home_text(sw, BOB) and "main is 2 commits ahead" in home_text(sw, BOB)
    assert "Expected on staging at <!date^" in home_text(sw, BOB)

    # The Messages tab is not the Home: nothing is published for it.
    count = publishes(sw, ALICE)
    sw.sender.app_home_opened(ALICE, tab="messages")
    sw.sender.app_home_opened(ALICE)
    wait_for(lambda: publishes(sw, ALICE) > count, timeout=10)
    assert "Alice's change" in home_text(sw, ALICE) and "Bob's" not in home_text(sw, ALICE)

    # Alice cannot stop Bob's monitor with a forged click; Bob can with his button.
    sw.sender.home_action(ALICE, HOME_STOP_ACTION, bob_monitor, home(sw, ALICE))
    wait_for(lambda: any("Only <@U0BOB>" in t for t in published_texts(sw, ALICE)), timeout=10)
    assert sw.face.engine.store.stop_requested_by(bob_monitor) is None
    sw.sender.home_action(BOB, HOME_STOP_ACTION, bob_monitor, bobs)
    # Said at once on his Home (the stopped monitor's own refresh may replace it right after).
    wait_for(lambda: any("Stopping" in t for t in published_texts(sw, BOB)), timeout=10)
    (bob_parent,) = [m for m in sw.parents() if "Bob's" in m.text]

    def stopped() -> bool:
        replies = sw.slack.thread(CHANNEL, bob_parent.ts)
        return any("Stopped following" in m.text for m in replies)

    wait_for(stopped, timeout=20)
    # The notifier refreshes Bob's Home once the stop is delivered: a journey, no monitor.
    wait_for(lambda: ": stopped" in home_text(sw, BOB) and not stop_buttons(home(sw, BOB)))
    assert len(sw.face.engine.store.active_ids()) == 1


def test_the_dm_toggle_turns_the_end_of_journey_dm_off(sw: SlackWorld) -> None:
    sw.sender.app_home_opened(ALICE)
    wait_for(lambda: sw.slack.home_view(ALICE) is not None, timeout=10)
    assert "journeys ends:* on" in home_text(sw, ALICE)
    sw.sender.home_action(ALICE, HOME_DM_ACTION, "off", home(sw, ALICE))
    wait_for(lambda: "journeys ends:* off" in home_text(sw, ALICE), timeout=10)

    sha = sw.world.github.add_commit("Quiet change", BACKEND)
    sw.world.ci.deliver([(sha, BACKEND)], fast(**{"test-integration": JobPlan(2.0)}))
    sw.command(sha, user=ALICE)
    # The Home follows the journey as its stages change, without Alice opening it again.
    wait_for(lambda: "Quiet change" in home_text(sw, ALICE), timeout=20)
    sw.wait_reply("Deployment complete!")
    wait_for(lambda: "deployed in" in home_text(sw, ALICE), timeout=10)  # the journey
    assert not stop_buttons(home(sw, ALICE))
    assert sw.slack.messages(sw.slack.dm_channel_id(ALICE)) == []

    # Turned on again, the next journey ends with a DM as before.
    sw.sender.home_action(ALICE, HOME_DM_ACTION, "on", home(sw, ALICE))
    wait_for(lambda: "journeys ends:* on" in home_text(sw, ALICE), timeout=10)
    again = sw.world.github.add_commit("Loud change", BACKEND)
    sw.world.ci.deliver([(again, BACKEND)], fast())
    sw.command(again, user=ALICE)
    wait_for(lambda: len(sw.slack.messages(sw.slack.dm_channel_id(ALICE))) == 1, timeout=45)
