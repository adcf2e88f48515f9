"""`deploy-monitor demo`: the whole engine against built-in simulators, no credentials needed.

Starts the Concourse and GitHub simulators on loopback, a worker process, and a simulated
lana-bank CI; then follows PR #1234 exactly as `deploy-monitor watch 1234` would: the approved
PR is squash-merged, tests run (one fails and is rerun), the release candidate is built,
promoted, tested in testflight and deployed to staging.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import yaml

from bot.cli import follow_target
from simulators.concourse import ConcourseSimulator
from simulators.github import GitHubSimulator
from simulators.lana_bank import JobPlan, Journey, LanaBankCI
from workers.chain import load_chain
from workers.engine import Engine
from workers.settings import EngineSettings

DEMO_REPOSITORY = "GaloyMoney/lana-bank"
DEMO_PR = 1234
DEMO_FILES = ["core/credit/src/fee.rs", "core/credit/src/lib.rs", "lana/app/src/credit/mod.rs"]


def demo_journey(speed: float) -> Journey:
    """About a minute at speed 1: a flaky test fails once and is rerun; testflight runs long."""
    s = 1.0 / speed
    flaky_log = (
        "running bats tests\n"
        "ok 1 customer onboarding\n"
        "ok 2 deposit and withdrawal\n"
        "not ok 3 credit facility disbursal\n"
        "# (in test file bats/credit-facility.bats, line 88)\n"
        '#   `[[ "$status" == "Active" ]]\' failed\n'
        "# status was: PendingCollateralization\n"
    )
    return Journey(
        plans={
            "test-integration": JobPlan(duration=9 * s),
            "flake-check": JobPlan(duration=4 * s),
            "test-bats": JobPlan(
                duration=7 * s, outcome="failed", log=flaky_log, rerun_after=4 * s
            ),
            "build-rc": JobPlan(duration=7 * s),
            "open-promote-rc-pr": JobPlan(duration=3 * s),
            "lana-bank-testflight": JobPlan(duration=10 * s),
            "galoy-staging-lana-bank": JobPlan(duration=6 * s),
        },
        check_delay=2 * s,
        handoff_delay=2 * s,
    )


def demo_chain_file(speed: float, directory: str) -> str:
    """The bundled chain with warning thresholds scaled to demo time, so a warning shows."""
    chain = load_chain().model_dump(mode="json")
    for stage in chain["stages"]:
        if stage["id"] == "testflight":
            stage["warn_after"] = 6 / speed
        elif stage.get("warn_after"):
            stage["warn_after"] = 60 / speed
    chain["pickup_warn_after"] = 30 / speed
    path = os.path.join(directory, "demo-chain.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(chain, handle)
    return path


def run_demo(*, speed: float = 1.0, echo: Callable[[str], None] = print) -> int:
    """Run the demo; returns the exit code `watch` would."""
    if speed <= 0:
        echo("deploy-monitor demo: --speed must be positive")
        return 2
    started = time.monotonic()

    def say(line: str) -> None:
        elapsed = int(time.monotonic() - started)
        prefix = f"[{elapsed // 60:02d}:{elapsed % 60:02d}] "
        echo(
            "\n".join(
                prefix + part if i == 0 else " " * len(prefix) + part
                for i, part in enumerate(line.splitlines() or [""])
            )
        )

    concourse = ConcourseSimulator(team="dev", users={"deploy-bot": "demo-password"})
    github = GitHubSimulator(repository=DEMO_REPOSITORY, token="demo-github-token")
    ci = LanaBankCI(concourse)
    with tempfile.TemporaryDirectory() as tmp:
        concourse_url = concourse.start()
        github_url = github.start()
        old = github.add_commit("Bump dependencies", ["Cargo.lock"])
        ci.seed_history(old)
        github.add_pull_request(
            DEMO_PR,
            "Add origination fee to credit facilities",
            DEMO_FILES,
            review_decision="APPROVED",
        )
        env = {
            **os.environ,
            "CONCOURSE_URL": concourse_url,
            "CONCOURSE_TEAM": "dev",
            "CONCOURSE_USERNAME": "deploy-bot",
            "CONCOURSE_PASSWORD": "demo-password",
            "GITHUB_TOKEN": "demo-github-token",
            "GITHUB_REPOSITORY": DEMO_REPOSITORY,
            "GITHUB_API_URL": github_url,
            "DEPLOY_MONITOR_POLL_SECONDS": str(round(1.0 / speed, 3)),
            "DEPLOY_MONITOR_CHAIN": demo_chain_file(speed, tmp),
            "DEPLOY_MONITOR_QUEUE": f"deploy-monitor-demo-{os.getpid()}",
            "DEPLOY_MONITOR_TICK_TIMEOUT": "20",
            "DEPLOY_MONITOR_REAP_SECONDS": "5",
        }
        settings = EngineSettings.model_validate({k: v for k, v in env.items() if k.isupper()})
        engine = Engine(settings)
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"], env=env, stdout=subprocess.DEVNULL
        )
        stop = ci.follow_main(github, demo_journey(speed))

        def requester_answers(question: str) -> str:
            say(f"? {question}\n> continue   (the demo answers as the requester would)")
            return "continue"

        try:
            say(f"$ deploy-monitor watch {DEMO_PR}")
            return follow_target(
                engine,
                spec_text=str(DEMO_PR),
                policy="ask",
                start_worker=False,
                echo=say,
                ask=requester_answers,
            )
        finally:
            stop.set()
            worker.terminate()
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
            concourse.stop()
            github.stop()
