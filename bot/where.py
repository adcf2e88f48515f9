"""The terminal's questions: `deploy-monitor where [TARGET] [--json]` and `deploy-monitor status`.

Both read the chain view (`workers.viewer.ChainViewer`), answer at once and exit; neither
merges, starts a monitor nor needs a worker. The words come from `bot.wording` (shared with
Slack); this module lays them out for a terminal and picks the exit code.

Exit codes of `where`: 0 on staging (or a frontend-only path complete), 1 not yet / failed /
not merged / unknown commit (with a message), 2 usage or configuration (decided in `cli.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from bot.watch import EXIT_FAILED, EXIT_OK
from bot.wording import (
    blocked_words,
    build_words,
    clock,
    stage_line,
    staging_line,
    where_conclusion,
    where_subject,
)
from workers.engine import Engine
from workers.errors import ConcourseError, DeployMonitorError, GitHubRateLimited
from workers.view import StatusAnswer, WhereAnswer

_MARKS = {"passed": "✔", "running": "▶", "failed": "✘", "waiting": "·"}


def where_schema() -> str:
    """The JSON schema of `where --json`'s answer."""
    return json.dumps(WhereAnswer.model_json_schema(), indent=2)


def answer_where(
    engine: Engine,
    spec_text: str | None,
    *,
    as_json: bool = False,
    echo: Callable[[str], None] = click.echo,
    fail: Callable[[str], None] | None = None,
) -> int:
    """Answer `where` for one target: the answer (or its JSON) on `echo`, problems on `fail`
    (stderr by default); returns the exit code."""
    complain = fail or (lambda message: click.echo(message, err=True))
    try:
        spec = engine.targeting.parse(spec_text)
        answer = engine.viewer_for(spec.repository).where(spec, engine.clock())
    except DeployMonitorError as exc:
        complain(f"✘ {_problem(exc)}")
        return EXIT_FAILED
    if as_json:
        echo(answer.model_dump_json())
    else:
        echo("\n".join(where_lines(answer)))
    return EXIT_OK if answer.complete else EXIT_FAILED


def where_lines(answer: WhereAnswer) -> list[str]:
    """The terminal layout of a `where` answer."""
    now = answer.answered_at
    followed = " — followed by a monitor" if answer.followed else ""
    lines = [where_subject(answer) + followed]
    path = f"Path: {answer.path}"
    if answer.path_description:
        path += f" — {answer.path_description}"
    lines.append(path if answer.merged else f"{path} (once merged)")
    if answer.merged:
        width = max((len(s.label) for s in answer.stages), default=0)
        for stage in answer.stages:
            line = f"{_MARKS[stage.state]} {stage.label.ljust(width)}  {stage_line(stage, now)}"
            if stage.reason:
                line += f" — {blocked_words(stage.reason)}"
            lines.append(line)
            if stage.url and stage.state != "waiting":
                lines.append(f"  {' ' * width}  {stage.url}")
    lines.append(where_conclusion(answer))
    return lines


def answer_status(
    engine: Engine,
    repository: str | None = None,
    *,
    as_json: bool = False,
    echo: Callable[[str], None] = click.echo,
    fail: Callable[[str], None] | None = None,
) -> int:
    """Answer `status` (of `repository`, the default when None): each stage's newest build
    and running ones, and staging vs main."""
    complain = fail or (lambda message: click.echo(message, err=True))
    try:
        answer = engine.viewer_for(repository).status(engine.clock())
    except DeployMonitorError as exc:
        complain(f"✘ {_problem(exc)}")
        return EXIT_FAILED
    echo(answer.model_dump_json() if as_json else "\n".join(status_lines(answer)))
    return EXIT_OK


def status_lines(answer: StatusAnswer) -> list[str]:
    """The terminal layout of a `status` answer."""
    now = answer.answered_at
    width = max((len(s.label) for s in answer.stages), default=0)
    lines = []
    for stage in answer.stages:
        newest = build_words(stage.newest, now) if stage.newest else "no build yet"
        shown = [newest]
        running = [
            f"{b.job} #{b.name} since {clock(b.started_at, now)}"
            if b.started_at
            else f"{b.job} #{b.name} pending"
            for b in stage.running
            if stage.newest is None or (b.job, b.name) != (stage.newest.job, stage.newest.name)
        ]
        if running:
            shown.append("running: " + ", ".join(running))
        if stage.reason:
            shown.append(blocked_words(stage.reason))
        lines.append(f"{stage.label.ljust(width)}  {'; '.join(shown)}")
    lines.append(staging_line(answer))
    if answer.behind is not None and answer.behind.ahead_by:
        lines.append(answer.behind.url)
    return lines


def _problem(exc: DeployMonitorError) -> str:
    if isinstance(exc, GitHubRateLimited):
        return f"{exc}; try again later"
    if isinstance(exc, ConcourseError):
        return f"Concourse is not answering ({exc})"
    return str(exc)
