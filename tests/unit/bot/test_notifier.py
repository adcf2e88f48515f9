"""The notifier posts every message exactly once: an attempt is recorded in Redis before each
post, an attempt of unknown outcome is looked up in Slack before posting again, 429s are waited
out within the delivery's budget, a message Slack keeps refusing is skipped, and a deleted
status board moves to a new one with one notice. Against the Slack simulator (a real WebClient
over HTTP) and a real Redis: no mocks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from slack_sdk.errors import SlackApiError

from bot.slack.client import classify, web_client
from bot.slack.notifier import METADATA_EVENT_TYPE, SlackNotifier
from bot.slack.payloads import PostMark
from bot.slack.render import final_dm, moved_notice, status_board, thread_reply
from bot.slack.settings import BotSettings
from bot.slack.threads import PostAttempt, SlackThread, SlackThreads, parent_key
from simulators.slack import Message, SlackSimulator
from tests.slack_fixtures import post_key
from workers.chain import load_chain
from workers.events import Deployed, Event, StageSucceeded
from workers.monitor import Monitor, new_monitor
from workers.store import MonitorStore

NAMESPACE = "dm:test-notifier"
CHANNEL = "C0DEPLOYS"
ALICE = "U0ALICE"
RUN = "run-1"


@dataclass
class Clock:
    """Real time that only moves on when the notifier sleeps (a 429 waited out)."""

    now: float = field(default_factory=time.time)
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator() as simulator:
        simulator.add_channel(CHANNEL, "deploys")
        yield simulator


@pytest.fixture
def store(redis_conn: redis.Redis) -> MonitorStore:
    return MonitorStore(redis_conn, namespace=NAMESPACE)


@pytest.fixture
def threads(redis_conn: redis.Redis) -> SlackThreads:
    return SlackThreads(redis_conn, namespace=NAMESPACE)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class Delivery:
    """A started monitor, its Slack thread, and the notifier delivering its events."""

    sim: SlackSimulator
    store: MonitorStore
    threads: SlackThreads
    notifier: SlackNotifier
    monitor: Monitor
    parent_ts: str

    def emit(self, *events: Event, status: str = "active") -> Monitor:
        """Append events to the monitor's log as a tick would (seq fenced)."""
        expected = self.monitor.seq
        monitor = self.monitor.model_copy(deep=True)
        monitor.seq += 1
        monitor.status = status  # type: ignore[assignment]
        for event in events:
            monitor.events_emitted += 1
            event.seq = monitor.events_emitted
            event.at = time.time()
        self.store.commit(expected, monitor, list(events), due_at=0.0)
        self.monitor = monitor
        return monitor

    def deliver(self) -> None:
        self.notifier.deliver(self.monitor)

    @property
    def thread(self) -> SlackThread:
        thread = self.threads.get(self.monitor.id)
        assert thread is not None
        return thread

    def replies(self, parent_ts: str | None = None) -> list[Message]:
        parent = parent_ts or self.thread.parent_ts
        return [m for m in self.sim.thread(CHANNEL, parent) if m.ts != parent]

    def keys(self, parent_ts: str | None = None) -> list[str | None]:
        """The message key of every reply in the thread, in order."""
        return [post_key(m) for m in self.replies(parent_ts)]

    def posts(self) -> int:
        return sum(method == "chat.postMessage" for method, _ in self.sim.calls)

    def called(self, method: str) -> bool:
        return any(name == method for name, _ in self.sim.calls)


def passed(stage: str = "tests") -> StageSucceeded:
    return StageSucceeded(stage=stage, label=stage.title(), duration=42)


def notifier(
    sim: SlackSimulator,
    threads: SlackThreads,
    store: MonitorStore,
    clock: Clock,
    *,
    budget_seconds: float = 30.0,
) -> SlackNotifier:
    settings = BotSettings.model_validate(
        {"SLACK_BOT_TOKEN": sim.token, "SLACK_API_URL": sim.api_url}
    )
    return SlackNotifier(
        client=web_client(settings),
        threads=threads,
        store=store,
        budget_seconds=budget_seconds,
        clock=clock,
        sleep=clock.sleep,
    )


def start(
    sim: SlackSimulator,
    store: MonitorStore,
    threads: SlackThreads,
    clock: Clock,
    *,
    budget_seconds: float = 30.0,
) -> Delivery:
    """A monitor started as `/deploy-monitor` starts one: board posted, thread recorded."""
    monitor, events = new_monitor(
        chain=load_chain(),
        repository="GaloyMoney/lana-bank",
        sha="a1b2c3d" + "0" * 33,
        headline="Add origination fee",
        committed_at=0,
        files=["core/credit/src/fee.rs"],
        now=clock(),
        requester=ALICE,
    )
    monitor = store.create(monitor, events, due_at=0.0)
    posting = notifier(sim, threads, store, clock, budget_seconds=budget_seconds)
    draft = SlackThread(
        monitor_id=monitor.id,
        channel=CHANNEL,
        parent_ts="",
        requester=ALICE,
        permalink="",
        cursor=0,
        run=RUN,
    )
    parent_ts = posting.post_parent(draft, status_board(monitor, requester=ALICE))
    threads.create(
        monitor.id,
        channel=CHANNEL,
        parent_ts=parent_ts,
        requester=ALICE,
        permalink=posting.permalink(CHANNEL, parent_ts),
        run=RUN,
    )
    return Delivery(sim, store, threads, posting, monitor, parent_ts)


@pytest.fixture
def run(sim: SlackSimulator, store: MonitorStore, threads: SlackThreads, clock: Clock) -> Delivery:
    return start(sim, store, threads, clock)


# -- each message once -----------------------------------------------------------------------


def test_each_event_is_posted_once_in_order_and_the_cursor_follows(run: Delivery) -> None:
    run.emit(passed("build"), passed("tests"))
    run.deliver()
    run.deliver()  # nothing new: nothing posted
    assert run.keys() == ["event:2", "event:3"]
    expected = [thread_reply(e, run.monitor) for _, e in run.store.events(run.monitor.id)]
    assert [m.text for m in run.replies()] == [r.text for r in expected if r is not None]
    assert run.thread.cursor == run.monitor.events_emitted == 3
    assert run.posts() == 3  # the board and two replies
    assert run.sim.message(CHANNEL, run.parent_ts).history  # type: ignore[union-attr]


def test_a_post_carries_its_mark_and_the_record_names_its_ts(run: Delivery) -> None:
    run.emit(passed())
    run.deliver()
    (reply,) = run.replies()
    assert reply.metadata == PostMark(monitor=run.monitor.id, run=RUN, key="event:2").metadata(
        METADATA_EVENT_TYPE
    )
    assert run.threads.posted(run.monitor.id, "event:2") == reply.ts
    assert run.threads.attempt(run.monitor.id, "event:2") is None


def test_a_lost_answer_is_looked_up_and_the_message_never_posted_twice(run: Delivery) -> None:
    run.emit(passed())
    run.sim.lose_answer_next("chat.postMessage")  # Slack stores it; the 500 hides that
    with pytest.raises(SlackApiError) as caught:
        run.deliver()
    assert classify(caught.value).kind == "uncertain"
    assert run.threads.attempt(run.monitor.id, "event:2") is not None  # outcome unknown
    assert run.thread.cursor == 1
    run.deliver()
    assert run.keys() == ["event:2"]
    assert run.called("conversations.replies")
    assert run.threads.posted(run.monitor.id, "event:2") == run.replies()[0].ts
    assert run.threads.attempt(run.monitor.id, "event:2") is None
    assert run.thread.cursor == 2


def test_a_post_that_never_reached_slack_is_posted_after_the_look_up(run: Delivery) -> None:
    run.emit(passed())
    run.sim.fail_next("chat.postMessage")  # a 500 and nothing stored
    with pytest.raises(SlackApiError):
        run.deliver()
    assert run.keys() == []
    assert run.threads.attempt(run.monitor.id, "event:2") is not None
    run.deliver()
    assert run.keys() == ["event:2"]
    assert run.called("conversations.replies")


@pytest.mark.parametrize("reached_slack", [True, False])
def test_a_worker_killed_mid_post_leaves_an_attempt_the_next_delivery_settles(
    run: Delivery, reached_slack: bool
) -> None:
    """Killed after writing the attempt, before (or after) Slack stored the message, always
    before the record: whoever delivers next posts it only when it is not there."""
    event = passed()
    run.emit(event)
    run.threads.begin_post(
        run.monitor.id, "event:2", PostAttempt(CHANNEL, run.parent_ts, time.time())
    )
    if reached_slack:
        reply = thread_reply(event, run.monitor)
        assert reply is not None
        mark = PostMark(monitor=run.monitor.id, run=RUN, key="event:2")
        run.sim.web_client().chat_postMessage(
            channel=CHANNEL,
            text=reply.text,
            thread_ts=run.parent_ts,
            metadata=mark.metadata(METADATA_EVENT_TYPE),
        )
    run.deliver()
    run.deliver()
    assert run.keys() == ["event:2"]
    assert run.threads.posted(run.monitor.id, "event:2") == run.replies()[0].ts


def test_a_message_of_another_run_is_not_taken_for_ours(run: Delivery) -> None:
    run.emit(passed())
    run.threads.begin_post(
        run.monitor.id, "event:2", PostAttempt(CHANNEL, run.parent_ts, time.time())
    )
    # The same key posted by an earlier run of the monitor (a commit followed again).
    earlier = PostMark(monitor=run.monitor.id, run="run-0", key="event:2")
    run.sim.web_client().chat_postMessage(
        channel=CHANNEL,
        text="old",
        thread_ts=run.parent_ts,
        metadata=earlier.metadata(METADATA_EVENT_TYPE),
    )
    run.deliver()
    assert run.replies()[0].text == "old"
    assert run.keys() == ["event:2", "event:2"]
    assert run.threads.posted(run.monitor.id, "event:2") == run.replies()[1].ts


# -- rate limits and refusals ------------------------------------------------------------------


def test_rate_limits_are_waited_out_within_the_budget(run: Delivery, clock: Clock) -> None:
    run.emit(passed())
    run.sim.rate_limit_next("chat.postMessage", n=2, retry_after=2)
    run.deliver()
    assert clock.sleeps == [2.0, 2.0]
    assert run.keys() == ["event:2"]
    assert not run.called("conversations.replies")  # a 429 stored nothing: no look-up


def test_a_rate_limit_beyond_the_budget_is_left_to_the_next_delivery(
    sim: SlackSimulator, store: MonitorStore, threads: SlackThreads, clock: Clock
) -> None:
    run = start(sim, store, threads, clock, budget_seconds=1.0)
    run.emit(passed())
    sim.rate_limit_next("chat.postMessage", retry_after=5)
    with pytest.raises(SlackApiError) as caught:
        run.deliver()
    failure = classify(caught.value)
    assert (failure.kind, failure.retry_after) == ("rate_limited", 5.0)
    assert clock.sleeps == []
    assert run.threads.attempt(run.monitor.id, "event:2") is None  # nothing was stored
    run.deliver()
    assert run.keys() == ["event:2"]
    assert not run.called("conversations.replies")


def test_a_message_slack_keeps_refusing_is_skipped_after_three_tries(run: Delivery) -> None:
    run.emit(passed("build"), passed("tests"))
    run.sim.error_next("chat.postMessage", "invalid_blocks", n=3)
    for _ in range(2):
        with pytest.raises(SlackApiError):
            run.deliver()
        assert run.thread.cursor == 1
        assert run.threads.attempt(run.monitor.id, "event:2") is None  # refused: not stored
    run.deliver()
    assert run.keys() == ["event:3"]
    assert run.thread.cursor == 3


# -- the status board and the first post -------------------------------------------------------


def test_the_first_board_after_a_lost_answer_is_posted_once(
    sim: SlackSimulator, store: MonitorStore, threads: SlackThreads, clock: Clock
) -> None:
    sim.lose_answer_next("chat.postMessage")
    run = start(sim, store, threads, clock)
    (parent,) = sim.messages(CHANNEL)
    assert run.parent_ts == parent.ts
    assert post_key(parent) == parent_key(RUN)
    assert run.called("conversations.history")


def test_a_deleted_board_moves_to_a_new_one_with_one_notice(run: Delivery) -> None:
    run.emit(passed("build"))
    run.deliver()
    old = run.parent_ts
    run.sim.delete_message(CHANNEL, old)
    run.emit(passed("tests"))
    run.deliver()
    run.deliver()
    (parent,) = run.sim.messages(CHANNEL)
    assert parent.ts != old and run.thread.parent_ts == parent.ts
    assert run.thread.moved_to == ""
    assert run.thread.permalink.endswith(parent.ts.replace(".", ""))
    assert run.replies()[0].text == moved_notice().text
    assert run.keys() == [f"moved:{parent.ts}", "event:3"]
    assert run.keys(old) == ["event:2"]


def test_a_move_interrupted_twice_still_posts_one_board_and_one_notice(run: Delivery) -> None:
    """The new board's answer is lost, then the notice's: each is looked up, neither repeated."""
    run.sim.delete_message(CHANNEL, run.parent_ts)
    run.emit(passed())

    def lose_the_notice_answer(method: str, params: dict[str, Any], _: dict[str, Any]) -> None:
        if method == "conversations.history":  # the look-up that finds the new board
            run.sim.lose_answer_next("chat.postMessage")  # the notice, posted next

    run.sim.lose_answer_next("chat.postMessage")  # the new board
    with pytest.raises(SlackApiError):
        run.deliver()
    run.sim.on_call = lose_the_notice_answer
    with pytest.raises(SlackApiError):
        run.deliver()
    run.sim.on_call = None
    assert run.thread.moved_to != ""  # the notice's outcome is not known yet
    run.deliver()
    run.deliver()
    (parent,) = run.sim.messages(CHANNEL)
    assert run.thread.parent_ts == parent.ts and run.thread.moved_to == ""
    assert run.keys() == [f"moved:{parent.ts}", "event:2"]


# -- the DM --------------------------------------------------------------------------------


def test_the_requester_gets_one_dm_at_the_end(run: Delivery) -> None:
    final = Deployed(short_sha="a1b2c3d", headline="Add fee", timeline=[], total=None)
    monitor = run.emit(final, status="deployed")
    run.deliver()
    run.deliver()
    (dm,) = run.sim.messages(run.sim.dm_channel_id(ALICE))
    assert dm.text == final_dm(monitor, final, permalink=run.thread.permalink).text
    assert post_key(dm) == "dm"
    assert run.keys() == ["event:2"]
