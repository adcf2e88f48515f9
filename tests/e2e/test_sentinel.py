"""Redis that survives losing a machine: a primary, a replica and three sentinels on loopback
(Debian's `redis-server`, the sentinels as `redis-server --sentinel`), the bot and a worker
configured with REDIS_SENTINELS only, and the primary killed in the middle of a journey.

The journey must end as it would have without the failover: the PR merged once, every stage
said once in its thread, the event log numbered 1..n.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from bot.check import Checker
from bot.slack.settings import BotSettings
from simulators.lana_bank import JobPlan
from tests.conftest import World, wait_for
from tests.e2e.test_faults import assert_no_key_twice, assert_thread_exact, delivered, kinds
from tests.slack_fixtures import BACKEND, CHANNEL, fast, free_port, slack_world
from workers.monitor import monitor_id_for

MASTER = "deploy-monitor-test"
REPO = "GaloyMoney/lana-bank"
REDIS_SERVER = shutil.which("redis-server")
# A sentinel calls the primary down after this long without an answer (Sentinel's default is
# 30 s); with 3 sentinels and a quorum of 2, the failover follows within a second or two.
DOWN_AFTER_MS = 1000
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


@dataclass
class SentinelSet:
    """One primary, one replica, three sentinels, each a process on a free loopback port."""

    tmp: Path
    primary: int = 0
    replica: int = 0
    sentinels: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinels)

    def start(self) -> None:
        self.primary = self._spawn(lambda _port: [*NO_PERSISTENCE])
        self.replica = self._spawn(
            lambda _port: [*NO_PERSISTENCE, "--replicaof", "127.0.0.1", str(self.primary)]
        )
        for _ in range(3):
            self.sentinels.append(
                self._spawn(lambda port: [self._sentinel_config(port), "--sentinel"])
            )
        replica = self.client(self.replica)
        wait_for(lambda: replica.info("replication").get("master_link_status") == "up", 10)
        for port in self.sentinels:  # each has found the replica and the other two sentinels
            sentinel = self.client(port)
            wait_for(lambda s=sentinel: self._sees_everyone(s), timeout=15, interval=0.1)

    def _sentinel_config(self, port: int) -> str:
        config = self.tmp / f"sentinel-{port}.conf"  # a sentinel rewrites its own file
        config.write_text(
            f"dir {self.tmp}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary} 2\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} 10000\n"
        )
        return str(config)

    def _sees_everyone(self, sentinel: redis.Redis) -> bool:
        master = sentinel.sentinel_master(MASTER)
        return int(master["num-slaves"]) == 1 and int(master["num-other-sentinels"]) == 2

    def _spawn(self, args_for: Callable[[int], list[str]]) -> int:
        """Start redis-server on a free port; returns the port. A port found free can be taken
        before the server binds it (the servers' own connections use the same port range), so
        a server that exits at once is started again on another."""
        assert REDIS_SERVER is not None
        for _ in range(5):
            port = free_port()
            with open(self.tmp / f"redis-{port}.log", "ab") as log:
                process = subprocess.Popen(
                    [REDIS_SERVER, *args_for(port), "--port", str(port), "--bind", "127.0.0.1"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.tmp,
                )
            client = self.client(port)
            wait_for(lambda p=process, c=client: p.poll() is not None or _pings(c), timeout=10)
            if process.poll() is None:
                self.processes[port] = process
                return port
        raise AssertionError(f"redis-server would not start:\n{self.logs()}")

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, decode_responses=True)

    def master_port(self) -> int:
        """The master's port as the first sentinel names it now (0 while it names none)."""
        address = self.client(self.sentinels[0]).sentinel_get_master_addr_by_name(MASTER)
        return int(address[1]) if address else 0

    def lose_the_primary(self) -> None:
        """SIGKILL the primary, as a lost machine. Replication is asynchronous: writes it
        acknowledged but had not yet copied would be lost with it, whatever the clients do, so
        writes are paused first until the replica has everything (then the kill is the only
        fault)."""
        primary = self.client(self.primary)
        try:
            primary.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
        except redis.ResponseError:  # before Redis 6.2 a pause holds every command
            primary.execute_command("CLIENT", "PAUSE", "10000")
        replica = self.client(self.replica)

        def caught_up() -> bool:
            offset = int(primary.info("replication")["master_repl_offset"])
            return int(replica.info("replication")["slave_repl_offset"]) >= offset

        wait_for(caught_up, timeout=5, interval=0.01)
        self.processes.pop(self.primary).kill()

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("redis-*")))


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    if REDIS_SERVER is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing, and CI must run this test (.ci/run installs it)")
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    directory = tmp_path / "redis"
    directory.mkdir()
    cluster = SentinelSet(directory)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def answered(predicate: Callable[[], bool]) -> bool:
    """The predicate, or False while no master answers (the test's own client waits it out)."""
    try:
        return predicate()
    except redis.RedisError:
        return False


def redis_check(settings: BotSettings) -> str:
    lines: list[str] = []
    Checker(lines.append).check_redis(settings)
    return "\n".join(lines)


def test_the_primary_is_lost_mid_journey_and_the_journey_ends_as_without(
    world: World, sentinels: SentinelSet
) -> None:
    world.env.update(
        {
            # The host in REDIS_URL is never used: the sentinels name the master.
            "REDIS_URL": "redis://never-used.invalid:6379/3",
            "REDIS_SENTINELS": sentinels.addresses,
            "REDIS_SENTINEL_MASTER": MASTER,
            "DEPLOY_MONITOR_REAP_SECONDS": "0.5",
        }
    )
    with slack_world(world) as sw:
        settings = BotSettings.model_validate(world.env)
        assert f"at 127.0.0.1:{sentinels.primary}, master {MASTER} via sentinels" in (
            redis_check(settings)
        )
        engine = sw.face.engine
        world.github.add_pull_request(1234, "Add origination fee", BACKEND)
        # A longer build-rc: the failover happens while a stage runs.
        world.ci.follow_main(world.github, fast(**{"build-rc": JobPlan(4.0)}))
        assert "Looking up PR #1234" in sw.command("1234")
        wait_for(lambda: len(world.github.merges) == 1, timeout=20)
        monitor_id = monitor_id_for(REPO, world.github.merges[0][1])
        # build-rc, the second stage, has started: the tests stage is behind it.
        wait_for(lambda: kinds(engine, monitor_id).count("stage_started") >= 2, timeout=30)
        said_before = kinds(engine, monitor_id)

        sentinels.lose_the_primary()
        wait_for(lambda: sentinels.master_port() == sentinels.replica, timeout=15, interval=0.1)

        wait_for(lambda: answered(lambda: delivered(sw, engine, monitor_id)), timeout=45)
        log = kinds(engine, monitor_id)
        assert log[: len(said_before)] == said_before, "the failover lost events"
        assert log[-1] == "deployed" and log.count("deployed") == 1
        assert log.count("stage_started") == 5 and log.count("stage_succeeded") == 5
        seqs = [event.seq for _, event in engine.events(monitor_id)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert_thread_exact(sw, engine, monitor_id)
        assert_no_key_twice(sw.slack, CHANNEL)
        assert len(world.github.merges) == 1 and len(world.github.merge_attempts) == 1
        assert engine.store.active_ids() == []
        assert f"at 127.0.0.1:{sentinels.replica}, master {MASTER}" in redis_check(settings)
        assert world.workers[0].poll() is None, world.worker_logs()
