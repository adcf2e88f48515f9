"""The shared observation: real Redis, the real Concourse client and the Concourse simulator
over loopback, on a virtual clock (the simulator's build times and each tick's `now`).

What it must keep while sharing one listing per job and poll cycle: every build with
id >= a monitor's scan_from is seen (reruns included), a monitor never sees the same or older
facts twice, pending builds are re-checked, nothing below a monitor's mark leaks into it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis

from simulators.concourse import ConcourseSimulator
from simulators.lana_bank import LanaBankCI
from workers.chain import Chain, load_chain
from workers.concourse import ConcourseClient
from workers.errors import ConcourseError
from workers.github import HistoryPage
from workers.monitor import Monitor, Observation, UsualTime, new_monitor, transition
from workers.observe import FIRST_LISTING_LIMIT, JobWindow, Observer
from workers.store import MonitorStore

T0 = 1_700_000_000  # the old commit's builds ran around here
COMMITTED = T0 + 1000  # our commits
BACKEND = ["core/credit/src/fee.rs"]
TESTS = ("test-integration", "test-bats", "flake-check")
OLD_SHA = "0" * 40
USER, PASSWORD = "deploy-bot", "concourse-pass"


def sha(n: int) -> str:
    return f"{n:08x}" * 5  # distinct in the first 12 characters, as monitor ids need


class Clock:
    """The simulator's clock: build start and end times follow it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Ancestry:
    """Commits in `carried` are ancestors of `head` (and `heads`); counts the questions."""

    head: str = ""
    carried: set[str] = field(default_factory=set)
    heads: set[str] = field(default_factory=set)  # more descendants of `carried`
    asked: int = 0

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        self.asked += 1
        descends = descendant == self.head or descendant in self.heads
        return ancestor == descendant or (descends and ancestor in self.carried)

    def history_page(self, ref: str, *, since: float, page: int) -> HistoryPage:
        return HistoryPage(shas=[], more=False)  # no lists: every question is a compare


@dataclass
class Rig:
    sim: ConcourseSimulator
    clock: Clock
    ci: LanaBankCI
    chain: Chain
    redis: redis.Redis
    ancestry: Ancestry = field(default_factory=Ancestry)
    clients: list[ConcourseClient] = field(default_factory=list)

    def observer(self, namespace: str = "") -> Observer:
        """One worker's observer; observers with the same namespace share one store."""
        client = ConcourseClient(self.sim.url, "dev", username=USER, password=PASSWORD)
        client.user()  # log in now, so counted requests are the observation's only
        self.clients.append(client)
        return Observer(
            chain=self.chain,
            concourse=client,
            ancestry=self.ancestry,
            store=MonitorStore(self.redis, namespace=namespace or f"dm:obs-{uuid.uuid4().hex}"),
            concourse_url=self.sim.url,
            team="dev",
        )

    def monitor(self, n: int, now: float = COMMITTED + 10) -> Monitor:
        monitor, _ = new_monitor(
            chain=self.chain,
            repository="GaloyMoney/lana-bank",
            sha=sha(n),
            headline=f"Change {n}",
            committed_at=COMMITTED,
            files=BACKEND,
            now=now,
        )
        return monitor

    def build(
        self, job: str, ref: str | None, *, status: str = "started", pipeline: str = "lana-bank"
    ) -> int:
        inputs = None if ref is None else {"repo": {"ref": ref}}
        build_id = self.sim.create_build(pipeline, job, inputs=inputs)
        if status != "pending":
            self.sim.start_build(build_id)
        if status not in ("pending", "started"):
            self.sim.finish_build(build_id, status)
        return build_id


@pytest.fixture
def rig(redis_conn: redis.Redis) -> Iterator[Rig]:
    clock = Clock(T0)
    sim = ConcourseSimulator(team="dev", users={USER: PASSWORD}, clock=clock)
    sim.start()
    ci = LanaBankCI(sim)
    ci.seed_history(OLD_SHA)  # finished builds of an older commit on every job
    clock.now = COMMITTED + 100
    r = Rig(sim=sim, clock=clock, ci=ci, chain=load_chain(), redis=redis_conn)
    yield r
    for client in r.clients:
        client.close()
    sim.stop()


def tick(rig: Rig, observer: Observer, monitor: Monitor, now: float) -> tuple[Monitor, Observation]:
    """One tick without the RQ around it: observe, then the pure transition."""
    observation = observer.observe(monitor, now)
    assert observation.concourse_error is None, observation.concourse_error
    updated, _ = transition(monitor, observation, rig.chain)
    return updated, observation


def cycle(
    rig: Rig, observer: Observer, monitors: list[Monitor], now: float
) -> tuple[list[Monitor], int]:
    """Tick every monitor once at `now`; returns them and the Concourse requests made."""
    client = observer.concourse
    before = client.requests_made
    ticked = [tick(rig, observer, m, now)[0] for m in monitors]
    return ticked, client.requests_made - before


def batch_of(rig: Rig, n: int) -> list[int]:
    """Commits 1..n land together: each is a version; the tests build only the newest."""
    head = sha(n)
    rig.ancestry.head = head
    rig.ancestry.carried = {sha(i) for i in range(1, n + 1)}
    for i in range(1, n + 1):
        rig.sim.add_version("lana-bank", "repo", {"ref": sha(i)})
    return [rig.build(job, head) for job in TESTS]


def test_many_monitors_in_one_cycle_cost_concourse_what_one_does(rig: Rig) -> None:
    batch_of(rig, 20)
    costs: dict[int, list[int]] = {}
    for n in (1, 20):
        observer = rig.observer()  # its own namespace: nothing shared between the two runs
        monitors = [rig.monitor(i) for i in range(1, n + 1)]
        costs[n] = []
        for now in (COMMITTED + 110, COMMITTED + 120, COMMITTED + 130):
            monitors, requests = cycle(rig, observer, monitors, now)
            costs[n].append(requests)
        assert all(m.stage("tests").state == "running" for m in monitors)
        assert all(m.picked_up for m in monitors)
    assert costs[20] == costs[1]
    assert costs[1][1] == 5  # one listing per watched job (3 tests, build-rc, open-promote-rc-pr)


def test_a_new_build_is_seen_at_the_next_cycle_not_from_a_stale_listing(rig: Rig) -> None:
    observer = rig.observer()
    a, b = rig.monitor(1, now=COMMITTED + 100), rig.monitor(2, now=COMMITTED + 100)
    rig.ancestry.head, rig.ancestry.carried = sha(2), {sha(1), sha(2)}
    a, _ = tick(rig, observer, a, COMMITTED + 110)
    assert a.stage("tests").state == "waiting"
    integration = rig.build("test-integration", sha(2))
    # Same cycle: b is served the listing a's tick took, before the build existed.
    requests = observer.concourse.requests_made
    b, seen_by_b = tick(rig, observer, b, COMMITTED + 115)
    assert integration not in [x.id for x in seen_by_b.builds["lana-bank/test-integration"]]
    assert observer.concourse.requests_made == requests  # nothing of its own to ask
    # Next cycle: a must not be served the listing it saw already; it lists again.
    a, seen_by_a = tick(rig, observer, a, COMMITTED + 120)
    assert integration in [x.id for x in seen_by_a.builds["lana-bank/test-integration"]]
    followed = a.stage("tests").jobs[0].build
    assert followed is not None and followed.id == integration
    # b's next look comes after a's listing was taken: it is served, and sees the build too.
    b, seen_by_b = tick(rig, observer, b, COMMITTED + 125)
    assert integration in [x.id for x in seen_by_b.builds["lana-bank/test-integration"]]


def test_the_followed_build_is_refreshed_every_cycle(rig: Rig) -> None:
    observer = rig.observer()
    rig.ancestry.head, rig.ancestry.carried = sha(1), {sha(1)}
    builds = [rig.build(job, sha(1)) for job in TESTS]
    monitor = rig.monitor(1)
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 110)
    assert monitor.stage("tests").state == "running"
    for build_id in builds:
        rig.sim.finish_build(build_id, "succeeded")
    monitor, observation = tick(rig, observer, monitor, COMMITTED + 120)
    assert [b.status for b in observation.builds["lana-bank/test-bats"]] == ["succeeded"]
    assert monitor.stage("tests").state == "succeeded"


def test_a_rerun_of_an_old_build_mid_run_is_listed_and_not_taken_for_ours(rig: Rig) -> None:
    observer = rig.observer()
    job, key = "test-integration", "lana-bank/test-integration"
    oldest = rig.sim.oldest_build("lana-bank", job)
    assert oldest is not None
    for _ in range(FIRST_LISTING_LIMIT + 5):  # enough newer builds to push it off a first page
        rig.build(job, OLD_SHA, status="succeeded")
    rig.ancestry.head, rig.ancestry.carried = sha(1), {sha(1)}
    ours = rig.build(job, sha(1))
    monitor = rig.monitor(1)
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 110)
    track = monitor.stage("tests").jobs[0]
    assert track.build is not None and track.build.id == ours
    assert track.scan_from == ours
    rig.sim.finish_build(ours, "failed")  # now any later build carrying the commit would do
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 120)
    rerun = rig.sim.rerun(oldest)  # sorts next to its original, far below the newest builds
    rig.sim.start_build(rerun)
    monitor, observation = tick(rig, observer, monitor, COMMITTED + 130)
    listed = {b.id: b for b in observation.builds[key]}
    assert rerun in listed and listed[rerun].rerun_of == oldest
    assert listed[rerun].input_ref == OLD_SHA and listed[rerun].covers is False
    followed = monitor.stage("tests").jobs[0].build
    assert followed is not None and followed.id == ours and followed.status == "failed"
    # A rerun of our own build is what we wait for after a failure.
    ours_again = rig.sim.rerun(ours)
    rig.sim.start_build(ours_again)
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 140)
    followed = monitor.stage("tests").jobs[0].build
    assert followed is not None and followed.id == ours_again


def test_a_higher_scan_from_never_sees_builds_below_it(rig: Rig) -> None:
    observer = rig.observer()
    job, key = "test-bats", "lana-bank/test-bats"
    rig.ancestry.head, rig.ancestry.carried = sha(2), {sha(1), sha(2)}
    below = rig.build(job, sha(2))  # it would cover both commits
    above = rig.build(job, OLD_SHA)
    low, high = rig.monitor(1), rig.monitor(2)
    low.stage("tests").jobs[1].scan_from = below
    high.stage("tests").jobs[1].scan_from = above  # it judged `below` already
    low, seen_low = tick(rig, observer, low, COMMITTED + 110)
    before = len(rig.sim.requests)
    high, seen_high = tick(rig, observer, high, COMMITTED + 111)
    assert not [p for _, p, _ in rig.sim.requests[before:] if "/builds?" in p]  # shared listing
    assert below in [b.id for b in seen_low.builds[key]]
    assert [b.id for b in seen_high.builds[key]] == [above]
    assert high.stage("tests").jobs[1].build is None
    low_build = low.stage("tests").jobs[1].build
    assert low_build is not None and low_build.id == below


def test_a_lower_need_ticking_later_is_remembered_by_the_next_listing(rig: Rig) -> None:
    observer = rig.observer()
    job, key = "flake-check", "lana-bank/flake-check"
    rig.ancestry.head, rig.ancestry.carried = sha(2), {sha(1), sha(2)}
    first = rig.build(job, sha(1))
    second = rig.build(job, sha(2))
    high, low = rig.monitor(2), rig.monitor(1)
    high.stage("tests").jobs[2].scan_from = second
    low.stage("tests").jobs[2].scan_from = first

    def listings() -> int:
        return sum(1 for _, path, _ in rig.sim.requests if f"/jobs/{job}/builds" in path)

    start = listings()
    # The order of ticks within a cycle changes (RQ's scheduler moves due jobs once a second):
    # whoever lists first must list from the lowest mark any monitor needs.
    for now, high_first in (
        (COMMITTED + 110, True),
        (COMMITTED + 120, False),
        (COMMITTED + 130, True),
    ):
        if high_first:
            high, _ = tick(rig, observer, high, now)
        low, seen = tick(rig, observer, low, now + (1 if high_first else 0))
        assert {first, second} <= {b.id for b in seen.builds[key]}
        if not high_first:
            high, _ = tick(rig, observer, high, now + 1)
    # Cycle 1 lists twice (the low mark was not known yet), later cycles once.
    assert listings() - start == 2 + 1 + 1


def test_a_pending_build_without_inputs_is_asked_again_next_cycle_once_for_all(
    rig: Rig,
) -> None:
    observer = rig.observer()
    rig.ancestry.head, rig.ancestry.carried = sha(1), {sha(1)}
    pending = rig.build("test-integration", None, status="pending")
    a, b = rig.monitor(1), rig.monitor(1)
    b.id = "other-monitor-of-the-same-commit"

    def resource_requests() -> int:
        return sum(
            1 for _, path, _ in rig.sim.requests if path == f"/api/v1/builds/{pending}/resources"
        )

    a, seen = tick(rig, observer, a, COMMITTED + 110)
    b, _ = tick(rig, observer, b, COMMITTED + 111)
    assert resource_requests() == 1
    (listed,) = [x for x in seen.builds["lana-bank/test-integration"] if x.id == pending]
    assert listed.input_ref is None and listed.covers is None
    assert a.stage("tests").jobs[0].scan_from == pending  # kept: not judged yet
    rig.sim.set_inputs(pending, {"repo": {"ref": sha(1)}})
    a, _ = tick(rig, observer, a, COMMITTED + 120)
    assert resource_requests() == 2
    followed = a.stage("tests").jobs[0].build
    assert followed is not None and followed.id == pending and followed.covers is True


def test_two_workers_share_one_listing_per_cycle(rig: Rig) -> None:
    batch_of(rig, 4)
    namespace = f"dm:obs-{uuid.uuid4().hex}"
    one, two = rig.observer(namespace), rig.observer(namespace)
    monitors = [rig.monitor(i) for i in range(1, 5)]
    for now in (COMMITTED + 110, COMMITTED + 120):
        monitors[:2], _ = cycle(rig, one, monitors[:2], now)
        monitors[2:], requests = cycle(rig, two, monitors[2:], now + 1)
    assert requests == 0  # the second worker's monitors were served what the first listed


def test_a_failed_build_log_is_read_once_for_every_monitor(rig: Rig) -> None:
    observer = rig.observer()
    rig.ancestry.head, rig.ancestry.carried = sha(2), {sha(1), sha(2)}
    failed = rig.build("test-bats", sha(2))
    rig.sim.log(failed, "not ok 2 disbursal\n")
    rig.sim.finish_build(failed, "failed")
    tails = [tick(rig, observer, rig.monitor(n), COMMITTED + 110)[1].log_tails for n in (1, 2)]
    assert tails[0] == tails[1] == {failed: "not ok 2 disbursal\n"}
    streams = [p for _, p, _ in rig.sim.requests if p.startswith(f"/api/v1/builds/{failed}/events")]
    assert len(streams) == 1


def test_every_cache_key_is_in_the_store_namespace(rig: Rig, redis_conn: redis.Redis) -> None:
    observer = rig.observer()
    batch_of(rig, 2)
    monitors = [rig.monitor(1), rig.monitor(2)]
    for now in (COMMITTED + 110, COMMITTED + 120):
        monitors, _ = cycle(rig, observer, monitors, now)
    keys = [k.decode() for k in redis_conn.scan_iter()]
    kinds = {k.split(":")[2] for k in keys}
    assert {"shared", "needs", "inputs", "covers"} <= kinds
    assert all(k.startswith(observer.store.ns + ":") for k in keys), keys


def test_an_old_commit_followed_late_is_found_through_its_version(rig: Rig) -> None:
    observer = rig.observer()
    rig.ancestry.head, rig.ancestry.carried = sha(1), {sha(1)}
    rig.sim.add_version("lana-bank", "repo", {"ref": sha(1)})
    ours = rig.build("test-integration", sha(1), status="succeeded")
    for _ in range(FIRST_LISTING_LIMIT + 5):  # later commits' builds bury it
        rig.build("test-integration", OLD_SHA, status="succeeded")
    monitor, observation = tick(rig, observer, rig.monitor(1), COMMITTED + 110)
    assert ours in [b.id for b in observation.builds["lana-bank/test-integration"]]
    followed = monitor.stage("tests").jobs[0].build
    assert followed is not None and followed.id == ours and followed.status == "succeeded"


def test_a_commit_is_looked_up_as_a_version_only_when_the_pickup_warning_is_due(
    rig: Rig,
) -> None:
    observer = rig.observer()
    rig.sim.add_version("lana-bank", "repo", {"ref": sha(1)})  # checked; no build took it yet
    monitor = rig.monitor(1, now=COMMITTED + 10)

    def version_lookups() -> int:
        return sum(1 for _, path, _ in rig.sim.requests if "/resources/repo/versions" in path)

    for now in (COMMITTED + 20, COMMITTED + 100, COMMITTED + 200):
        monitor, _ = tick(rig, observer, monitor, now)
    assert version_lookups() == 0 and not monitor.picked_up  # builds are what we look for
    due = COMMITTED + 10 + rig.chain.pickup_warn_after
    observation = observer.observe(monitor, due)
    monitor, events = transition(monitor, observation, rig.chain)
    assert version_lookups() == 1 and observation.version_seen
    assert monitor.picked_up and "not_picked_up" not in [e.kind for e in events]
    monitor, _ = tick(rig, observer, monitor, due + 10)
    assert version_lookups() == 1


def test_only_builds_the_transition_can_take_are_judged(rig: Rig) -> None:
    observer = rig.observer()
    later = [sha(100 + i) for i in range(8)]
    rig.ancestry.head, rig.ancestry.carried, rig.ancestry.heads = sha(1), {sha(1)}, set(later)
    ours = rig.build("test-integration", sha(1))
    after = [rig.build("test-integration", ref) for ref in later]  # they carry ours too

    def input_requests() -> int:
        return sum(1 for _, path, _ in rig.sim.requests if path.endswith("/resources"))

    monitor, _ = tick(rig, observer, rig.monitor(1), COMMITTED + 110)
    followed = monitor.stage("tests").jobs[0].build
    assert followed is not None and followed.id == ours
    # The first candidate is ours by its own ref: no later build's inputs or ancestry asked.
    assert input_requests() == 1 and rig.ancestry.asked == 0
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 120)
    assert input_requests() == 1 and rig.ancestry.asked == 0
    rig.sim.finish_build(ours, "failed")  # once it is known failed, a later build would do
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 130)
    assert input_requests() == 1 and rig.ancestry.asked == 0
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 140)
    assert input_requests() == 1 + len(after) and rig.ancestry.asked == len(later)
    followed = monitor.stage("tests").jobs[0].build
    assert followed is not None and followed.id == after[0] and followed.covers is True


def test_a_listing_another_worker_is_taking_is_waited_for_not_asked_twice(rig: Rig) -> None:
    observer = rig.observer()
    rig.ancestry.head, rig.ancestry.carried = sha(1), {sha(1)}
    ours = rig.build("test-integration", sha(1))
    store, key, now = observer.store, "lana-bank/test-integration", COMMITTED + 110
    lock_taken = threading.Event()

    def other_worker() -> None:
        # It holds the refresh lock while it lists (slowly), then publishes the listing.
        with store.fill_lock("builds", key, 15.0) as taken:
            assert taken
            lock_taken.set()
            time.sleep(0.3)
            builds = rig.clients[0].job_builds("lana-bank", "test-integration", limit=25)
            window = JobWindow(taken_at=now, floor=0, builds=builds)
            store.save_shared_answer("builds", key, now, window.model_dump_json(), 60)

    thread = threading.Thread(target=other_worker)
    thread.start()
    lock_taken.wait(5)
    observation = observer.observe(rig.monitor(1), now + 1)
    thread.join()
    assert ours in [b.id for b in observation.builds[key]]
    listings = [p for _, p, _ in rig.sim.requests if "/jobs/test-integration/builds" in p]
    assert len(listings) == 1  # the other worker's: this one waited and was served it


def test_an_abandoned_refresh_lock_costs_one_short_wait(rig: Rig) -> None:
    observer = rig.observer()
    key = "lana-bank/test-bats"
    with observer.store.fill_lock("builds", key, 15.0) as taken:  # its holder died
        assert taken
        started = time.monotonic()
        tick(rig, observer, rig.monitor(1), COMMITTED + 110)
        waited = time.monotonic() - started
        started = time.monotonic()
        tick(rig, observer, rig.monitor(2), COMMITTED + 120)
        again = time.monotonic() - started
    assert 1.0 <= waited < 3.0  # waited once, then listed it itself
    assert again < 0.5


def test_a_stage_after_the_previous_one_is_listed_from_above_its_builds_not_the_newest(
    rig: Rig,
) -> None:
    # Followed late: many testflight builds came after ours. A first look at only the newest
    # builds would take the oldest of those for ours.
    observer = rig.observer()
    rig.ancestry.head, rig.ancestry.carried = sha(1), {sha(1)}
    before = [rig.build(job, sha(1), status="succeeded") for job in TESTS]
    before += [
        rig.build(job, sha(1), status="succeeded") for job in ("build-rc", "open-promote-rc-pr")
    ]
    ours = rig.build("lana-bank-testflight", None, status="succeeded", pipeline="private-charts")
    for _ in range(FIRST_LISTING_LIMIT + 5):
        rig.build("lana-bank-testflight", None, status="succeeded", pipeline="private-charts")
    monitor, _ = tick(rig, observer, rig.monitor(1), COMMITTED + 110)
    assert monitor.stage("open-promote-rc-pr").state == "succeeded"
    assert monitor.stage("testflight").jobs[0].scan_from == max(before) + 1
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 120)
    followed = monitor.stage("testflight").jobs[0].build
    assert followed is not None and followed.id == ours


def test_each_observation_carries_the_usual_times_and_a_failing_view_costs_nothing(
    rig: Rig,
) -> None:
    asked: list[float] = []
    known = {"tests": UsualTime(seconds=600, samples=5)}

    def usual_times(now: float) -> dict[str, UsualTime]:
        asked.append(now)
        if len(asked) > 1:
            raise ConcourseError("the view could not be refreshed")
        return known

    observer = rig.observer()
    observer.usual_times = usual_times
    monitor = rig.monitor(1)
    first = observer.observe(monitor, COMMITTED + 110)
    assert first.usual == known
    second = observer.observe(monitor, COMMITTED + 120)
    assert second.concourse_error is None and second.usual == {}  # the monitor keeps its own
    assert asked == [COMMITTED + 110, COMMITTED + 120]
