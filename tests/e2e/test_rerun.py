"""Rerun from the failure message, end to end: the Bolt app over signed HTTP, a real worker
process, real Redis and the simulators; the simulated lana-bank CI runs a rerun asked for over
the API like any build. And `watch --on-failure rerun` in the terminal."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.watch import EXIT_FAILED, EXIT_OK, follow_target
from simulators.lana_bank import JobPlan
from tests.conftest import CONCOURSE_USER, World, wait_for
from tests.slack_fixtures import (
    ADMIN,
    ALICE,
    BACKEND,
    BOB,
    CHANNEL,
    SlackWorld,
    button_value,
    fast,
    slack_world,
)
from workers.monitor import monitor_id_for

RERUN = "dm_rerun"
TIMEOUT = 45.0


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    with slack_world(world) as s:
        yield s


def flaky(rerun_outcomes: tuple[str, ...] = ("succeeded",)) -> JobPlan:
    """test-bats fails, and waits for a rerun asked for over the API."""
    return JobPlan(
        0.3, "failed", "not ok 3 disbursal\n", await_rerun=30.0, api_rerun_outcomes=rerun_outcomes
    )


def rerun_value(message: Any) -> str:
    for block in message.blocks:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == RERUN:
            return str(accessory["value"])
    raise AssertionError("no Rerun button")


def failing_run(sw: SlackWorld, plan: JobPlan) -> Any:
    sha = sw.world.github.add_commit("Break bats", BACKEND)
    sw.world.ci.deliver([(sha, BACKEND)], fast(**{"test-bats": plan}))
    sw.command(sha[:8])
    failure = sw.wait_reply("test-bats")
    # The bot records which prompt the message asks right after Slack took it: a press in
    # between is told the message is no longer active (a loaded CI machine made that happen).
    wait_for(lambda: sw.face.threads.prompt_at(CHANNEL, failure.ts) is not None, timeout=10)
    return failure


def press(sw: SlackWorld, user: str, failure: Any) -> None:
    response = sw.sender.block_action(user, RERUN, rerun_value(failure), CHANNEL, failure.ts)
    assert response.status_code == 200


def reruns_built(sw: SlackWorld) -> list[dict[str, Any]]:
    builds = sw.world.concourse.get_build
    ids = range(1, 400)
    found = []
    for build_id in ids:
        try:
            build = builds(build_id)
        except KeyError:
            break
        if build.get("rerun_of") and build.get("created_by") == CONCOURSE_USER:
            found.append(build)
    return found


def test_the_requester_presses_rerun_and_the_rerun_is_followed_to_staging(
    sw: SlackWorld,
) -> None:
    failure = failing_run(sw, flaky())
    assert RERUN in str(failure.blocks) and "dm_continue" in str(failure.blocks)
    press(sw, ALICE, failure)
    told = sw.wait_reply("asked Concourse to rerun")
    [rerun] = reruns_built(sw)
    assert f"<@{ALICE}> asked Concourse to rerun test-bats #{rerun['rerun_of']['name']}" in (
        told.text + str(told.blocks)
    )
    assert f"test-bats #{rerun['name']}" in str(told.blocks)
    assert rerun["name"].endswith(".1")
    sw.wait_reply("Deployment complete!")
    assert len(sw.world.concourse.rerun_requests) == 1
    edited = sw.slack.message(CHANNEL, failure.ts)
    assert edited is not None and RERUN not in str(edited.blocks)
    assert "dm_continue" not in str(edited.blocks)
    assert f"<@{ALICE}> asked for a rerun: test-bats #{rerun['name']}" in str(edited.blocks)
    assert sw.ephemeral_texts() == []
    texts = sw.reply_texts()
    assert any(f"passed on {rerun['name']}" in t for t in texts), texts


def test_a_stranger_is_refused_and_nothing_is_asked_of_concourse(sw: SlackWorld) -> None:
    failure = failing_run(sw, flaky())
    press(sw, BOB, failure)
    wait_for(sw.ephemeral_texts, timeout=10)
    assert sw.ephemeral_texts() == [
        f"Only <@{ALICE}> (or an admin) can decide whether to continue or stop."
    ]
    time.sleep(0.5)
    assert sw.world.concourse.rerun_requests == []
    assert reruns_built(sw) == []
    assert sw.face.engine.store.active_ids()
    edited = sw.slack.message(CHANNEL, failure.ts)
    assert edited is not None and RERUN in str(edited.blocks)  # still open for Alice


def test_pressed_twice_and_by_an_admin_at_once_it_reruns_once(sw: SlackWorld) -> None:
    failure = failing_run(sw, flaky())
    presses = [
        threading.Thread(target=press, args=(sw, user, failure)) for user in (ALICE, ALICE, ADMIN)
    ]
    for thread in presses:
        thread.start()
    for thread in presses:
        thread.join(10)
    sw.wait_reply("Deployment complete!")
    assert len(sw.world.concourse.rerun_requests) == 1
    assert len(reruns_built(sw)) == 1
    assert sum("asked Concourse to rerun" in t for t in sw.reply_texts()) == 1
    wait_for(lambda: len(sw.ephemeral_texts()) == 2, timeout=10)
    assert all("already asked for a rerun" in t for t in sw.ephemeral_texts())


def test_a_rerun_refused_by_concourse_is_said_plainly_with_the_role(sw: SlackWorld) -> None:
    sw.world.concourse.set_role(CONCOURSE_USER, "viewer")  # reads work, reruns do not
    failure = failing_run(sw, flaky())
    press(sw, ALICE, failure)
    wait_for(sw.ephemeral_texts, timeout=10)
    [said] = sw.ephemeral_texts()
    assert said.startswith(":no_entry: Concourse refused to rerun test-bats #")
    assert f"user {CONCOURSE_USER} may not rerun builds in Concourse team dev" in said
    assert "needs the pipeline-operator role or above" in said
    assert "Traceback" not in said
    assert len(sw.world.concourse.rerun_requests) == 1 and reruns_built(sw) == []
    edited = sw.slack.message(CHANNEL, failure.ts)
    assert edited is not None and RERUN in str(edited.blocks)  # continue and stop still work
    sw.sender.block_action(ALICE, "dm_stop", button_value(failure, "dm_stop"), CHANNEL, failure.ts)
    sw.wait_reply("Stopped")


# -- the terminal ---------------------------------------------------------------------------------


def watch(world: World, sha: str, policy: str, answer: str = "stop") -> tuple[int, list[str]]:
    lines: list[str] = []
    code = follow_target(
        world.engine(),
        spec_text=sha,
        policy=policy,  # type: ignore[arg-type]
        start_worker=False,
        echo=lines.append,
        ask=lambda _q: answer,
        timeout=TIMEOUT,
    )
    return code, lines


def test_watch_on_failure_rerun_reruns_once_and_deploys(world: World) -> None:
    sha = world.github.add_commit("Break bats", BACKEND)
    world.ci.deliver([(sha, BACKEND)], fast(**{"test-bats": flaky()}))
    world.start_worker()
    code, lines = watch(world, sha, "rerun")
    out = "\n".join(lines)
    assert code == EXIT_OK, out + world.worker_logs()
    assert "↻ rerunning it once (--on-failure rerun)" in out
    assert "asked by policy: following test-bats #" in out
    assert len(world.concourse.rerun_requests) == 1


def test_watch_on_failure_rerun_stops_on_a_second_failure(world: World) -> None:
    sha = world.github.add_commit("Break bats", BACKEND)
    world.ci.deliver([(sha, BACKEND)], fast(**{"test-bats": flaky(("failed",))}))
    world.start_worker()
    code, lines = watch(world, sha, "rerun")
    out = "\n".join(lines)
    assert code == EXIT_FAILED, out + world.worker_logs()
    assert "again after a rerun" in out
    assert len(world.concourse.rerun_requests) == 1
    engine = world.engine()
    kinds = [e.kind for _, e in engine.events(monitor_id_for(world.env["GITHUB_REPOSITORY"], sha))]
    assert kinds.count("stage_failed") == 2 and kinds[-1] == "stopped"


def test_watch_offers_rerun_as_a_third_answer(world: World) -> None:
    sha = world.github.add_commit("Break bats", BACKEND)
    world.ci.deliver([(sha, BACKEND)], fast(**{"test-bats": flaky()}))
    world.start_worker()
    code, lines = watch(world, sha, "ask", answer="rerun")
    out = "\n".join(lines)
    assert code == EXIT_OK, out + world.worker_logs()
    assert "↻ Rerun of test-bats #" in out and len(world.concourse.rerun_requests) == 1


def test_watch_says_a_refused_rerun_and_asks_again(world: World) -> None:
    world.concourse.set_role(CONCOURSE_USER, "viewer")
    sha = world.github.add_commit("Break bats", BACKEND)
    world.ci.deliver([(sha, BACKEND)], fast(**{"test-bats": flaky()}))
    world.start_worker()
    answers = iter(["rerun", "stop"])
    lines: list[str] = []
    code = follow_target(
        world.engine(),
        spec_text=sha,
        policy="ask",
        start_worker=False,
        echo=lines.append,
        ask=lambda _q: next(answers),
        timeout=TIMEOUT,
    )
    out = "\n".join(lines)
    assert code == EXIT_FAILED, out + world.worker_logs()
    assert f"✘ no rerun: user {CONCOURSE_USER} may not rerun builds in Concourse team dev" in out
    assert "pipeline-operator" in out and "Traceback" not in out
    assert len(world.concourse.rerun_requests) == 1
