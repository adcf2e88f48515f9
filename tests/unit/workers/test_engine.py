"""workers/engine.py against a real Redis and RQ: launching monitors, the jobs it queues, census.

Nothing here talks to Concourse or GitHub: launching and scheduling need neither.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from tests.conftest import TEST_REDIS_URL
from workers import keys
from workers.engine import DELIVER_FUNC, TICK_FUNC, Engine
from workers.settings import EngineSettings
from workers.target import ResolvedTarget

SHA = "0123456789abcdef0123456789abcdef01234567"
TICK_TIMEOUT = 5


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
def engine(redis_conn: redis.Redis, clock: Clock) -> Iterator[Engine]:
    settings = EngineSettings.model_validate(
        {
            "REDIS_URL": TEST_REDIS_URL,
            "DEPLOY_MONITOR_QUEUE": f"engine-{uuid.uuid4().hex[:8]}",
            "DEPLOY_MONITOR_POLL_SECONDS": "10",
            "DEPLOY_MONITOR_TICK_TIMEOUT": str(TICK_TIMEOUT),
        }
    )
    eng = Engine(settings, clock=clock)
    yield eng
    eng.redis.close()


def target(sha: str = SHA) -> ResolvedTarget:
    return ResolvedTarget(
        sha=sha,
        headline="Add origination fee",
        committed_at=int(time.time()) - 60,
        files=("core/credit/src/fee.rs",),
        pr_number=None,
        pr_title=None,
        pr_url=None,
        merged_now=False,
    )


def queued(engine: Engine) -> list[Job]:
    return [j for j in engine.queue.get_jobs() if j is not None]


def scheduled(engine: Engine) -> ScheduledJobRegistry:
    return ScheduledJobRegistry(queue=engine.queue)  # type: ignore[no-untyped-call]


def test_launch_stores_the_monitor_and_queues_its_first_tick(engine: Engine) -> None:
    monitor, created = engine.start_monitor(target(), requester="U0ALICE")
    assert created
    assert engine.store.load(monitor.id) == monitor
    assert engine.store.active_ids() == [monitor.id]
    [job] = queued(engine)
    assert job.id == keys.tick_job(engine.settings.queue_name, monitor.id, monitor.seq)
    assert job.id == f"{engine.settings.queue_name}-tick-{monitor.id}-{monitor.seq}"
    assert (job.func_name, job.args) == (TICK_FUNC, (monitor.id, monitor.seq))
    assert job.timeout == TICK_TIMEOUT + keys.JOB_TIMEOUT_MARGIN_SECONDS
    assert job.result_ttl == keys.TICK_RESULT_TTL_SECONDS
    assert job.failure_ttl == keys.TICK_FAILURE_TTL_SECONDS
    assert [e.kind for _, e in engine.events(monitor.id)] == ["started"]


def test_a_commit_already_followed_gets_the_monitor_in_charge_and_no_second_tick(
    engine: Engine,
) -> None:
    first, _ = engine.start_monitor(target(), requester="U0ALICE")
    again, created = engine.start_monitor(target(), requester="U0BOB")
    assert not created
    assert again == first  # Alice's monitor, not a new one for Bob
    assert len(queued(engine)) == 1
    assert len(engine.events(first.id)) == 1


def test_a_finished_commit_followed_again_starts_a_new_run_with_new_job_ids(
    engine: Engine,
) -> None:
    first, _ = engine.start_monitor(target())
    done = first.model_copy(update={"status": "stopped", "seq": first.seq + 1})
    engine.store.commit(first.seq, done, [], due_at=engine.clock())
    again, created = engine.start_monitor(target())
    assert created and again.id == first.id
    assert again.seq == done.seq + 1  # so its tick job ids are not the old run's
    ids = {j.id for j in queued(engine)}
    assert keys.tick_job(engine.settings.queue_name, again.id, again.seq) in ids
    assert len(ids) == 2


def test_a_delayed_tick_waits_in_the_scheduled_registry(engine: Engine) -> None:
    monitor, _ = engine.prepare_monitor(target())
    before = time.time()
    engine.schedule_tick(monitor, delay=30.0)
    assert queued(engine) == []
    job_id = keys.tick_job(engine.settings.queue_name, monitor.id, monitor.seq)
    registry = scheduled(engine)
    assert registry.get_job_ids() == [job_id]
    at = registry.get_scheduled_time(job_id).timestamp()
    assert before + 29 <= at <= time.time() + 31


def test_a_suffix_makes_an_extra_tick_of_the_same_seq_a_distinct_job(engine: Engine) -> None:
    monitor, _ = engine.prepare_monitor(target())
    engine.schedule_tick(monitor, delay=0.0)
    engine.schedule_tick(monitor, delay=0.0, suffix="-r1700")
    queue = engine.settings.queue_name
    assert [j.id for j in queued(engine)] == [
        keys.tick_job(queue, monitor.id, monitor.seq),
        keys.tick_job(queue, monitor.id, monitor.seq, "-r1700"),
    ]
    assert all(j.args == (monitor.id, monitor.seq) for j in queued(engine))


def test_kick_ticks_now_under_an_id_of_its_reason_and_time(engine: Engine, clock: Clock) -> None:
    monitor, _ = engine.start_monitor(target())
    engine.queue.empty()
    clock.now = 1_700_000_000.25
    engine.kick(monitor.id, "stop")
    [job] = queued(engine)
    assert job.id == keys.tick_job(
        engine.settings.queue_name, monitor.id, monitor.seq, "-stop1700000000250"
    )
    assert job.args == (monitor.id, monitor.seq)


def test_kick_leaves_unknown_and_finished_monitors_alone(engine: Engine) -> None:
    monitor, _ = engine.start_monitor(target())
    engine.queue.empty()
    engine.kick("nobody", "stop")
    done = monitor.model_copy(update={"status": "deployed", "seq": monitor.seq + 1})
    engine.store.commit(monitor.seq, done, [], due_at=engine.clock())
    engine.kick(monitor.id, "decision")
    assert queued(engine) == []


def test_a_delivery_is_queued_at_once_or_scheduled(engine: Engine, clock: Clock) -> None:
    monitor, _ = engine.prepare_monitor(target())
    clock.now = 1_700_000_000.5
    engine.schedule_delivery(monitor, delay=0.0)
    [job] = queued(engine)
    queue = engine.settings.queue_name
    assert job.id == keys.deliver_job(queue, monitor.id, monitor.events_emitted, 1_700_000_000_500)
    assert (job.func_name, job.args) == (DELIVER_FUNC, (monitor.id,))
    assert job.result_ttl == keys.TICK_RESULT_TTL_SECONDS
    clock.now += 1
    engine.schedule_delivery(monitor, delay=5.0)
    assert scheduled(engine).get_job_ids() == [
        keys.deliver_job(queue, monitor.id, monitor.events_emitted, 1_700_000_001_500)
    ]


def test_census_counts_active_monitors_by_state_and_the_overdue(
    engine: Engine, clock: Clock
) -> None:
    engine.start_monitor(target())
    clock.now = time.time() - 3600  # launched an hour ago and never ticked since
    late, _ = engine.start_monitor(target("fedcba9876543210fedcba9876543210fedcba98"))
    counts, overdue = engine.census()
    assert counts == {"waiting_pickup": 2}
    assert overdue == 1
    finished = late.model_copy(update={"status": "stopped", "seq": late.seq + 1})
    engine.store.commit(late.seq, finished, [], due_at=clock.now)
    assert engine.census() == ({"waiting_pickup": 1}, 0)


def test_monitors_of_the_engine_live_in_its_namespace(engine: Engine) -> None:
    monitor, _ = engine.start_monitor(target())
    assert engine.store.ns == keys.namespace(engine.settings.queue_name)
    assert engine.redis.exists(keys.monitor(engine.store.ns, monitor.id))
