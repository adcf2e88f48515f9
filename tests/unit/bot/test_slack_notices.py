"""Text-only messages go to Slack without a `blocks` argument: an empty `blocks: []` is not
a message body Slack documents, and the "moved" notice used to send one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bot.slack.blockkit import SlackMessage
from bot.slack.notifier import SlackNotifier
from bot.slack.render import moved_notice
from bot.slack.threads import SlackThreads
from simulators.slack import SlackSimulator
from workers.chain import load_chain
from workers.monitor import new_monitor
from workers.store import MonitorStore

CHANNEL = "C0DEPLOYS"


@pytest.fixture
def slack() -> Iterator[SlackSimulator]:
    with SlackSimulator() as simulator:
        simulator.add_channel(CHANNEL, "deploys")
        yield simulator


def test_an_empty_block_list_cannot_be_made() -> None:
    with pytest.raises(ValueError):
        SlackMessage(text="hello", blocks=[])


def test_the_moved_notice_is_text_only() -> None:
    notice = moved_notice()
    assert notice.blocks is None
    assert notice.text == "The previous status message was deleted; following the commit here now."


def test_a_deleted_parent_is_replaced_and_the_notice_carries_no_blocks(
    slack: SlackSimulator, redis_conn: redis.Redis
) -> None:
    monitor, events = new_monitor(
        chain=load_chain(),
        repository="GaloyMoney/lana-bank",
        sha="abc1234" + "0" * 33,
        headline="Add fee",
        committed_at=1_700_000_000,
        files=["core/src/lib.rs"],
        now=1_700_000_000,
        requester="U0ALICE",
    )
    store, threads = MonitorStore(redis_conn), SlackThreads(redis_conn)
    store.create(monitor, events, due_at=0)
    notifier = SlackNotifier(
        client=slack.web_client(), threads=threads, store=store, dm_requester=False
    )
    parent = slack.web_client().chat_postMessage(channel=CHANNEL, text="board")
    threads.create(
        monitor.id,
        channel=CHANNEL,
        parent_ts=str(parent["ts"]),
        requester="U0ALICE",
        permalink="",
        run="run-1",
    )
    slack.delete_message(CHANNEL, str(parent["ts"]))

    notifier.deliver(monitor)

    moved = threads.get(monitor.id)
    assert moved is not None and moved.parent_ts != parent["ts"]
    posts = [params for method, params in slack.calls if method == "chat.postMessage"]
    notices = [p for p in posts if p.get("text") == moved_notice().text]
    assert len(notices) == 1
    assert notices[0]["thread_ts"] == moved.parent_ts
    assert "blocks" not in notices[0]
    # Every other post of the delivery has blocks, and none has an empty list.
    assert all(p.get("blocks") for p in posts if p not in notices and p.get("text") != "board")
