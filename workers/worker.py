"""The RQ worker that `deploy-monitor worker` runs.

One process runs every job itself (a `SimpleWorker`: no fork per job), so the clients and the
Concourse token are kept between ticks. Such a worker sends no heartbeats while a job runs:
RQ takes a job for abandoned, and retries or fails it, once its timeout plus a margin has
passed. RQ's margin is a fixed 60 s; this one is `DEPLOY_MONITOR_JOB_GRACE_SECONDS`, so a
command whose worker was killed is run again soon, and tests need not wait a minute for it.
"""

from __future__ import annotations

import math
from typing import Any

from rq import SimpleWorker
from rq.job import Job


class MonitorWorker(SimpleWorker):
    def __init__(self, *args: Any, job_grace: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job_grace = job_grace

    def get_heartbeat_ttl(self, job: Job) -> int:
        if job.timeout is None or job.timeout < 0:
            return int(super().get_heartbeat_ttl(job))  # unbounded jobs: RQ's rule
        # The job is stopped at its timeout (SIGALRM), so past this it cannot be running.
        return int(job.timeout) + math.ceil(self.job_grace)
