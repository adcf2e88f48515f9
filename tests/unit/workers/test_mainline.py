"""The watcher of main: real Redis, the real GitHub client against the simulator. One request
per look while main stands still, one more when it moved; commits handed on oldest first;
one look per interval across workers; nothing asked while nobody subscribed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from simulators.github import GitHubSimulator
from tests.conftest import TEST_REDIS_URL
from workers import keys, mainline
from workers.engine import Engine
from workers.settings import EngineSettings
from workers.subscriptions import Subscription

REPO = "GaloyMoney/lana-bank"


@pytest.fixture
def github() -> Iterator[GitHubSimulator]:
    with GitHubSimulator(repository=REPO, token="ghs_test") as sim:
        sim.add_commit("initial", ["README.md"])
        yield sim


@pytest.fixture
def engine(redis_conn: redis.Redis, github: GitHubSimulator) -> Engine:
    settings = EngineSettings(
        redis_url=TEST_REDIS_URL,
        github_token="ghs_test",
        github_api_url=github.url,
        github_repository=REPO,
        queue_name=f"dm-test-main-{uuid.uuid4().hex[:8]}",
        poll_seconds=30.0,
    )
    return Engine(settings)


def handed(engine: Engine) -> list[tuple[str, list[str]]]:
    got: list[tuple[str, list[str]]] = []
    engine.main_listeners.append(lambda repository, shas: got.append((repository, shas)))
    return got


def next_interval(engine: Engine) -> None:
    engine.redis.delete(keys.main_lock(engine.store.ns, REPO))


def subscribe(engine: Engine, channel: str = "C1") -> None:
    engine.subscriptions.subscribe(Subscription(repository=REPO, channel=channel))


def test_nothing_is_asked_while_nobody_subscribed(engine: Engine, github: GitHubSimulator) -> None:
    got = handed(engine)
    github.requests.clear()
    assert mainline.watched_repositories(engine) == []
    assert mainline.look_at_main(engine, REPO) == []
    assert github.requests == [] and got == []


def test_a_push_is_handed_on_commit_by_commit(engine: Engine, github: GitHubSimulator) -> None:
    got = handed(engine)
    subscribe(engine, "C1")
    subscribe(engine, "C2")  # two channels, still one look
    assert mainline.watched_repositories(engine) == [REPO]
    github.requests.clear()
    assert mainline.look_at_main(engine, REPO) == []  # the first look only notes where main is
    assert len(github.requests) == 1

    next_interval(engine)
    github.requests.clear()
    assert mainline.look_at_main(engine, REPO) == []  # main stood still: one request
    assert [r[1].split("?")[0] for r in github.requests] == [f"/repos/{REPO}/git/ref/heads/main"]

    pushed = [github.add_commit(f"change {n}", [f"src/{n}.rs"]) for n in range(3)]
    next_interval(engine)
    github.requests.clear()
    assert mainline.look_at_main(engine, REPO) == pushed
    assert got == [(REPO, pushed)]
    assert len(github.requests) == 2  # the head, then the commits since the last one seen
    # Another worker in the same interval asks nothing.
    github.requests.clear()
    assert mainline.look_at_main(engine, REPO) == []
    assert github.requests == []


def test_a_rewritten_main_hands_on_its_head_alone(engine: Engine, github: GitHubSimulator) -> None:
    got = handed(engine)
    subscribe(engine)
    base = github.main_head
    mainline.look_at_main(engine, REPO)
    github.add_commit("soon gone", ["a.txt"])
    next_interval(engine)
    mainline.look_at_main(engine, REPO)
    # Force-pushed: main now points at a sibling of the commit seen.
    rewritten = github.add_commit("rewritten", ["b.txt"], parents=[base])
    next_interval(engine)
    assert mainline.look_at_main(engine, REPO) == [rewritten]
    assert got[-1] == (REPO, [rewritten])


def test_a_failing_listener_gets_the_commits_again(engine: Engine, github: GitHubSimulator) -> None:
    subscribe(engine)
    calls: list[list[str]] = []

    def flaky(repository: str, shas: list[str]) -> None:
        calls.append(shas)
        if len(calls) == 1:
            raise OSError("queue unreachable")

    engine.main_listeners.append(flaky)
    mainline.look_at_main(engine, REPO)
    pushed = github.add_commit("change", ["x.rs"])
    next_interval(engine)
    with pytest.raises(OSError):
        mainline.look_at_main(engine, REPO)
    next_interval(engine)
    assert mainline.look_at_main(engine, REPO) == [pushed]
    assert calls == [[pushed], [pushed]]


def test_a_huge_push_follows_its_newest_commits(engine: Engine, github: GitHubSimulator) -> None:
    subscribe(engine)
    handed(engine)
    mainline.look_at_main(engine, REPO)
    pushed = [github.add_commit(f"c{n}", [f"{n}.rs"]) for n in range(25)]
    next_interval(engine)
    assert mainline.look_at_main(engine, REPO) == pushed[-mainline.MAX_COMMITS_PER_LOOK :]
