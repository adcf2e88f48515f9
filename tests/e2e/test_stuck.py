"""Why is it not moving, end to end: real Redis, a real worker process (RQ, scheduler on), the
Concourse, GitHub and Slack simulators, the simulated lana-bank CI. A paused staging job is
said in the thread and said cleared when unpaused; a pinned version is said (and its unpin);
a commit changing only ignored paths is said at once and then carried to staging by the next
commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from bot.watch import EXIT_OK, follow_target
from tests.conftest import World, wait_for
from tests.slack_fixtures import BACKEND, SlackWorld, fast, slack_world
from workers.monitor import monitor_id_for

STAGING = ("galoy-staging", "galoy-staging-lana-bank")
TIMEOUT = 45.0


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    with slack_world(world) as s:
        yield s


def kinds(world: World, sha: str) -> list[str]:
    monitor_id = monitor_id_for(world.env["GITHUB_REPOSITORY"], sha)
    return [e.kind for _, e in world.engine().events(monitor_id)]


def when(predicate: Callable[[], bool], then: Callable[[], None]) -> threading.Thread:
    """Do `then` once `predicate` holds (what a person does on seeing the thread)."""

    def run() -> None:
        wait_for(predicate, timeout=TIMEOUT)
        then()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def follow(world: World, target: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = follow_target(
        world.engine(),
        spec_text=target,
        policy="stop",
        start_worker=False,
        echo=lines.append,
        ask=lambda _q: "stop",
        timeout=TIMEOUT,
    )
    return code, lines


def test_a_paused_staging_job_is_said_in_the_thread_and_cleared_when_unpaused(
    sw: SlackWorld,
) -> None:
    world = sw.world
    world.concourse.pause_job(*STAGING, by="alice")
    sha = world.github.add_commit("Add origination fee", BACKEND)
    world.ci.deliver([(sha, BACKEND)], fast())
    sw.command(sha)
    blocked = sw.wait_reply("is paused by alice")
    assert "staging" in blocked.text and "galoy-staging/galoy-staging-lana-bank" in blocked.text
    # The board shows it while it lasts.
    wait_for(lambda: "held back" in str(sw.parent().blocks), timeout=10)
    assert "is paused by alice" in str(sw.parent().blocks)
    world.concourse.unpause_job(*STAGING)
    cleared = sw.wait_reply("was unpaused")
    assert "galoy-staging/galoy-staging-lana-bank" in cleared.text
    sw.wait_reply("Deployment complete!")
    texts = sw.reply_texts()
    assert sum("is paused by alice" in t for t in texts) == 1  # said once
    assert sum("was unpaused" in t for t in texts) == 1
    assert texts.index(blocked.text) < texts.index(cleared.text)
    assert "held back" not in str(sw.parent().blocks)
    assert kinds(world, sha).count("stage_blocked") == 1


def test_a_pinned_version_is_said_and_its_unpin(world: World) -> None:
    old = world.github.add_commit("Older change", ["core/old.rs"])
    version = world.concourse.add_version("galoy-staging", "lana-repo", {"ref": old})
    world.concourse.pin_version(
        "galoy-staging", "lana-repo", version, comment="hold staging for the demo"
    )
    sha = world.github.add_commit("Add origination fee", BACKEND)
    world.ci.deliver([(sha, BACKEND)], fast())
    world.start_worker()
    when(
        lambda: "stage_blocked" in kinds(world, sha),
        lambda: world.concourse.unpin("galoy-staging", "lana-repo"),
    )
    code, lines = follow(world, sha)
    report = "\n".join(lines)
    assert code == EXIT_OK, report + world.worker_logs()
    assert (
        f"⏸ staging waits: galoy-staging/lana-repo is pinned to {old[:7]} "
        "(hold staging for the demo), so newer commits are not built"
    ) in report
    assert "▶ staging: galoy-staging/lana-repo was unpinned" in report
    assert report.index("was unpinned") < report.index("Deployment complete!")


def test_a_commit_changing_only_ignored_paths_is_said_at_once_then_carried(
    world: World,
) -> None:
    ignored = world.github.add_commit("Tune the deploy script", ["ci/tasks/deploy.sh"])
    world.ci.deliver([(ignored, ["ci/tasks/deploy.sh"])], fast())  # no resource sees it
    world.start_worker()
    carrier: list[str] = []

    def next_commit() -> None:
        threading.Event().wait(1.0)  # a while later
        sha = world.github.add_commit("Add origination fee", BACKEND)
        carrier.append(sha)
        world.ci.deliver([(sha, BACKEND)], fast())

    when(lambda: "ignored" in kinds(world, ignored), next_commit)
    code, lines = follow(world, ignored)
    report = "\n".join(lines)
    assert code == EXIT_OK, report + world.worker_logs()
    said = kinds(world, ignored)
    assert said[:2] == ["started", "ignored"]  # at once, in the first events
    assert "ci/tasks/deploy.sh is ignored by lana-bank/repo (ignore_paths: ci/*)" in report
    assert "carried" in said
    assert f"ran {carrier[0][:7]}, which includes it" in report
    assert f"Commit {ignored[:7]} (Tune the deploy script) is now deployed to staging" in report
