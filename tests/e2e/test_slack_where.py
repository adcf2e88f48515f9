"""`/deploy-monitor where` and `status` in Slack end to end: the real Bolt app behind waitress
driven by signed requests, a real worker answering through the command's response_url. The
answers are ephemeral (only the asker sees them: nothing in the channel), never merge and never
start a monitor; the `where` answer's Follow it button starts exactly one, however many times
and by however many people it is clicked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.slack.render import FOLLOW_ACTION
from simulators.lana_bank import JobPlan
from tests.conftest import REPOSITORY, World, wait_for
from tests.slack_fixtures import ALICE, BACKEND, BOB, CHANNEL, SlackWorld, fast, slack_world


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    with slack_world(world) as s:
        yield s


def answers(sw: SlackWorld) -> list[dict[str, Any]]:
    return [p.payload for p in sw.slack.webhook_posts]


def wait_answer(sw: SlackWorld, needle: str, timeout: float = 20.0) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((a for a in answers(sw) if needle in str(a.get("blocks") or a["text"])), None)

    wait_for(lambda: found() is not None, timeout=timeout)
    answer = found()
    assert answer is not None
    return answer


def follow_value(answer: dict[str, Any]) -> str:
    for block in answer.get("blocks") or []:
        for element in block.get("elements", []):
            if element.get("action_id") == FOLLOW_ACTION:
                return str(element["value"])
    raise AssertionError("no Follow it button")


def click_follow(sw: SlackWorld, user: str, answer: dict[str, Any]) -> None:
    # The ephemeral message the button is on, as Slack puts it in the click's payload.
    message = {
        "type": "message",
        "text": answer["text"],
        "ts": "1.000001",
        "blocks": answer["blocks"],
    }
    response = sw.sender.block_action(
        user, FOLLOW_ACTION, follow_value(answer), CHANNEL, "1.000001", message=message
    )
    assert response.status_code == 200


def test_where_is_private_and_its_follow_button_starts_exactly_one_monitor(
    sw: SlackWorld,
) -> None:
    past = sw.world.ci.seed_deploys(sw.world.github, 3, since=time.time() - 4 * 3600)
    sha = sw.world.github.add_commit("In tests <now> & then", BACKEND)
    sw.world.ci.deliver([(sha, BACKEND)], fast(**{"test-integration": JobPlan(8.0)}))

    ack = sw.command(f"where {sha[:10]}")
    assert "Looking where commit" in ack
    answer = wait_answer(sw, "Where is")
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert "In tests &lt;now&gt; &amp; then" in str(answer["blocks"])
    assert "Path: *backend*" in str(answer["blocks"])
    # The button names the repository: a click is read in a channel that may mean another.
    assert follow_value(answer) == f"{REPOSITORY}@{sha}"
    # A question: nothing in the channel, nothing merged, nothing followed.
    assert sw.channel() == [] and sw.world.github.write_requests == 0
    assert sw.face.engine.store.active_ids() == []

    # Alice clicks twice in a row, then Bob clicks too: one monitor, Alice's.
    click_follow(sw, ALICE, answer)
    click_follow(sw, ALICE, answer)
    wait_for(lambda: len(sw.parents()) == 1, timeout=20)
    click_follow(sw, BOB, answer)
    wait_for(lambda: sum("already being followed" in a["text"] for a in answers(sw)) == 2, 40)
    assert len(sw.parents()) == 1
    (monitor_id,) = sw.face.engine.store.active_ids()
    monitor = sw.face.engine.store.load(monitor_id)
    assert monitor is not None and monitor.sha == sha and monitor.requester == ALICE
    final = sw.wait_reply("Deployment complete!")
    assert len(sw.parents()) == 1
    # The final report links what this deploy moved staging over (the last seeded deploy…it).
    assert "This deploy moved staging over 1 commit" in str(final.blocks)
    assert f"/compare/{past[-1]}...{sha}" in str(final.blocks)

    # Asked again once it is followed and deployed: on staging, and no button.
    sw.command(f"where {sha[:10]}", user=BOB)
    again = wait_answer(sw, "On staging since")
    assert FOLLOW_ACTION not in str(again["blocks"])


def test_where_an_open_pr_is_not_merged_and_bad_input_gets_usage(sw: SlackWorld) -> None:
    sw.world.github.add_pull_request(41, "Not yet", BACKEND, review_decision="REVIEW_REQUIRED")
    sw.command("where #41")
    answer = wait_answer(sw, "not merged yet")
    assert "review required" in str(answer["blocks"])
    assert FOLLOW_ACTION not in str(answer["blocks"])
    assert sw.world.github.merges == [] and sw.channel() == []

    ack = sw.command("where <!channel>")
    assert "Give one of" in ack and "<!channel>" not in ack
    sw.command("where 99999")
    missing = wait_answer(sw, "99999")
    assert missing["response_type"] == "ephemeral"
    assert sw.face.engine.store.active_ids() == []


def test_status_says_what_staging_runs_and_how_far_behind_main_is(sw: SlackWorld) -> None:
    sw.world.ci.seed_deploys(sw.world.github, 2, since=time.time() - 5 * 3600)
    sw.world.github.add_commit("Waiting 1", BACKEND, committed_at=time.time() - 3 * 3600)
    sw.world.github.add_commit("Waiting 2", BACKEND)
    ack = sw.command("status")
    assert "Looking at the chain" in ack
    answer = wait_answer(sw, "Staging runs")
    assert answer["response_type"] == "ephemeral"
    assert "main is 2 commits ahead, the oldest waiting 3h" in str(answer["blocks"])
    assert "/compare/" in str(answer["blocks"])
    assert sw.channel() == []
