"""Renderers: pure functions from engine events to what people read.

`text()` gives one concise terminal line (or a few, for failures and the final report); the
Slack renderer builds on the same wording.
"""

from __future__ import annotations

from workers.events import (
    CarriedByLater,
    ConcourseBack,
    ConcourseUnreachable,
    DecisionTaken,
    Deployed,
    Event,
    MonitorStarted,
    NotPickedUp,
    PathCompleted,
    RecoveredByRerun,
    StageFailed,
    StageSlow,
    StageStarted,
    StageSucceeded,
    Stopped,
    TimelineEntry,
)
from workers.monitor import Monitor

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


def timeline_lines(entries: list[TimelineEntry], total: int | None) -> list[str]:
    lines = ["Timeline:"]
    lines += [f"{e.label}: {duration(e.duration)}" for e in entries]
    lines.append(f"Total: {duration(total)}")
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
            return f"▶ {event.label} started ({', '.join(event.builds)})"
        case StageSucceeded():
            return f"✔ {event.label} passed in {duration(event.duration)}"
        case StageFailed():
            lines = [
                f"✘ {event.label}: {event.job} #{event.build_name} {FAILURE_WORDS[event.status]}"
            ]
            if event.build_url:
                lines.append(f"  {event.build_url}")
            if event.log_tail:
                lines.append("  --- last lines of the log ---")
                lines += [f"  {line}" for line in event.log_tail.rstrip().splitlines()[-20:]]
            return "\n".join(lines)
        case StageSlow():
            return (
                f"⚠ {event.label} has been running for {duration(event.elapsed)} "
                f"(usually under {duration(event.threshold)})"
            )
        case NotPickedUp():
            return (
                f"⚠ Concourse has not picked up {monitor.short_sha} after "
                f"{duration(event.waited)}; it may only touch paths the pipeline ignores"
            )
        case CarriedByLater():
            return (
                f"↪ {monitor.short_sha} was built together with a later commit: {event.job} ran "
                f"{event.carrier_sha[:7]}, which includes it"
            )
        case DecisionTaken():
            who = "by policy" if event.by == "policy" else f"by {event.by}"
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
