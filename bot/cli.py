"""The `deploy-monitor` command: one click group for every way to run the product.

    deploy-monitor watch [TARGET]   follow a commit from the terminal
    deploy-monitor where [TARGET]   where a commit is on its way to staging (never merges)
    deploy-monitor status           what staging runs, each stage's newest build, main ahead
    deploy-monitor worker           run the engine's RQ worker (with the scheduler)
    deploy-monitor demo             the whole journey against built-in simulators, no credentials
    deploy-monitor check            check settings, dependencies and the chain; one line each

Dependencies (settings, Redis, clients) are built here and handed down.
Exit codes: 0 deployed or path complete, 1 refused / failed / stopped, 2 usage or configuration
(`where`: 0 on staging or path complete, 1 not yet / failed / not merged / unknown commit).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import NoReturn

import click
import redis

from bot.logs import configure_logging, redact_settings
from bot.slack.settings import BotSettings
from bot.watch import EXIT_USAGE, follow_target
from bot.where import answer_status, answer_where, where_schema
from workers import jobs, mainline, metrics
from workers.engine import Engine
from workers.errors import ConfigError, TargetError
from workers.monitor import FailurePolicy
from workers.settings import load_settings
from workers.worker import MonitorWorker, run_worker

MAINTENANCE_SECONDS = 15


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"deploy-monitor: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Follow one commit through Concourse to staging."""
    configure_logging()  # LOG_LEVEL; JSON lines unless stderr is a terminal


def _require_redis(engine: Engine) -> None:
    """Fail start-up with one line when Redis does not answer (instead of a traceback later)."""
    try:
        engine.redis.ping()
    except redis.RedisError as exc:
        fail(
            f"Redis is not reachable at {engine.settings.redis_location} ({type(exc).__name__}); "
            f"check {engine.settings.redis_setting}",
            EXIT_USAGE,
        )


def _settings() -> BotSettings:
    try:
        settings = load_settings(BotSettings)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    redact_settings(settings)  # from now on no log line can show a secret setting
    return settings


# Off by default: the bot serves /metrics on PORT already; workers have no HTTP otherwise.
metrics_port_option = click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    envvar="DEPLOY_MONITOR_METRICS_PORT",
    help="Serve Prometheus metrics on this port (env DEPLOY_MONITOR_METRICS_PORT).",
)


def _serve_metrics(engine: Engine, port: int | None) -> None:
    if port is None:
        return
    try:
        metrics.serve(engine.census, port)
    except OSError as exc:
        fail(f"cannot serve metrics on port {port}: {exc.strerror or exc}", EXIT_USAGE)


@main.command()
@click.argument("target", required=False)
@click.option(
    "--on-failure",
    type=click.Choice(["ask", "stop", "continue", "rerun"]),
    help=(
        "What to do when a job fails (default: ask on a terminal, stop otherwise); rerun: have"
        " Concourse rerun it once, then stop on a second failure."
    ),
)
@click.option("--no-worker", is_flag=True, help="Never start a local worker.")
def watch(target: str | None, on_failure: str | None, no_worker: bool) -> None:
    """Follow TARGET (PR number, #PR, PR URL, SHA; none = latest main) to staging."""
    engine = _asking_engine(target)
    policy: FailurePolicy = on_failure or ("ask" if sys.stdin.isatty() else "stop")  # type: ignore[assignment]
    sys.exit(follow_target(engine, spec_text=target, policy=policy, start_worker=not no_worker))


def _asking_engine(target: str | None = None) -> Engine:
    """The engine for `watch` and the questions (`where`, `status`): Concourse and GitHub
    settings, Redis; usage and configuration errors exit 2 before any request."""
    settings = _settings()
    try:
        settings.require_concourse()
        settings.require_github()
        engine = Engine(settings)  # no request yet: Redis and the clients connect on use
        engine.targeting.parse(target)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except TargetError as exc:
        fail(f"{exc}\n{engine.targeting.usage()}", EXIT_USAGE)
    _require_redis(engine)
    return engine


@main.command()
@click.argument("target", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
@click.option("--schema", is_flag=True, help="Print the JSON schema of --json's answer.")
def where(target: str | None, as_json: bool, schema: bool) -> None:
    """Where TARGET (PR number, #PR, PR URL, SHA; none = latest main) is on its way to
    staging. Never merges, never starts a monitor. Exit 0 on staging (or its path complete),
    1 not yet / failed / not merged / unknown, 2 usage or configuration."""
    if schema:
        click.echo(where_schema())
        return
    sys.exit(answer_where(_asking_engine(target), target, as_json=as_json))


@main.command()
@click.argument("repository", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
def status(repository: str | None, as_json: bool) -> None:
    """Each stage's newest build and running ones; what staging runs and how far main is
    ahead of it (with the GitHub compare link). REPOSITORY (owner/name): one of several
    served; none = the default."""
    engine = _asking_engine()
    served = engine.repositories.find(repository) if repository else engine.repositories.default
    if served is None:
        fail(
            f"{repository} is not served; the repositories are {engine.repositories.listed()}",
            EXIT_USAGE,
        )
    sys.exit(answer_status(engine, served.name, as_json=as_json))


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty (for tests).")
@metrics_port_option
def worker(burst: bool, metrics_port: int | None) -> None:
    """Run an RQ worker, with the scheduler, on the project's queue."""
    settings = _settings()
    try:
        settings.require_concourse()
        settings.require_github()
        engine = Engine(settings)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    _require_redis(engine)
    _serve_metrics(engine, metrics_port)
    jobs.install(engine)
    if settings.slack_enabled:
        from bot.slack.face import build_face, install
        from bot.slack.subscribed import hand_on

        face = build_face(settings, engine)
        install(face)  # the worker posts to Slack and runs /commands
        hand_on(face)  # and follows new commits on main in subscribed channels
    stop_reaper = threading.Event()
    threading.Thread(target=jobs.run_reaper, args=(engine, stop_reaper), daemon=True).start()
    # Subscribed channels: new commits on main are noticed here (one look per interval).
    threading.Thread(target=mainline.run_watcher, args=(engine, stop_reaper), daemon=True).start()
    if settings.slack_enabled and settings.digest_hour is not None:
        from bot.slack.digest import run_digests

        # The daily digest of what waits on main, in subscribed channels.
        threading.Thread(target=run_digests, args=(face, stop_reaper), daemon=True).start()
    # One process serves every monitor (see workers/worker.py). A short maintenance interval
    # lets a restarted worker take over a dead one's scheduler soon after its lock expires
    # (RQ's default is 10 minutes).
    try:
        run_worker(
            lambda: MonitorWorker(
                [engine.queue],
                connection=engine.redis,
                maintenance_interval=MAINTENANCE_SECONDS,
                job_grace=settings.job_grace,
            ),
            engine.redis,
            burst=burst,
            logging_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        )
    finally:
        stop_reaper.set()


@main.command()
@metrics_port_option
def bot(metrics_port: int | None) -> None:
    """Serve the Slack app: HTTP on PORT (/slack/events, /healthz, /metrics), or Socket Mode
    when SLACK_APP_TOKEN is set (then /metrics only with --metrics-port)."""
    settings = _settings()
    try:
        settings.require_slack(serving=True)
        settings.require_github()
        engine = Engine(settings)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    from bot.slack.app import create_app, serve
    from bot.slack.face import build_face

    _require_redis(engine)
    _serve_metrics(engine, metrics_port)
    face = build_face(settings, engine)
    serve(face, create_app(face))


@main.command()
@click.option("--speed", type=float, default=1.0, help="Time scale: 2 runs twice as fast.")
@click.option("--terminal", is_flag=True, help="Show it through `watch` instead of Slack.")
def demo(speed: float, terminal: bool) -> None:
    """Play an approved PR's journey to staging against built-in simulators (no credentials)."""
    from bot.demo import run_demo

    sys.exit(run_demo(speed=speed, terminal=terminal, echo=click.echo))


@main.command()
def check() -> None:
    """Check settings, Redis, Concourse, GitHub, Slack and the chain against the live
    pipelines: one OK / PROBLEM / SKIP line each; exit 1 when there is a problem."""
    from bot.check import run_checks

    sys.exit(run_checks(click.echo))


if __name__ == "__main__":
    main()
