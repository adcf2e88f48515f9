"""bot/slack/threads.py against a real Redis: where each monitor lives in Slack, and back."""

from __future__ import annotations

import pytest
import redis

from bot.slack.threads import PostAttempt, SlackThread, SlackThreads, parent_key
from workers import keys
from workers.events import StageFailed
from workers.keys import EVENT_DEDUPE_SECONDS, FINISHED_TTL_SECONDS

NS = keys.namespace("test-threads")
MONITOR = "lana-bank-0123456789ab"
CHANNEL = "C0DEPLOY"


@pytest.fixture
def threads(redis_conn: redis.Redis) -> SlackThreads:
    return SlackThreads(redis_conn, namespace=NS)


def started(threads: SlackThreads, run: str = "run-1", parent_ts: str = "1700.000100") -> None:
    threads.create(
        MONITOR,
        channel=CHANNEL,
        parent_ts=parent_ts,
        requester="U0ALICE",
        permalink="https://slack.example/p1700000100",
        run=run,
    )


def failure(prompt: int | None = 1) -> StageFailed:
    return StageFailed(
        seq=4,
        stage="tests",
        label="lana-bank tests",
        job="test-bats",
        build_name="57",
        build_url="https://ci.example.com/builds/57",
        status="failed",
        log_tail="boom",
        prompt=prompt,
    )


def test_the_parent_record_is_read_back_with_its_cursor_at_zero(threads: SlackThreads) -> None:
    started(threads)
    assert threads.get(MONITOR) == SlackThread(
        monitor_id=MONITOR,
        channel=CHANNEL,
        parent_ts="1700.000100",
        requester="U0ALICE",
        permalink="https://slack.example/p1700000100",
        cursor=0,
        run="run-1",
    )
    # The parent is the run's first post: never posted twice.
    assert threads.posted(MONITOR, parent_key("run-1")) == "1700.000100"


def test_an_unknown_monitor_has_no_thread(threads: SlackThreads) -> None:
    assert threads.get("nobody") is None
    assert threads.posted("nobody", "event:1") is None
    assert threads.attempt("nobody", "event:1") is None


def test_it_lives_under_the_namespaced_slack_key(
    threads: SlackThreads, redis_conn: redis.Redis
) -> None:
    started(threads)
    stored = "dm:test-threads:slack:lana-bank-0123456789ab"  # a persistence format: spelled out
    assert redis_conn.hget(stored, "parent_ts") == b"1700.000100"
    assert [k.decode() for k in redis_conn.scan_iter()] == [stored]


def test_the_same_run_again_keeps_its_posts_and_a_new_run_starts_clean(
    threads: SlackThreads,
) -> None:
    started(threads)
    threads.record_post(MONITOR, "event:1", "1700.000200")
    threads.advance(MONITOR, 1)
    started(threads)  # a start job run a second time
    assert threads.posted(MONITOR, "event:1") == "1700.000200"
    started(threads, run="run-2", parent_ts="1800.000100")  # the commit followed again
    thread = threads.get(MONITOR)
    assert thread is not None and (thread.run, thread.cursor) == ("run-2", 0)
    assert threads.posted(MONITOR, "event:1") is None
    assert threads.posted(MONITOR, parent_key("run-2")) == "1800.000100"


def test_the_cursor_advances(threads: SlackThreads) -> None:
    started(threads)
    threads.advance(MONITOR, 3)
    thread = threads.get(MONITOR)
    assert thread is not None and thread.cursor == 3


def test_a_moved_parent_stays_marked_until_the_notice_is_posted(threads: SlackThreads) -> None:
    started(threads)
    threads.move_parent(MONITOR, "1700.000900", "https://slack.example/p1700000900")
    thread = threads.get(MONITOR)
    assert thread is not None
    assert (thread.parent_ts, thread.moved_to) == ("1700.000900", "1700.000900")
    assert thread.permalink == "https://slack.example/p1700000900"
    threads.notice_posted(MONITOR)
    thread = threads.get(MONITOR)
    assert thread is not None and (thread.parent_ts, thread.moved_to) == ("1700.000900", "")


def test_an_in_flight_post_is_remembered_until_recorded(threads: SlackThreads) -> None:
    started(threads)
    attempt = PostAttempt(channel=CHANNEL, thread_ts="1700.000100", since=1700.5)
    threads.begin_post(MONITOR, "event:2", attempt)
    assert threads.attempt(MONITOR, "event:2") == attempt
    assert threads.posted(MONITOR, "event:2") is None
    threads.record_post(MONITOR, "event:2", "1700.000300")
    assert threads.attempt(MONITOR, "event:2") is None
    assert threads.posted(MONITOR, "event:2") == "1700.000300"


def test_an_abandoned_post_leaves_nothing_to_look_up(threads: SlackThreads) -> None:
    started(threads)
    threads.begin_post(MONITOR, "dm", PostAttempt(channel="D0ALICE", thread_ts=None, since=1.0))
    assert threads.attempt(MONITOR, "dm") == PostAttempt("D0ALICE", None, 1.0)
    threads.abandon_post(MONITOR, "dm")
    assert threads.attempt(MONITOR, "dm") is None
    assert threads.posted(MONITOR, "dm") is None


def test_failures_are_counted_per_event(threads: SlackThreads) -> None:
    started(threads)
    assert [threads.count_failure(MONITOR, 5) for _ in range(3)] == [1, 2, 3]
    assert threads.count_failure(MONITOR, 6) == 1


def test_a_failure_message_leads_back_to_its_monitor_and_prompt(threads: SlackThreads) -> None:
    started(threads)
    event = failure(prompt=2)
    threads.remember_prompt(MONITOR, event, CHANNEL, "1700.000400")
    found = threads.prompt_at(CHANNEL, "1700.000400")
    assert found is not None
    assert (found.monitor_id, found.prompt, found.channel, found.ts) == (
        MONITOR,
        2,
        CHANNEL,
        "1700.000400",
    )
    assert found.event == event
    assert threads.prompt(MONITOR, 2) == found
    assert threads.prompt_at(CHANNEL, "1700.000500") is None
    assert threads.prompt(MONITOR, 3) is None


def test_a_failure_message_lookup_expires_with_finished_monitors(
    threads: SlackThreads, redis_conn: redis.Redis
) -> None:
    threads.remember_prompt(MONITOR, failure(), CHANNEL, "1700.000400")
    ttl = redis_conn.ttl(keys.slack_message(NS, CHANNEL, "1700.000400"))
    assert FINISHED_TTL_SECONDS - 5 <= ttl <= FINISHED_TTL_SECONDS


def test_an_events_api_delivery_is_handled_once(
    threads: SlackThreads, redis_conn: redis.Redis
) -> None:
    assert threads.first_delivery("Ev0123")
    assert not threads.first_delivery("Ev0123")  # Slack's retry of the same event
    assert threads.first_delivery("Ev0456")
    ttl = redis_conn.ttl(keys.slack_event(NS, "Ev0123"))
    assert EVENT_DEDUPE_SECONDS - 5 <= ttl <= EVENT_DEDUPE_SECONDS


def test_a_finished_thread_expires_and_a_running_one_does_not(
    threads: SlackThreads, redis_conn: redis.Redis
) -> None:
    started(threads)
    assert redis_conn.ttl(keys.slack_thread(NS, MONITOR)) == -1
    threads.finish(MONITOR)
    ttl = redis_conn.ttl(keys.slack_thread(NS, MONITOR))
    assert FINISHED_TTL_SECONDS - 5 <= ttl <= FINISHED_TTL_SECONDS
    assert threads.get(MONITOR) is not None  # still readable for `list` and debugging
