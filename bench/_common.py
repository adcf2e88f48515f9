"""What the benchmark scripts share: the machine they ran on, percentiles, Redis clean-up.

Each script runs against its own key namespace and RQ queue in the Redis at
`DEPLOY_MONITOR_BENCH_REDIS_URL` (default database 12 on 127.0.0.1:6379) and removes what it
wrote when it ends; nothing else in that database is touched.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import redis
from rq import Queue, Worker
from rq.worker_registration import WORKERS_BY_QUEUE_KEY
from waitress.server import BaseWSGIServer, create_server

from bot.slack.app import MAX_BODY_BYTES, create_app, wsgi_app
from bot.slack.face import SlackFace
from simulators.concourse import ConcourseSimulator
from simulators.env import simulated_env
from simulators.github import GitHubSimulator
from workers import keys

REDIS_URL = os.environ.get("DEPLOY_MONITOR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
WAITRESS_THREADS = 16  # as `deploy-monitor bot` serves (bot.slack.app.serve)
# The simulated services' credentials, the same in every script.
REPOSITORY = "GaloyMoney/lana-bank"
TOKEN = "ghs_bench_token"
USER, PASSWORD = "deploy-bot", "bench-password"


def start_process(command: str, env: dict[str, str], log: Path | None) -> subprocess.Popen[bytes]:
    """`deploy-monitor <command>` in a process group of its own (its scheduler child goes with
    it), its output in `log` (discarded when None)."""
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", command],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if not isinstance(out, int):
            out.close()  # the child has its own copy


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the process group; SIGKILL it if it has not ended 10 s later."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def run_id(prefix: str) -> str:
    """A queue name (and so a key namespace) of its own for one benchmark run."""
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


def _proc_field(path: str, name: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return "unknown"


def machine_lines(connection: redis.Redis) -> list[str]:
    """CPU model, cores, RAM, OS, Python and Redis versions, and the load when measured."""
    mem_kb = _proc_field("/proc/meminfo", "MemTotal").split()[0]
    ram = f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb.isdigit() else "unknown"
    info = connection.info("server")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"cpu:    {_proc_field('/proc/cpuinfo', 'model name')}",
        f"cores:  {os.cpu_count()} logical",
        f"ram:    {ram}",
        f"os:     {platform.platform()}",
        f"python: {sys.version.split()[0]} ({platform.python_implementation()})",
        f"redis:  {info.get('redis_version', 'unknown')} at {REDIS_URL}",
        f"load:   {load} (1, 5, 15 min, before the run)",
    ]


def print_machine(connection: redis.Redis) -> None:
    """Print where the figures come from."""
    print("machine")
    for line in machine_lines(connection):
        print(f"  {line}")


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), nearest rank: a value that was actually measured."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process (VmRSS), in MiB."""
    value = _proc_field(f"/proc/{pid}/status", "VmRSS").split()
    return int(value[0]) / 1024 if value and value[0].isdigit() else math.nan


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(c) for c in text.split()]
    return found


def clean_up(connection: redis.Redis, queue: str) -> int:
    """Delete this run's keys: its namespace and its RQ queue, jobs and registries."""
    patterns = [keys.every_key(keys.namespace(queue)), keys.rq_keys_naming(queue)]
    removed = 0
    # Workers of the queue are registered under their own names (a stopped one lingers a
    # minute, no longer in the queue's set).
    workers = list(connection.smembers(WORKERS_BY_QUEUE_KEY % queue))
    workers += [
        key
        for key in connection.scan_iter(Worker.redis_worker_namespace_prefix + "*", count=1000)
        if connection.hget(key, "queues") == queue.encode()
    ]
    if workers:
        removed += int(connection.delete(*workers))
        connection.srem(Worker.redis_workers_keys, *workers)
    connection.srem(Queue.redis_queues_keys, Queue(queue, connection=connection).key)
    for pattern in patterns:
        batch: list[bytes] = []
        for key in connection.scan_iter(pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                removed += int(connection.delete(*batch))
                batch = []
        if batch:
            removed += int(connection.delete(*batch))
    return removed


def serve_bolt(face: SlackFace) -> tuple[BaseWSGIServer, str]:
    """The real Bolt app behind waitress on a free loopback port, from a daemon thread."""
    server = create_server(
        wsgi_app(face, create_app(face)),
        host="127.0.0.1",
        port=0,
        threads=WAITRESS_THREADS,
        max_request_body_size=MAX_BODY_BYTES,
    )
    assert isinstance(server, BaseWSGIServer)
    threading.Thread(target=server.run, daemon=True).start()
    return server, f"http://127.0.0.1:{int(server.getsockname()[1])}"


def engine_env(
    concourse: ConcourseSimulator, github: GitHubSimulator, *, queue: str, poll: float
) -> dict[str, str]:
    """Settings that point deploy-monitor at the simulators, in this run's own queue."""
    env = simulated_env(concourse, github, username=USER, queue=queue, poll_seconds=poll)
    return {"REDIS_URL": REDIS_URL, **env, "LOG_LEVEL": "WARNING"}
