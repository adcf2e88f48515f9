"""The chain view kept in Redis, and `where`/`status` answered from it: real Redis, the real
clients, the Concourse and GitHub simulators over loopback, a history of past deploys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from simulators.concourse import ConcourseSimulator
from simulators.github import GitHubSimulator
from simulators.lana_bank import USUAL_SECONDS, LanaBankCI
from workers.chain import Chain, load_chain
from workers.concourse import ConcourseClient
from workers.errors import TargetError
from workers.github import GitHubClient
from workers.observe import JobWindow
from workers.store import MonitorStore
from workers.target import ResolvedTarget, TargetSpec, look_up_target
from workers.viewer import USUAL_MAX_AGE_SECONDS, ChainViewer

T0 = 1_700_000_000.0
POLL = 30.0
USER, PASSWORD, TOKEN = "deploy-bot", "concourse-pass", "ghs_test"
REPO = "GaloyMoney/lana-bank"
TESTS_JOBS = [("lana-bank", "test-integration"), ("lana-bank", "test-bats")]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    concourse: ConcourseSimulator
    github: GitHubSimulator
    ci: LanaBankCI
    chain: Chain
    redis: redis.Redis
    clock: Clock
    deploys: list[str]
    namespace: str

    def viewer(self) -> ChainViewer:
        client = ConcourseClient(self.concourse.url, "dev", username=USER, password=PASSWORD)
        client.user()  # log in now: counted requests are the questions' only
        return ChainViewer(
            chain=self.chain,
            concourse=client,
            github=GitHubClient(repository=REPO, token=TOKEN, api_url=self.github.url),
            store=MonitorStore(self.redis, namespace=self.namespace),
            concourse_url=self.concourse.url,
            team="dev",
            poll_seconds=POLL,
        )

    def listings(self) -> int:
        return sum(
            1 for _, path, _ in self.concourse.requests if path.split("?")[0].endswith("/builds")
        )


@pytest.fixture
def rig(redis_conn: redis.Redis) -> Iterator[Rig]:
    clock = Clock(T0)
    concourse = ConcourseSimulator(team="dev", users={USER: PASSWORD}, clock=clock)
    github = GitHubSimulator(repository=REPO, token=TOKEN, clock=clock)
    concourse.start()
    github.start()
    ci = LanaBankCI(concourse)
    deploys = ci.seed_deploys(github, 5, since=T0 - 8 * 3600)
    r = Rig(
        concourse,
        github,
        ci,
        load_chain(),
        redis_conn,
        clock,
        deploys,
        f"dm:view-{uuid.uuid4().hex}",
    )
    yield r
    concourse.stop()
    github.stop()


def test_the_view_is_refreshed_at_most_once_per_poll_interval(rig: Rig) -> None:
    first, second = rig.viewer(), rig.viewer()
    views = first.job_views(TESTS_JOBS, T0)
    assert rig.listings() == 2  # one listing per job
    assert [b.status for b in views["lana-bank/test-integration"].builds] == ["succeeded"] * 5
    second.job_views(TESTS_JOBS, T0 + POLL - 1)  # another process, same cycle: shared
    assert rig.listings() == 2
    second.job_views(TESTS_JOBS, T0 + POLL + 1)
    assert rig.listings() == 4  # the next cycle: one listing per job again


def test_the_listing_the_monitors_shared_this_cycle_costs_nothing(rig: Rig) -> None:
    viewer = rig.viewer()
    listed = viewer.concourse.job_builds("lana-bank", "test-integration", since_id=1, limit=100)
    window = JobWindow(taken_at=T0 + 5, floor=0, builds=listed)
    viewer.store.save_shared_answer(
        "builds", "lana-bank/test-integration", T0 + 5, window.model_dump_json(), 60
    )
    before = rig.listings()
    views = viewer.job_views([("lana-bank", "test-integration")], T0 + 10)
    assert rig.listings() == before
    assert views["lana-bank/test-integration"].taken_at == T0 + 5
    assert len(views["lana-bank/test-integration"].builds) == 5


def test_usual_durations_come_from_the_history(rig: Rig) -> None:
    usual = rig.viewer().usual_durations(T0)
    # The seeded builds ran within ±10% of the real jobs' times; the median is close.
    rc = USUAL_SECONDS["build-rc"]
    assert abs((usual["build-rc"] or 0) - rc) <= 0.1 * rc
    tests = max(USUAL_SECONDS[j] for j in ("test-integration", "test-bats", "flake-check"))
    assert abs((usual["tests"] or 0) - tests) <= 0.1 * tests
    assert usual["admin-panel-image"] is None  # no build yet


def test_usual_times_for_the_ticks_cost_one_look_per_poll_interval(rig: Rig) -> None:
    viewer = rig.viewer()
    usual = viewer.usual_times(T0)
    assert usual["build-rc"].samples == 5  # five past deploys
    assert usual["build-rc"].seconds == viewer.usual_durations(T0)["build-rc"]
    assert "admin-panel-image" not in usual  # no build yet: not known
    listed = rig.listings()
    assert viewer.usual_times(T0 + POLL - 1) is usual  # this process, this cycle: no look
    assert rig.listings() == listed
    # Another process, a later cycle: the records are young enough for usual times.
    rig.viewer().usual_times(T0 + 3 * POLL)
    assert rig.listings() == listed
    rig.viewer().usual_times(T0 + USUAL_MAX_AGE_SECONDS + 1)
    assert rig.listings() > listed  # older than that: listed again, once per job


def test_where_a_past_commit_is_on_staging(rig: Rig) -> None:
    sha = rig.deploys[2]
    answer = rig.viewer().where(TargetSpec(kind="sha", sha=sha[:10]), T0)
    assert answer.sha == sha and answer.path == "backend"
    assert answer.deployed and answer.complete
    assert [s.state for s in answer.stages] == ["passed"] * 5
    assert answer.deployed_at is not None and answer.deployed_at < T0
    assert all(s.carried_by is None for s in answer.stages)
    assert answer.stages[-1].url and "/galoy-staging-lana-bank/builds/3" in answer.stages[-1].url


def test_where_asks_github_once_per_ref_not_yet_known(rig: Rig) -> None:
    viewer = rig.viewer()
    viewer.where(TargetSpec(kind="sha", sha=rig.deploys[3]), T0)
    asked = len(rig.github.requests)
    viewer.where(TargetSpec(kind="sha", sha=rig.deploys[3]), T0 + 1)
    assert len(rig.github.requests) == asked  # the same commit again: all known
    concourse = len(rig.concourse.requests)
    listings = rig.listings()
    viewer.where(TargetSpec(kind="sha", sha=rig.deploys[4]), T0 + 2)
    assert rig.listings() == listings  # same cycle: the view is shared
    asked = [path for _, path, _ in rig.concourse.requests[concourse:]]
    # Only the inputs of builds no question or monitor asked about before (then cached).
    assert asked and all(path.endswith("/resources") for path in asked)
    again = len(rig.concourse.requests)
    viewer.where(TargetSpec(kind="sha", sha=rig.deploys[4]), T0 + 3)
    assert len(rig.concourse.requests) == again


def test_where_an_open_pr_is_not_merged_and_nothing_merges_it(rig: Rig) -> None:
    rig.github.add_pull_request(88, "Approved but open", ["core/src/x.rs"])
    answer = rig.viewer().where(TargetSpec(kind="pr", pr_number=88), T0)
    assert not answer.merged and answer.approval == "approved"
    assert answer.pr_number == 88 and not answer.deployed
    assert rig.github.merge_attempts == [] and rig.github.merges == []


def test_where_an_unknown_commit_is_a_clear_error(rig: Rig) -> None:
    with pytest.raises(TargetError, match="No commit deadbeef"):
        rig.viewer().where(TargetSpec(kind="sha", sha="deadbeef"), T0)


def test_status_says_what_staging_runs_and_how_far_main_is_ahead(rig: Rig) -> None:
    waiting = [
        rig.github.add_commit(f"Waiting {n}", ["core/y.rs"], committed_at=T0 - 3000 + n)
        for n in range(7)
    ]
    answer = rig.viewer().status(T0)
    assert answer.staging_sha == rig.deploys[-1]
    assert answer.main_sha == waiting[-1]
    assert answer.behind is not None and answer.behind.ahead_by == 7
    assert answer.behind.oldest_committed_at == int(T0 - 3000)
    assert answer.behind.url.endswith(f"/compare/{rig.deploys[-1]}...{waiting[-1]}")
    assert [s.id for s in answer.stages] == [
        "tests",
        "build-rc",
        "open-promote-rc-pr",
        "testflight",
        "staging",
    ]
    staging = answer.stages[-1]
    assert staging.newest is not None and staging.newest.commit == rig.deploys[-1]
    assert staging.newest.status == "succeeded" and staging.running == []
    assert answer.stages[3].newest is not None and answer.stages[3].newest.commit is None


def test_moved_over_is_what_a_deploy_moved_staging_over(rig: Rig) -> None:
    viewer = rig.viewer()
    target = look_up_target(TargetSpec(kind="sha", sha=rig.deploys[3]), viewer.github)
    assert isinstance(target, ResolvedTarget)
    deployed = viewer.replayed(target, T0)
    assert deployed.stage("staging").state == "succeeded"
    moved = viewer.moved_over(deployed)
    assert moved is not None
    assert (moved.base, moved.head, moved.ahead_by) == (rig.deploys[2], rig.deploys[3], 1)
    assert moved.url.endswith(f"/compare/{rig.deploys[2]}...{rig.deploys[3]}")
    first = look_up_target(TargetSpec(kind="sha", sha=rig.deploys[0]), viewer.github)
    assert isinstance(first, ResolvedTarget)
    assert viewer.moved_over(viewer.replayed(first, T0)) is None  # no earlier deploy in view
