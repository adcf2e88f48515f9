"""`deploy-monitor demo`: the whole product against built-in simulators, no credentials needed.

Starts the Concourse, GitHub and Slack simulators on loopback, a simulated lana-bank CI, a
worker process and the bot (HTTP, as in production), then types `/deploy-monitor 1234` in
#deploys. PR #1234 is approved, so it is squash-merged, and alice subscribes #deploys to main
(`/deploy-monitor subscribe`). A flaky bats test fails, a bystander's 🛑 is refused, the
requester presses **Rerun** on the failure message, the rerun passes, and the commit goes
through build-rc, promote, testflight (running long) and staging. The channel is printed as a
person sees it. Past deploys give every stage a usual time, so the board shows when the commit
is expected on staging; alice asks `/deploy-monitor where 1234` on the way, and `where` and
`status` once it is deployed (answered to her alone). Then carol pushes a commit to main: the
subscription follows it with no command ("followed automatically"), and carol, found by her
commit's email, gets the end-of-journey DM.

`--terminal` plays the same journey through `deploy-monitor watch 1234` instead (answering
the failure with `rerun`), then asks `deploy-monitor where 1234` and `deploy-monitor status`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from bot.watch import follow_target
from bot.where import answer_status, answer_where
from simulators.concourse import ConcourseSimulator
from simulators.env import simulated_env
from simulators.github import GitHubSimulator
from simulators.lana_bank import JobPlan, Journey, LanaBankCI, demo_journey
from simulators.slack import DEFAULT_TOKEN, SlackSimulator
from simulators.slack.reading import ack_text, blocks_text, button_value, plain, posted_lines
from simulators.slack_client import SlackRequestSender
from workers import keys
from workers.chain import load_chain
from workers.engine import Engine
from workers.settings import EngineSettings

DEMO_REPOSITORY = "GaloyMoney/lana-bank"
DEMO_PR = 1234
DEMO_FILES = ["core/credit/src/fee.rs", "core/credit/src/lib.rs", "lana/app/src/credit/mod.rs"]
CHANNEL, CHANNEL_NAME = "C0DEPLOYS", "deploys"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol", "U0BOT": "deploy-monitor"}
# Carol's commit, pushed to main once PR #1234 is deployed; Slack knows her by this email.
CAROL_EMAIL = "carol@example.com"
CAROL_COMMIT = "Show the origination fee on the loan statement"
CAROL_FILES = ["core/credit/src/statement.rs"]
SIGNING_SECRET = "demo-signing-secret"
RERUN_ACTION = "dm_rerun"  # the failure message's Rerun button
# How long each job of the demo's past deploys took, at speed 1 (the journey's own jobs run
# about this long; testflight runs longer, which the board and the timeline show).
DEMO_USUAL_SECONDS = {
    "test-integration": 8.0,
    "test-bats": 6.0,
    "flake-check": 4.0,
    "build-rc": 6.0,
    "open-promote-rc-pr": 3.0,
    "lana-bank-testflight": 6.0,
    "galoy-staging-lana-bank": 5.0,
}

Echo = Callable[[str], None]


def pushed_journey(scale: float) -> Journey:
    """The CI's journey for commits pushed after the PR's: quick and clean, so the demo's
    second, automatically followed commit reaches staging in a few seconds."""
    quick = JobPlan(duration=2 * scale)
    return Journey(
        plans={"lana-bank-testflight": JobPlan(duration=3 * scale)},
        default_duration=quick.duration,
        check_delay=1 * scale,
        handoff_delay=1 * scale,
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


class Clock:
    """Prefixes lines with the time since the demo started."""

    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.started = time.monotonic()

    def say(self, line: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        prefix = f"[{elapsed // 60:02d}:{elapsed % 60:02d}] "
        parts = line.splitlines() or [""]
        self.echo("\n".join([prefix + parts[0], *(" " * len(prefix) + p for p in parts[1:])]))


@dataclass
class DemoWorld:
    concourse: ConcourseSimulator
    github: GitHubSimulator
    ci: LanaBankCI
    env: dict[str, str]


@contextlib.contextmanager
def demo_world(speed: float, *, approved: bool = True) -> Iterator[DemoWorld]:
    """Simulated Concourse and GitHub with lana-bank's pipelines, PR #1234 (approved unless
    told otherwise), and the environment that points deploy-monitor at them."""
    concourse = ConcourseSimulator(team="dev", users={"deploy-bot": "demo-password"})
    github = GitHubSimulator(repository=DEMO_REPOSITORY, token="demo-github-token")
    github.sha_salt = str(time.time_ns())  # new commits each run: no monitor of a past run applies
    ci = LanaBankCI(concourse)
    with tempfile.TemporaryDirectory() as tmp:
        concourse.start()
        github.start()
        # Past deploys whose jobs ran about as long as the demo's: usual times, hence the
        # expected time on the board, and what `status` says staging ran before.
        usual = {job: seconds / speed for job, seconds in DEMO_USUAL_SECONDS.items()}
        ci.seed_deploys(github, 5, since=time.time() - 6 * 600, every=600, durations=usual)
        ci.seed_history(github.add_commit("Bump dependencies", ["Cargo.lock"]))
        github.add_pull_request(
            DEMO_PR,
            "Add origination fee to credit facilities",
            DEMO_FILES,
            review_decision="APPROVED" if approved else "REVIEW_REQUIRED",
        )
        # Start from the caller's environment (REDIS_URL) but never from their real services.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DEPLOY_MONITOR_"))
        }
        env.update(
            simulated_env(
                concourse,
                github,
                username="deploy-bot",
                queue=f"deploy-monitor-demo-{os.getpid()}",
                poll_seconds=round(1.0 / speed, 3),
            )
        )
        env.update(
            {
                "DEPLOY_MONITOR_CHAIN": demo_chain_file(speed, tmp),
                "DEPLOY_MONITOR_TICK_TIMEOUT": "20",
                "DEPLOY_MONITOR_REAP_SECONDS": "5",
            }
        )
        env.pop("GITHUB_GRAPHQL_URL", None)
        # The PR's merge runs the flaky journey (bats waits for a Rerun); later pushes run clean.
        journeys = iter([demo_journey(1.0 / speed, rerun_button=True)])
        stop_ci = ci.follow_main(github, lambda _head: next(journeys, pushed_journey(1 / speed)))
        previous = signal.signal(signal.SIGTERM, _interrupt)  # clean up on `kill` too
        try:
            yield DemoWorld(concourse=concourse, github=github, ci=ci, env=env)
        finally:
            signal.signal(signal.SIGTERM, previous)
            stop_ci.set()
            concourse.stop()
            github.stop()
            _forget_demo_state(EngineSettings.model_validate(env))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _forget_demo_state(settings: EngineSettings) -> None:
    """Leave the user's Redis as it was: the demo's monitors, caches and RQ queue go."""
    engine = Engine(settings)
    try:
        for key in engine.redis.scan_iter(match=keys.every_key(engine.store.ns), count=500):
            engine.redis.delete(key)
        engine.queue.delete(delete_jobs=True)
        for key in engine.redis.scan_iter(match=keys.rq_queue_keys(settings.queue_name), count=500):
            engine.redis.delete(key)
    except Exception:  # Redis went away: nothing left to tidy
        return


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A `deploy-monitor` subcommand in the background, stopped on exit. Its output (stdout
    and stderr) goes to DEPLOY_MONITOR_DEMO_LOG when set, else nowhere: never to a pipe, which
    nobody reads and which would block a chatty child once full."""
    log_path = os.environ.get("DEPLOY_MONITOR_DEMO_LOG")
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not isinstance(log, int):
            log.close()


def run_demo(
    *, speed: float = 1.0, terminal: bool = False, echo: Echo = print, approved: bool = True
) -> int:
    """Run the demo; returns 0 when the commit reached staging, 1 when it did not (the command
    was refused, the journey stopped or timed out). `approved=False` plays an unapproved PR."""
    if speed <= 0:
        echo("deploy-monitor demo: --speed must be positive")
        return 2
    if terminal:
        return run_terminal_demo(speed=speed, echo=echo, approved=approved)
    return run_slack_demo(speed=speed, echo=echo, approved=approved)


def run_terminal_demo(*, speed: float, echo: Echo, approved: bool = True) -> int:
    clock = Clock(echo)
    with demo_world(speed, approved=approved) as world, process(["worker"], world.env):
        settings = EngineSettings.model_validate(world.env)

        def requester_answers(question: str) -> str:
            clock.say(f"? {question}\n> rerun   (the demo answers as the requester would)")
            return "rerun"

        clock.say(f"$ deploy-monitor watch {DEMO_PR}")
        engine = Engine(settings)
        code = follow_target(
            engine,
            spec_text=str(DEMO_PR),
            policy="ask",
            start_worker=False,
            echo=clock.say,
            ask=requester_answers,
            timeout=300 / speed + 60,
        )
        if code == 0:
            clock.say(f"$ deploy-monitor where {DEMO_PR}")
            answer_where(engine, str(DEMO_PR), echo=clock.say, fail=clock.say)
            clock.say("$ deploy-monitor status")
            answer_status(engine, echo=clock.say, fail=clock.say)
        return code


def run_slack_demo(*, speed: float, echo: Echo, approved: bool = True) -> int:
    clock = Clock(echo)
    slack = SlackSimulator()
    slack.start()
    slack.add_channel(CHANNEL, CHANNEL_NAME)
    slack.add_user(CAROL, "carol", email=CAROL_EMAIL)  # what users.lookupByEmail finds
    port = _free_port()
    try:
        with demo_world(speed, approved=approved) as world:
            env = {
                **world.env,
                "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "PORT": str(port),
            }

            def push_carols_commit() -> str:
                return world.github.add_commit(
                    CAROL_COMMIT, CAROL_FILES, author_email=CAROL_EMAIL, author_login="carol-gh"
                )

            with process(["worker"], env), process(["bot"], env) as bot:
                bot_url = f"http://127.0.0.1:{port}"
                if not _wait_healthy(bot_url, bot):
                    echo("deploy-monitor demo: the bot did not start")
                    return 1
                sender = SlackRequestSender(
                    bot_url, SIGNING_SECRET, response_url_base=slack.url + "/hooks"
                )
                deadline = time.monotonic() + 300 / speed + 60
                code = _play(slack, sender, clock, deadline=deadline)
                if code != 0:
                    return code
                return _follow_pushed(slack, clock, push_carols_commit, deadline=deadline)
    finally:
        slack.stop()


def _play(
    slack: SlackSimulator, sender: SlackRequestSender, clock: Clock, *, deadline: float
) -> int:
    """PR #1234 from alice's command to staging: 0 when it is deployed."""
    clock.say(f"#{CHANNEL_NAME}  @alice: /deploy-monitor {DEMO_PR}")
    ack = sender.slash_command(str(DEMO_PR), user_id=ALICE, channel_id=CHANNEL)
    clock.say(f"   (only visible to alice) {ack_text(ack, NAMES)}")
    shown: set[str] = set()
    decided = False
    parent_ts: str | None = None
    shown_eta: str | None = None
    answered = 0  # answers through response_url shown so far (where, status)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        messages = slack.messages(CHANNEL)
        if parent_ts is None and messages:
            parent_ts = messages[0].ts
            clock.say("#deploys  deploy-monitor posted the status board (kept up to date in place)")
            # After the merge, so the PR's own commit is not news to the watcher of main.
            _ask(sender, clock, "subscribe")
        if parent_ts is None:
            if refusal := slack.webhook_posts:
                # The command was answered instead of followed (refused, not found): that is
                # the end of this demo, and not a success.
                text = " ".join(posted_lines(refusal[0].payload, NAMES))
                clock.say(f"   (only visible to alice) {text}")
                clock.say("the command was refused: nothing to follow")
                return 1
            continue
        for reply in _new_replies(slack, clock, parent_ts, shown):
            if (rerun := button_value(reply.blocks, RERUN_ACTION)) is not None and not decided:
                threading.Timer(
                    1.0, _bystander_then_requester, (sender, clock, reply.ts, rerun)
                ).start()
                decided = True
        for post in slack.ephemerals:
            key = f"eph-{post.ts}"
            if key not in shown:
                shown.add(key)
                who = NAMES.get(post.user, post.user)
                clock.say(f"   (only visible to {who}) {plain(post.text, NAMES)}")
        parent = slack.message(CHANNEL, parent_ts)
        eta = _expected_line(parent.blocks) if parent is not None else None
        if eta is not None and eta != shown_eta:
            clock.say(f"#deploys  the status board now says: {eta}")
            if shown_eta is None:  # the first time: alice asks where her commit is
                _ask(sender, clock, f"where {DEMO_PR}")
            shown_eta = eta
        for hook in slack.webhook_posts[answered:]:
            clock.say(_private_answer(hook.payload))
        answered = len(slack.webhook_posts)
        if parent is not None and _ended(parent.text):
            time.sleep(0.5)
            _print_final(slack, clock, parent_ts)
            _print_dm(slack, clock, ALICE)
            if "Deployed" not in parent.text:
                return 1
            clock.say("")
            for question in (f"where {DEMO_PR}", "status"):
                _ask(sender, clock, question)
                if not _wait_private_answer(slack, clock, answered, deadline):
                    clock.say("no answer came")
                    return 1
                answered = len(slack.webhook_posts)
            return 0
    clock.say("the demo timed out")
    return 1


def _follow_pushed(
    slack: SlackSimulator, clock: Clock, push: Callable[[], str], *, deadline: float
) -> int:
    """Carol pushes to main; #deploys follows it with no command and she gets the DM."""
    clock.say("")
    sha = push()
    clock.say(f"carol pushes `{sha[:7]}` {CAROL_COMMIT!r} to main (nobody types a command)")
    shown: set[str] = set()
    parent_ts: str | None = None
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if parent_ts is None:
            parent_ts = next(
                (
                    m.ts
                    for m in slack.messages(CHANNEL)
                    if m.thread_ts in (None, m.ts) and sha[:7] in m.text + str(m.blocks)
                ),
                None,
            )
            if parent_ts is None:
                continue
            board = slack.message(CHANNEL, parent_ts)
            head = blocks_text(board.blocks, NAMES)[:2] if board is not None else []
            clock.say("#deploys  deploy-monitor posted a status board:\n  " + "\n  ".join(head))
        _new_replies(slack, clock, parent_ts, shown)
        parent = slack.message(CHANNEL, parent_ts)
        if parent is not None and _ended(parent.text):
            # Its thread was printed as it came: the board alone, then her DM.
            _print_final(slack, clock, parent_ts, with_thread=False)
            if not _wait_dm(slack, CAROL, deadline):
                clock.say("carol got no DM")
                return 1
            _print_dm(slack, clock, CAROL)
            return 0 if "Deployed" in parent.text else 1
    clock.say("the demo timed out")
    return 1


def _ended(board_text: str) -> bool:
    return any(word in board_text for word in ("Deployed", "Stopped"))


def _new_replies(slack: SlackSimulator, clock: Clock, parent_ts: str, shown: set[str]) -> list[Any]:
    """Print the thread's replies not shown yet, as they appear; they are returned."""
    new = [reply for reply in _replies(slack, parent_ts) if reply.ts not in shown]
    for reply in new:
        shown.add(reply.ts)
        where = "thread + channel" if reply.reply_broadcast else "thread"
        clock.say(f"  ↳ ({where}) {plain(reply.text, NAMES)}")
    return new


def _ask(sender: SlackRequestSender, clock: Clock, question: str) -> None:
    """Alice types `/deploy-monitor QUESTION` in #deploys; she alone sees the answer."""
    clock.say(f"#{CHANNEL_NAME}  @alice: /deploy-monitor {question}")
    ack = sender.slash_command(question, user_id=ALICE, channel_id=CHANNEL)
    clock.say(f"   (only visible to alice) {ack_text(ack, NAMES)}")


def _private_answer(payload: dict[str, Any]) -> str:
    body = posted_lines(payload, NAMES)
    return "   (only visible to alice)\n" + "\n".join("     " + line for line in body)


def _wait_private_answer(
    slack: SlackSimulator, clock: Clock, answered: int, deadline: float
) -> bool:
    """Show the next answer through the command's response_url, once it comes."""
    while time.monotonic() < deadline:
        if len(slack.webhook_posts) > answered:
            clock.say(_private_answer(slack.webhook_posts[answered].payload))
            return True
        time.sleep(0.1)
    return False


def _wait_dm(slack: SlackSimulator, user: str, deadline: float) -> bool:
    """The end-of-journey DM follows the board's last edit closely; wait for it."""
    while time.monotonic() < deadline:
        if slack.messages(slack.dm_channel_id(user)):
            return True
        time.sleep(0.1)
    return False


def _expected_line(blocks: list[dict[str, Any]]) -> str | None:
    """The board's expected time, as a person reads it."""
    return next((line for line in blocks_text(blocks, NAMES) if "Expected" in line), None)


def _bystander_then_requester(
    sender: SlackRequestSender, clock: Clock, failure_ts: str, rerun_value: str
) -> None:
    clock.say("  bob reacts :octagonal_sign: to the failure message")
    sender.reaction_added(BOB, "octagonal_sign", CHANNEL, failure_ts)
    time.sleep(1.0)
    clock.say("  alice presses [Rerun] on the failure message")
    sender.block_action(ALICE, RERUN_ACTION, rerun_value, CHANNEL, failure_ts)


def _print_final(
    slack: SlackSimulator, clock: Clock, parent_ts: str, *, with_thread: bool = True
) -> None:
    """The board as it ends up, and its thread unless `with_thread` is False."""
    parent = slack.message(CHANNEL, parent_ts)
    assert parent is not None
    clock.say("")
    clock.say(f"#{CHANNEL_NAME}, as it ends up:")
    lines = [
        "┌ deploy-monitor (edited)",
        *("│ " + line for line in blocks_text(parent.blocks, NAMES)),
    ]
    clock.echo("\n".join(lines))
    if not with_thread:
        return
    clock.echo("└ thread:")
    for reply in _replies(slack, parent_ts):
        body = blocks_text(reply.blocks, NAMES) or [plain(reply.text, NAMES)]
        clock.echo("    • " + "\n      ".join(body))


def _print_dm(slack: SlackSimulator, clock: Clock, user: str) -> None:
    dm = slack.messages(slack.dm_channel_id(user))
    if dm:
        text = " ".join(blocks_text(dm[-1].blocks, NAMES) or [plain(dm[-1].text, NAMES)])
        clock.echo(f"DM to {NAMES.get(user, user)}: {text}")


def _replies(slack: SlackSimulator, parent_ts: str) -> list[Any]:
    return [m for m in slack.thread(CHANNEL, parent_ts) if m.ts != parent_ts]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False
