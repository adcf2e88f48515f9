"""Shared fixtures: a real Redis (own DB index, flushed), the simulators on loopback, and real
RQ worker processes (`deploy-monitor worker`, scheduler on) pointed at them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from simulators.concourse import ConcourseSimulator
from simulators.env import simulated_env
from simulators.github import GitHubSimulator
from simulators.lana_bank import LanaBankCI
from workers.engine import Engine
from workers.settings import EngineSettings

E2E_DIR = Path(__file__).parent / "e2e"


def _test_redis_url() -> str:
    """The base URL's DB for a serial run; under pytest-xdist each worker (gw0, gw1, …) takes the
    next DB index, so parallel workers never flush each other's data."""
    base = os.environ.get("DEPLOY_MONITOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return base
    prefix, _, db = base.rpartition("/")
    return f"{prefix}/{int(db or 0) + int(worker[2:])}"


TEST_REDIS_URL = _test_redis_url()
REPOSITORY = "GaloyMoney/lana-bank"
GITHUB_TOKEN = "ghs_test_token_0123456789"
CONCOURSE_USER, CONCOURSE_PASSWORD = "deploy-bot", "concourse-pass-0123456789"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e/ runs real processes: marked, so `-m "not e2e"` is fast."""
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def redis_conn() -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        conn.ping()
    except redis.ConnectionError:
        pytest.fail(f"no Redis at {TEST_REDIS_URL}: start redis-server (see README)")
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@dataclass
class World:
    """Simulated Concourse + GitHub + lana-bank CI, and the settings that point at them."""

    concourse: ConcourseSimulator
    github: GitHubSimulator
    ci: LanaBankCI
    env: dict[str, str]
    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def settings(self) -> EngineSettings:
        return EngineSettings.model_validate(self.env)

    def engine(self) -> Engine:
        return Engine(self.settings())

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            env={**os.environ, **self.env, "LOG_LEVEL": "INFO"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the scheduler and horse die with it
        )
        self.workers.append(process)
        return process

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and everything it started, as an OOM kill or a lost node would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def worker_logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker-*.log"))
        )

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                self.kill_worker(process)
        self.concourse.stop()
        self.github.stop()


def chain_file(
    tmp: Path, *, tests_warn: str = "30m", testflight_warn: str = "20m", pickup: str = "5m"
) -> str:
    """The bundled chain with thresholds scaled for tests."""
    import yaml

    from workers.chain import load_chain

    data = load_chain().model_dump(mode="json")
    data["pickup_warn_after"] = pickup
    for stage in data["stages"]:
        if stage["id"] == "tests":
            stage["warn_after"] = tests_warn
        if stage["id"] == "testflight":
            stage["warn_after"] = testflight_warn
    path = tmp / f"chain-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture
def world(redis_conn: redis.Redis, tmp_path: Path) -> Iterator[World]:
    concourse = ConcourseSimulator(team="dev", users={CONCOURSE_USER: CONCOURSE_PASSWORD})
    github = GitHubSimulator(repository=REPOSITORY, token=GITHUB_TOKEN)
    concourse.start()
    github.start()
    ci = LanaBankCI(concourse)
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        **simulated_env(
            concourse,
            github,
            username=CONCOURSE_USER,
            queue=f"dm-test-{uuid.uuid4().hex[:8]}",
            poll_seconds=0.2,
        ),
        "DEPLOY_MONITOR_TICK_TIMEOUT": "3",
        "DEPLOY_MONITOR_REAP_SECONDS": "1",
        "DEPLOY_MONITOR_CHAIN": chain_file(tmp_path),
    }
    w = World(concourse=concourse, github=github, ci=ci, env=env, tmp=tmp_path)
    yield w
    w.stop()


def wait_for(predicate: object, timeout: float = 20.0, interval: float = 0.05) -> None:
    """Poll `predicate()` until it is true; fail the test with a clear message otherwise."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
