"""The Slack face end to end over HTTP: the real Bolt app served by waitress, driven by signed
requests; a real worker process (RQ, scheduler on) posting to the Slack simulator; GitHub and
Concourse simulators behind them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.slack.app import MAX_BODY_BYTES
from simulators.lana_bank import JobPlan
from tests.conftest import World, wait_for
from tests.slack_fixtures import (
    ALICE,
    BACKEND,
    BOB,
    CHANNEL,
    SlackWorld,
    button_value,
    fast,
    slack_world,
)


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    with slack_world(world) as s:
        yield s


def test_happy_path_one_parent_live_board_thread_and_dm(sw: SlackWorld) -> None:
    sw.world.github.add_pull_request(1234, "Add origination fee", BACKEND)
    sw.world.ci.follow_main(sw.world.github, fast())
    ack = sw.command("1234")
    assert "Looking up PR #1234" in ack
    final = sw.wait_reply("Deployment complete!")
    sha = sw.world.github.merges[0][1]
    assert len(sw.world.github.merges) == 1
    assert (
        f"Commit {sha[:7]} (Add origination fee (#1234)) is now deployed to staging." in final.text
    )
    assert "Timeline:" in final.text and "Total:" in final.text
    assert final.reply_broadcast
    texts = sw.reply_texts()
    assert sum("passed" in t for t in texts) == 5
    assert texts[-1] == final.text  # the final report is the last reply
    assert len(texts) == len(set(texts))
    parent = sw.parent()
    assert parent.history, "the status board was edited in place"
    assert "staging" in parent.text or any("staging" in str(b) for b in parent.blocks)
    # The DM follows the final reply; under load it may land a moment later.
    wait_for(lambda: len(sw.slack.messages(sw.slack.dm_channel_id(ALICE))) == 1, timeout=10)
    dm = sw.slack.messages(sw.slack.dm_channel_id(ALICE))
    assert len(dm) == 1 and "staging" in dm[0].text
    assert sw.ephemeral_texts() == []  # nothing went wrong, nothing to tell privately


def test_unapproved_pr_gets_an_ephemeral_refusal_and_nothing_else(sw: SlackWorld) -> None:
    sw.world.github.add_pull_request(77, "Risky", BACKEND, review_decision="REVIEW_REQUIRED")
    sw.command("77")
    wait_for(lambda: sw.ephemeral_texts(), timeout=20)
    assert "not approved" in sw.ephemeral_texts()[0]
    assert sw.world.github.merges == []
    assert sw.channel() == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not a target", "Give one of"),
        ("https://github.com/someone/else/pull/3", "GaloyMoney/lana-bank"),
        ("<!channel> deploy", "Give one of"),
        ("stop", "Say which one"),
        ("x" * 5000, "Give one of"),
    ],
)
def test_bad_input_is_answered_privately_with_usage(sw: SlackWorld, text: str, needle: str) -> None:
    ack = sw.command(text)
    assert needle.lower() in ack.lower(), ack
    assert "<!channel>" not in ack
    time.sleep(0.3)
    assert sw.channel() == []
    assert sw.world.github.write_requests == 0
    assert sw.face.engine.queue.count == 0


def test_help_and_list(sw: SlackWorld) -> None:
    assert "/deploy-monitor" in sw.command("help")
    assert "Nothing is being followed" in sw.command("list")


def test_duplicate_command_links_to_the_existing_thread(sw: SlackWorld) -> None:
    sw.world.github.add_pull_request(1234, "Add fee", BACKEND)
    sw.world.ci.follow_main(sw.world.github, fast(**{"test-integration": JobPlan(3.0)}))
    sw.command("1234")
    wait_for(lambda: len(sw.channel()) == 1, timeout=20)
    sw.command("#1234", user=BOB)
    wait_for(lambda: sw.ephemeral_texts(), timeout=20)
    assert "already being followed" in sw.ephemeral_texts()[0]
    assert "slack.com/archives" in sw.ephemeral_texts()[0]
    assert len(sw.world.github.merges) == 1
    assert "PR #1234" in sw.command("list")
    sw.wait_reply("Deployment complete!")
    assert len([m for m in sw.channel() if m.thread_ts is None]) == 1


def _failing_run(sw: SlackWorld, *, rerun_after: float | None) -> Any:
    sha = sw.world.github.add_commit("Break bats", BACKEND)
    plan = JobPlan(0.3, "failed", "ok 1\nnot ok 2 <disbursal> & more\n", rerun_after=rerun_after)
    sw.world.ci.deliver([(sha, BACKEND)], fast(**{"test-bats": plan}))
    sw.command(sha[:8])
    return sw.wait_reply("test-bats")


def test_failure_stranger_ignored_then_requester_stops(sw: SlackWorld) -> None:
    failure = _failing_run(sw, rerun_after=None)
    assert failure.reply_broadcast
    assert "not ok 2 &lt;disbursal&gt; &amp; more" in str(failure.blocks)
    assert "dm_stop" in str(failure.blocks) and "dm_continue" in str(failure.blocks)
    sw.sender.reaction_added(BOB, "octagonal_sign", CHANNEL, failure.ts)
    wait_for(lambda: any(e.user == BOB for e in sw.slack.ephemerals), timeout=10)
    assert "Only <@U0ALICE>" in next(e.text for e in sw.slack.ephemerals if e.user == BOB)
    assert sw.face.engine.store.active_ids()  # still running
    sw.sender.reaction_added(ALICE, "octagonal_sign", CHANNEL, failure.ts)
    sw.wait_reply("Stopped")
    edited = sw.slack.message(CHANNEL, failure.ts)
    assert edited is not None and "dm_stop" not in str(edited.blocks)
    assert "<@U0ALICE>" in str(edited.blocks)
    assert sw.face.engine.store.active_ids() == []


def test_failure_continue_button_then_rerun_deploys(sw: SlackWorld) -> None:
    failure = _failing_run(sw, rerun_after=1.0)
    response = sw.sender.block_action(
        ALICE, "dm_continue", button_value(failure, "dm_continue"), CHANNEL, failure.ts
    )
    assert response.status_code == 200
    sw.wait_reply("Deployment complete!")
    edited = sw.slack.message(CHANNEL, failure.ts)
    assert edited is not None and "dm_continue" not in str(edited.blocks)


def test_duplicate_reaction_delivery_is_acted_on_once(sw: SlackWorld) -> None:
    failure = _failing_run(sw, rerun_after=None)
    sw.sender.reaction_added(BOB, "x", CHANNEL, failure.ts)
    event_id = sw.sender.last_event_id
    sw.sender.reaction_added(BOB, "x", CHANNEL, failure.ts, event_id=event_id, retry_num=1)
    sw.sender.reaction_added(BOB, "x", CHANNEL, failure.ts, event_id=event_id, retry_num=2)
    wait_for(lambda: any(e.user == BOB for e in sw.slack.ephemerals), timeout=10)
    time.sleep(0.5)
    assert len([e for e in sw.slack.ephemerals if e.user == BOB]) == 1


def test_forged_and_stale_requests_are_rejected(sw: SlackWorld) -> None:
    sw.world.github.add_pull_request(5, "Sneaky", BACKEND)
    sw.sender.wrong_secret = True
    assert sw.sender.slash_command("5", user_id=ALICE, channel_id=CHANNEL).status_code == 401
    sw.sender.wrong_secret = False
    sw.sender.timestamp_offset = -6 * 60
    assert sw.sender.slash_command("5", user_id=ALICE, channel_id=CHANNEL).status_code == 401
    sw.sender.timestamp_offset = 0
    import httpx

    huge = httpx.post(sw.url + "/slack/events", content=b"a=" + b"x" * (MAX_BODY_BYTES + 10))
    assert huge.status_code == 413
    time.sleep(0.3)
    assert sw.face.engine.queue.count == 0 and sw.world.github.write_requests == 0
    assert httpx.get(sw.url + "/healthz").text == "ok\n"


def test_rate_limited_posts_are_delayed_not_lost(sw: SlackWorld) -> None:
    sha = sw.world.github.add_commit("Rate limited", BACKEND)
    sw.world.ci.deliver([(sha, BACKEND)], fast(**{"test-integration": JobPlan(1.0)}))
    sw.command(sha)
    wait_for(lambda: len(sw.channel()) == 1, timeout=20)
    sw.slack.rate_limit_next("chat.postMessage", n=3, retry_after=1)
    sw.wait_reply("Deployment complete!")
    texts = sw.reply_texts()
    assert len(texts) == len(set(texts))
    assert sum("passed" in t for t in texts) == 5
    assert texts[-1].startswith("Deployment complete!") or "Deployment complete!" in texts[-1]


def test_public_channel_is_joined_and_private_needs_an_invite(sw: SlackWorld) -> None:
    sw.slack.add_channel("C0PUBLIC", "public", bot_member=False)
    sw.slack.add_channel("G0PRIVATE", "secret", is_private=True, bot_member=False)
    sw.world.github.add_pull_request(8, "In private", BACKEND)
    sw.command("8", channel="G0PRIVATE")
    wait_for(lambda: sw.ephemeral_texts(), timeout=20)
    assert "/invite" in sw.ephemeral_texts()[0]
    assert sw.world.github.merges == []
    sha = sw.world.github.add_commit("In public", BACKEND)
    sw.command(sha, channel="C0PUBLIC")
    wait_for(lambda: len(sw.slack.messages("C0PUBLIC")) == 1, timeout=20)
    assert sw.slack.channel("C0PUBLIC").bot_member
