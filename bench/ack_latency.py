"""Slash-command ack latency with 50 concurrent, correctly signed commands.

Target (issue 4): p99 <= 150 ms.

`deploy-monitor bot` in its own process, as in production (the real Bolt app behind waitress,
16 threads), with the Slack simulator as its Web API and a real Redis. 50 clients in this
process, each with its own connection as Slack's would be, send `/deploy-monitor <n>` at the
same moment (a barrier releases them); latency is from just before a request is sent to its
complete response. The ack parses the argument, queues the GitHub work for a worker (none
runs here: the ack is what is measured) and answers. One warm-up round, then 10 measured
rounds (500 commands). Also printed: the bot process's CPU time per command, which bounds
how fast one process can answer a burst.

Run: .venv/bin/python bench/ack_latency.py [--concurrency 50] [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common
import httpx
import redis
from rq import Queue

from simulators.slack import DEFAULT_TOKEN, SlackSimulator
from simulators.slack_client import SlackRequestSender

SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
CHANNEL = "C0DEPLOYS"


def one_round(senders: list[SlackRequestSender], first_pr: int) -> tuple[list[float], list[str]]:
    """Every sender posts one command at once; returns latencies (s) and any failures."""
    barrier = threading.Barrier(len(senders))

    def send(index: int) -> tuple[float, str]:
        sender = senders[index]
        barrier.wait()
        began = time.perf_counter()
        response = sender.slash_command(
            str(first_pr + index), user_id=f"U0USER{index:03d}", channel_id=CHANNEL
        )
        elapsed = time.perf_counter() - began
        ok = response.status_code == 200 and "Looking up PR" in response.text
        return elapsed, "" if ok else f"{response.status_code} {response.text[:80]}"

    with ThreadPoolExecutor(max_workers=len(senders)) as pool:
        results = list(pool.map(send, range(len(senders))))
    return [r[0] for r in results], [r[1] for r in results if r[1]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(url: str, bot: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bot.poll() is not None:
            raise RuntimeError(f"deploy-monitor bot exited with {bot.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("deploy-monitor bot did not become healthy")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    connection = redis.Redis.from_url(_common.REDIS_URL)
    print(f"Slash-command ack latency, {args.concurrency} concurrent (bench/ack_latency.py)")
    _common.print_machine(connection)
    queue = _common.run_id("ack")
    slack = SlackSimulator()
    slack.start()
    slack.add_channel(CHANNEL, "deploys")
    port = free_port()
    env = {
        "REDIS_URL": _common.REDIS_URL,
        "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "GITHUB_TOKEN": _common.TOKEN,
        "DEPLOY_MONITOR_QUEUE": queue,
        "PORT": str(port),
        "LOG_LEVEL": "ERROR",  # waitress warns about its task queue depth under the burst
    }
    bot = _common.start_process("bot", env, log=None)
    url = f"http://127.0.0.1:{port}"
    senders = [
        SlackRequestSender(url, SIGNING_SECRET, response_url_base=slack.url + "/hooks")
        for _ in range(args.concurrency)
    ]
    try:
        wait_healthy(url, bot)
        one_round(senders, first_pr=1)  # warm-up: connections, imports, Bolt's first dispatch
        latencies: list[float] = []
        failures: list[str] = []
        cpu_before, wall_before = cpu_seconds(bot.pid), time.perf_counter()
        for r in range(args.rounds):
            got, failed = one_round(senders, first_pr=1000 + r * args.concurrency)
            latencies += got
            failures += failed
        cpu = (cpu_seconds(bot.pid) - cpu_before) / len(latencies)
        wall = (time.perf_counter() - wall_before) / args.rounds
        p50 = _common.percentile(latencies, 50) * 1000
        p99 = _common.percentile(latencies, 99) * 1000
        print(
            f"\n{len(latencies)} commands in {args.rounds} rounds of {args.concurrency} to"
            f" `deploy-monitor bot` (its own process, waitress, 16 threads);"
            f" failures: {len(failures)}"
        )
        print(
            f"ack latency: p50 {p50:.1f} ms   p99 {p99:.1f} ms"
            f"   max {max(latencies) * 1000:.1f} ms"
            f"   (target p99 <= 150 ms: {'meets' if p99 <= 150 else 'MISSES'})"
        )
        print(
            f"bot process CPU per command: {cpu * 1000:.1f} ms"
            f" (x {args.concurrency} = {cpu * args.concurrency * 1000:.0f} ms of one core per"
            f" burst; a burst took {wall * 1000:.0f} ms)"
        )
        queued = connection.llen(Queue(queue, connection=connection).key)
        print(f"jobs enqueued for workers: {queued} (one per command, warm-up included)")
        for failure in failures[:5]:
            print(f"  failure: {failure}")
        return 0 if not failures else 1
    finally:
        for sender in senders:
            sender.close()
        _common.stop_process(bot)
        slack.stop()
        _common.clean_up(connection, queue)


if __name__ == "__main__":
    raise SystemExit(main())
