"""`python -m simulators.stack`: the simulated world of `docker compose --profile simulated up`.

Serves the demo's simulators on fixed loopback ports: Concourse with lana-bank's pipelines and
a simulated CI that runs them whenever main moves, GitHub with an approved PR #1234, and the
Slack Web API with a #deploys channel. The compose file runs the bot and the workers in this
container's network namespace, so `SETTINGS` (what they are given) points at 127.0.0.1.

Once the bot answers `/healthz`, it types `/deploy-monitor 1234` in #deploys as alice, presses
**Rerun** on the failure message (the flaky bats test fails once; Concourse reruns it and the
rerun passes), and prints every message the bot posts or edits. Then it keeps serving until
stopped.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from simulators.concourse import ConcourseSimulator
from simulators.github import GitHubSimulator
from simulators.lana_bank import LanaBankCI, demo_journey
from simulators.slack import DEFAULT_TOKEN, SlackSimulator
from simulators.slack_client import SlackRequestSender

CONCOURSE_PORT, GITHUB_PORT, SLACK_PORT, BOT_PORT = 8080, 8081, 8082, 3000
REPOSITORY = "GaloyMoney/lana-bank"
PR = 1234
PR_FILES = ["core/credit/src/fee.rs", "core/credit/src/lib.rs", "lana/app/src/credit/mod.rs"]
CHANNEL, CHANNEL_NAME = "C0DEPLOYS", "deploys"
REQUESTER = "U0ALICE"
# Credentials of the simulators, not of anything real.
CONCOURSE_USER, CONCOURSE_PASSWORD = "deploy-bot", "simulated-concourse-password"
GITHUB_TOKEN = "simulated-github-token"
SIGNING_SECRET = "simulated-signing-secret"

# What the simulated bot and workers are given (compose.yaml's `x-simulated-settings`; a test
# checks the two agree). Its own queue keeps it apart from a live stack on the same Redis.
SETTINGS = {
    "CONCOURSE_URL": f"http://127.0.0.1:{CONCOURSE_PORT}",
    "CONCOURSE_TEAM": "dev",
    "CONCOURSE_USERNAME": CONCOURSE_USER,
    "CONCOURSE_PASSWORD": CONCOURSE_PASSWORD,
    "GITHUB_TOKEN": GITHUB_TOKEN,
    "GITHUB_REPOSITORY": REPOSITORY,
    "GITHUB_API_URL": f"http://127.0.0.1:{GITHUB_PORT}",
    "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "SLACK_API_URL": f"http://127.0.0.1:{SLACK_PORT}/api/",
    "PORT": str(BOT_PORT),
    "DEPLOY_MONITOR_QUEUE": "deploy-monitor-simulated",
    "DEPLOY_MONITOR_POLL_SECONDS": "2",
}

Echo = Callable[[str], None]


@dataclass
class World:
    """The started simulators; `stop()` ends them and the simulated CI."""

    concourse: ConcourseSimulator
    github: GitHubSimulator
    slack: SlackSimulator
    stop_ci: threading.Event

    def stop(self) -> None:
        self.stop_ci.set()
        for simulator in (self.concourse, self.github, self.slack):
            simulator.stop()


def start_world(
    ports: tuple[int, int, int] = (CONCOURSE_PORT, GITHUB_PORT, SLACK_PORT), scale: float = 1.0
) -> World:
    """Start Concourse, GitHub and Slack on `ports` (0: any free one) and the simulated CI."""
    concourse = ConcourseSimulator(team="dev", users={CONCOURSE_USER: CONCOURSE_PASSWORD})
    github = GitHubSimulator(repository=REPOSITORY, token=GITHUB_TOKEN)
    github.sha_salt = str(time.time_ns())  # new commits on each start: no old monitor applies
    slack = SlackSimulator(token=DEFAULT_TOKEN)
    ci = LanaBankCI(concourse)
    concourse.start(ports[0])
    github.start(ports[1])
    slack.start(ports[2])
    slack.add_channel(CHANNEL, CHANNEL_NAME)
    ci.seed_history(github.add_commit("Bump dependencies", ["Cargo.lock"]))
    github.add_pull_request(PR, "Add origination fee to credit facilities", PR_FILES)
    # The failed bats build waits for a rerun asked over the API: the Rerun button's.
    stop_ci = ci.follow_main(github, demo_journey(scale, rerun_button=True))
    return World(concourse=concourse, github=github, slack=slack, stop_ci=stop_ci)


def wait_for_bot(url: str, echo: Echo) -> None:
    """Block until the bot answers /healthz with 200."""
    echo(f"waiting for the bot at {url}/healthz")
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)


def play(
    slack: SlackSimulator, bot_url: str, echo: Echo, stop: threading.Event | None = None
) -> None:
    """Type the command, answer the failure prompt, and print the channel until `stop`."""
    hooks = slack.url + "/hooks"
    with SlackRequestSender(bot_url, SIGNING_SECRET, response_url_base=hooks) as sender:
        echo(f"#{CHANNEL_NAME}  @alice: /deploy-monitor {PR}")
        ack = sender.slash_command(str(PR), user_id=REQUESTER, channel_id=CHANNEL)
        echo(f"  (only visible to alice) {ack.text.strip()}")
        said: dict[str, str] = {}
        answered: set[str] = set()
        stop = stop or threading.Event()
        while not stop.wait(0.5):
            parents = [m for m in slack.messages(CHANNEL) if m.thread_ts is None]
            for parent in parents:
                for message in [parent, *slack.thread(CHANNEL, parent.ts)]:
                    if said.get(message.ts) == message.text:
                        continue
                    where = "edited" if message.ts in said else "posted"
                    said[message.ts] = message.text
                    indent = "  ↳ " if message.ts != parent.ts else ""
                    echo(f"{indent}({where}) {message.text}")
                    # A failure message asks the requester: she presses Rerun, as in the demo.
                    rerun = _button(message.blocks, "Rerun")
                    if rerun is not None and message.ts not in answered:
                        answered.add(message.ts)
                        echo("  alice presses [Rerun] on the failure message")
                        action_id, value = rerun
                        sender.block_action(REQUESTER, action_id, value, CHANNEL, message.ts)


def _button(blocks: list[dict[str, Any]], label: str) -> tuple[str, str] | None:
    """(action_id, value) of the button labelled `label`, as a person finds it."""
    for block in blocks:
        # In an actions block's row, or beside a section's text (its accessory).
        elements = block.get("elements", []) if block.get("type") == "actions" else []
        accessory = block.get("accessory")
        for element in [*elements, *([accessory] if isinstance(accessory, dict) else [])]:
            if element.get("type") == "button" and element.get("text", {}).get("text") == label:
                return str(element.get("action_id")), str(element.get("value", ""))
    return None


def main() -> None:
    """Serve the simulated world and play one journey through the bot."""
    # PID 1 in a container ignores SIGTERM unless it handles it: `docker compose stop` waits.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def echo(line: str) -> None:
        print(line, flush=True)

    world = start_world()
    echo(f"simulators up: Concourse :{CONCOURSE_PORT}, GitHub :{GITHUB_PORT}, Slack :{SLACK_PORT}")
    bot_url = f"http://127.0.0.1:{BOT_PORT}"
    wait_for_bot(bot_url, echo)
    play(world.slack, bot_url, echo)


if __name__ == "__main__":
    main()
