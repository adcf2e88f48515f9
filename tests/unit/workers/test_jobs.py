"""workers/jobs.py against a real Redis and RQ: tick fencing and scheduling, failures, the
reaper and delivery retries.

The jobs run in this process (`jobs._engine` is the test's engine). Most tests give the engine a
scripted observer, since what a tick does with an observation is the subject here, not how it
is gathered; one runs the first tick through an RQ worker against the simulators.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from prometheus_client import REGISTRY
from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from tests.conftest import REPOSITORY, TEST_REDIS_URL, World
from workers import jobs, keys, metrics
from workers.engine import DELIVER_FUNC, Engine
from workers.errors import GitHubRateLimited, GitHubUnavailable
from workers.monitor import Monitor, Observation
from workers.settings import EngineSettings
from workers.target import ResolvedTarget, parse_target, resolve_target

POLL = 10.0
SHA = "0123456789abcdef0123456789abcdef01234567"
BACKEND = ["core/credit/src/fee.rs"]


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


class ScriptedObserver:
    """Answers each tick with the next scripted observation (or raises it); then "nothing new"."""

    def __init__(self) -> None:
        self.script: list[Observation | Exception] = []

    def observe(self, monitor: Monitor, now: float) -> Observation:
        answer = self.script.pop(0) if self.script else Observation(now=now)
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class RecordingNotifier:
    delivered: list[tuple[str, int]] = field(default_factory=list)
    fail: bool = False

    def deliver(self, monitor: Monitor) -> None:
        if self.fail:
            raise RuntimeError("Slack is down")
        self.delivered.append((monitor.id, monitor.events_emitted))


@dataclass
class Rig:
    engine: Engine
    clock: Clock
    observer: ScriptedObserver
    notifier: RecordingNotifier

    @property
    def queue_name(self) -> str:
        return self.engine.settings.queue_name

    def start(self, sha: str = SHA) -> Monitor:
        """A launched monitor whose first tick is taken off the queue (the test runs ticks)."""
        monitor, created = self.engine.start_monitor(_target(sha))
        assert created
        self.engine.queue.empty()
        return monitor

    def load(self, monitor_id: str) -> Monitor:
        monitor = self.engine.store.load(monitor_id)
        assert monitor is not None
        return monitor

    def queued_ids(self) -> list[str]:
        return list(self.engine.queue.get_job_ids())

    def scheduled_ids(self) -> list[str]:
        registry = ScheduledJobRegistry(queue=self.engine.queue)  # type: ignore[no-untyped-call]
        return list(registry.get_job_ids())

    def undelivered(self) -> list[str]:
        return jobs.undelivered_ids(self.engine, float("inf"))


def _target(sha: str) -> ResolvedTarget:
    return ResolvedTarget(
        sha=sha,
        headline="Add origination fee",
        committed_at=int(time.time()) - 60,
        files=tuple(BACKEND),
        pr_number=None,
        pr_title=None,
        pr_url=None,
        merged_now=False,
    )


def _settings(**env: str) -> EngineSettings:
    return EngineSettings.model_validate(
        {
            "REDIS_URL": TEST_REDIS_URL,
            "DEPLOY_MONITOR_QUEUE": f"jobs-{uuid.uuid4().hex[:8]}",
            "DEPLOY_MONITOR_POLL_SECONDS": str(POLL),
            "DEPLOY_MONITOR_TICK_TIMEOUT": "5",
            **env,
        }
    )


@pytest.fixture
def rig(redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    clock = Clock(time.time())
    engine = Engine(_settings(), clock=clock)
    observer = ScriptedObserver()
    # In place of the repository's Observer: no Concourse.
    monkeypatch.setattr(engine, "observer_for", lambda repository: observer)
    notifier = RecordingNotifier()
    engine.notifiers.append(notifier)
    monkeypatch.setattr(jobs, "_engine", engine)
    yield Rig(engine, clock, observer, notifier)
    engine.redis.close()


def ticks(outcome: str) -> float:
    """This process's count of ticks with `outcome` (the `/metrics` counter)."""
    return REGISTRY.get_sample_value(f"{metrics.PREFIX}_ticks_total", {"outcome": outcome}) or 0.0


# -- tick ------------------------------------------------------------------------------------


def test_a_tick_saves_the_step_and_schedules_the_next_one_a_poll_later(rig: Rig) -> None:
    monitor = rig.start()
    assert jobs.tick(monitor.id, monitor.seq) == "ticked"
    after = rig.load(monitor.id)
    assert after.seq == monitor.seq + 1
    assert rig.scheduled_ids() == [keys.tick_job(rig.queue_name, monitor.id, after.seq)]
    due = rig.engine.redis.zscore(keys.active(rig.engine.store.ns), monitor.id)
    assert due == pytest.approx(rig.clock.now + POLL)
    assert rig.notifier.delivered == [(monitor.id, after.events_emitted)]


def test_a_tick_of_a_stale_seq_is_dropped(rig: Rig) -> None:
    monitor = rig.start()
    assert jobs.tick(monitor.id, monitor.seq) == "ticked"
    before = rig.load(monitor.id)
    stale = ticks("stale")
    assert jobs.tick(monitor.id, monitor.seq) == "stale"  # the same tick run twice
    assert jobs.tick(monitor.id, monitor.seq + 5) == "stale"
    assert jobs.tick("nobody", 0) == "stale"
    assert ticks("stale") == stale + 3
    assert rig.load(monitor.id) == before
    assert rig.notifier.delivered == [(monitor.id, before.events_emitted)]  # only the first


def test_a_tick_whose_monitor_is_locked_is_busy(rig: Rig) -> None:
    monitor = rig.start()
    with rig.engine.store.lock(monitor.id, timeout=5) as held:
        assert held
        assert jobs.tick(monitor.id, monitor.seq) == "busy"
    assert rig.load(monitor.id).seq == monitor.seq
    assert rig.scheduled_ids() == []


def test_a_tick_that_raises_changes_nothing_and_the_reaper_kicks_it_later(rig: Rig) -> None:
    monitor = rig.start()
    rig.observer.script.append(GitHubUnavailable("GitHub answered 502"))
    errors = ticks("error")
    with pytest.raises(GitHubUnavailable):
        jobs.tick(monitor.id, monitor.seq)
    assert ticks("error") == errors + 1
    assert rig.load(monitor.id) == monitor
    assert rig.queued_ids() == rig.scheduled_ids() == []  # the chain is broken here…
    rig.clock.now += 2 * POLL + 2
    assert jobs.reap(rig.engine) == 1  # …and the reaper mends it once the tick is overdue
    kicked = keys.tick_job(
        rig.queue_name, monitor.id, monitor.seq, f"-r{int(rig.clock.now * 1000)}"
    )
    assert rig.queued_ids() == [kicked]
    due = rig.engine.redis.zscore(keys.active(rig.engine.store.ns), monitor.id)
    assert due == pytest.approx(rig.clock.now + POLL)
    assert jobs.tick(monitor.id, monitor.seq) == "ticked"  # what the kicked job runs


def test_a_rate_limited_tick_tries_the_same_step_again_after_the_reset(rig: Rig) -> None:
    monitor = rig.start()
    reset_at = rig.clock.now + 120.5
    rig.observer.script.append(GitHubRateLimited("rate limited", reset_at=reset_at))
    assert jobs.tick(monitor.id, monitor.seq) == "rate-limited"
    assert rig.load(monitor.id).seq == monitor.seq
    suffix = f"-rl{int(reset_at)}"
    assert rig.scheduled_ids() == [keys.tick_job(rig.queue_name, monitor.id, monitor.seq, suffix)]
    due = rig.engine.redis.zscore(keys.active(rig.engine.store.ns), monitor.id)
    assert due == pytest.approx(reset_at)


def test_a_short_rate_limit_still_waits_a_poll(rig: Rig) -> None:
    monitor = rig.start()
    rig.observer.script.append(GitHubRateLimited("secondary", reset_at=rig.clock.now + 1))
    assert jobs.tick(monitor.id, monitor.seq) == "rate-limited"
    due = rig.engine.redis.zscore(keys.active(rig.engine.store.ns), monitor.id)
    assert due == pytest.approx(rig.clock.now + POLL)


def test_a_final_tick_schedules_nothing_and_delivers(rig: Rig) -> None:
    monitor = rig.start()
    rig.observer.script.append(Observation(now=rig.clock.now, stop_requested_by="U0ALICE"))
    assert jobs.tick(monitor.id, monitor.seq) == "stopped"
    after = rig.load(monitor.id)
    assert after.done and rig.engine.store.active_ids() == []
    assert rig.queued_ids() == rig.scheduled_ids() == []
    assert rig.notifier.delivered == [(monitor.id, after.events_emitted)]
    assert rig.undelivered() == []
    assert jobs.tick(monitor.id, after.seq) == "stale"  # a finished monitor does not tick


def test_a_final_tick_whose_delivery_fails_leaves_it_to_a_delivery_job(rig: Rig) -> None:
    monitor = rig.start()
    rig.notifier.fail = True
    rig.observer.script.append(Observation(now=rig.clock.now, stop_requested_by="U0ALICE"))
    assert jobs.tick(monitor.id, monitor.seq) == "stopped"
    after = rig.load(monitor.id)
    assert rig.undelivered() == [monitor.id]
    at_ms = int(rig.clock.now * 1000)
    assert rig.scheduled_ids() == [
        keys.deliver_job(rig.queue_name, monitor.id, after.events_emitted, at_ms)
    ]


# -- deliver ---------------------------------------------------------------------------------


def test_deliver_retries_the_notifiers_and_clears_a_finished_monitor(rig: Rig) -> None:
    monitor = rig.start()
    rig.notifier.fail = True
    rig.observer.script.append(Observation(now=rig.clock.now, stop_requested_by="U0ALICE"))
    jobs.tick(monitor.id, monitor.seq)
    rig.notifier.fail = False
    assert jobs.deliver(monitor.id) == "delivered"
    assert rig.notifier.delivered == [(monitor.id, rig.load(monitor.id).events_emitted)]
    assert rig.undelivered() == []


def test_deliver_of_a_monitor_that_is_gone_forgets_it(rig: Rig) -> None:
    rig.engine.redis.zadd(keys.undelivered(rig.engine.store.ns), {"gone-monitor": 1.0})
    assert jobs.deliver("gone-monitor") == "gone"
    assert rig.undelivered() == []
    assert rig.notifier.delivered == []


def test_deliver_while_a_tick_holds_the_monitor_comes_back_a_poll_later(rig: Rig) -> None:
    monitor = rig.start()
    with rig.engine.store.lock(monitor.id, timeout=5):
        assert jobs.deliver(monitor.id) == "busy"
    assert rig.notifier.delivered == []
    [job_id] = rig.scheduled_ids()
    assert Job.fetch(job_id, connection=rig.engine.redis).func_name == DELIVER_FUNC


# -- reaper ----------------------------------------------------------------------------------


def test_the_reaper_kicks_only_overdue_monitors(rig: Rig) -> None:
    late = rig.start()
    rig.clock.now += 2 * POLL + 2
    rig.start("fedcba9876543210fedcba9876543210fedcba98")  # due now: not overdue
    assert jobs.reap(rig.engine) == 1
    kick = f"-r{int(rig.clock.now * 1000)}"
    assert rig.queued_ids() == [keys.tick_job(rig.queue_name, late.id, late.seq, kick)]
    assert jobs.reap(rig.engine) == 0  # rescheduled a poll ahead: not kicked twice


def test_the_reaper_forgets_an_active_id_whose_record_is_gone(rig: Rig) -> None:
    monitor = rig.start()
    rig.engine.redis.delete(keys.monitor(rig.engine.store.ns, monitor.id))
    rig.clock.now += 2 * POLL + 2
    assert jobs.reap(rig.engine) == 0
    assert rig.engine.store.active_ids() == []
    assert rig.queued_ids() == []


def test_the_reaper_delivers_what_a_killed_worker_left_undelivered(rig: Rig) -> None:
    monitor = rig.start()
    rig.notifier.fail = True
    rig.observer.script.append(Observation(now=rig.clock.now, stop_requested_by="U0ALICE"))
    jobs.tick(monitor.id, monitor.seq)
    after = rig.load(monitor.id)
    # The worker was killed before its delivery job ran: only the reaper is left to deliver.
    rig.engine.redis.delete(ScheduledJobRegistry(queue=rig.engine.queue).key)  # type: ignore[no-untyped-call]
    rig.clock.now += 3 * POLL + 2  # a grace period after the delivery was due (a poll later)
    assert jobs.reap(rig.engine) == 1
    at_ms = int(rig.clock.now * 1000)
    assert rig.queued_ids() == [
        keys.deliver_job(rig.queue_name, monitor.id, after.events_emitted, at_ms)
    ]
    # Looked at again only after another grace period.
    since = rig.engine.redis.zscore(keys.undelivered(rig.engine.store.ns), monitor.id)
    assert since == pytest.approx(rig.clock.now)


# -- through RQ, against the simulators ------------------------------------------------------


def test_the_first_tick_runs_in_an_rq_worker_against_the_simulators(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = world.engine()
    monkeypatch.setattr(jobs, "_engine", engine)
    sha = world.github.add_commit("Add origination fee", BACKEND)
    monitor, _ = engine.start_monitor(resolve_target(parse_target(sha, REPOSITORY), engine.github))
    [job] = engine.queue.get_jobs()
    # One job, as a worker runs it (`work()` itself would wait a minute for its pubsub thread).
    SimpleWorker([engine.queue], connection=engine.redis).execute_job(job, engine.queue)
    assert Job.fetch(job.id, connection=engine.redis).return_value() == "ticked"
    after = engine.store.load(monitor.id)
    assert after is not None and after.seq == monitor.seq + 1
    registry = ScheduledJobRegistry(queue=engine.queue)  # type: ignore[no-untyped-call]
    assert registry.get_job_ids() == [keys.tick_job(engine.settings.queue_name, monitor.id, 1)]
    engine.redis.close()


def test_a_monitor_of_a_repository_no_longer_served_is_kept_and_looked_at_later(
    rig: Rig,
) -> None:
    monitor = rig.start()
    # Stored by an earlier configuration that served another repository.
    gone = monitor.model_copy(update={"repository": "acme/removed"})
    rig.engine.redis.set(keys.monitor(rig.engine.store.ns, monitor.id), gone.model_dump_json())
    rig.observer.script.append(RuntimeError("observed a repository that is not served"))
    assert jobs.tick(monitor.id, monitor.seq) == "unserved"
    kept = rig.load(monitor.id)
    assert not kept.done and kept.seq == monitor.seq  # nothing judged, nothing lost
    assert len(rig.observer.script) == 1  # not observed
    # The next look is a reaper period away, not a poll.
    assert any(job_id.endswith(f"-u{int(rig.clock())}") for job_id in rig.scheduled_ids())
    assert monitor.id in rig.engine.store.active_ids()
