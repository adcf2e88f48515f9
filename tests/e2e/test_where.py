"""`deploy-monitor where` and `status` end to end: the real command line in its own process,
real Redis, the Concourse and GitHub simulators with a history of past deploys (realistic
durations) driven by the simulated lana-bank CI, and a worker where a monitor is involved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import jsonschema
import pytest

from simulators.lana_bank import JobPlan, Journey
from tests.conftest import World, wait_for
from workers.monitor import monitor_id_for
from workers.target import ResolvedTarget

BACKEND = ["core/credit/src/fee.rs"]
TIMEOUT = 30.0


@dataclass
class Answer:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, object]:
        parsed = json.loads(self.out)
        assert isinstance(parsed, dict)
        return parsed


def cli(world: World, *args: str) -> Answer:
    """`deploy-monitor ARGS` in its own process, pointed at the world."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**os.environ, **world.env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return Answer(done.returncode, done.stdout, done.stderr)


def fast(**plans: JobPlan) -> Journey:
    return Journey(plans=dict(plans), default_duration=0.2, check_delay=0.1, handoff_delay=0.1)


@pytest.fixture
def history(world: World) -> list[str]:
    """Five past commits on main, each deployed to staging an hour apart."""
    return world.ci.seed_deploys(world.github, 5, since=time.time() - 8 * 3600)


@pytest.fixture
def schema(world: World) -> dict[str, object]:
    answer = cli(world, "where", "--schema")
    assert answer.code == 0, answer.err
    parsed = json.loads(answer.out)
    assert isinstance(parsed, dict)
    return parsed


def test_a_commit_on_staging(world: World, history: list[str], schema: dict[str, object]) -> None:
    sha = history[2]
    answer = cli(world, "where", sha[:10], "--json")
    assert answer.code == 0, answer.err
    jsonschema.validate(answer.json, schema)
    assert answer.json["sha"] == sha and answer.json["path"] == "backend"
    assert answer.json["deployed"] is True
    stages = answer.json["stages"]
    assert isinstance(stages, list)
    assert [s["state"] for s in stages] == ["passed"] * 5
    assert all(s["url"] and s["finished_at"] for s in stages)
    text = cli(world, "where", sha)
    assert text.code == 0
    assert text.out.strip().splitlines()[-1].startswith("On staging since ")
    assert "✔ staging" in text.out


def test_a_commit_in_tests_says_running_and_when_it_is_expected(
    world: World, history: list[str]
) -> None:
    sha = world.github.add_commit("Slow tests", BACKEND)
    world.ci.deliver([(sha, BACKEND)], fast(**{"test-integration": JobPlan(duration=20.0)}))

    def tests_running() -> bool:
        answer = cli(world, "where", sha, "--json")
        stages = answer.json["stages"]
        assert isinstance(stages, list)
        return bool(stages[0]["state"] == "running")

    wait_for(tests_running, timeout=TIMEOUT, interval=0.3)
    answer = cli(world, "where", sha)
    assert answer.code == 1, answer.err
    lines = answer.out.strip().splitlines()
    assert any(line.startswith("▶ lana-bank tests") and "usually 1" in line for line in lines)
    assert "At lana-bank tests (running); expected on staging around" in lines[-1]
    as_json = cli(world, "where", sha, "--json").json
    remaining = as_json["remaining"]
    # The history's usual times: tests ~14m, build-rc 9m, promote 1m, testflight 18m, deploy 7m.
    assert isinstance(remaining, int) and 40 * 60 < remaining < 52 * 60
    assert as_json["deployed"] is False and as_json["at_stage"] == "tests"


def test_a_commit_carried_by_a_descendant(world: World, history: list[str]) -> None:
    first = world.github.add_commit("First", ["core/a.rs"])
    second = world.github.add_commit("Second", ["core/b.rs"])
    world.ci.deliver([(first, ["core/a.rs"]), (second, ["core/b.rs"])], fast())
    world.ci.wait(TIMEOUT)
    answer = cli(world, "where", first, "--json")
    assert answer.code == 0, answer.err
    assert answer.json["deployed"] is True
    stages = answer.json["stages"]
    assert isinstance(stages, list)
    carried = {s["id"]: s["carried_by"] for s in stages}
    assert carried["tests"] == second and carried["staging"] == second
    text = cli(world, "where", first)
    assert f"carried by {second[:7]}" in text.out


def test_a_frontend_only_commit_is_done_when_its_images_are_built(
    world: World, history: list[str]
) -> None:
    files = ["apps/admin-panel/app/page.tsx"]
    sha = world.github.add_commit("Tweak admin panel", files)
    world.ci.deliver([(sha, files)], fast())
    world.ci.wait(TIMEOUT)
    answer = cli(world, "where", sha, "--json")
    assert answer.code == 0, answer.err
    assert answer.json["path"] == "frontend-only"
    assert answer.json["deployed"] is False and answer.json["complete"] is True
    text = cli(world, "where", sha)
    assert "next backend-inclusive release" in text.out


def test_an_open_pr_is_not_merged_and_no_merge_is_asked(world: World, history: list[str]) -> None:
    world.github.add_pull_request(4321, "Approved, still open", BACKEND)
    answer = cli(world, "where", "#4321")
    assert answer.code == 1, answer.err
    assert "PR #4321 is not merged yet (approved)" in answer.out
    assert world.github.merge_attempts == [] and world.github.merges == []
    assert world.github.write_requests == 0
    assert world.engine().store.active_ids() == []  # no monitor started either


def test_an_unknown_commit_exits_1_with_a_message(world: World, history: list[str]) -> None:
    answer = cli(world, "where", "deadbeef12")
    assert answer.code == 1
    assert "No commit deadbeef12 in GaloyMoney/lana-bank." in answer.err
    assert "Traceback" not in answer.err


def test_a_followed_commit_is_answered_by_its_monitor(world: World, history: list[str]) -> None:
    sha = world.github.add_commit("Followed", BACKEND)
    world.ci.deliver([(sha, BACKEND)], fast())
    world.start_worker()
    engine = world.engine()
    commit = engine.github.commit(sha)
    engine.start_monitor(
        ResolvedTarget(
            sha=sha,
            headline=commit.headline,
            committed_at=commit.committed_at,
            files=tuple(commit.files),
            pr_number=None,
            pr_title=None,
            pr_url=None,
            merged_now=False,
        ),
        requester="alice",
    )
    monitor_id = monitor_id_for(world.github.repository, sha)

    def deployed() -> bool:
        monitor = engine.store.load(monitor_id)
        return monitor is not None and monitor.status == "deployed"

    wait_for(deployed, timeout=TIMEOUT)
    answer = cli(world, "where", sha, "--json")
    assert answer.code == 0, answer.err + world.worker_logs()
    assert answer.json["followed"] is True and answer.json["deployed"] is True


def test_status_with_main_ahead_of_staging(world: World, history: list[str]) -> None:
    for n in range(7):
        world.github.add_commit(f"Waiting {n}", [f"core/w{n}.rs"])
    answer = cli(world, "status")
    assert answer.code == 0, answer.err
    lines = answer.out.strip().splitlines()
    assert lines[0].startswith("lana-bank tests")
    assert f"({history[-1][:7]})" in lines[-3]  # staging's newest deploy carried it
    assert lines[-2].startswith(f"staging runs {history[-1][:7]} (deployed ")
    assert "main is 7 commits ahead, the oldest waiting " in lines[-2]
    assert lines[-1] == (
        f"https://github.com/{world.github.repository}/compare/"
        f"{history[-1]}...{world.github.main_head}"
    )
    as_json = json.loads(cli(world, "status", "--json").out)
    assert as_json["behind"]["ahead_by"] == 7 and as_json["staging_sha"] == history[-1]
