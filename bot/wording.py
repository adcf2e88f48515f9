"""Renderers: pure functions from engine events to what people read.

`text()` gives one concise terminal line (or a few, for failures and the final report); the
Slack renderer builds on the same wording. The words of `where` and `status` answers
(`stage_line`, `where_conclusion`, `staging_line`, `build_words`) are shared the same way:
plain text, to be escaped by a face that needs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from workers.events import (
    Blocker,
    CarriedByLater,
    CommitIgnored,
    ConcourseBack,
    ConcourseUnreachable,
    DecisionTaken,
    Deployed,
    Event,
    MonitorStarted,
    NotPickedUp,
    PathCompleted,
    RecoveredByRerun,
    StageBlocked,
    StageFailed,
    StageSlow,
    StageStarted,
    StageSucceeded,
    StageUnblocked,
    Stopped,
    TimelineEntry,
)
from workers.monitor import Monitor
from workers.view import BuildSummary, StageAnswer, StatusAnswer, WhereAnswer

FAILURE_WORDS = {
    "failed": "failed",
    "errored": "errored (a Concourse error)",
    "aborted": "was aborted",
}


def duration(seconds: float | None) -> str:
    """`45s`, `12m 03s`, `1h 02m`; an em dash when unknown."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def usual_words(seconds: int | None, *, running: bool = False) -> str:
    """` (usual 9m 00s)` after a stage's duration, ` (usually 9m 00s)` after a running stage;
    "" when the usual duration is not known."""
    if seconds is None:
        return ""
    return f" ({'usually' if running else 'usual'} {duration(seconds)})"


def timeline_lines(entries: list[TimelineEntry], total: int | None) -> list[str]:
    """The final report's timeline: each stage's duration, next to its usual one when known."""
    lines = ["Timeline:"]
    lines += [
        f"{e.label}: {duration(e.duration)}"
        + (usual_words(e.usual) if e.duration is not None else "")
        for e in entries
    ]
    lines.append(f"Total: {duration(total)}")
    return lines


def expected_words(reaches_staging: bool, when: str) -> str:
    """`expected on staging ~14:32` (`done` for a path that ends before staging); `when` is
    the time as the face shows it (Slack shows it in the reader's own time zone)."""
    return f"expected {'on staging' if reaches_staging else 'done'} ~{when}"


def _eta(expected_at: float | None, at: float, monitor: Monitor) -> str:
    if expected_at is None:
        return ""
    return "; " + expected_words(monitor.reaches_staging, zoned_clock(expected_at, at))


def _stage_usual(monitor: Monitor, stage_id: str) -> int | None:
    stage = next((s for s in monitor.stages if s.id == stage_id), None)
    return None if stage is None else stage.usual_duration


def clock_time(epoch: int) -> str:
    """An instant as the terminal shows it: `2024-05-01 12:34 UTC`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _place(where: str, reason: str) -> str:
    """`pipeline lana-bank` for a pipeline, `lana-bank/build-rc` for a job or a resource."""
    return where if "/" in where or reason == "pinned" else f"pipeline {where}"


def blocked_words(
    blocker: Blocker,
    *,
    when: Callable[[int], str] = clock_time,
    quote: Callable[[str], str] = str,
) -> str:
    """Why a stage waits, in one sentence without its stage: "lana-bank/build-rc is paused
    by alice since …". `when` renders an instant and `quote` any text Concourse gave us (the
    Slack face escapes it and shows instants in the reader's time zone)."""
    place = quote(_place(blocker.where, blocker.reason))
    match blocker.reason:
        case "paused":
            by = f" by {quote(blocker.by)}" if blocker.by else ""
            since = f" since {when(blocker.since)}" if blocker.since else ""
            return f"{place} is paused{by}{since}"
        case "archived":
            return f"{place} is archived: it runs no builds any more"
        case "pinned":
            version = f" to {quote(blocker.version)}" if blocker.version else ""
            comment = f" ({quote(blocker.comment)})" if blocker.comment else ""
            return f"{place} is pinned{version}{comment}, so newer commits are not built"
        case "inputs_unsatisfied":
            reasons = f": {quote(blocker.comment)}" if blocker.comment else ""
            return f"the next {place} build waits for its inputs{reasons}"
        case "max_in_flight":
            return f"{place} already runs as many builds as it may at once"


def unblocked_words(event: StageUnblocked, *, quote: Callable[[str], str] = str) -> str:
    """A blocker said before has cleared, in one sentence."""
    place = quote(_place(event.where, event.reason))
    match event.reason:
        case "paused":
            return f"{place} was unpaused"
        case "archived":
            return f"{place} is no longer archived"
        case "pinned":
            return f"{place} was unpinned"
        case "inputs_unsatisfied":
            return f"the next {place} build has its inputs now"
        case "max_in_flight":
            return f"{place} has room for the next build now"


def ignored_words(event: CommitIgnored, short_sha: str) -> list[str]:
    """Why a commit will not run by itself: each changed file and the filter ignoring it."""
    lines = [f"No pipeline on the path builds {short_sha} by itself:"]
    for ignored in event.files:
        if ignored.rule == "ignore_paths":
            pattern = f" (ignore_paths: {ignored.pattern})" if ignored.pattern else ""
            lines.append(f"  {ignored.file} is ignored by {ignored.resource}{pattern}")
        else:
            lines.append(f"  {ignored.file} is outside the paths {ignored.resource} watches")
    if event.more:
        lines.append(f"  … and {event.more} more files")
    lines.append("It goes on with the next commit that triggers the pipeline; following it.")
    return lines


def subject(monitor: Monitor) -> str:
    """`PR #1234 (abc1234 Fix flaky test)` or just the commit."""
    commit = f"{monitor.short_sha} {monitor.headline}"
    return f"PR #{monitor.pr_number} ({commit})" if monitor.pr_number else commit


def text(event: Event, monitor: Monitor) -> str:
    """The terminal rendering of one event."""
    match event:
        case MonitorStarted():
            merged = " (merged just now)" if monitor.merged_now else ""
            return (
                f"Following {subject(monitor)}{merged}\n"
                f"Path: {event.path} — {event.path_description}\n"
                f"Stages: {' → '.join(event.stages)}"
            )
        case StageStarted():
            started = f"▶ {event.label} started ({', '.join(event.builds)})"
            return started + _eta(event.expected_at, event.at, monitor)
        case StageSucceeded():
            return passed_words(event, monitor) + _eta(event.expected_at, event.at, monitor)
        case StageFailed():
            lines = [
                f"✘ {event.label}: {event.job} #{event.build_name} {FAILURE_WORDS[event.status]}"
            ]
            if event.build_url:
                lines.append(f"  {event.build_url}")
            if event.log_tail:
                lines.append("  --- last lines of the log ---")
                lines += [f"  {line}" for line in event.log_tail.rstrip().splitlines()[-20:]]
            if event.rerun_due:
                lines.append("  ↻ rerunning it once (--on-failure rerun)")
            return "\n".join(lines)
        case StageSlow():
            usually = (
                f"usually {duration(event.usual)}"
                if event.usual is not None
                else f"usually under {duration(event.threshold)}"
            )
            return f"⚠ {event.label} has been running for {duration(event.elapsed)} ({usually})"
        case NotPickedUp():
            return (
                f"⚠ Concourse has not picked up {monitor.short_sha} after "
                f"{duration(event.waited)}; it may only touch paths the pipeline ignores"
            )
        case CommitIgnored():
            return "\n".join(ignored_words(event, monitor.short_sha))
        case StageBlocked():
            return f"⏸ {event.label} waits: {blocked_words(event)}"
        case StageUnblocked():
            return f"▶ {event.label}: {unblocked_words(event)}"
        case CarriedByLater():
            return (
                f"↪ {monitor.short_sha} was built together with a later commit: {event.job} ran "
                f"{event.carrier_sha[:7]}, which includes it"
            )
        case DecisionTaken():
            who = "by policy" if event.by == "policy" else f"by {event.by}"
            if event.rerun is not None:
                rerun = event.rerun
                return (
                    f"↻ Rerun of {rerun.job} #{rerun.build_name} asked {who}: following"
                    f" {rerun.job} #{rerun.rerun_name}"
                )
            if event.choice == "continue":
                return f"→ Continuing ({who}): waiting for a rerun or a later build that passes"
            return f"■ Stop requested ({who})"
        case RecoveredByRerun():
            return f"✔ {event.job} passed on {event.build_name}; carrying on"
        case ConcourseUnreachable():
            return f"⚠ {event.detail}; will keep trying"
        case ConcourseBack():
            return "Concourse is answering again"
        case Deployed():
            return "\n".join(
                [
                    f"Deployment complete! Commit {event.short_sha} ({event.headline}) "
                    "is now deployed to staging.",
                    *timeline_lines(event.timeline, event.total),
                ]
            )
        case PathCompleted():
            lines = [f"Done: commit {event.short_sha} ({event.headline}) built its images."]
            if event.note:
                lines.append(event.note)
            return "\n".join([*lines, *timeline_lines(event.timeline, event.total)])
        case Stopped():
            return f"Stopped following {monitor.short_sha} ({event.reason}, by {event.by})."
    raise AssertionError(f"unrendered event {event!r}")


def passed_words(event: StageSucceeded, monitor: Monitor) -> str:
    """`✔ build-rc passed in 9m 12s (usual 9m 00s)`."""
    known = event.duration is not None
    usual = usual_words(_stage_usual(monitor, event.stage)) if known else ""
    return f"✔ {event.label} passed in {duration(event.duration)}{usual}"


# -- `where` and `status` (workers/view.py answers) ----------------------------------------


def clock(at: float, now: float) -> str:
    """`14:02` today (local time), `Mar 03 14:02` on another day."""
    moment, today = time.localtime(at), time.localtime(now)
    same_day = moment[:3] == today[:3]
    return time.strftime("%H:%M" if same_day else "%b %d %H:%M", moment)


def zoned_clock(at: float, now: float) -> str:
    """`clock` with its time zone (`14:02 UTC`), for readers who may live in another one."""
    return f"{clock(at, now)} {time.strftime('%Z', time.localtime(at))}".strip()


def where_subject(answer: WhereAnswer) -> str:
    """`abc1234 Add fee (PR #1234)`."""
    pr = f" (PR #{answer.pr_number})" if answer.pr_number else ""
    return f"{answer.short_sha} {answer.headline}{pr}".strip()


def stage_line(stage: StageAnswer, now: float) -> str:
    """One stage of a `where` answer, without links or marks: `passed: test-bats #12 at 14:02,
    carried by def5678`, `running since 14:05 (usually 9m 00s)`, `failed: build-rc #8`,
    `not reached`."""
    build = f": {stage.build}" if stage.build else ""
    match stage.state:
        case "passed":
            when = f" at {clock(stage.finished_at, now)}" if stage.finished_at else ""
            carried = f", carried by {stage.carried_by[:7]}" if stage.carried_by else ""
            return f"passed{build}{when}{carried}"
        case "running":
            since = f" since {clock(stage.started_at, now)}" if stage.started_at else ""
            usual = usual_words(stage.usual_duration, running=True)
            carried = f", carrying {stage.carried_by[:7]}" if stage.carried_by else ""
            return f"running{build}{since}{usual}{carried}"
        case "failed":
            return f"failed{build}"
    return "not reached"


def where_conclusion(answer: WhereAnswer) -> str:
    """The answer's last line: on staging since when, or where it is and when it is expected."""
    now = answer.answered_at
    if not answer.merged:
        approval = f" ({answer.approval})" if answer.approval else ""
        return f"PR #{answer.pr_number} is not merged yet{approval}: nothing has run for it."
    if answer.deployed:
        since = f" since {clock(answer.deployed_at, now)}" if answer.deployed_at else ""
        return f"On staging{since}."
    if answer.complete:
        return f"Its path is complete. {answer.path_note or ''}".strip()
    current = answer.current
    where = f"At {current.label} ({current.state})" if current else "Not started"
    if current is not None and current.state == "waiting":
        where = f"Waiting for {current.label}"
    goal = "on staging" if answer.reaches_staging else "done"
    if answer.remaining is None or answer.expected_at is None:
        unknown = (
            "it will not move on without a rerun or a later build that passes"
            if current is not None and current.state == "failed"
            else f"no usual time to say when it will be {goal}"
        )
        return f"{where}; {unknown}."
    return (
        f"{where}; expected {goal} around {clock(answer.expected_at, now)} "
        f"(in {duration(answer.remaining)})."
    )


def staging_line(answer: StatusAnswer) -> str:
    """`staging runs abc1234 (deployed 14:02); main is 7 commits ahead, the oldest waiting
    3h 12m`."""
    now = answer.answered_at
    if answer.staging_sha is None:
        return "No deploy to staging is in view."
    deployed = f" (deployed {clock(answer.deployed_at, now)})" if answer.deployed_at else ""
    line = f"staging runs {answer.staging_sha[:7]}{deployed}"
    behind = answer.behind
    if behind is None:
        return f"{line}; how far main is ahead is not known."
    if behind.ahead_by == 0:
        return f"{line}; main has nothing newer."
    commits = "commit" if behind.ahead_by == 1 else "commits"
    oldest = (
        f", the oldest waiting {duration(now - behind.oldest_committed_at)}"
        if behind.oldest_committed_at
        else ""
    )
    return f"{line}; main is {behind.ahead_by} {commits} ahead{oldest}"


def build_words(build: BuildSummary, now: float) -> str:
    """`test-bats #12 succeeded 14:02 (abc1234)`."""
    at = build.finished_at or build.started_at
    when = f" {clock(at, now)}" if at else ""
    commit = f" ({build.commit[:7]})" if build.commit else ""
    status = "running" if build.status == "started" else build.status
    return f"{build.job} #{build.name} {status}{when}{commit}"
