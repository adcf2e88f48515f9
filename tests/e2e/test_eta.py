"""The expected time at staging on the status board, end to end: a history of past deploys
(realistic durations) gives each stage its usual time; a real worker follows a commit and edits
the board in the Slack simulator as stages pass."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from simulators.lana_bank import JobPlan
from tests.conftest import World, wait_for
from tests.slack_fixtures import BACKEND, SlackWorld, fast, slack_world
from workers.monitor import monitor_id_for

ETA = re.compile(r":stopwatch: Expected on staging ~(\S+(?: \S+)?) \(from the usual stage times\)")


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    with slack_world(world) as s:
        yield s


def board_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(str(b["text"]["text"]) for b in blocks if b.get("type") == "section")


def passed(board: str, label: str) -> bool:
    return f":white_check_mark: *{label}* — passed" in board


def test_the_board_shows_the_expected_time_and_moves_it_as_stages_pass(sw: SlackWorld) -> None:
    world = sw.world
    world.ci.seed_deploys(world.github, 5, since=time.time() - 8 * 3600)
    # Seconds where they usually take minutes, but long enough for a tick to see each pass.
    steady = JobPlan(duration=1.5)
    world.ci.follow_main(world.github, fast(**{"test-integration": steady, "build-rc": steady}))
    sha = world.github.add_commit("Add origination fee", BACKEND)
    sw.command(sha[:10])
    sw.wait_reply("Deployment complete!")
    parent = sw.parent()
    boards = [board_text(v.blocks) for v in parent.history] + [board_text(parent.blocks)]

    after_tests = next(
        b for b in boards if passed(b, "lana-bank tests") and not passed(b, "build-rc")
    )
    after_rc = next(b for b in boards if passed(b, "build-rc"))
    first, second = ETA.search(after_tests), ETA.search(after_rc)
    assert first is not None, after_tests
    assert second is not None, after_rc
    # The stages ran in seconds where they usually take minutes: staging is expected sooner.
    assert first.group(1) != second.group(1)
    # The usual durations are shown next to the real ones (the history's, about 14m for tests).
    assert re.search(r"passed in \d+s \(usual 1[2-6]m \d\ds\)", after_rc), after_rc
    assert ETA.search(boards[-1]) is None  # deployed: nothing left to expect

    # The board is edited when something happens, never on a tick where only the time moved.
    monitor = sw.face.engine.store.load(monitor_id_for(world.github.repository, sha))
    assert monitor is not None
    assert len(parent.history) <= monitor.events_emitted
    final = sw.wait_reply("Deployment complete!")
    assert re.search(r"lana-bank tests: \d+s \(usual 1[2-6]m \d\ds\)", final.text), final.text


def test_without_a_history_no_time_is_promised(sw: SlackWorld) -> None:
    world = sw.world
    world.ci.follow_main(world.github, fast())
    sha = world.github.add_commit("Add origination fee", BACKEND)
    sw.command(sha[:10])
    sw.wait_reply("Deployment complete!")
    parent = sw.parent()
    boards = [board_text(v.blocks) for v in parent.history] + [board_text(parent.blocks)]
    assert not any(ETA.search(b) for b in boards)
    wait_for(lambda: sw.parent().text.startswith("Deployed"), timeout=10)
