"""`deploy-monitor demo` end to end: real worker and bot processes on the simulators."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from bot.demo import run_demo
from tests.conftest import TEST_REDIS_URL


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch, redis_conn: redis.Redis, tmp_path: Path) -> Path:
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    log = tmp_path / "demo.log"
    monkeypatch.setenv("DEPLOY_MONITOR_DEMO_LOG", str(log))
    monkeypatch.setenv("LOG_LEVEL", "INFO")  # so that every child has something to say
    return log


def test_the_demo_deploys_and_its_children_log_to_the_demo_log(demo_env: Path) -> None:
    lines: list[str] = []
    assert run_demo(speed=8.0, echo=lines.append) == 0
    shown = "\n".join(lines)
    assert "Deployed" in shown
    assert "bob reacts" in shown  # the failure was answered in Slack
    # The board's expected time, from the usual times of the past deploys the demo seeds.
    assert re.search(
        r"the status board now says: :stopwatch: Expected on staging ~\d\d:\d\d", shown
    )
    assert re.search(r"passed in \d+s \(usual \d+s\)", shown)
    # Alice asks where her commit is (during the journey and after it) and what staging runs.
    assert shown.count("@alice: /deploy-monitor where 1234") == 2
    # The answer during the journey: when it is expected (or, under load, that bats failed).
    assert "expected on staging at" in shown or "which failed: it moves on" in shown
    assert ":rocket: On staging since" in shown
    assert "@alice: /deploy-monitor status" in shown
    assert re.search(
        r":rocket: Staging runs `[0-9a-f]{7}` \(deployed .*\); it is main's latest", shown
    )
    # Alice answered the flaky bats failure with the Rerun button, and the rerun was followed:
    # the thread says who asked for it and the new build's name.
    assert "alice presses [Rerun] on the failure message" in shown
    assert re.search(
        r"@alice asked Concourse to rerun test-bats #(\d+): the rerun is test-bats #\1\.1;"
        r" following it\.",
        shown,
    )
    assert re.search(r"test-bats passed on \d+\.1", shown)
    # #deploys was subscribed early; carol's commit, pushed later, was followed with no
    # command and she (found by her commit's email) got the end-of-journey DM.
    assert "@alice: /deploy-monitor subscribe" in shown
    assert "every new commit on `GaloyMoney/lana-bank` main is followed here" in shown
    pushed = re.search(r"carol pushes `([0-9a-f]{7})`", shown)
    assert pushed is not None, shown
    carols = pushed.group(1)
    assert f"Commit `{carols}` · Followed automatically: a new commit on main" in shown
    assert re.search(rf"DM to carol: .*Deployment complete! Commit {carols} ", shown), shown
    assert shown.count("Deployment complete!") >= 2
    loggers = {
        line.split('"logger": "')[1].split('"')[0]
        for line in demo_env.read_text().splitlines()
        if '"logger": "' in line
    }
    # Both children wrote there, instead of into a pipe nobody reads.
    assert any(name.startswith("rq.") for name in loggers), loggers  # the worker
    assert any(name.startswith("bot.slack") for name in loggers), loggers  # the bot


def test_the_terminal_demo_ends_with_where_and_status(demo_env: Path) -> None:
    lines: list[str] = []
    assert run_demo(speed=8.0, terminal=True, echo=lines.append) == 0
    shown = "\n".join(lines)
    assert "> rerun   (the demo answers as the requester would)" in shown
    assert "↻ Rerun of test-bats #" in shown
    assert re.search(r"▶ lana-bank tests started \(.*\)", shown)
    # The expected time is told as stages start and pass; not on a stage seen started and
    # failed in one look (a failed stage has none), which a loaded machine can make happen.
    assert re.search(r"(started|passed) .*; expected on staging ~\d\d:\d\d UTC", shown), shown
    assert "$ deploy-monitor where 1234" in shown and "On staging since" in shown
    assert "$ deploy-monitor status" in shown
    assert re.search(
        r"staging runs [0-9a-f]{7} \(deployed \d\d:\d\d\); main has nothing newer", shown
    )


def test_a_refused_demo_exits_non_zero_at_once(demo_env: Path) -> None:
    lines: list[str] = []
    assert run_demo(speed=8.0, echo=lines.append, approved=False) == 1
    shown = "\n".join(lines)
    assert "refused" in shown
    assert "is not approved" in shown  # the reason, as Slack showed it to the requester
    assert "timed out" not in shown
