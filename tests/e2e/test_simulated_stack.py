"""`python -m simulators.stack` (the compose file's `simulated` profile) drives a real bot and
worker through PR #1234's journey: the command, the failure prompt answered ▶, the rerun, and
staging."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import redis

from simulators import stack
from tests.conftest import TEST_REDIS_URL, wait_for
from tests.slack_fixtures import Process, free_port, wait_healthy


def test_the_simulated_world_plays_a_journey_through_the_bot(
    redis_conn: redis.Redis, tmp_path: Path
) -> None:
    world = stack.start_world(ports=(0, 0, 0), scale=0.15)
    port = free_port()
    env = {
        **stack.SETTINGS,
        "CONCOURSE_URL": world.concourse.url,
        "GITHUB_API_URL": world.github.url,
        "SLACK_API_URL": world.slack.api_url,
        "PORT": str(port),
        "REDIS_URL": TEST_REDIS_URL,
        "DEPLOY_MONITOR_QUEUE": f"dm-simulated-{uuid.uuid4().hex[:8]}",
        "DEPLOY_MONITOR_POLL_SECONDS": "0.3",
        "LOG_LEVEL": "INFO",
    }
    bot = Process(["bot"], env, tmp_path / "bot.log").start()
    worker = Process(["worker"], env, tmp_path / "worker.log").start()
    lines: list[str] = []
    stop = threading.Event()
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        player = threading.Thread(
            target=stack.play, args=(world.slack, f"http://127.0.0.1:{port}", lines.append, stop)
        )
        player.start()
        wait_for(lambda: any("Deployment complete!" in line for line in lines), timeout=90)
        stop.set()
        player.join(5)
    finally:
        stop.set()
        bot.stop()
        worker.stop()
        world.stop()
    text = "\n".join(lines)
    assert lines[0] == "#deploys  @alice: /deploy-monitor 1234"
    assert text.count("alice presses [Rerun]") == 1  # one prompt, answered once
    assert "asked Concourse to rerun test-bats #" in text  # the thread says who asked
    assert len(world.concourse.rerun_requests) == 1  # the button's, over the API
    assert "test-bats passed on" in text  # the rerun was followed
    assert "is now deployed to staging" in text
    assert len(world.github.merges) == 1
