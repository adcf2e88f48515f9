"""Tick lag and memory of one worker process serving 500 active monitors at a 10 s poll.

Targets (issue 4): tick lag p99 < 2 s (a tick's actual start minus its due time), and the
worker's RSS < 150 MB.

One `deploy-monitor worker` process (real RQ SimpleWorker, with its scheduler child) ticks
500 monitors against the Concourse and GitHub simulators (in this process, over loopback)
and a real Redis. The 500 commits landed in 50 batches of 10; each batch's tests are running
(for longer than the run), so every tick is a full one: read the shared listings, judge the
builds, transition, save, schedule the next tick. The first ticks are spread over one poll
interval, as monitors started over time would be. The warm-up lasts until every monitor has
had its first look (the costly tick: it may ask Concourse which builds took its commit, and
GitHub about ancestry) and one more tick; then the ticks due in 3 poll intervals are measured.

Due times are read from RQ's scheduled-job registry while the run goes on (the time each tick
was scheduled for); start times from the finished jobs (`started_at`). RSS is VmRSS from
/proc, sampled every 0.5 s, for the worker and separately for its scheduler child.

Run: .venv/bin/python bench/tick_lag.py [--monitors 500] [--poll 10] [--cycles 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import _common
import redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from simulators.concourse import ConcourseSimulator
from simulators.github import GitHubSimulator
from simulators.lana_bank import TESTS, LanaBankCI
from workers.engine import Engine
from workers.monitor import monitor_id_for, new_monitor
from workers.settings import EngineSettings

REPOSITORY, TOKEN = _common.REPOSITORY, _common.TOKEN
USER, PASSWORD = _common.USER, _common.PASSWORD
BACKEND = ["core/credit/src/fee.rs"]
BATCH = 10
BATCH_SPACING = 120.0  # seconds between two batches of commits landing


class Past:
    """A clock that can be turned back, to script a history: commits landed over time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() - self.offset


def make_world(monitors: int) -> tuple[ConcourseSimulator, GitHubSimulator, list[str]]:
    """Batches of 10 commits landed two minutes apart, the oldest first; each batch's tests
    started a minute after it landed and are still running. An hour before, an older commit
    went through every job."""
    past = Past()
    concourse = ConcourseSimulator(team="dev", users={USER: PASSWORD}, clock=past)
    github = GitHubSimulator(repository=REPOSITORY, token=TOKEN, clock=past)
    concourse.start()
    github.start()
    ci = LanaBankCI(concourse)
    batches = (monitors + BATCH - 1) // BATCH
    past.offset = batches * BATCH_SPACING + 3600
    ci.seed_history(github.add_commit("Older change", ["core/old.rs"]), builds_per_job=3)
    shas: list[str] = []
    for b in range(batches):
        past.offset = (batches - b) * BATCH_SPACING
        batch = [github.add_commit(f"Change {b}.{i}", BACKEND) for i in range(BATCH)]
        shas += batch
        past.offset -= 60
        for sha in batch:
            concourse.add_version("lana-bank", "repo", {"ref": sha})
        for job in TESTS:  # the batch's newest commit is built; it carries the others
            build = concourse.create_build("lana-bank", job, inputs={"repo": {"ref": batch[-1]}})
            concourse.start_build(build)
    past.offset = 0
    return concourse, github, shas[:monitors]


class DueTimes(threading.Thread):
    """Reads RQ's scheduled registry: job id → the time it was scheduled to run at."""

    def __init__(self, connection: redis.Redis, queue: str) -> None:
        super().__init__(daemon=True)
        self.connection = connection
        registry = ScheduledJobRegistry(queue, connection=connection)  # type: ignore[no-untyped-call]
        self.key = registry.key
        self.due: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):  # ticks are scheduled a poll interval ahead
            entries: list[tuple[bytes, float]] = self.connection.zrange(  # type: ignore[assignment]
                self.key, 0, -1, withscores=True
            )
            for job_id, score in entries:
                self.due.setdefault(job_id.decode(), float(score))


class Memory(threading.Thread):
    """Samples VmRSS of the worker and of its scheduler child."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.worker: list[float] = []
        self.scheduler: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.worker.append(_common.rss_mb(self.pid))
            kids = _common.children(self.pid)
            if kids:
                self.scheduler.append(sum(_common.rss_mb(k) for k in kids))


def started_at(job: Job) -> float | None:
    if job.started_at is None:
        return None
    moment: datetime = job.started_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # RQ stores UTC
    return moment.timestamp()


def ended_at(job: Job) -> float | None:
    if job.ended_at is None:
        return None
    moment: datetime = job.ended_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--monitors", type=int, default=500)
    parser.add_argument("--poll", type=float, default=10.0)
    parser.add_argument("--cycles", type=int, default=3, help="measured after the warm-up")
    args = parser.parse_args()

    connection = redis.Redis.from_url(_common.REDIS_URL)
    print(f"Tick lag: one worker, {args.monitors} monitors, {args.poll:.0f} s poll (tick_lag.py)")
    _common.print_machine(connection)
    queue = _common.run_id("ticks")
    concourse, github, shas = make_world(args.monitors)
    env = _common.engine_env(concourse, github, queue=queue, poll=args.poll)
    engine = Engine(EngineSettings.model_validate(env))
    due = DueTimes(connection, queue)
    due.start()
    worker: subprocess.Popen[bytes] | None = None
    log_path = Path(f"/tmp/{queue}-worker.log")
    try:
        began = time.time()
        for i, sha in enumerate(shas):
            monitor, events = new_monitor(
                chain=engine.chain,
                repository=REPOSITORY,
                sha=sha,
                headline=f"Change {i}",
                committed_at=int(github.commits[sha].committed_at),
                files=BACKEND,
                now=began,
                on_failure="continue",
            )
            engine.store.create(monitor, events, due_at=began)
            # First ticks spread over one interval, as monitors started over time would be.
            engine.schedule_tick(monitor, delay=1.0 + args.poll * i / len(shas))
        worker = _common.start_process("worker", env, log_path)
        memory = Memory(worker.pid)
        memory.start()
        # Warm-up: every monitor's first look (its first tick) done, and one more tick each.
        ids = [monitor_id_for(REPOSITORY, sha) for sha in shas]
        while min(m.seq if m else 0 for m in map(engine.store.load, ids)) < 2:
            time.sleep(0.5)
            if worker.poll() is not None:
                print(f"worker exited with {worker.returncode}; see {log_path}")
                return 1
        warm_up_end = time.time()
        end = warm_up_end + args.poll * args.cycles
        while time.time() < end + 2.0:
            time.sleep(0.5)
        memory.stop.set()
        due.stop.set()
        due.join()
        measured = {j: t for j, t in due.due.items() if warm_up_end <= t <= end}
        jobs = Job.fetch_many(list(measured), connection=connection)
        lags: list[float] = []
        durations: list[float] = []
        not_started = 0
        for job in jobs:
            if job is None:
                continue
            start = started_at(job)
            if start is None:
                not_started += 1
                continue
            lags.append(start - measured[job.id])
            stop = ended_at(job)
            if stop is not None:
                durations.append(stop - start)
        print(
            f"\nwarm-up (first looks, then one more tick each): {warm_up_end - began:.1f} s"
            f"\nmeasured: ticks due in the {end - warm_up_end:.0f} s after it: {len(measured)}"
            f" ({len(lags)} ran, {not_started} not started 2 s after the window)"
        )
        p50, p99 = _common.percentile(lags, 50), _common.percentile(lags, 99)
        print(
            f"tick lag (start - due):  p50 {p50:.3f} s   p99 {p99:.3f} s   max {max(lags):.3f} s"
            f"   (target p99 < 2 s: {'meets' if p99 < 2 else 'MISSES'})"
        )
        print(
            f"tick duration:           p50 {1000 * _common.percentile(durations, 50):.1f} ms"
            f"   p99 {1000 * _common.percentile(durations, 99):.1f} ms"
            f"   throughput needed {args.monitors / args.poll:.0f} ticks/s"
        )
        worker_rss = max(memory.worker)
        scheduler_rss = max(memory.scheduler) if memory.scheduler else float("nan")
        print(
            f"RSS (VmRSS, max):        worker {worker_rss:.1f} MB"
            f"   (target < 150 MB: {'meets' if worker_rss < 150 else 'MISSES'})"
            f"   scheduler child {scheduler_rss:.1f} MB"
        )
        requests = [p for _, p, _ in concourse.requests if p.startswith("/api/")]
        print(
            f"Concourse requests:      {len(requests)} in {time.time() - began:.0f} s"
            f" for {args.monitors} monitors"
        )
        return 0
    finally:
        due.stop.set()
        _common.stop_process(worker)
        concourse.stop()
        github.stop()
        _common.clean_up(connection, queue)


if __name__ == "__main__":
    sys.exit(main())
