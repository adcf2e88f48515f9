"""Ancestry for many monitors from a few lists of commits: exact, and cheap. Against the GitHub
simulator (a real commit DAG, served over loopback) and a real Redis."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis

from simulators.github import GitHubSimulator
from workers.ancestry import CoverageResolver
from workers.github import GitHubClient
from workers.store import MonitorStore

REPO = "GaloyMoney/lana-bank"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[GitHubSimulator]:
    github = GitHubSimulator(repository=REPO, token="t", clock=clock)
    github.start()
    yield github
    github.stop()


@pytest.fixture
def client(sim: GitHubSimulator) -> Iterator[GitHubClient]:
    with GitHubClient(repository=REPO, token="t", api_url=sim.url) as github:
        yield github


def resolver(client: GitHubClient, redis_conn: redis.Redis, name: str) -> CoverageResolver:
    return CoverageResolver(client, MonitorStore(redis_conn, namespace=f"dm:anc-{name}"))


def truth(client: GitHubClient, sha: str, ref: str) -> bool:
    return client.compare(sha, ref).status in ("ahead", "identical")


def test_many_monitors_on_main_cost_one_list_per_ref_and_per_commit(
    sim: GitHubSimulator, client: GitHubClient, redis_conn: redis.Redis, clock: Clock
) -> None:
    commits = []
    for i in range(12):
        clock.now += 600
        commits.append(sim.add_commit(f"Change {i}", ["core/x.rs"]))
    followed, refs = commits[:10], commits[8:]  # builds of the newest commits
    coverage = resolver(client, redis_conn, "main")
    before = len(sim.requests)
    answers = {
        (sha, ref): coverage.covers(sha, T0 + 600 * (i + 1), ref)
        for i, sha in enumerate(followed)
        for ref in refs
    }
    made = len(sim.requests) - before
    assert coverage.compared == 0
    # At most one list per ref and one per followed commit, instead of 40 compares.
    assert made <= len(refs) + len(followed), made
    for (sha, ref), answer in answers.items():
        assert answer == truth(client, sha, ref), (sha[:7], ref[:7])
    # Everything is remembered: asking again costs nothing.
    before = len(sim.requests)
    for i, sha in enumerate(followed):
        for ref in refs:
            coverage.covers(sha, T0 + 600 * (i + 1), ref)
    assert len(sim.requests) == before


def test_a_diverged_ref_is_asked_with_compare_and_answered_right(
    sim: GitHubSimulator, client: GitHubClient, redis_conn: redis.Redis, clock: Clock
) -> None:
    base = sim.add_commit("Base", ["a"])
    clock.now += 60
    ours = sim.add_commit("Ours, on main", ["b"])
    clock.now += 60
    side = sim.add_commit("A branch off base", ["c"], parents=[base], on_main=False)
    coverage = resolver(client, redis_conn, "diverged")
    assert coverage.covers(ours, T0 + 60, side) is False
    assert coverage.compared == 1  # neither list names the other commit
    assert coverage.covers(base, T0, side) is True
    assert coverage.compared == 1  # base is in the side branch's list


def test_random_histories_with_merges_and_skewed_dates_agree_with_compare(
    sim: GitHubSimulator, client: GitHubClient, redis_conn: redis.Redis, clock: Clock
) -> None:
    rng = random.Random(7)
    shas = [sim.main_head]
    dates = {sim.main_head: T0}
    for i in range(40):
        # Dates mostly move forward, sometimes back (rebased or skewed clocks).
        clock.now = T0 + i * 900 + rng.choice([0, 0, 0, -5000, 40_000])
        parents = [rng.choice(shas[-8:])]
        if rng.random() < 0.2:
            parents.append(rng.choice(shas))
        sha = sim.add_commit(f"c{i}", ["f"], parents=sorted(set(parents)), on_main=False)
        shas.append(sha)
        dates[sha] = clock.now
    pairs = sorted({(rng.choice(shas), rng.choice(shas)) for _ in range(150)})
    # Related pairs (one descends from the other) are what the lists can settle; unrelated
    # ones always take a compare.
    related = [(a, b) for a, b in pairs if truth(client, a, b) or truth(client, b, a)]
    unrelated = [pair for pair in pairs if pair not in related]
    assert len(related) > 30 and len(unrelated) > 30
    coverage = resolver(client, redis_conn, "random")
    for sha, ref in related:
        assert coverage.covers(sha, dates[sha], ref) == truth(client, sha, ref), (sha, ref)
    # Only pairs a skewed date put out of the lists' reach needed a compare.
    assert coverage.compared <= len(related) // 5, (coverage.compared, len(related))
    for sha, ref in unrelated:
        assert coverage.covers(sha, dates[sha], ref) is False, (sha, ref)


def test_a_commit_github_does_not_know_is_carried_by_nothing(
    sim: GitHubSimulator, client: GitHubClient, redis_conn: redis.Redis
) -> None:
    ours = sim.add_commit("Ours", ["a"])
    coverage = resolver(client, redis_conn, "unknown")
    assert coverage.covers(ours, T0, "f" * 40) is False


def test_a_long_history_is_read_only_as_far_as_the_commit_asked_about(
    sim: GitHubSimulator, client: GitHubClient, redis_conn: redis.Redis, clock: Clock
) -> None:
    commits = []
    for i in range(250):  # three pages of history
        clock.now += 10
        commits.append(sim.add_commit(f"Change {i}", ["core/x.rs"]))
    head = commits[-1]
    coverage = resolver(client, redis_conn, "pages")

    def lists_read(sha: str) -> int:
        before = len(sim.requests)
        assert coverage.covers(sha, T0 + 10 * (commits.index(sha) + 1), head) is True
        return sum("/commits?" in path for _, path, _ in sim.requests[before:])

    assert lists_read(commits[-5]) == 1  # on the first page (newest first)
    assert lists_read(commits[10]) == 2  # pages two and three; page one is remembered
    assert lists_read(commits[120]) == 0  # page two was read already
    assert coverage.compared == 0
