"""The terminal front end: `deploy-monitor watch` resolves a target, starts (or joins) its
monitor and prints the monitor's events as the engine records them, answering failure prompts on
the terminal. It reads the event log directly; it needs no notifier and knows no Slack.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import click
from rq import Worker

from bot.wording import text
from workers.engine import Engine
from workers.errors import DeployMonitorError, TargetError
from workers.events import DecisionChoice, Deployed, PathCompleted, StageFailed, Stopped
from workers.monitor import FailurePolicy
from workers.reruns import request_rerun
from workers.target import resolve_target

# Exit codes of `watch` (and of the whole command line): 0 deployed or path complete,
# 1 refused / failed / stopped, 2 usage or configuration.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def follow_target(
    engine: Engine,
    *,
    spec_text: str | None,
    policy: FailurePolicy,
    start_worker: bool,
    echo: Callable[[str], None] = click.echo,
    ask: Callable[[str], str] | None = None,
    timeout: float | None = None,
) -> int:
    """Resolve the target, start (or join) its monitor, and print its events until it ends."""
    try:
        spec = engine.targeting.parse(spec_text)
        echo(_looking_up(spec_text))
        resolved = resolve_target(spec, engine.github_for(spec.repository))
    except TargetError as exc:
        echo(f"✘ {exc}")
        return EXIT_FAILED
    except DeployMonitorError as exc:
        echo(f"✘ {exc}")
        return EXIT_FAILED
    if resolved.merged_now:
        echo(f"Merged PR #{resolved.pr_number} as {resolved.sha[:7]}")
    monitor, created = engine.start_monitor(resolved, requester=_whoami(), on_failure=policy)
    if not created:
        echo(f"{resolved.sha[:7]} is already being followed; showing its progress.")
    with _local_worker(engine, enabled=start_worker, echo=echo):
        return follow(
            engine, monitor.id, policy=policy, echo=echo, ask=ask or _ask, timeout=timeout
        )


def follow(
    engine: Engine,
    monitor_id: str,
    *,
    policy: FailurePolicy,
    echo: Callable[[str], None],
    ask: Callable[[str], str],
    timeout: float | None = None,
) -> int:
    """Print the monitor's events as they are recorded; answer failure prompts."""
    after = "0-0"
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        for stream_id, event in engine.events(monitor_id, after=after, block_ms=1000):
            after = stream_id
            monitor = engine.store.load(monitor_id)
            if monitor is None:
                echo("✘ the monitor disappeared (was Redis flushed?)")
                return EXIT_FAILED
            echo(text(event, monitor))
            if isinstance(event, StageFailed) and event.prompt is not None and policy == "ask":
                _answer(engine, monitor_id, event.prompt, echo=echo, ask=ask)
            if isinstance(event, Deployed | PathCompleted):
                return EXIT_OK
            if isinstance(event, Stopped):
                return EXIT_FAILED
    echo(f"✘ gave up waiting after {timeout:.0f}s; the monitor keeps running in the workers")
    return EXIT_FAILED


# How many times `watch` asks again after Concourse made no rerun, before it just continues.
RERUN_ATTEMPTS = 3
QUESTION = "Rerun it, continue watching for a rerun or a later build, or stop?"


def _answer(
    engine: Engine,
    monitor_id: str,
    prompt: int,
    *,
    echo: Callable[[str], None],
    ask: Callable[[str], str],
) -> None:
    """Ask on the terminal and record the answer; a rerun is asked of Concourse (once per
    prompt, whoever else answers), and a refused one is said and asked about again."""
    by = _whoami()
    choice = ask(QUESTION)
    for _ in range(RERUN_ATTEMPTS):
        if choice != "rerun":
            break
        outcome = request_rerun(engine.store, engine.concourse, monitor_id, prompt, by)
        if outcome.status == "started" or outcome.rerun is not None:
            engine.kick(monitor_id, "d")  # the event log says who asked and the new build
            return
        if outcome.status in ("already", "decided", "gone"):
            echo(f"(already answered{f' by {outcome.by}' if outcome.by else ''})")
            return
        echo(f"✘ no rerun: {outcome.detail}")
        choice = ask(QUESTION)
    decided: DecisionChoice = "stop" if choice == "stop" else "continue"
    if engine.store.record_decision(monitor_id, prompt, decided, by):
        engine.kick(monitor_id, "d")


def _ask(question: str) -> str:
    choices = click.Choice(["rerun", "continue", "stop"])
    return str(click.prompt(question, type=choices, default="continue"))


def _looking_up(spec_text: str | None) -> str:
    return (
        f"Looking up {spec_text.strip()}…"
        if spec_text and spec_text.strip()
        else "Looking up the latest commit on main…"
    )


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "terminal"


@contextlib.contextmanager
def _local_worker(engine: Engine, *, enabled: bool, echo: Callable[[str], None]) -> Iterator[None]:
    """Start a worker for the duration of `watch` when none serves the queue."""
    if not enabled or Worker.all(queue=engine.queue):
        yield
        return
    echo("(no worker is running: starting one for this session)")
    process = subprocess.Popen([sys.executable, "-m", "bot", "worker"], env=os.environ.copy())
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
