"""Concourse requests per poll cycle with 1, 10 and 100 monitors on the lana-bank chain.

Target (issue 4): requests(100) <= 2 x requests(1).

The world is the same for every run: 100 commits landed on main in 10 batches of 10 (a
Concourse check sees a batch at once; jobs build its newest commit, which carries the others),
on the simulated lana-bank CI (Concourse and GitHub simulators over loopback). Only the number
of monitors changes: 1 follows a commit whose tests run, 10 follow one commit per batch, 100
follow them all. Ticks are driven directly (the real Observer, ConcourseClient and GitHubClient,
a real Redis, the pure transition) on a virtual clock: 5 poll cycles of 10 s, each monitor at its
own phase within the cycle, as ticks spread out in a running worker. Builds start, pass and fail
between cycles. Requests are counted in the Concourse simulator's log (logins excluded).
requests(n) is the most any cycle after the first took; the first cycle (c0: every monitor's
first look) also reads the inputs of the builds they follow, once per build ever. GitHub
requests are printed too (cycle 0 / the most of any later cycle): whether a build carries a
commit comes from lists of commits shared by all monitors (workers/ancestry.py).

Two worlds:
  same-stage  every batch is in its tests (and the first moves on): all monitors watch the
              same five jobs; the like-for-like comparison.
  spread      batches at every stage of the chain, one batch not yet picked up by Concourse:
              100 monitors watch more jobs (testflight, staging) than 1 does.

Run: .venv/bin/python bench/concourse_requests.py
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import _common
import redis

from simulators.concourse import ConcourseSimulator
from simulators.github import GitHubSimulator
from simulators.lana_bank import TESTS, LanaBankCI
from workers import keys
from workers.chain import Chain, load_chain
from workers.concourse import ConcourseClient
from workers.github import GitHubClient
from workers.monitor import Monitor, new_monitor, transition
from workers.observe import Observer
from workers.store import MonitorStore

REPOSITORY, TOKEN = _common.REPOSITORY, _common.TOKEN
USER, PASSWORD = _common.USER, _common.PASSWORD
BACKEND = ["core/credit/src/fee.rs"]
T0 = 1_700_000_000
POLL = 10.0
CYCLES = 5
BATCHES, BATCH_SIZE = 10, 10
SPREAD_SINGLE = 6  # in the spread world, the batch whose tests run that 1 monitor follows


class Clock:
    """Virtual time shared by the simulators (build and commit times) and the ticks."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    clock: Clock
    concourse: ConcourseSimulator
    github: GitHubSimulator
    ci: LanaBankCI
    batches: list[list[str]]
    running: dict[tuple[int, str], int] = field(default_factory=dict)  # (batch, job) → build
    events: dict[int, list[Callable[[], None]]] = field(default_factory=dict)  # before cycle

    def stop(self) -> None:
        self.concourse.stop()
        self.github.stop()

    def build(
        self, batch: int, job: str, status: str, pipeline: str = "lana-bank", log: str = ""
    ) -> int:
        head = self.batches[batch][-1]
        inputs = {
            "lana-bank": {"repo": {"ref": head}},
            "private-charts": {"charts-repo": {"ref": f"{batch + 1:040x}"}},
            "galoy-staging": {"lana-repo": {"ref": head}},
        }[pipeline]
        build_id = self.concourse.create_build(pipeline, job, inputs=inputs)
        self.concourse.start_build(build_id)
        if log:
            self.concourse.log(build_id, log)
        if status == "started":
            self.running[(batch, job)] = build_id
        else:
            self.concourse.finish_build(build_id, status)
        self.clock.now += 1
        return build_id

    def finish(self, batch: int, job: str, status: str, log: str = "") -> None:
        build_id = self.running.pop((batch, job))
        if log:
            self.concourse.log(build_id, log)
        self.concourse.finish_build(build_id, status)


def make_world(kind: str) -> World:
    """The CI history and the 100 commits, in the state the scenario `kind` describes."""
    clock = Clock(T0)
    concourse = ConcourseSimulator(team="dev", users={USER: PASSWORD}, clock=clock)
    github = GitHubSimulator(repository=REPOSITORY, token=TOKEN, clock=clock)
    concourse.start()
    github.start()
    ci = LanaBankCI(concourse)
    ci.seed_history(github.add_commit("Older change", ["core/old.rs"]), builds_per_job=3)
    clock.now = T0 + 3600
    batches = [
        [github.add_commit(f"Change {b}.{i}", BACKEND) for i in range(BATCH_SIZE)]
        for b in range(BATCHES)
    ]
    world = World(clock=clock, concourse=concourse, github=github, ci=ci, batches=batches)
    clock.now += 60  # Concourse's check sees them
    checked = range(BATCHES) if kind == "same-stage" else range(BATCHES - 1)
    for b in checked:
        for sha in batches[b]:
            concourse.add_version("lana-bank", "repo", {"ref": sha})
    if kind == "same-stage":
        for b in range(BATCHES):
            for job in TESTS:
                world.build(b, job, "started")

        def tests_pass_and_build_rc_starts() -> None:
            for job in TESTS:
                world.finish(0, job, "succeeded")
            world.build(0, "build-rc", "started")

        def bats_fails_and_old_build_reruns() -> None:
            world.finish(1, "test-bats", "failed", "not ok 7 disbursal\n")
            oldest = concourse.oldest_build("lana-bank", "test-integration")
            assert oldest is not None
            concourse.start_build(concourse.rerun(oldest))

        world.events = {2: [tests_pass_and_build_rc_starts], 3: [bats_fails_and_old_build_reruns]}
        return world
    # spread: each batch further along the chain than the next.
    stages = {0: 5, 1: 4, 2: 3, 3: 2, 4: 1, 5: 0, 6: 0, 7: 0, 8: 0}  # stages passed
    for b, passed in stages.items():
        chain_jobs: list[tuple[str, str]] = [
            *(("lana-bank", job) for job in TESTS),
            ("lana-bank", "build-rc"),
            ("lana-bank", "open-promote-rc-pr"),
            ("private-charts", "lana-bank-testflight"),
            ("galoy-staging", "galoy-staging-lana-bank"),
        ]
        groups = [chain_jobs[:3], chain_jobs[3:4], chain_jobs[4:5], chain_jobs[5:6], chain_jobs[6:]]
        for index, group in enumerate(groups):
            if index > passed:
                break
            status = "succeeded" if index < passed else "started"
            for pipeline, job in group:
                world.build(b, job, status, pipeline)
            clock.now += 5
    world.events = {
        2: [
            lambda: world.finish(5, "test-bats", "succeeded"),
            lambda: world.finish(1, "galoy-staging-lana-bank", "succeeded"),
        ],
        3: [lambda: world.finish(6, "flake-check", "failed", "flake: lock out of date\n")],
    }
    return world


def followed(world: World, n: int, kind: str) -> list[str]:
    """1: a commit whose tests run (a monitor at work); 10: one per batch; 100: all of them."""
    if n == 1:
        return [world.batches[0 if kind == "same-stage" else SPREAD_SINGLE][0]]
    if n == BATCHES:
        return [batch[0] for batch in world.batches]
    return [sha for batch in world.batches for sha in batch][:n]


@dataclass
class Run:
    per_cycle: list[int]
    github_per_cycle: list[int]
    routes: list[Counter[str]]
    tick_ms: float


def route_of(path: str) -> str:
    if "/builds?" in path or path.endswith("/builds"):
        return "job builds"
    if "/input_to" in path:
        return "input_to"
    if "/versions" in path:
        return "versions"
    if path.endswith("/resources"):
        return "build inputs"
    if "/events" in path:
        return "log tail"
    return path


def measure(kind: str, n: int, connection: redis.Redis, chain: Chain) -> Run:
    world = make_world(kind)
    concourse = ConcourseClient(world.concourse.url, "dev", username=USER, password=PASSWORD)
    github = GitHubClient(repository=REPOSITORY, token=TOKEN, api_url=world.github.url)
    store = MonitorStore(
        connection, namespace=keys.namespace(f"bench-requests-{uuid.uuid4().hex[:8]}")
    )
    observer = Observer(
        chain=chain,
        concourse=concourse,
        ancestry=github,
        store=store,
        concourse_url=world.concourse.url,
        team="dev",
    )
    created = world.clock.now - 30  # followed right after the merge
    monitors: list[Monitor] = []
    for sha in followed(world, n, kind):
        monitor, _ = new_monitor(
            chain=chain,
            repository=REPOSITORY,
            sha=sha,
            headline="bench",
            committed_at=T0 + 3600,
            files=BACKEND,
            now=created,
            on_failure="continue",
        )
        monitors.append(monitor)
    start = world.clock.now
    per_cycle: list[int] = []
    github_per_cycle: list[int] = []
    routes: list[Counter[str]] = []
    elapsed, ticks = 0.0, 0
    try:
        for k in range(CYCLES):
            for event in world.events.get(k, []):
                event()
            api_before = len(world.concourse.requests)
            github_before = len(world.github.requests)
            count = len(monitors)
            for i, monitor in sorted(enumerate(monitors), key=lambda im: im[0]):
                if monitor.done:
                    continue
                now = start + k * POLL + POLL * i / count  # its phase in the cycle
                world.clock.now = now
                began = time.perf_counter()
                observation = observer.observe(monitor, now)
                monitors[i], _ = transition(monitor, observation, chain)
                elapsed += time.perf_counter() - began
                ticks += 1
            made = [p for _, p, _ in world.concourse.requests[api_before:] if p.startswith("/api/")]
            per_cycle.append(len(made))
            routes.append(Counter(route_of(p) for p in made))
            github_per_cycle.append(len(world.github.requests) - github_before)
    finally:
        concourse.close()
        world.stop()
        for key in connection.scan_iter(keys.every_key(store.ns), count=1000):
            connection.delete(key)
    return Run(per_cycle, github_per_cycle, routes, 1000 * elapsed / max(1, ticks))


def main() -> None:
    connection = redis.Redis.from_url(_common.REDIS_URL)
    print("Concourse requests per poll cycle, lana-bank chain (bench/concourse_requests.py)")
    _common.print_machine(connection)
    chain = load_chain()
    for kind in ("same-stage", "spread"):
        print(f"\nworld: {kind}  ({CYCLES} cycles of {POLL:.0f} s; cycle 0 = first look)")
        header = "".join(f"  c{k:<4}" for k in range(CYCLES))
        print(f"  monitors{header}  steady(max c1-c4)  GitHub c0/steady  ms/tick")
        steady: dict[int, int] = {}
        runs: dict[int, Run] = {}
        for n in (1, 10, 100):
            run = measure(kind, n, connection, chain)
            runs[n] = run
            steady[n] = max(run.per_cycle[1:])
            cells = "".join(f"  {c:<5}" for c in run.per_cycle)
            print(
                f"  {n:<8}{cells}  {steady[n]:<17}  "
                f"{run.github_per_cycle[0]:>5}/{max(run.github_per_cycle[1:]):<10}  "
                f"{run.tick_ms:.1f}"
            )
        ratio = steady[100] / steady[1]
        first = runs[100].per_cycle[0] / runs[1].per_cycle[0]
        verdict = "meets" if ratio <= 2 else "MISSES"
        print(
            f"  requests(1)={steady[1]}  requests(10)={steady[10]}  requests(100)={steady[100]}"
            f"  ratio(100/1)={ratio:.2f}  (target <= 2: {verdict});"
            f" first-look cycle ratio {first:.2f}"
        )
        for n in (1, 100):
            mix = ", ".join(
                f"{route} {count}" for route, count in sorted(runs[n].routes[CYCLES - 1].items())
            )
            print(f"  last cycle, {n} monitor(s): {mix}")
        first_mix = ", ".join(f"{r} {c}" for r, c in sorted(runs[100].routes[0].items()))
        print(f"  first-look cycle, 100 monitors: {first_mix}")


if __name__ == "__main__":
    main()
