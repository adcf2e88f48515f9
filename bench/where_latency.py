"""`where` answer time with 20 concurrent askers, in the terminal and in Slack.

Target (issue 9): p95 <= 1 s in the terminal and in Slack (from the slash command to the
answer).

The world, on loopback: the Concourse and GitHub simulators with a history of 40 deploys to
staging, one an hour, each of 5 commits that landed on main together (200 commits; the jobs
built the newest of each batch, which carried the others), builds as long as the real jobs
take; then 4 commits on main since the last deploy, the newest in tests right now. Every
asker asks about a different commit, picked at random from all of them, by its 7-character
short SHA as people paste it. The poll interval is 10 s, as a real deployment would run: the
chain view is refreshed at most that often.

- Terminal: 20 processes, each as one `deploy-monitor where <sha>` invocation (its own
  Engine: settings, chain, Redis connection, Concourse login, GitHub client), released
  together; timed from building the Engine to the answer's text. Python's start-up and
  imports are not in it (printed apart, for one whole invocation).
- Slack: `deploy-monitor bot` (the real Bolt app behind waitress) and 2 `deploy-monitor
  worker` processes, as a small deployment runs, with the Slack simulator as Slack. 20
  correctly signed `/deploy-monitor where <sha>` at once; timed from just before a command
  is sent to its ephemeral answer arriving at the command's response_url (when the Slack
  simulator received it).

Both in rounds: the first starts cold (a key namespace of its own: no view, no build inputs,
no ancestry, no commit known), each later one more than a poll interval after the one
before (the view is stale: the first question refreshes it, the others wait for it); each
then asks about 20 other commits at once while the view is fresh (warm). Printed per pass:
the requests the simulators answered and, in the terminal, the CPU per answer of the askers
and of the simulators (all share this machine's cores, as 20 askers on 20 laptops would not).

`--latency MS` holds every Concourse and GitHub answer back MS milliseconds, as a network
between deploy-monitor and the services would (0, the default: loopback).

Run: .venv/bin/python bench/where_latency.py [--askers 20] [--rounds 3] [--poll 10]
     [--latency 0]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path

import _common
import redis
from ack_latency import cpu_seconds, free_port, wait_healthy
from rq import Queue, Worker

from bot.where import answer_where
from simulators._http import Request, Response
from simulators.concourse import ConcourseSimulator
from simulators.github import GitHubSimulator
from simulators.lana_bank import TESTS, LanaBankCI
from simulators.slack import DEFAULT_TEAM_ID, DEFAULT_TOKEN, SlackSimulator, WebhookPost
from simulators.slack_client import SlackRequestSender
from workers.engine import Engine
from workers.settings import EngineSettings

REPOSITORY, TOKEN = _common.REPOSITORY, _common.TOKEN
USER, PASSWORD = _common.USER, _common.PASSWORD
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
CHANNEL = "C0DEPLOYS"
TARGET_SECONDS = 1.0
DEPLOYS, BATCH, EVERY = 40, 5, 3600.0
WAITING = 4  # commits on main since the last deploy
BACKEND = ["core/credit/src/fee.rs"]
SLACK_WORKERS = 2
ANSWER_TIMEOUT = 60.0


@dataclass
class Pass:
    """One batch of concurrent questions: what it was, and each answer's time (s)."""

    round: int
    kind: str
    seconds: list[float]
    failures: list[str]
    requests: tuple[int, int] = (0, 0)  # Concourse API (logins included), GitHub
    cpu: tuple[float, float] | None = None  # per answer, s: deploy-monitor's, this process's


# -- the world -------------------------------------------------------------------------------


class RemoteConcourse(ConcourseSimulator):
    """The Concourse simulator, answering `latency` seconds late (a service across a network)."""

    latency = 0.0

    def _respond(self, request: Request) -> Response:
        time.sleep(self.latency)
        return super()._respond(request)


class RemoteGitHub(GitHubSimulator):
    """The GitHub simulator, answering `latency` seconds late."""

    latency = 0.0

    def _respond(self, request: Request) -> Response:
        time.sleep(self.latency)
        return super()._respond(request)


def build_world(concourse: ConcourseSimulator, github: GitHubSimulator) -> list[str]:
    """The history, then commits since the last deploy (the newest in tests); every SHA."""
    now = time.time()
    ci = LanaBankCI(concourse)
    since = now - DEPLOYS * EVERY
    shas = ci.seed_deploys(github, DEPLOYS, since=since, every=EVERY, batch=BATCH)
    for n in range(WAITING):
        shas.append(
            github.add_commit(f"Recent change {n + 1}", BACKEND, committed_at=now - 900 + n * 60)
        )
    concourse.add_version("lana-bank", "repo", {"ref": shas[-1]})
    for job in TESTS:
        build = concourse.create_build("lana-bank", job, inputs={"repo": {"ref": shas[-1]}})
        concourse.start_build(build, at=now - 300)
    return shas


def counts(concourse: ConcourseSimulator, github: GitHubSimulator) -> tuple[int, int]:
    """Requests the simulators have answered so far (Concourse: its API, logins included)."""
    api = sum(1 for _, path, _ in concourse.requests if path.startswith(("/api/", "/sky/")))
    return api, len(github.requests)


def since(before: tuple[int, int], after: tuple[int, int]) -> tuple[int, int]:
    return after[0] - before[0], after[1] - before[1]


def short(sha: str) -> str:
    """The SHA as people paste it: 7 characters, more when those are all digits (a number is a
    PR number to deploy-monitor, as to people)."""
    length = 7
    while sha[:length].isdigit():
        length += 1
    return sha[:length]


def summary_line(label: str, seconds: Sequence[float]) -> str:
    if not seconds:
        return f"  {label:<22} no answers   (target p95 <= 1 s: MISSES)"
    p50, p95 = _common.percentile(seconds, 50), _common.percentile(seconds, 95)
    verdict = "meets" if p95 <= TARGET_SECONDS else "MISSES"
    return (
        f"  {label:<22} p50 {p50 * 1000:6.0f} ms   p95 {p95 * 1000:6.0f} ms"
        f"   max {max(seconds) * 1000:6.0f} ms   (target p95 <= 1 s: {verdict})"
    )


def report(title: str, passes: list[Pass], cpu_names: tuple[str, str]) -> bool:
    """Print each pass and the totals by kind; whether p95 met the target overall."""
    print(f"\n{title}")
    for p in passes:
        concourse, github = p.requests
        print(
            summary_line(f"round {p.round} {p.kind}", p.seconds)
            + f"   requests: Concourse {concourse}, GitHub {github}"
            + (
                f"   CPU per answer: {cpu_names[0]} {p.cpu[0] * 1000:.0f} ms,"
                f" {cpu_names[1]} {p.cpu[1] * 1000:.0f} ms"
                if p.cpu
                else ""
            )
        )
        # The first few, and the last (the jobs' whereabouts in Slack).
        shown = p.failures if len(p.failures) <= 4 else [*p.failures[:3], p.failures[-1]]
        for failure in shown:
            print(f"    failure: {failure}")
    everything: list[float] = []
    for kind in dict.fromkeys(p.kind for p in passes):
        seconds = [s for p in passes if p.kind == kind for s in p.seconds]
        everything += seconds
        print(summary_line(f"all {kind}", seconds))
    print(summary_line("all", everything))
    failures = sum(len(p.failures) for p in passes)
    return failures == 0 and _common.percentile(everything, 95) <= TARGET_SECONDS


# -- terminal: one process per asker, as `deploy-monitor where` invocations ------------------


def asker(conn: Connection, barrier: Barrier) -> None:
    """An asker process: for each (env, target) it is sent, wait for the others, then answer
    as `deploy-monitor where <target>` does (a new Engine each time); send back the time."""
    while (task := conn.recv()) is not None:
        env, target = task
        barrier.wait()
        began = time.perf_counter()
        lines: list[str] = []
        engine = Engine(EngineSettings.model_validate(env))
        code = answer_where(engine, target, echo=lines.append, fail=lines.append)
        elapsed = time.perf_counter() - began
        engine.concourse.close()
        engine.github.close()
        engine.redis.close()
        first = lines[0] if lines else ""
        conn.send((elapsed, "" if code in (0, 1) and not first.startswith("✘") else first))


def cpu_of(pids: Sequence[int]) -> tuple[float, float]:
    """CPU seconds used so far by the processes `pids` together (with their children, such as
    a worker's scheduler), and by this one (the simulators, and Slack's senders)."""
    every = [*pids, *(c for pid in pids for c in _common.children(pid))]
    return sum(cpu_seconds(pid) for pid in every), cpu_seconds(os.getpid())


def cpu_per(before: tuple[float, float], after: tuple[float, float], n: int) -> tuple[float, float]:
    return (after[0] - before[0]) / n, (after[1] - before[1]) / n


def terminal(
    concourse: ConcourseSimulator,
    github: GitHubSimulator,
    shas: list[str],
    args: argparse.Namespace,
    connection: redis.Redis,
) -> list[Pass]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(args.askers)
    pipes = [context.Pipe() for _ in range(args.askers)]
    processes = [
        context.Process(target=asker, args=(child, barrier), daemon=True) for _, child in pipes
    ]
    for process in processes:
        process.start()
    pids = [p.pid for p in processes if p.pid is not None]
    rng = random.Random(9)
    queues = [_common.run_id("where-cli") for _ in range(2)]
    warm_up, measured = (
        _common.engine_env(concourse, github, queue=queue, poll=args.poll) for queue in queues
    )

    def ask(env: dict[str, str], targets: list[str]) -> list[tuple[float, str]]:
        for (parent, _), sha in zip(pipes, targets, strict=True):
            parent.send((env, short(sha)))
        return [parent.recv() for parent, _ in pipes]

    passes: list[Pass] = []
    try:
        # Untimed, in a namespace of its own: what a process does once (lazy imports, the TLS
        # context) is start-up, printed apart.
        ask(warm_up, rng.sample(shas, args.askers))
        for n in range(1, args.rounds + 1):
            if n > 1:
                time.sleep(args.poll + 1.0)  # the view is older than a poll interval
            asked = rng.sample(shas, 2 * args.askers)
            first_kind = "cold" if n == 1 else "stale view"
            for kind, targets in (
                (first_kind, asked[: args.askers]),
                ("warm", asked[args.askers :]),
            ):
                before, cpu_before = counts(concourse, github), cpu_of(pids)
                got = ask(measured, targets)
                made = since(before, counts(concourse, github))
                cpu = cpu_per(cpu_before, cpu_of(pids), len(got))
                seconds, failures = [g[0] for g in got], [g[1] for g in got if g[1]]
                passes.append(Pass(n, kind, seconds, failures, made, cpu))
    finally:
        for parent, _ in pipes:
            parent.send(None)
        for process in processes:
            process.join(10)
        for queue in queues:
            _common.clean_up(connection, queue)
    return passes


def start_up_seconds(concourse: ConcourseSimulator, github: GitHubSimulator, sha: str) -> float:
    """Wall time of one real `deploy-monitor where` process (start-up and imports included),
    with the view warm in a namespace of its own."""
    queue = _common.run_id("where-proc")
    env = _common.engine_env(concourse, github, queue=queue, poll=3600.0)
    command = [sys.executable, "-m", "bot", "where", short(sha)]
    try:
        subprocess.run(command, env=env, capture_output=True, check=False, timeout=60)
        began = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False, timeout=60)
        return time.perf_counter() - began
    finally:
        _common.clean_up(redis.Redis.from_url(_common.REDIS_URL), queue)


# -- Slack: the bot, 2 workers, signed commands, answers at the response_url ------------------


def slack_round(
    senders: list[SlackRequestSender], slack: SlackSimulator, targets: list[str], tag: str
) -> tuple[list[float], list[str]]:
    """Every sender posts `/deploy-monitor where <sha>` at once; seconds from sending each to
    its answer arriving at its response_url, and any failures."""
    barrier = threading.Barrier(len(senders))
    paths = [f"/hooks/commands/{DEFAULT_TEAM_ID}/{tag}{i}/bench" for i in range(len(senders))]
    sent_at: list[float] = [0.0] * len(senders)
    acks: list[str] = [""] * len(senders)

    def send(index: int) -> None:
        barrier.wait()
        sent_at[index] = time.time()
        response = senders[index].slash_command(
            f"where {short(targets[index])}",
            user_id=f"U0ASKER{index:03d}",
            channel_id=CHANNEL,
            response_url=slack.url + paths[index],
        )
        if response.status_code != 200 or "Looking where" not in response.text:
            acks[index] = f"ack {response.status_code} {response.text[:80]}"

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wanted = set(paths)
    slack.wait_for(lambda s: wanted <= {p.path for p in s.webhook_posts}, timeout=ANSWER_TIMEOUT)
    first: dict[str, WebhookPost] = {}
    for answer in slack.webhook_posts:
        first.setdefault(answer.path, answer)
    seconds: list[float] = []
    failures = [a for a in acks if a]
    for index, path in enumerate(paths):
        post = first.get(path)
        if post is None:
            failures.append(f"no answer for {short(targets[index])}")
            continue
        text = str(post.payload.get("blocks") or post.payload.get("text"))
        if post.payload.get("response_type") != "ephemeral" or "Where is" not in text:
            failures.append(f"{short(targets[index])}: {text[:80]}")
        seconds.append(post.received_at - sent_at[index])
    return seconds, failures


def jobs_left(connection: redis.Redis, queue: str) -> str:
    """Where the queue's jobs are, when an answer did not come."""
    rq_queue = Queue(queue, connection=connection)
    return (
        f"jobs: {rq_queue.count} queued, {rq_queue.started_job_registry.count} started,"
        f" {rq_queue.failed_job_registry.count} failed,"
        f" {rq_queue.scheduled_job_registry.count} scheduled (retries)"
    )


def wait_workers(connection: redis.Redis, queue: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    rq_queue = Queue(queue, connection=connection)
    while time.monotonic() < deadline:
        if len(Worker.all(connection=connection, queue=rq_queue)) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{count} workers did not start")


def in_slack(
    concourse: ConcourseSimulator,
    github: GitHubSimulator,
    shas: list[str],
    args: argparse.Namespace,
    connection: redis.Redis,
) -> list[Pass]:
    queue = _common.run_id("where-slack")
    slack = SlackSimulator()
    slack.start()
    slack.add_channel(CHANNEL, "deploys")
    port = free_port()
    env = _common.engine_env(concourse, github, queue=queue, poll=args.poll)
    env.update(
        {
            "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "DEPLOY_MONITOR_DM_REQUESTER": "false",
            "PORT": str(port),
        }
    )
    logs = Path(f"/tmp/{queue}")
    # The bot at ERROR: waitress warns about its task queue depth under the burst.
    bot = _common.start_process("bot", {**env, "LOG_LEVEL": "ERROR"}, log=Path(f"{logs}-bot.log"))
    workers = [
        _common.start_process("worker", env, log=Path(f"{logs}-worker{n}.log"))
        for n in range(SLACK_WORKERS)
    ]
    url = f"http://127.0.0.1:{port}"
    senders = [
        SlackRequestSender(url, SIGNING_SECRET, response_url_base=slack.url + "/hooks")
        for _ in range(args.askers)
    ]
    rng = random.Random(10)
    passes: list[Pass] = []
    try:
        wait_healthy(url, bot)
        wait_workers(connection, queue, SLACK_WORKERS)
        pids = [bot.pid, *(w.pid for w in workers)]
        for n in range(1, args.rounds + 1):
            if n > 1:
                time.sleep(args.poll + 1.0)  # the view is older than a poll interval
            asked = rng.sample(shas, 2 * args.askers)
            first_kind = "cold" if n == 1 else "stale view"
            for kind, targets in (
                (first_kind, asked[: args.askers]),
                ("warm", asked[args.askers :]),
            ):
                before, cpu_before = counts(concourse, github), cpu_of(pids)
                seconds, failures = slack_round(senders, slack, targets, f"{n}{kind[0]}")
                if failures:
                    failures.append(jobs_left(connection, queue))
                made = since(before, counts(concourse, github))
                cpu = cpu_per(cpu_before, cpu_of(pids), len(targets))
                passes.append(Pass(n, kind, seconds, failures, made, cpu))
    finally:
        for sender in senders:
            sender.close()
        for worker in workers:
            _common.stop_process(worker)
        _common.stop_process(bot)
        slack.stop()
        _common.clean_up(connection, queue)
    return passes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--askers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--poll", type=float, default=10.0)
    parser.add_argument("--only", choices=["terminal", "slack"], help="run one half")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="ms each Concourse and GitHub answer is held back (a network round trip); 0 = "
        "loopback",
    )
    args = parser.parse_args()

    connection = redis.Redis.from_url(_common.REDIS_URL)
    print(f"`where` answer time, {args.askers} concurrent askers (bench/where_latency.py)")
    _common.print_machine(connection)
    concourse = RemoteConcourse(team="dev", users={USER: PASSWORD})
    github = RemoteGitHub(repository=REPOSITORY, token=TOKEN)
    concourse.start()
    github.start()
    ok = True
    try:
        shas = build_world(concourse, github)
        concourse.latency = github.latency = args.latency / 1000
        print(
            f"\nworld: {DEPLOYS} deploys of {BATCH} commits each, one an hour, then {WAITING}"
            f" commits since (the newest in tests): {len(shas)} commits on main;"
            f" poll interval {args.poll:g} s; each asker asks about a different commit;"
            f" Concourse and GitHub answer {args.latency:g} ms late"
            + (" (loopback)" if not args.latency else " (as across a network)")
        )
        if args.only != "slack":
            passes = terminal(concourse, github, shas, args, connection)
            ok &= report(
                f"terminal: {args.askers} processes, each one `deploy-monitor where <sha>`"
                " (its own Engine), from building the Engine to the answer's text",
                passes,
                ("askers", "simulators"),
            )
            started = start_up_seconds(concourse, github, shas[-1])
            print(
                f"  one whole `deploy-monitor where` process (start-up and imports included,"
                f" view warm): {started * 1000:.0f} ms"
            )
        if args.only != "terminal":
            passes = in_slack(concourse, github, shas, args, connection)
            ok &= report(
                f"Slack: `deploy-monitor bot` and {SLACK_WORKERS} `deploy-monitor worker`,"
                f" {args.askers} signed `/deploy-monitor where <sha>` at once, from sending"
                " the command to its ephemeral answer at the response_url",
                passes,
                ("bot and workers", "simulators and senders"),
            )
    finally:
        concourse.stop()
        github.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
