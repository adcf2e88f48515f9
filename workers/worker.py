"""The RQ worker that `deploy-monitor worker` runs.

One process runs every job itself (a `SimpleWorker`: no fork per job), so the clients and the
Concourse token are kept between ticks. Such a worker sends no heartbeats while a job runs:
RQ takes a job for abandoned, and retries or fails it, once its timeout plus a margin has
passed. RQ's margin is a fixed 60 s; this one is `DEPLOY_MONITOR_JOB_GRACE_SECONDS`, so a
command whose worker was killed is run again soon, and tests need not wait a minute for it.

RQ also ends its work loop on any error it did not expect, such as Redis going away while a
job is being marked finished. `run_worker` then waits for Redis and starts a new loop, so a
Redis restart never leaves the process alive but idle, nor needs a supervisor to restart it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import redis
from rq import SimpleWorker
from rq.job import Job

log = logging.getLogger(__name__)

# Waits between Redis pings while it is away: short at first, then every few seconds.
REDIS_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)


class MonitorWorker(SimpleWorker):
    def __init__(self, *args: Any, job_grace: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job_grace = job_grace
        self.stop_requested = False  # SIGINT/SIGTERM: leave, do not start again

    def get_heartbeat_ttl(self, job: Job) -> int:
        if job.timeout is None or job.timeout < 0:
            return int(super().get_heartbeat_ttl(job))  # unbounded jobs: RQ's rule
        # The job is stopped at its timeout (SIGALRM), so past this it cannot be running.
        return int(job.timeout) + math.ceil(self.job_grace)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def run_worker(
    make: Callable[[], MonitorWorker],
    connection: redis.Redis,
    *,
    burst: bool = False,
    logging_level: str = "INFO",
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run `make()`'s work loop (scheduler on) until asked to stop or, with `burst`, until the
    queue is empty; after a loop RQ ended on an error, wait for Redis and run a new one."""
    while True:
        worker = make()
        # RQ's own teardown may fail to reach Redis too.
        with contextlib.suppress(redis.exceptions.RedisError):
            worker.work(with_scheduler=True, burst=burst, logging_level=logging_level)
        if burst or worker.stop_requested:
            return
        log.warning("the worker loop ended on an error; starting again once Redis answers")
        if not _wait_for_redis(connection, worker, sleep):
            return


def _wait_for_redis(
    connection: redis.Redis, worker: MonitorWorker, sleep: Callable[[float], None]
) -> bool:
    """Ping until Redis answers (True) or a stop is requested meanwhile (False): RQ's signal
    handlers stay installed and still point at the ended worker."""
    attempt = 0
    while not worker.stop_requested:
        try:
            connection.ping()
            return True
        except redis.exceptions.RedisError:
            sleep(REDIS_BACKOFF_SECONDS[min(attempt, len(REDIS_BACKOFF_SECONDS) - 1)])
            attempt += 1
    return False
