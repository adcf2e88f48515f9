"""What `where` costs Concourse and GitHub: 100 questions about 100 different commits asked
within one poll interval, against 1 question.

Target (issue 9): no more than one view refresh (one listing per job on the path) plus one
GitHub request per distinct ref not yet known.

The world: a history of 10 deploys on the simulated lana-bank CI (Concourse and GitHub
simulators over loopback), each of 10 commits that landed on main together (the jobs built the
newest, which carried the others), with realistic job durations. The questions are answered by
the real `ChainViewer` (real clients, a real Redis, the monitor's pure rules) on a virtual
clock, all within one poll interval, in a fresh key namespace per run; then the same 100 again
(everything is known by then). Requests are counted in the simulators' logs (logins excluded).

What a question may cost, and why (see workers/viewer.py):
- Concourse: job listings, one per job on the path per poll interval (the view refresh), and a
  build's inputs once per build ever (shared with the monitors' own cache);
- GitHub: the commit asked about, once per commit ever, and whether a build's ref carries it:
  one commit list per ref not listed yet (shared by every question and monitor).

Run: .venv/bin/python bench/where_cost.py
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass

import _common
import redis

from simulators.concourse import ConcourseSimulator
from simulators.github import GitHubSimulator
from simulators.lana_bank import LanaBankCI
from workers import keys
from workers.chain import load_chain
from workers.concourse import ConcourseClient
from workers.github import GitHubClient
from workers.store import MonitorStore
from workers.target import TargetSpec
from workers.viewer import ChainViewer

REPOSITORY, TOKEN = _common.REPOSITORY, _common.TOKEN
USER, PASSWORD = _common.USER, _common.PASSWORD
T0 = 1_700_000_000.0
POLL = 30.0
DEPLOYS, BATCH = 10, 10


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Cost:
    listings: int
    inputs: int
    concourse: int
    github: Counter[str]
    answer_ms: list[float]
    deployed: int

    @property
    def github_total(self) -> int:
        return sum(self.github.values())


def github_route(path: str) -> str:
    route = path.split("?")[0]
    if route.endswith("/commits"):
        return "commit lists"
    if "/commits/" in route:
        return "commits"
    if "/compare/" in route:
        return "compare"
    return route


def ask(
    viewer: ChainViewer,
    concourse: ConcourseSimulator,
    github: GitHubSimulator,
    clock: Clock,
    shas: list[str],
) -> Cost:
    api_before, github_before = len(concourse.requests), len(github.requests)
    times: list[float] = []
    deployed = 0
    for i, sha in enumerate(shas):
        clock.now = T0 + POLL * i / len(shas)  # all within one poll interval
        began = time.perf_counter()
        answer = viewer.where(TargetSpec(kind="sha", sha=sha), clock.now)
        times.append(1000 * (time.perf_counter() - began))
        deployed += answer.deployed
    made = [p for _, p, _ in concourse.requests[api_before:] if p.startswith("/api/")]
    return Cost(
        listings=sum(1 for p in made if p.split("?")[0].endswith("/builds")),
        inputs=sum(1 for p in made if p.endswith("/resources")),
        concourse=len(made),
        github=Counter(github_route(p) for _, p, _ in github.requests[github_before:]),
        answer_ms=times,
        deployed=deployed,
    )


def measure(n: int, connection: redis.Redis) -> tuple[Cost, Cost, int, int]:
    """(first pass, second pass, jobs on the path, distinct refs the builds carried)."""
    clock = Clock(T0)
    concourse = ConcourseSimulator(team="dev", users={USER: PASSWORD}, clock=clock)
    github = GitHubSimulator(repository=REPOSITORY, token=TOKEN, clock=clock)
    concourse.start()
    github.start()
    ci = LanaBankCI(concourse)
    shas = ci.seed_deploys(github, DEPLOYS, since=T0 - DEPLOYS * 3600, batch=BATCH)
    client = ConcourseClient(concourse.url, "dev", username=USER, password=PASSWORD)
    client.user()  # logged in: what is counted is the questions'
    namespace = keys.namespace(f"bench-where-{uuid.uuid4().hex[:8]}")
    chain = load_chain()
    viewer = ChainViewer(
        chain=chain,
        concourse=client,
        github=GitHubClient(repository=REPOSITORY, token=TOKEN, api_url=github.url),
        store=MonitorStore(connection, namespace=namespace),
        concourse_url=concourse.url,
        team="dev",
        poll_seconds=POLL,
    )
    asked = shas[-n:] if n == 1 else shas[:n]
    try:
        first = ask(viewer, concourse, github, clock, asked)
        second = ask(viewer, concourse, github, clock, asked)
    finally:
        client.close()
        concourse.stop()
        github.stop()
        for key in connection.scan_iter(keys.every_key(namespace), count=1000):
            connection.delete(key)
    jobs = sum(len(chain.stage(s).jobs) for s in chain.paths[-1].stages)
    return first, second, jobs, DEPLOYS  # each deploy's builds carried its batch's head


def main() -> None:
    connection = redis.Redis.from_url(_common.REDIS_URL)
    print("Concourse and GitHub requests for `where` (bench/where_cost.py)")
    _common.print_machine(connection)
    print(
        f"\nworld: {DEPLOYS} deploys of {BATCH} commits each (batched), realistic durations;"
        f" questions within one poll interval ({POLL:.0f} s)"
    )
    print(
        "  questions  pass    listings  build inputs  Concourse  GitHub (commits/lists/other)"
        "  on staging  answer p50/p95 ms"
    )
    results = {}
    for n in (1, 100):
        first, second, jobs, refs = measure(n, connection)
        results[n] = (first, second, jobs, refs)
        for label, cost in (("first", first), ("again", second)):
            other = cost.github_total - cost.github["commits"] - cost.github["commit lists"]
            print(
                f"  {n:<9}  {label:<6}  {cost.listings:<8}  {cost.inputs:<12}  "
                f"{cost.concourse:<9}  {cost.github_total:>3} ({cost.github['commits']}/"
                f"{cost.github['commit lists']}/{other}){'':<15}  {cost.deployed:<10}  "
                f"{_common.percentile(cost.answer_ms, 50):.1f}/"
                f"{_common.percentile(cost.answer_ms, 95):.1f}"
            )
    first, second, jobs, refs = results[100]
    one = results[1][0]
    listings_ok = first.listings <= jobs and one.listings <= jobs
    # One request per distinct commit asked about (never known before), one list per ref.
    github_target = 100 + refs
    github_ok = first.github_total <= github_target
    again_ok = second.concourse == 0 and second.github_total == 0
    print(
        f"  listings(100)={first.listings} listings(1)={one.listings}"
        f"  (target <= one per job on the path, {jobs}: {'meets' if listings_ok else 'MISSES'})"
    )
    print(
        f"  GitHub(100)={first.github_total} (target <= 100 commits + {refs} distinct refs"
        f" = {github_target}: {'meets' if github_ok else 'MISSES'})"
    )
    matched = sum(
        len(stage.jobs)
        for stage in (load_chain().stage(s) for s in load_chain().paths[-1].stages)
        if stage.match.input is not None
    )
    carrying = matched * DEPLOYS
    inputs_ok = first.inputs <= carrying
    print(
        f"  build inputs(100)={first.inputs} (at most once per build ever, shared with the"
        f" monitors: {matched} input-matched jobs x {DEPLOYS} builds = {carrying}:"
        f" {'meets' if inputs_ok else 'MISSES'})"
    )
    print(
        f"  the same 100 again: Concourse {second.concourse}, GitHub {second.github_total}"
        f" ({'meets' if again_ok else 'MISSES'}: everything is known)"
    )


if __name__ == "__main__":
    main()
