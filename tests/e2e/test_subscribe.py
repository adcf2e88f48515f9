"""Following main without a command, end to end: real Redis, a real worker (its watcher of
main), the Bolt app over signed HTTP, the Concourse, GitHub and Slack simulators. A subscribed
channel gets a journey for each commit pushed to main, nobody asking; the commit's author gets
the end-of-journey DM, found by email or by `link`, and nobody does after `dm off`; a
`subscribe failures` channel gets no stage-passed replies; a second channel gets a link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.slack.render import FOLLOWED_AUTOMATICALLY
from simulators.lana_bank import JobPlan
from simulators.slack import Message
from tests.conftest import REPOSITORY, World, wait_for
from tests.slack_fixtures import (
    ALICE,
    BACKEND,
    BOB,
    CHANNEL,
    SlackWorld,
    fast,
    post_key,
    slack_world,
)
from workers import keys
from workers.monitor import monitor_id_for

DANA, ERIN = "U0DANA", "U0ERIN"
OTHER = "C0OTHER"


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    with slack_world(world) as s:
        yield s


def subscribe(sw: SlackWorld, text: str = "subscribe", channel: str = CHANNEL) -> str:
    said = sw.command(text, user=ALICE, channel=channel)
    # The worker's watcher notes where main is on its first look; pushes after it are news.
    seen = keys.main_seen(sw.face.engine.store.ns, REPOSITORY)
    wait_for(lambda: sw.face.engine.redis.get(seen) is not None, timeout=10)
    return said


def auto_parents(sw: SlackWorld, channel: str = CHANNEL) -> list[Message]:
    return [
        m
        for m in sw.slack.messages(channel)
        if m.thread_ts in (None, m.ts) and FOLLOWED_AUTOMATICALLY in m.text + str(m.blocks)
    ]


def dms(sw: SlackWorld, user: str) -> list[Message]:
    return sw.slack.messages(sw.slack.dm_channel_id(user))


def finished(sw: SlackWorld, sha: str) -> bool:
    monitor = sw.face.engine.store.load(monitor_id_for(REPOSITORY, sha))
    return monitor is not None and monitor.done


def reply_kinds(sw: SlackWorld, sha: str, parent: Message) -> list[str]:
    """The event type behind every reply in the commit's thread, in order."""
    events = {
        e.seq: type(e).__name__ for _, e in sw.face.engine.events(monitor_id_for(REPOSITORY, sha))
    }
    kinds = []
    for message in sw.slack.thread(CHANNEL, parent.ts):
        key = post_key(message) or ""
        if key.startswith("event:"):
            kinds.append(events[int(key.removeprefix("event:"))])
    return kinds


def test_a_push_to_main_is_followed_commit_by_commit_and_its_author_hears(
    sw: SlackWorld,
) -> None:
    sw.slack.add_user(DANA, "dana", email="dana@example.com")
    said = subscribe(sw)
    assert "every new commit on `GaloyMoney/lana-bank` main" in said
    github = sw.world.github
    first = github.add_commit(
        "Dana's change", BACKEND, author_email="Dana@example.com", author_login="dana-gh"
    )
    second = github.add_commit(
        "A stranger's change", BACKEND, author_email="ghost@example.com", author_login=None
    )
    sw.world.ci.deliver([(first, BACKEND), (second, BACKEND)], fast())

    wait_for(lambda: len(auto_parents(sw)) == 2, timeout=20)
    # Push order: the older commit's thread first.
    parents = auto_parents(sw)
    assert "Dana's change" in parents[0].text + str(parents[0].blocks)
    assert "stranger" in parents[1].text + str(parents[1].blocks)
    assert all("Requested by" not in str(p.blocks) for p in parents)
    wait_for(lambda: finished(sw, first) and finished(sw, second), timeout=45)
    wait_for(lambda: len(dms(sw, DANA)) == 1, timeout=10)
    assert first[:7] in dms(sw, DANA)[0].text + str(dms(sw, DANA)[0].blocks)
    # Her Home's last journeys list it, and her Home is published again for it.
    assert [j.sha for j in sw.face.home.people.journeys(DANA)] == [first]
    wait_for(lambda: sw.slack.home_view(DANA) is not None, timeout=10)
    # The subscriber asked for nothing: no DM; the stranger has no Slack account.
    assert dms(sw, ALICE) == []
    lookups = [p for method, p in sw.slack.calls if method == "users.lookupByEmail"]
    assert sorted(str(p["email"]).lower() for p in lookups) == [
        "dana@example.com",
        "ghost@example.com",
    ]
    # Two commits, one journey each: exactly two monitors, no third.
    engine = sw.face.engine
    assert len(list(engine.redis.scan_iter(keys.monitor(engine.store.ns, "*")))) == 2


def test_a_linked_login_gets_the_dm_and_dm_off_means_off(sw: SlackWorld) -> None:
    assert "GitHub `bob-gh` is you" in sw.command("link bob-gh", user=BOB)
    sw.command("link erin-gh", user=ERIN)
    assert "No more DMs" in sw.command("dm off", user=ERIN)
    subscribe(sw)
    github = sw.world.github
    # Bob's email is a private one Slack cannot know: only his link finds him.
    bobs = github.add_commit(
        "Bob's change",
        BACKEND,
        author_email="1234+bob-gh@users.noreply.github.com",
        author_login="bob-gh",
    )
    sw.world.ci.deliver([(bobs, BACKEND)], fast())
    wait_for(lambda: finished(sw, bobs), timeout=45)
    wait_for(lambda: len(dms(sw, BOB)) == 1, timeout=10)

    erins = github.add_commit("Erin's change", BACKEND, author_login="erin-gh")
    sw.world.ci.deliver([(erins, BACKEND)], fast())
    wait_for(lambda: finished(sw, erins), timeout=45)
    wait_for(lambda: len(auto_parents(sw)) == 2, timeout=5)
    assert dms(sw, ERIN) == []
    assert len(dms(sw, BOB)) == 1
    assert not [p for method, p in sw.slack.calls if method == "users.lookupByEmail"]


def test_subscribe_failures_posts_no_stage_passed_replies(sw: SlackWorld) -> None:
    sw.slack.add_channel(OTHER, "general")
    said = subscribe(sw, "subscribe failures")
    assert "only failures, warnings and the outcome" in said
    subscribe(sw, "subscribe", channel=OTHER)  # later: it gets a link, not a second thread
    flaky = fast(**{"test-integration": JobPlan(0.5, outcome="failed", rerun_after=0.5)})
    sha = sw.world.github.add_commit("Flaky change", BACKEND)
    sw.world.ci.deliver([(sha, BACKEND)], flaky)
    wait_for(lambda: len(auto_parents(sw)) == 1, timeout=20)
    wait_for(lambda: finished(sw, sha), timeout=45)
    (parent,) = auto_parents(sw)

    def outcome_posted() -> bool:
        return reply_kinds(sw, sha, parent)[-1:] == ["Deployed"]

    wait_for(outcome_posted, timeout=10)
    kinds = reply_kinds(sw, sha, parent)
    assert "StageFailed" in kinds  # the failure is said
    assert "StageSucceeded" not in kinds
    assert set(kinds) <= {"StageFailed", "RecoveredByRerun", "Deployed"}
    # Every stage did pass: the log has it, the thread does not.
    logged = [type(e).__name__ for _, e in sw.face.engine.events(monitor_id_for(REPOSITORY, sha))]
    assert "StageSucceeded" in logged
    # The second channel: one message pointing to the thread, no thread of its own.
    (pointer,) = sw.slack.messages(OTHER)
    assert sha[:7] in pointer.text and "slack.com/archives" in pointer.text
    assert auto_parents(sw, OTHER) == []


def test_a_commit_asked_for_and_subscribed_is_one_monitor(sw: SlackWorld) -> None:
    subscribe(sw)
    github = sw.world.github
    # Asked for before it is on main (the watcher cannot have seen it), then pushed.
    sha = github.add_commit("Asked and pushed", BACKEND, on_main=False)
    sw.command(sha, user=BOB)
    wait_for(lambda: len(sw.parents()) == 1, timeout=20)
    with github.lock:
        github.branches["main"] = sha
    seen = keys.main_seen(sw.face.engine.store.ns, REPOSITORY)
    wait_for(lambda: sw.face.engine.redis.get(seen) == sha.encode(), timeout=10)
    sw.world.ci.deliver([(sha, BACKEND)], fast())
    wait_for(lambda: finished(sw, sha), timeout=45)
    parents = sw.parents()
    assert len(parents) == 1, [m.text for m in parents]
    assert "Requested by <@U0BOB>" in str(parents[0].blocks)
    assert auto_parents(sw) == []


def test_the_prs_author_hears_not_whoever_authored_its_merge_commit(sw: SlackWorld) -> None:
    pat = "U0PAT"
    sw.slack.add_user(DANA, "dana", email="dana@example.com")
    assert "GitHub `pat-gh` is you" in sw.command("link pat-gh", user=pat)
    github = sw.world.github
    # Merged with a merge commit by Dana: the commit is hers, the change (the PR) is Pat's.
    github.add_pull_request(
        31,
        "Pat's change",
        BACKEND,
        state="MERGED",
        author_login="dana-gh",
        author_email="dana@example.com",
    )
    github.pull_requests[31].author_login = "pat-gh"
    sha = github.main_head
    sw.world.ci.deliver([(sha, BACKEND)], fast())
    assert "Looking up PR #31" in sw.command("31", user=ALICE)
    wait_for(lambda: finished(sw, sha), timeout=45)
    wait_for(lambda: len(dms(sw, pat)) == 1 and len(dms(sw, ALICE)) == 1, timeout=10)
    assert sha[:7] in dms(sw, pat)[0].text + str(dms(sw, pat)[0].blocks)
    # Dana's email is not the author's: she is not looked up, nor told.
    assert dms(sw, DANA) == []
    assert not [p for method, p in sw.slack.calls if method == "users.lookupByEmail"]
