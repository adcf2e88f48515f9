"""The daily digest of what waits on main, end to end: real Redis, real workers (their digest
thread), the Bolt app over signed HTTP, the Concourse, GitHub and Slack simulators. Staging runs
a past deploy; main holds commits that waited for hours and one that just landed. During the
configured hour each subscribed channel gets one digest listing exactly the commits that
waited long enough, oldest first, with their authors and the compare link; a second worker
sends nothing more that day; a staging that runs main's latest commit gets no digest at all."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from simulators.slack import Message
from tests.conftest import REPOSITORY, World, wait_for
from tests.slack_fixtures import ALICE, BACKEND, CHANNEL, SlackWorld, slack_world
from workers import keys

OTHER = "C0OTHER"
DIGEST_TITLE = "on main not on staging"
HOUR = 3600


def digest_hour_now() -> int:
    """The current UTC hour, the digest's hour in these tests; near the hour's end, the next
    one is waited for so the test does not straddle two hours."""
    moment = datetime.now(UTC)
    if moment.minute == 59 and moment.second >= 30:
        time.sleep(61 - moment.second)
    return datetime.now(UTC).hour


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    world.env["DEPLOY_MONITOR_DIGEST_HOUR"] = str(digest_hour_now())
    world.env["DEPLOY_MONITOR_DIGEST_MIN_AGE"] = "30m"
    with slack_world(world) as s:
        s.slack.add_channel(OTHER, "releases")
        yield s


def digests(sw: SlackWorld, channel: str) -> list[Message]:
    return [m for m in sw.slack.messages(channel) if DIGEST_TITLE in m.text]


def subscribe(sw: SlackWorld, channel: str) -> None:
    assert "every new commit" in sw.command("subscribe", user=ALICE, channel=channel)


def test_the_digest_lists_exactly_the_waiting_commits_once_a_day(sw: SlackWorld) -> None:
    now = time.time()
    github = sw.world.github
    staged = sw.world.ci.seed_deploys(github, 2, since=now - 4 * HOUR)
    oldest = github.add_commit(
        "Ledger <!channel> fix", BACKEND, committed_at=now - 2 * HOUR, author_login="ann-gh"
    )
    older = github.add_commit(
        "Faster reports", BACKEND, committed_at=now - 1.5 * HOUR, author_login="bo-gh"
    )
    young = github.add_commit("Just landed", BACKEND, committed_at=now - 60, author_login="cy")
    subscribe(sw, CHANNEL)
    subscribe(sw, OTHER)

    wait_for(lambda: digests(sw, CHANNEL) and digests(sw, OTHER), timeout=20)
    message = digests(sw, CHANNEL)[0]
    body = str(message.blocks)
    assert "2 commits on main not on staging for more than 30m" in message.text
    # Exactly the commits that waited long enough, oldest first: not the young one, nor any
    # staging runs.
    assert re.findall(r"• `([0-9a-f]{7})`", body) == [oldest[:7], older[:7]]
    assert "Just landed" not in body and "Past change" not in body
    assert "by ann-gh" in body and "by bo-gh" in body
    assert "&lt;!channel&gt;" in body and "<!channel>" not in body
    assert f"Staging runs `{staged[-1][:7]}`; main is 3 commits ahead" in body
    assert f"https://github.com/{REPOSITORY}/compare/{staged[-1]}...{young}" in body

    # A second worker, and many more intervals of both: nothing more today.
    sw.world.start_worker()
    time.sleep(3)
    assert len(digests(sw, CHANNEL)) == 1 and len(digests(sw, OTHER)) == 1


def test_no_digest_at_all_when_staging_is_current(sw: SlackWorld) -> None:
    sw.world.ci.seed_deploys(sw.world.github, 2, since=time.time() - 4 * HOUR)
    subscribe(sw, CHANNEL)
    engine = sw.face.engine
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    look = keys.digest_look(engine.store.ns, REPOSITORY, day)
    # The day's look was taken (staging read), and it found nothing to say.
    wait_for(lambda: engine.redis.exists(look), timeout=20)
    time.sleep(1)
    assert digests(sw, CHANNEL) == []
