"""Faults: nothing is lost, nothing is said twice.

Real Redis, real `deploy-monitor worker` processes (RQ, scheduler on), the real Bolt app, and
the simulators. Workers are SIGKILLed at chosen moments (the instant Slack has stored a post and
not yet answered, during a status-board edit, during the look-up that follows a crash) and at
random ones; Concourse, GitHub and Slack fail in the ways they do; Redis is restarted; two bots
and three workers race for the same command. Each test compares the Slack simulator's record
with what the monitors' event logs call for.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from bot.slack.commands import start_from_slack
from bot.slack.face import install
from bot.slack.render import REDIS_DOWN
from simulators.lana_bank import JobPlan, Journey
from simulators.slack import SlackSimulator
from simulators.slack_client import SlackRequestSender
from tests.conftest import CONCOURSE_USER, World, wait_for
from tests.slack_fixtures import (
    ALICE,
    BACKEND,
    BOB,
    CHANNEL,
    SIGNING_SECRET,
    Process,
    SlackWorld,
    ack_text,
    button_value,
    expected_thread,
    fast,
    free_port,
    post_key,
    slack_env,
    slack_world,
    wait_healthy,
    wait_worker_ready,
)
from workers import keys
from workers.engine import Engine
from workers.monitor import monitor_id_for

REPO = "GaloyMoney/lana-bank"
DONE_TIMEOUT = 90.0


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    world.env["DEPLOY_MONITOR_REAP_SECONDS"] = "0.5"  # a killed worker's monitors resume sooner
    with slack_world(world) as s:
        yield s


# -- helpers --------------------------------------------------------------------------------------


def kinds(engine: Engine, monitor_id: str) -> list[str]:
    return [e.kind for _, e in engine.events(monitor_id)]


def original_text(message: Any) -> str:
    """What a message said when posted (a failure message is edited once someone decides)."""
    return str(message.history[0].text if message.history else message.text)


def all_messages(slack: SlackSimulator, channel: str) -> list[Any]:
    """Every message of a channel, replies and deleted ones included."""
    with slack.lock:
        return list(slack._messages.get(channel, []))


def assert_thread_exact(sw: SlackWorld, engine: Engine, monitor_id: str) -> None:
    """The monitor's thread (all its parents' threads, in order) holds each expected reply
    exactly once, in order, with the expected text; one DM; no key posted twice."""
    expected = expected_thread(engine, monitor_id)
    record = []
    for message in all_messages(sw.slack, CHANNEL):
        payload = (message.metadata or {}).get("event_payload") or {}
        key = post_key(message)
        if payload.get("monitor") == monitor_id and key and key.startswith("event:"):
            record.append((key, original_text(message)))
    assert record == expected, monitor_id
    dms = [
        m
        for m in all_messages(sw.slack, sw.slack.dm_channel_id(ALICE))
        if ((m.metadata or {}).get("event_payload") or {}).get("monitor") == monitor_id
    ]
    assert len(dms) == 1, [m.text for m in dms]


def assert_no_key_twice(slack: SlackSimulator, *channels: str) -> None:
    seen: Counter[tuple[str, str, str]] = Counter()
    for channel in channels:
        for message in all_messages(slack, channel):
            payload = (message.metadata or {}).get("event_payload") or {}
            if payload:
                seen[(payload["monitor"], payload["run"], payload["key"])] += 1
    repeated = {k: n for k, n in seen.items() if n > 1}
    assert not repeated, repeated


def delivered(sw: SlackWorld, engine: Engine, monitor_id: str) -> bool:
    monitor = engine.store.load(monitor_id)
    thread = sw.face.threads.get(monitor_id)
    return (
        monitor is not None
        and monitor.done
        and thread is not None
        and thread.cursor >= monitor.events_emitted
    )


def start_and_wait_for_parent(sw: SlackWorld, target: str, sha: str) -> str:
    """Start following `target` from Slack; the monitor id once its parent is posted."""
    assert "Looking up" in sw.command(target)
    monitor_id = monitor_id_for(REPO, sha)
    wait_for(lambda: sw.face.threads.get(monitor_id) is not None, timeout=20)
    return monitor_id


class Killer:
    """SIGKILLs the current worker at a chosen moment and starts a new one.

    `kill_when(match)` arms the Slack simulator's hook: the first call `match` accepts is
    carried out, then the worker dies before it reads the answer, which is exactly the window
    between "Slack has the message" and "we recorded that"."""

    def __init__(self, world: World, slack: SlackSimulator) -> None:
        self.world = world
        self.worker = world.workers[-1]
        self._lock = threading.Lock()
        self._armed: Callable[[str, dict[str, Any]], bool] | None = None
        self._fired = threading.Event()
        slack.on_call = self._on_call

    def _on_call(self, method: str, params: dict[str, Any], answer: dict[str, Any]) -> None:
        with self._lock:
            match = self._armed
            if match is None or not match(method, params):
                return
            self._armed = None
            worker = self.worker
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        self._fired.set()

    def kill_when(self, match: Callable[[str, dict[str, Any]], bool], timeout: float) -> bool:
        """Kill at the first matching call, or after `timeout` anyway; True if it matched."""
        self._fired.clear()
        with self._lock:
            self._armed = match
        fired = self._fired.wait(timeout)
        with self._lock:
            self._armed = None
        self.world.kill_worker(self.worker)
        return fired

    def start_then_kill_when(
        self, match: Callable[[str, dict[str, Any]], bool], timeout: float
    ) -> bool:
        """Arm first, then start a worker: its very first matching call kills it."""
        self._fired.clear()
        with self._lock:
            self._armed = match
        self.restart(wait_ready=False)
        fired = self._fired.wait(timeout)
        with self._lock:
            self._armed = None
        self.world.kill_worker(self.worker)
        return fired

    def kill_now(self) -> None:
        self.world.kill_worker(self.worker)

    def restart(self, *, wait_ready: bool = True) -> None:
        index = len(self.world.workers)
        self.worker = self.world.start_worker()
        if wait_ready:
            wait_worker_ready(self.world.tmp / f"worker-{index}.log")


def event_post(prefix: str = "event:") -> Callable[[str, dict[str, Any]], bool]:
    def match(method: str, params: dict[str, Any]) -> bool:
        metadata = params.get("metadata") or {}
        key = str((metadata.get("event_payload") or {}).get("key", ""))
        return method == "chat.postMessage" and key.startswith(prefix)

    return match


def method_is(*methods: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda method, _params: method in methods


# -- SIGKILL, 20 times ----------------------------------------------------------------------------


def test_worker_sigkilled_20_times_nothing_missing_nothing_repeated(sw: SlackWorld) -> None:
    world, engine = sw.world, sw.world.engine()
    rng = random.Random(20261128)
    journey = Journey(default_duration=2.0, check_delay=0.3, handoff_delay=0.8)
    flaky = Journey(
        plans={"test-bats": JobPlan(2.0, "failed", "not ok 2 disbursal\n", rerun_after=3.0)},
        default_duration=2.0,
        check_delay=0.3,
        handoff_delay=0.8,
    )
    files = [BACKEND, ["core/b.rs"], ["core/c.rs"], ["core/d.rs"]]
    shas = [world.github.add_commit(f"Kill {i}", f, on_main=False) for i, f in enumerate(files)]
    ids = [start_and_wait_for_parent(sw, sha[:10], sha) for sha in shas]
    # Staggered, so that builds finish (and replies are due) all through the kills.
    for i, (sha, changed) in enumerate(zip(shas, files, strict=True)):
        plan = flaky if i == 2 else journey
        threading.Timer(3.0 * i, world.ci.deliver, args=([(sha, changed)], plan)).start()

    def answer_the_failure() -> None:
        # The requester chooses "continue" by button as soon as the failure is in the thread.
        def failure() -> Any:
            thread = sw.face.threads.get(ids[2])
            assert thread is not None
            for message in sw.slack.thread(CHANNEL, thread.parent_ts):
                if "test-bats" in message.text and "dm_continue" in str(message.blocks):
                    return message
            return None

        wait_for(lambda: failure() is not None, timeout=DONE_TIMEOUT)
        message = failure()
        sw.sender.block_action(
            ALICE, "dm_continue", button_value(message, "dm_continue"), CHANNEL, message.ts
        )

    answering = threading.Thread(target=answer_the_failure, daemon=True)
    answering.start()

    killer = Killer(world, sw.slack)
    # Each "lookup" follows a "post": the kill left a post in flight, and the next worker is
    # killed while it reads the thread back to find out whether it landed.
    modes = ["post"] * 5 + ["update"] * 3 + ["random"] * 6 + ["startup"] * 2
    rng.shuffle(modes)
    for _ in range(2):
        at = rng.choice([i for i, m in enumerate(modes) if m == "post"])
        modes[at : at + 1] = ["post", "lookup"]
    modes.insert(rng.randrange(len(modes)), "post")
    modes.insert(rng.randrange(len(modes)), "post")
    assert len(modes) == 20
    fired: Counter[str] = Counter()
    lookup = method_is("conversations.replies", "conversations.history")
    for i, mode in enumerate(modes):
        if mode == "post":
            fired[mode] += killer.kill_when(event_post(), timeout=4.0)
        elif mode == "update":
            fired[mode] += killer.kill_when(method_is("chat.update"), timeout=3.0)
        elif mode == "lookup":  # armed before the worker starts: its first look-up is fatal
            fired[mode] += killer.start_then_kill_when(lookup, timeout=4.0)
        elif mode == "random":
            time.sleep(rng.uniform(0.05, 1.2))
            killer.kill_now()
        else:  # startup: the worker started last round is still starting up
            time.sleep(rng.uniform(0.0, 0.5))
            killer.kill_now()
        following = modes[i + 1] if i + 1 < len(modes) else None
        if following != "lookup":
            killer.restart(wait_ready=following != "startup")

    wait_for(lambda: all(delivered(sw, engine, i) for i in ids), timeout=DONE_TIMEOUT)
    answering.join(5)
    for monitor_id in ids:
        assert kinds(engine, monitor_id)[-1] == "deployed", kinds(engine, monitor_id)
        seqs = [e.seq for _, e in engine.events(monitor_id)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert_thread_exact(sw, engine, monitor_id)
    parents = [m for m in sw.channel() if m.thread_ts is None]
    assert len(parents) == len(ids), [m.text for m in parents]
    assert_no_key_twice(sw.slack, CHANNEL, sw.slack.dm_channel_id(ALICE))
    # The chosen moments were hit, and the posts in flight were resolved by looking them up.
    assert fired["post"] >= 3, fired
    assert any(c[0] == "conversations.replies" for c in sw.slack.calls), fired


def test_final_report_survives_a_kill_right_after_the_last_commit(sw: SlackWorld) -> None:
    # The last tick has no successor to retry its notifications: the reaper must deliver them.
    world, engine = sw.world, sw.world.engine()
    sha = world.github.add_commit("Last words", BACKEND)
    monitor_id = start_and_wait_for_parent(sw, sha, sha)
    killer = Killer(world, sw.slack)

    def finished_board_update(method: str, _params: dict[str, Any]) -> bool:
        monitor = engine.store.load(monitor_id)
        return method == "chat.update" and monitor is not None and monitor.done

    world.ci.deliver([(sha, BACKEND)], fast())
    assert killer.kill_when(finished_board_update, timeout=DONE_TIMEOUT)
    assert not delivered(sw, engine, monitor_id)
    killer.restart()
    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=30)
    assert_thread_exact(sw, engine, monitor_id)
    assert engine.redis.zcard(keys.undelivered(engine.store.ns)) == 0


@pytest.fixture
def quick_start(world: World) -> Iterator[SlackWorld]:
    """A world where a start job whose worker died is run again within seconds."""
    world.env["DEPLOY_MONITOR_REAP_SECONDS"] = "0.5"
    world.env["DEPLOY_MONITOR_START_TIMEOUT"] = "5"
    world.env["DEPLOY_MONITOR_JOB_GRACE_SECONDS"] = "1"
    with slack_world(world) as s:
        yield s


@pytest.mark.parametrize(
    "moment",
    [
        "before the merge",  # the first Slack call of the job: nothing done yet
        "parent posted, answer lost",  # merged, and Slack stored the board we never heard of
    ],
)
def test_worker_killed_inside_a_start_job_the_command_still_completes(
    quick_start: SlackWorld, moment: str
) -> None:
    sw = quick_start
    world, engine = sw.world, sw.world.engine()
    world.github.add_pull_request(1234, "Add origination fee", BACKEND)
    world.ci.follow_main(world.github, fast())
    killer = Killer(world, sw.slack)
    match = method_is("conversations.info") if moment == "before the merge" else None
    match = match or event_post("parent-of-run:")
    threading.Timer(0.3, sw.command, args=("1234",)).start()
    assert killer.kill_when(match, timeout=20)
    assert len(world.github.merges) == (0 if moment == "before the merge" else 1)
    killer.restart()

    wait_for(lambda: len(world.github.merges) == 1, timeout=30)
    monitor_id = monitor_id_for(REPO, world.github.merges[0][1])
    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=DONE_TIMEOUT)
    assert len(world.github.merge_attempts) == 1  # the retry found the PR merged
    parents = [m for m in all_messages(sw.slack, CHANNEL) if m.thread_ts is None]
    assert [post_key(m) for m in parents] == [
        f"parent-of-run:{sw.face.threads.get(monitor_id).run}"
    ]
    assert_thread_exact(sw, engine, monitor_id)
    assert_no_key_twice(sw.slack, CHANNEL)
    # The retry recognised its own monitor: the requester was not told it is someone else's.
    assert not [p for p in sw.slack.webhook_posts if "already" in str(p.payload)]


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, no handler catches it."""


def test_a_start_job_run_again_after_its_thread_was_recorded_posts_no_second_parent(
    sw: SlackWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one window no Slack call marks: the thread is recorded, the monitor not yet stored.
    world, engine = sw.world, sw.world.engine()
    world.github.add_pull_request(1234, "Add origination fee", BACKEND)
    world.ci.follow_main(world.github, fast())
    install(sw.face)
    launch = sw.face.engine.launch

    def crash_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(sw.face.engine, "launch", launch)
        raise Crash

    monkeypatch.setattr(sw.face.engine, "launch", crash_once)
    with pytest.raises(Crash):
        start_from_slack("1234", ALICE, CHANNEL, "", "c0ffee")
    assert start_from_slack("1234", ALICE, CHANNEL, "", "c0ffee") == "started"
    monitor_id = monitor_id_for(REPO, world.github.merges[0][1])
    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=DONE_TIMEOUT)
    parents = [m for m in all_messages(sw.slack, CHANNEL) if m.thread_ts is None]
    assert [post_key(m) for m in parents] == ["parent-of-run:cmd-c0ffee"]
    assert len(world.github.merge_attempts) == 1
    assert_thread_exact(sw, engine, monitor_id)


# -- Slack: 429, 5xx, lost answers, a deleted parent ----------------------------------------------


def test_slack_429_bursts_are_waited_out_not_dropped_or_repeated(sw: SlackWorld) -> None:
    engine = sw.world.engine()
    sha = sw.world.github.add_commit("Rate limited", BACKEND)
    monitor_id = start_and_wait_for_parent(sw, sha, sha)
    sw.slack.rate_limit_next("chat.postMessage", n=12, retry_after=1)
    sw.slack.rate_limit_next("chat.update", n=6, retry_after=1)
    sw.world.ci.deliver([(sha, BACKEND)], fast())
    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=DONE_TIMEOUT)
    assert_thread_exact(sw, engine, monitor_id)
    posts = [c for c in sw.slack.calls if c[0] == "chat.postMessage"]
    assert len(posts) >= len(expected_thread(engine, monitor_id)) + 12  # all 429s were served


def test_slack_5xx_and_lost_answers_neither_drop_nor_repeat(sw: SlackWorld) -> None:
    engine = sw.world.engine()
    sha = sw.world.github.add_commit("Flaky Slack", BACKEND)
    monitor_id = start_and_wait_for_parent(sw, sha, sha)
    # Stored but answered 500 (a blind retry would post twice), then refused with 503s (more
    # than the three attempts after which a message Slack *refuses* is skipped), then lost
    # again; the status board's edits fail too.
    sw.slack.lose_answer_next("chat.postMessage", n=2, status=500)
    sw.slack.fail_next("chat.postMessage", n=5, status=503)
    sw.slack.lose_answer_next("chat.postMessage", n=1, status=502)
    sw.slack.fail_next("chat.update", n=4, status=500)
    sw.world.ci.deliver([(sha, BACKEND)], fast())
    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=DONE_TIMEOUT)
    assert_thread_exact(sw, engine, monitor_id)
    assert_no_key_twice(sw.slack, CHANNEL, sw.slack.dm_channel_id(ALICE))
    # Each lost answer was resolved by reading the thread back.
    assert len([c for c in sw.slack.calls if c[0] == "conversations.replies"]) >= 3


def test_a_board_slack_will_not_edit_does_not_silence_the_thread(sw: SlackWorld) -> None:
    engine = sw.world.engine()
    sha = sw.world.github.add_commit("Edit window", BACKEND)
    monitor_id = start_and_wait_for_parent(sw, sha, sha)
    # A workspace whose edit window has closed refuses every chat.update from now on.
    sw.slack.error_next("chat.update", "edit_window_closed", n=1000)
    sw.world.ci.deliver([(sha, BACKEND)], fast())
    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=DONE_TIMEOUT)
    assert_thread_exact(sw, engine, monitor_id)


def test_deleted_parent_moves_to_a_new_one_once_even_with_a_kill(sw: SlackWorld) -> None:
    world, engine = sw.world, sw.world.engine()
    sha = world.github.add_commit("Deleted parent", BACKEND)
    monitor_id = start_and_wait_for_parent(sw, sha, sha)
    world.ci.deliver([(sha, BACKEND)], fast(**{"test-integration": JobPlan(2.0)}))
    wait_for(lambda: "stage_started" in kinds(engine, monitor_id), timeout=20)
    old = sw.face.threads.get(monitor_id)
    assert old is not None
    killer = Killer(world, sw.slack)
    sw.slack.delete_message(CHANNEL, old.parent_ts)
    # Die the moment Slack has the new parent, before the thread record says so.
    assert killer.kill_when(event_post("parent:"), timeout=20)
    killer.restart()
    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=DONE_TIMEOUT)

    new = sw.face.threads.get(monitor_id)
    assert new is not None and new.parent_ts != old.parent_ts
    assert [m.ts for m in sw.channel() if m.thread_ts is None] == [new.parent_ts]
    new_parents = [
        m for m in all_messages(sw.slack, CHANNEL) if post_key(m) == f"parent:{old.parent_ts}"
    ]
    assert len(new_parents) == 1
    replies = sw.slack.thread(CHANNEL, new.parent_ts)
    assert post_key(replies[0]) == f"moved:{new.parent_ts}"
    assert "previous status message was deleted" in replies[0].text
    assert new.parent_ts.replace(".", "") in new.permalink
    assert_thread_exact(sw, engine, monitor_id)
    assert_no_key_twice(sw.slack, CHANNEL)


# -- Concourse down, slow, or refusing us ---------------------------------------------------------


def test_concourse_5xx_then_timeouts_one_notice_then_back(sw: SlackWorld) -> None:
    world, engine = sw.world, sw.world.engine()
    sha = world.github.add_commit("Outage", BACKEND)
    monitor_id = start_and_wait_for_parent(sw, sha, sha)
    world.ci.deliver([(sha, BACKEND)], fast(**{"test-integration": JobPlan(4.0)}))
    wait_for(lambda: "stage_started" in kinds(engine, monitor_id), timeout=20)
    world.concourse.fail_next(10**6, status=502)
    wait_for(lambda: "unreachable" in kinds(engine, monitor_id), timeout=10)
    time.sleep(1.0)  # five more poll intervals of 502s
    # Then it stops answering at all: one request outlives the client's 10 s timeout.
    world.concourse.hang_next(1, 11.0)
    world.concourse.fail_next(0)
    wait_for(lambda: "reachable" in kinds(engine, monitor_id), timeout=40)
    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=DONE_TIMEOUT)

    assert any(status == 504 for _, _, status in world.concourse.requests), "no request hung"
    assert kinds(engine, monitor_id).count("unreachable") == 1
    assert kinds(engine, monitor_id).count("reachable") == 1
    assert kinds(engine, monitor_id)[-1] == "deployed"
    texts = [t for _, t in expected_thread(engine, monitor_id)]
    assert sum("Concourse is not answering" in t for t in texts) == 1
    assert sum("Concourse is answering again" in t for t in texts) == 1
    assert_thread_exact(sw, engine, monitor_id)
    assert world.workers[-1].poll() is None, "the worker crashed"
    assert FailedJobRegistry(queue=engine.queue).count == 0


def test_concourse_token_expiry_role_loss_and_refused_login_are_clear(sw: SlackWorld) -> None:
    world, engine = sw.world, sw.world.engine()
    sha = world.github.add_commit("Auth trouble", BACKEND)
    monitor_id = start_and_wait_for_parent(sw, sha, sha)
    world.ci.deliver([(sha, BACKEND)], fast(**{"test-integration": JobPlan(5.0)}))
    wait_for(lambda: "stage_started" in kinds(engine, monitor_id), timeout=20)
    # Expired tokens: logged in again, silently.
    logins = world.concourse.logins
    for expiry in range(2):
        world.concourse.expire_tokens()
        wait_for(lambda n=expiry: world.concourse.logins > logins + n, timeout=10)
        time.sleep(0.6)  # a few polls with the new token (not two expiries in one request)
    assert "unreachable" not in kinds(engine, monitor_id)
    # The bot's user loses its role in the team: 403, said plainly, until it is given back.
    world.concourse.remove_user_from_team(CONCOURSE_USER)
    wait_for(lambda: kinds(engine, monitor_id).count("unreachable") == 1, timeout=10)
    world.concourse.add_user_to_team(CONCOURSE_USER)
    wait_for(lambda: kinds(engine, monitor_id).count("reachable") == 1, timeout=10)
    # Its password is rotated while its token expires: the login is refused, said plainly.
    password = world.env["CONCOURSE_PASSWORD"]
    world.concourse.set_password(CONCOURSE_USER, "rotated-elsewhere")
    world.concourse.expire_tokens()
    wait_for(lambda: kinds(engine, monitor_id).count("unreachable") == 2, timeout=10)
    world.concourse.set_password(CONCOURSE_USER, password)
    wait_for(lambda: kinds(engine, monitor_id).count("reachable") == 2, timeout=10)
    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=DONE_TIMEOUT)

    notices = [t for _, t in expected_thread(engine, monitor_id) if "will keep trying" in t]
    assert len(notices) == 2, notices
    assert f"user {CONCOURSE_USER} has no role in Concourse team dev (403" in notices[0]
    assert (
        f"Concourse login failed for user {CONCOURSE_USER}: invalid username or password"
        in notices[1]
    )
    assert kinds(engine, monitor_id)[-1] == "deployed"
    assert_thread_exact(sw, engine, monitor_id)


# -- GitHub rate limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [("primary", 403), ("secondary", 429)])
def test_github_rate_limit_reschedules_the_tick_after_the_reset(
    sw: SlackWorld, kind: str, status: int
) -> None:
    world, engine = sw.world, sw.world.engine()
    # Two commits checked together: the builds run the second, so following the first needs
    # GitHub's compare (does the second contain it?) during the ticks.
    first = world.github.add_commit("First", ["core/a.rs"])
    second = world.github.add_commit("Second", ["core/b.rs"])
    monitor_id = start_and_wait_for_parent(sw, first, first)
    reset_in = 4
    world.github.rate_limit_next(1, kind=kind, reset_in=reset_in, status=status)
    limited_before = time.time()
    world.ci.deliver([(first, ["core/a.rs"]), (second, ["core/b.rs"])], fast())
    wait_for(lambda: any(s == status for _, _, s in world.github.requests), timeout=20)
    limited_at = time.time()
    reset_at = (int(limited_before) if kind == "primary" else limited_before) + reset_in

    # The next tick is scheduled for the reset, under its own job id.
    registry = ScheduledJobRegistry(queue=engine.queue)
    wait_for(lambda: any("-rl" in j for j in registry.get_job_ids()), timeout=5)
    job_id = next(j for j in registry.get_job_ids() if "-rl" in j)
    scheduled = registry.get_scheduled_time(job_id).replace(tzinfo=UTC).timestamp()
    assert reset_at - 1.0 <= scheduled <= limited_at + reset_in + 1.0, (scheduled, reset_at)
    due = engine.redis.zscore(keys.active(engine.store.ns), monitor_id)
    assert due is not None and abs(due - scheduled) < 1.0
    # Until then nothing is asked of GitHub or Concourse for it: no busy loop.
    time.sleep(0.5)
    github_before, concourse_before = len(world.github.requests), len(world.concourse.requests)
    time.sleep(max(0.0, scheduled - time.time() - 0.5))
    assert len(world.github.requests) == github_before
    assert len(world.concourse.requests) == concourse_before
    limited = [r for r in world.github.requests if r[2] == status]
    assert len(limited) == 1

    wait_for(lambda: delivered(sw, engine, monitor_id), timeout=DONE_TIMEOUT)
    assert kinds(engine, monitor_id)[-1] == "deployed"
    assert "carried" in kinds(engine, monitor_id)
    assert_thread_exact(sw, engine, monitor_id)


# -- Redis restarted ------------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    *("--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), timeout=10, interval=0.05)
        client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _status(url: str) -> int:
    try:
        return httpx.get(url + "/healthz", timeout=2.0).status_code
    except httpx.HTTPError:
        return 0


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_restarted_bot_and_worker_reconnect(world: World, tmp_path: Path) -> None:
    server = RedisServer(free_port(), tmp_path / "redis.log")
    server.start()
    slack = SlackSimulator()
    slack.start()
    slack.add_channel(CHANNEL, "deploys")
    port = free_port()
    slack_env(world, slack, REDIS_URL=server.url, PORT=str(port), LOG_LEVEL="INFO")
    bot = Process(["bot"], dict(world.env), tmp_path / "bot.log").start()
    worker = Process(["worker"], dict(world.env), tmp_path / "worker.log").start()
    url = f"http://127.0.0.1:{port}"
    sender = SlackRequestSender(url, SIGNING_SECRET, response_url_base=slack.url + "/hooks")
    engine = world.engine()

    def thread_says(sha: str, needle: str) -> bool:
        parent = next((m for m in slack.messages(CHANNEL) if sha[:7] in str(m.blocks)), None)
        return parent is not None and any(
            needle in m.text for m in slack.thread(CHANNEL, parent.ts)
        )

    try:
        wait_healthy(url)
        wait_worker_ready(worker)
        before = world.github.add_commit("Before the restart", BACKEND)
        world.ci.deliver([(before, BACKEND)], fast())
        assert "Looking up" in ack_text(
            sender.slash_command(before, user_id=ALICE, channel_id=CHANNEL)
        )
        wait_for(lambda: thread_says(before, "Deployment complete!"), timeout=45)

        server.kill()  # no persistence: everything in it is gone
        wait_for(lambda: _status(url) == 503, timeout=10)
        during = sender.slash_command("list", user_id=ALICE, channel_id=CHANNEL)
        assert during.status_code == 200 and ack_text(during) == REDIS_DOWN
        during = sender.slash_command(before, user_id=ALICE, channel_id=CHANNEL)
        assert during.status_code == 200 and ack_text(during) == REDIS_DOWN

        server.start()
        wait_for(lambda: _status(url) == 200, timeout=20)
        after = world.github.add_commit("After the restart", ["core/after.rs"])
        world.ci.deliver([(after, ["core/after.rs"])], fast())
        assert "Looking up" in ack_text(
            sender.slash_command(after, user_id=ALICE, channel_id=CHANNEL)
        )
        wait_for(lambda: thread_says(after, "Deployment complete!"), timeout=60)
        assert "Nothing is being followed" in ack_text(
            sender.slash_command("list", user_id=ALICE, channel_id=CHANNEL)
        )
        assert bot.alive and worker.alive
        assert engine.store.active_ids() == []
    finally:
        sender.close()
        bot.stop()
        worker.stop()
        server.kill()
        slack.stop()


def test_redis_gone_while_a_job_finishes_the_worker_waits_and_carries_on(
    world: World, tmp_path: Path
) -> None:
    # RQ ends its work loop when Redis vanishes as a job is marked finished; the process must
    # not end with it, nor sit idle.
    server = RedisServer(free_port(), tmp_path / "redis.log")
    server.start()
    env = {**world.env, "REDIS_URL": server.url, "LOG_LEVEL": "INFO"}
    worker = Process(["worker"], env, tmp_path / "worker.log").start()
    queue_name = env["DEPLOY_MONITOR_QUEUE"]
    try:
        wait_worker_ready(worker)
        connection = redis.Redis.from_url(server.url)
        slow = Queue(queue_name, connection=connection).enqueue("time.sleep", 2.0)
        wait_for(lambda: slow.get_status(refresh=True) == "started", timeout=10)
        server.kill()  # the job ends while Redis is away
        wait_for(lambda: "starting again once Redis answers" in worker.output(), timeout=10)
        assert worker.alive
        server.start()
        connection = redis.Redis.from_url(server.url)
        after = Queue(queue_name, connection=connection).enqueue("os.getpid")
        wait_for(lambda: after.get_status(refresh=True) == "finished", timeout=20)
        assert after.return_value() == worker.popen.pid if worker.popen else False
    finally:
        worker.stop()
        server.kill()


# -- two bots, three workers ----------------------------------------------------------------------


def test_two_bots_three_workers_one_merge_one_parent_one_thread(
    world: World, tmp_path: Path
) -> None:
    slack = SlackSimulator()
    slack.start()
    slack.add_channel(CHANNEL, "deploys")
    slack_env(world, slack, LOG_LEVEL="INFO")
    ports = [free_port(), free_port()]
    bots = [
        Process(["bot"], {**world.env, "PORT": str(p)}, tmp_path / f"bot-{i}.log").start()
        for i, p in enumerate(ports)
    ]
    workers = [
        Process(["worker"], dict(world.env), tmp_path / f"worker-{i}.log").start() for i in range(3)
    ]
    senders = [
        SlackRequestSender(
            f"http://127.0.0.1:{p}", SIGNING_SECRET, response_url_base=slack.url + "/hooks"
        )
        for p in ports
    ]
    engine = world.engine()
    try:
        for port in ports:
            wait_healthy(f"http://127.0.0.1:{port}")
        for worker in workers:
            wait_worker_ready(worker)
        world.github.add_pull_request(1234, "Add origination fee", BACKEND)
        world.ci.follow_main(world.github, fast())
        acks: list[str] = []
        barrier = threading.Barrier(2)

        def send(sender: SlackRequestSender, user: str) -> None:
            barrier.wait()
            acks.append(ack_text(sender.slash_command("1234", user_id=user, channel_id=CHANNEL)))

        threads = [
            threading.Thread(target=send, args=(senders[0], ALICE)),
            threading.Thread(target=send, args=(senders[1], BOB)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(acks) == 2 and all("Looking up PR #1234" in a for a in acks), acks

        wait_for(lambda: len(world.github.merges) == 1, timeout=30)
        monitor_id = monitor_id_for(REPO, world.github.merges[0][1])

        def finished() -> bool:
            monitor = engine.store.load(monitor_id)
            return (
                monitor is not None
                and monitor.done
                and not engine.redis.zcard(keys.undelivered(engine.store.ns))
            )

        wait_for(finished, timeout=DONE_TIMEOUT)
        parents = [m for m in slack.messages(CHANNEL) if m.thread_ts is None]
        assert len(parents) == 1
        record = [
            (post_key(m), original_text(m))
            for m in slack.thread(CHANNEL, parents[0].ts)
            if (post_key(m) or "").startswith("event:")
        ]
        assert record == expected_thread(engine, monitor_id)
        assert len(world.github.merges) == 1
        assert len(world.github.merge_attempts) == 1
        loser = [p.payload.get("text", "") for p in slack.webhook_posts]
        assert len(loser) == 1 and "already being followed" in str(loser[0]), loser
        assert_no_key_twice(slack, CHANNEL)
        assert all(b.alive for b in bots) and all(w.alive for w in workers)
    finally:
        for sender in senders:
            sender.close()
        for process in [*bots, *workers]:
            process.stop()
        slack.stop()
