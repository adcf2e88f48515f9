"""Slack renderer: pure functions from the engine's records and events to Slack messages, the
only place Slack text is made (boards, thread replies, DMs, and the answers to one person:
acks, ephemeral refusals, usage).

No I/O and no clock: the Slack front end decides where a message goes (parent, thread reply,
broadcast, DM, ephemeral) and this module decides what it says. Wording shared with the
terminal comes from `bot.wording` so both tell the same story.

Everything a user or CI controls (headline, PR title, job and build names, log tails, error
details) goes through `escape()`: Slack reads `&`, `<` and `>` as control characters, so an
unescaped `<!channel>` in a commit headline would ping the whole channel. Blocks are built by
`bot.slack.blockkit`, which owns Block Kit's limits and validates every block it makes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.slack.blockkit import (
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    MAX_VIEW_BLOCKS,
    SlackMessage,
    actions,
    button,
    code_block,
    confirm,
    context,
    divider,
    escape,
    fallback,
    header,
    home_view,
    line_sections,
    message,
    prefix,
    section,
)
from bot.slack.people import JourneyRecord
from bot.wording import (
    FAILURE_WORDS,
    blocked_words,
    duration,
    expected_words,
    ignored_words,
    subject,
    text,
    timeline_lines,
    unblocked_words,
    usual_words,
    zoned_clock,
)
from workers.digest import Digest
from workers.events import (
    Blocker,
    CommitIgnored,
    DecisionTaken,
    Deployed,
    Event,
    MonitorStarted,
    PathCompleted,
    RerunAsked,
    StageBlocked,
    StageFailed,
    StageStarted,
    StageUnblocked,
    Stopped,
)
from workers.monitor import Monitor, StageTrack, timeline
from workers.subscriptions import Subscription
from workers.target import Targeting, TargetSpec
from workers.view import BuildSummary, CommitRange, StageAnswer, StatusAnswer, WhereAnswer

CONTINUE_ACTION = "dm_continue"
STOP_ACTION = "dm_stop"
# Ask Concourse to rerun the failed build (value: `<monitor id>:<prompt>`, as continue/stop).
RERUN_ACTION = "dm_rerun"
RERUN_EMOJI = ":repeat:"
# App Home buttons: stop one of the viewer's monitors (value: its id), and the DM choice
# (value: "on" or "off", the choice the click makes).
HOME_STOP_ACTION = "home_stop"
HOME_DM_ACTION = "home_dm"
# The `where` answer's button: follow the commit in this channel (value: its full SHA).
FOLLOW_ACTION = "where_follow"

STATE_EMOJI = {
    "waiting": ":hourglass_flowing_sand:",
    "running": ":arrows_counterclockwise:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
}
SLOW_EMOJI = ":warning:"
ETA_EMOJI = ":stopwatch:"
BLOCKED_EMOJI = ":double_vertical_bar:"
UNBLOCKED_EMOJI = ":arrow_forward:"
IGNORED_EMOJI = ":see_no_evil:"

HOW_TO_ANSWER = (
    "React :arrow_forward: or :white_check_mark: to continue, :octagonal_sign: or :x: to stop"
    " — only {who} (or an admin) can decide"
)

_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


# ---------------------------------------------------------------------------------------------
# Text helpers


def _mention(who: str | None) -> str:
    """`<@U123>` for a Slack user id; other names (a CLI user, `policy`) as escaped text."""
    if who is None:
        return "the requester"
    return f"<@{who}>" if _SLACK_USER_ID.fullmatch(who) else escape(who)


def _url(url: str) -> str:
    """A url as the target of a mrkdwn link: escaped, and no `|` to end it early."""
    return escape(url).replace("|", "%7C")


def _link(url: str, label: str) -> str:
    """A mrkdwn link with both parts escaped; plain escaped label when there is no url."""
    if not url:
        return escape(label)
    return f"<{_url(url)}|{escape(label)}>"


def _clock_time(at: float) -> str:
    """A time as Slack shows it in each reader's own time zone (`<!date^…>`), with a UTC
    fallback for clients that cannot."""
    fallback_text = datetime.fromtimestamp(at, UTC).strftime("%H:%M UTC")
    return f"<!date^{int(at)}^{{time}}|{fallback_text}>"


def _day_and_time(at: float) -> str:
    fallback_text = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at)}^{{date_short_pretty}} {{time}}|{fallback_text}>"


def _blocked(blocker: Blocker) -> str:
    """Why a stage waits, as mrkdwn: Concourse's words escaped, the instant localised."""
    return blocked_words(blocker, when=_day_and_time, quote=escape)


def _fallback(plain: str) -> str:
    """The top-level `text`: escaped, one line, within the safe length."""
    first = plain.strip().splitlines()[0] if plain.strip() else ""
    return fallback(escape(first))


# ---------------------------------------------------------------------------------------------
# The status board (the parent message, edited in place)


def _title(monitor: Monitor, what: str | None = None) -> str:
    """The board's title; `what` names the commit (default: short sha and headline)."""
    if monitor.status == "deployed":
        word = "Deployed ✅"
    elif monitor.status == "completed":
        word = "Images built"
    elif monitor.status == "stopped":
        word = "Stopped"
    else:
        # A path that does not reach staging only builds images; "Deploying" would mislead.
        word = "Deploying" if monitor.reaches_staging else "Building images for"
    return f"{word} {what or f'{monitor.short_sha} {monitor.headline}'}"


def _stage_line(stage: StageTrack, *, awaiting_rerun: bool = False, blocked: bool = False) -> str:
    emoji = STATE_EMOJI[stage.state]
    label = f"*{escape(stage.label)}*"
    if stage.state == "waiting":
        if blocked:
            return f"{BLOCKED_EMOJI} {label} — waiting, held back (see below)"
        return f"{emoji} {label} — waiting"
    builds = []
    for track in stage.jobs:
        if track.build is None:
            continue
        name = _link(track.build.url, f"{track.job} #{track.build.name}")
        words = FAILURE_WORDS.get(track.build.status)
        builds.append(f"{name} {escape(words)}" if words else name)
    follows = f" · {', '.join(builds)}" if builds else ""
    if stage.state == "succeeded":
        usual = usual_words(stage.usual_duration) if stage.duration is not None else ""
        return f"{emoji} {label} — passed in {duration(stage.duration)}{usual}{follows}"
    if stage.state == "failed":
        # Answered "continue" (or the policy did): the monitor now waits for a passing build.
        rerun = "; waiting for a rerun or a later build that passes" if awaiting_rerun else ""
        return f"{emoji} {label} — failed{follows}{rerun}"
    usually = usual_words(stage.usual_duration, running=True)
    if stage.slow_warned:
        return f"{SLOW_EMOJI} {label} — running longer than usual{follows}{usually}"
    return f"{emoji} {label} — running{follows}{usually}"


def expected_line(monitor: Monitor) -> str | None:
    """The board's expected time (`:stopwatch: Expected on staging ~14:32 UTC`), kept as of
    the last stage event; None when it is done or no usual time says."""
    if monitor.done or monitor.expected_at is None:
        return None
    when = zoned_clock(monitor.expected_at, monitor.updated_at)
    words = expected_words(monitor.reaches_staging, when)
    return f"{ETA_EMOJI} {escape(words[0].upper() + words[1:])} (from the usual stage times)"


def _progress(monitor: Monitor) -> str:
    passed = sum(s.state == "succeeded" for s in monitor.stages)
    if monitor.prompt is not None:
        return f"{monitor.prompt.job} failed, waiting for a decision"
    failed = [s.label for s in monitor.stages if s.state == "failed"]
    if failed and not monitor.done:
        return f"{', '.join(failed)} failed"
    _, total = timeline(monitor)
    if monitor.status in ("deployed", "completed"):
        return f"total {duration(total)}"
    return f"{passed} of {len(monitor.stages)} stages passed"


FOLLOWED_AUTOMATICALLY = "Followed automatically: a new commit on main"


def status_board(monitor: Monitor, *, requester: str | None = None) -> SlackMessage:
    """The parent message: where the commit is on its path, one line per stage.

    `requester` is the Slack user id of whoever asked (falls back to `monitor.requester`).
    Without a clock it cannot say "running for 5m"; running stages show their state and the
    builds followed, finished ones their duration.
    """
    who = requester or monitor.requester
    context_lines = []
    if monitor.pr_number is not None:
        label = f"#{monitor.pr_number}"
        # A squash merge's headline already is the PR title; only repeat a different one.
        if monitor.pr_title and not monitor.headline.startswith(monitor.pr_title):
            label += f" {monitor.pr_title}"
        context_lines.append(f"PR {_link(monitor.pr_url or '', label)}")
    merged = " (merged just now)" if monitor.merged_now else ""
    context_lines.append(f"Commit `{monitor.short_sha}`{merged}")
    if who is not None:
        context_lines.append(f"Requested by {_mention(who)}")
    else:
        # Nobody asked: a channel subscribed to main (`/deploy-monitor subscribe`).
        context_lines.append(FOLLOWED_AUTOMATICALLY)
    path = f"Path: *{escape(monitor.path)}*"
    if monitor.path_description:
        path += f" — {escape(monitor.path_description)}"
    context_lines.append(path)

    head: list[dict[str, Any]] = [header(escape(_title(monitor))), context(*context_lines)]
    tail: list[dict[str, Any]] = []
    if (eta := expected_line(monitor)) is not None:
        tail.append(section(eta))
    if monitor.unreachable:
        tail.append(section(f"{SLOW_EMOJI} Concourse is not answering; will keep trying"))
    if not monitor.done:
        for blocker in monitor.blockers:
            label = escape(blocker.label)
            tail.append(section(f"{BLOCKED_EMOJI} *{label}* waits: {_blocked(blocker)}"))
        if monitor.ignored and not monitor.picked_up:
            tail.append(
                section(
                    f"{IGNORED_EMOJI} No pipeline builds `{monitor.short_sha}` by itself "
                    "(path filters): waiting for a later commit to carry it"
                )
            )
    if monitor.prompt is not None:
        failed = f"{monitor.prompt.job} failed in {monitor.stage(monitor.prompt.stage).label}"
        tail.append(
            section(
                f":raised_hand: {escape(failed)}: waiting for {_mention(who)} to decide"
                " in the thread (continue or stop)"
            )
        )
    if monitor.done:
        _, total = timeline(monitor)
        final = f"*Total:* {duration(total)}"
        if monitor.status == "stopped":
            final = f":octagonal_sign: Stopped following {monitor.short_sha}. {final} (so far)"
        if monitor.status == "completed" and monitor.path_note:
            final += f"\n{escape(monitor.path_note)}"
        tail.append(section(final))

    room = MAX_BLOCKS - len(head) - len(tail)
    continuing = not monitor.done and monitor.prompt is None
    held = {b.stage for b in monitor.blockers} if not monitor.done else set()
    lines = [
        _stage_line(s, awaiting_rerun=continuing, blocked=s.id in held) for s in monitor.stages
    ]
    stages = line_sections(lines, room, "… and {n} more stages")
    return message(
        _fallback(f"{_title(monitor, subject(monitor))}: {_progress(monitor)}"),
        [*head, *stages, *tail],
    )


# ---------------------------------------------------------------------------------------------
# Thread replies


def is_broadcast(event: Event) -> bool:
    """Failures and final results are also shown in the channel (`reply_broadcast`)."""
    return isinstance(event, StageFailed | Deployed | PathCompleted | Stopped)


def _stopped_lines(event: Stopped, monitor: Monitor) -> list[str]:
    summary = f"Stopped following {monitor.short_sha} ({event.reason}, by "
    _, total = timeline(monitor)
    lines = [escape(summary) + _mention(event.by) + ")."]
    return lines + [escape(line) for line in timeline_lines(event.timeline, total)]


def thread_reply(
    event: Event, monitor: Monitor, *, moved_over: CommitRange | None = None
) -> SlackMessage | None:
    """The thread reply for an event worth a notification, None for events the status board
    already shows (started, stage started) or that edit an earlier message (decisions).
    `moved_over`: what a deploy moved staging over (the final report links its compare)."""
    match event:
        case DecisionTaken(rerun=RerunAsked() as rerun):
            return rerun_reply(event, rerun)
        case MonitorStarted() | StageStarted() | DecisionTaken():
            return None
        case StageFailed():
            return failure_message(event, monitor)
        case Deployed() | PathCompleted():
            # The terminal wording, exactly; everything in it is plain text, so escape it all.
            lines = [escape(line) for line in text(event, monitor).splitlines()]
            moved = [context(moved_over_line(moved_over))] if moved_over is not None else []
            # The whole report in `text` too: it is what notifications and screen readers get.
            return message(
                fallback(escape(text(event, monitor))),
                [*line_sections(lines, MAX_BLOCKS - len(moved), "… and {n} more lines"), *moved],
            )
        case Stopped():
            lines = _stopped_lines(event, monitor)
            return message(
                fallback(lines[0]),
                line_sections(lines, MAX_BLOCKS, "… and {n} more lines"),
            )
        case StageBlocked():
            plain = text(event, monitor)
            line = f"{BLOCKED_EMOJI} *{escape(event.label)}* waits: {_blocked(event)}"
            return message(_fallback(plain), [section(line)])
        case StageUnblocked():
            plain = text(event, monitor)
            words = unblocked_words(event, quote=escape)
            line = f"{UNBLOCKED_EMOJI} *{escape(event.label)}*: {words}"
            return message(_fallback(plain), [section(line)])
        case CommitIgnored():
            first, *rest = ignored_words(event, monitor.short_sha)
            lines = [f"{IGNORED_EMOJI} {escape(first)}", *(escape(x.strip()) for x in rest)]
            return message(
                _fallback(first), line_sections(lines, MAX_BLOCKS, "… and {n} more lines")
            )
    # StageSucceeded, StageSlow, NotPickedUp, CarriedByLater, RecoveredByRerun,
    # ConcourseUnreachable, ConcourseBack: one line each, worded as in the terminal.
    plain = text(event, monitor)
    return message(_fallback(plain), [section(escape(plain))])


# ---------------------------------------------------------------------------------------------
# Failures and decisions


def _failure_blocks(event: StageFailed) -> tuple[str, list[dict[str, Any]]]:
    """The fallback text and the blocks every rendering of a failure shares."""
    words = FAILURE_WORDS[event.status]
    build = _link(event.build_url, f"{event.job} #{event.build_name}")
    headline = f":x: *{escape(event.label)}*: {build} {escape(words)}"
    blocks = [section(headline)]
    if event.log_tail.strip():
        blocks.append(section(code_block(event.log_tail, MAX_SECTION_TEXT)))
    plain = f"✘ {event.label}: {event.job} #{event.build_name} {words}"
    return plain, blocks


def _decision_actions(monitor: Monitor, prompt: int) -> dict[str, Any]:
    value = f"{monitor.id}:{prompt}"
    confirm_text = (
        f"Stop following {monitor.short_sha}? Concourse is not touched: the builds keep"
        " running, only this monitor stops reporting."
    )
    stop_confirm = confirm(
        title="Stop following this commit?", text=confirm_text, confirm="Stop", deny="Keep watching"
    )
    return actions(
        f"decision-{prompt}",
        button(action_id=CONTINUE_ACTION, label="Continue", value=value, style="primary"),
        button(
            action_id=STOP_ACTION, label="Stop", value=value, style="danger", confirm=stop_confirm
        ),
    )


def failure_message(event: StageFailed, monitor: Monitor) -> SlackMessage:
    """A failed build: what failed, a link to it, the log's tail, and, when a decision is
    asked for (`event.prompt`), how to answer plus Continue/Stop buttons."""
    plain, blocks = _failure_blocks(event)
    if event.prompt is None:
        return message(_fallback(plain), blocks)
    how = HOW_TO_ANSWER.format(who=_mention(monitor.requester))
    build = escape(f"{event.job} #{event.build_name}")
    question = (
        f"*Rerun it, keep watching for a rerun, or stop?*\n*Rerun* asks Concourse to run {build}"
        f" again with the same inputs. {how}"
    )
    rerun = button(
        action_id=RERUN_ACTION, label="Rerun", value=f"{monitor.id}:{event.prompt}", style=None
    )
    # Beside the question, so the continue/stop row stays the one actions block.
    blocks.append(section(question, accessory=rerun))
    blocks.append(_decision_actions(monitor, event.prompt))
    return message(_fallback(f"{plain}: continue or stop?"), blocks)


def decided_message(
    event: StageFailed, *, choice: str, by: str, rerun: RerunAsked | None = None
) -> SlackMessage:
    """The failure message once answered: no buttons, and who chose what (`by` is a Slack
    user id, or `policy` for the configured automatic answer), and the rerun they asked for."""
    if choice not in ("continue", "stop"):
        raise ValueError(f"unknown decision {choice!r}")
    if rerun is not None:
        line = f"{RERUN_EMOJI} {_mention(by)} asked for a rerun: {_rerun_name(rerun)}"
    elif by == "policy":
        said = "continued automatically" if choice == "continue" else "stopped automatically"
        line = f":robot_face: {said.capitalize()} (policy)"
    elif choice == "continue":
        line = f":arrow_forward: {_mention(by)} chose to continue watching"
    else:
        line = f":octagonal_sign: {_mention(by)} stopped the monitor"
    plain, blocks = _failure_blocks(event)
    return message(_fallback(plain), [*blocks, context(line)])


def _rerun_name(rerun: RerunAsked) -> str:
    return escape(f"{rerun.job} #{rerun.rerun_name}")


def rerun_reply(event: DecisionTaken, rerun: RerunAsked) -> SlackMessage:
    """The thread is told who asked for the rerun and the new build's name."""
    failed = escape(f"{rerun.job} #{rerun.build_name}")
    if event.by == "policy":
        line = (
            f"{RERUN_EMOJI} Rerunning {failed} once automatically (policy): Concourse made"
            f" {_rerun_name(rerun)}; following it."
        )
    else:
        line = (
            f"{RERUN_EMOJI} {_mention(event.by)} asked Concourse to rerun {failed}: the rerun"
            f" is {_rerun_name(rerun)}; following it."
        )
    return message(fallback(line), [section(line)])


def rerun_refused(event: StageFailed, detail: str) -> str:
    """Concourse made no rerun (a 403 names the role it needs); the prompt stays open."""
    build = escape(f"{event.job} #{event.build_name}")
    return (
        f":no_entry: Concourse refused to rerun {build}: {escape(detail)}. Nothing was rerun;"
        " Continue and Stop still work."
    )


def rerun_unavailable(event: StageFailed, detail: str) -> str:
    build = escape(f"{event.job} #{event.build_name}")
    return (
        f":warning: Concourse did not answer ({escape(detail)}), so {build} was not rerun."
        " Try again in a moment."
    )


def rerun_already_asked(by: str, rerun: RerunAsked | None) -> str:
    if rerun is None:
        return f"{_mention(by)} already asked for a rerun; Concourse is being asked now."
    return f"{_mention(by)} already asked for a rerun: {_rerun_name(rerun)}."


def rerun_but_stopped(rerun: RerunAsked, by: str) -> str:
    return (
        f"Concourse made the rerun {_rerun_name(rerun)}, but {_mention(by)} had chosen to stop"
        " following this commit."
    )


# ---------------------------------------------------------------------------------------------
# The requester's DM


def final_dm(monitor: Monitor, event: Event, *, permalink: str | None) -> SlackMessage:
    """A direct message to the requester with the outcome and a link to the thread."""
    total_line = ""
    match event:
        case Deployed() | PathCompleted():
            lines = text(event, monitor).splitlines()
            outcome = escape(lines[0])
            if isinstance(event, PathCompleted) and event.note:
                outcome += "\n" + escape(event.note)
            total_line = f"Total: {duration(event.total)}"
            emoji = ":rocket:" if isinstance(event, Deployed) else ":package:"
        case Stopped():
            outcome = _stopped_lines(event, monitor)[0]
            emoji = ":octagonal_sign:"
        case StageFailed():
            outcome = escape(_failure_blocks(event)[0])
            emoji = ":x:"
        case _:
            outcome = escape(text(event, monitor).splitlines()[0])
            emoji = ":information_source:"
    body = f"{emoji} {outcome}"
    if total_line:
        body += f"\n{escape(total_line)}"
    context_lines = []
    if monitor.pr_number is not None:
        context_lines.append(f"PR {_link(monitor.pr_url or '', f'#{monitor.pr_number}')}")
    context_lines.append(f"`{monitor.short_sha}` {escape(monitor.headline)}")
    if permalink:
        context_lines.append(_link(permalink, "View the thread"))
    return message(
        fallback(outcome.splitlines()[0]),
        [section(body), context(*context_lines)],
    )


# ---------------------------------------------------------------------------------------------
# The App Home: one person's monitors, their last journeys, staging, their DM choice


@dataclass(frozen=True)
class HomeMonitor:
    """One of the viewer's active monitors, with what the Home says beside it."""

    monitor: Monitor
    permalink: str = ""
    # When the commit is expected on staging (epoch seconds), when the chain view knows.
    expected_at: float | None = None
    # A stop was asked for; the monitor stops at its next tick.
    stopping: bool = False


@dataclass(frozen=True)
class HomeContent:
    """Everything one person's Home shows (only their own monitors and journeys)."""

    viewer: str
    monitors: list[HomeMonitor]
    journeys: list[JourneyRecord]
    wants_dm: bool
    # False when the bot is configured to send no end-of-journey DM to anyone.
    dms_enabled: bool = True
    # A one-line answer to the viewer's last click (mrkdwn made here, e.g. `stopping`).
    notice: str = ""
    # What each repository's staging runs and how far main is ahead (one not known is left
    # out; none: the part is left out).
    staging: list[StatusAnswer] = field(default_factory=list)


HOME_TITLE = "deploy-monitor"
HOME_NOTHING_FOLLOWED = (
    "You are not following any commit. `/deploy-monitor 1234` in a channel follows PR #1234 "
    "to staging in a thread there."
)
HOME_NO_JOURNEYS = "No finished journeys yet."
JOURNEY_EMOJI = {"deployed": ":rocket:", "completed": ":package:", "stopped": ":octagonal_sign:"}
JOURNEY_WORDS = {"deployed": "deployed", "completed": "images built", "stopped": "stopped"}


def _home_stage(monitor: Monitor) -> str:
    """Where the viewer's commit is now: the first stage not passed yet."""
    if monitor.prompt is not None:
        label = monitor.stage(monitor.prompt.stage).label
        return (
            f":raised_hand: {escape(monitor.prompt.job)} failed in *{escape(label)}*: "
            "waiting for your decision in the thread"
        )
    stage = next((s for s in monitor.stages if s.state != "succeeded"), None)
    if stage is None:
        return f"{STATE_EMOJI['succeeded']} every stage passed; finishing"
    words = {"waiting": "waiting", "running": "running", "failed": "failed"}[stage.state]
    if stage.state == "running" and stage.slow_warned:
        return f"{SLOW_EMOJI} *{escape(stage.label)}* — running longer than usual"
    return f"{STATE_EMOJI[stage.state]} *{escape(stage.label)}* — {words}"


def _home_monitor(item: HomeMonitor) -> dict[str, Any]:
    monitor = item.monitor
    label = f"`{monitor.short_sha}` {escape(prefix(monitor.headline, 120))}"
    title = f"*<{_url(item.permalink)}|{label}>*" if item.permalink else f"*{label}*"
    if monitor.pr_number is not None:
        title += f" (PR #{monitor.pr_number})"
    lines = [title, _home_stage(monitor)]
    if item.expected_at is not None and monitor.reaches_staging:
        lines.append(f"Expected on staging at {_clock_time(item.expected_at)}")
    if item.stopping:
        lines.append(":octagonal_sign: Stopping…")
        return section("\n".join(lines))
    stop = button(
        action_id=HOME_STOP_ACTION,
        label="Stop",
        value=monitor.id,
        style="danger",
        confirm=confirm(
            title="Stop following this commit?",
            text=(
                f"Stop following {monitor.short_sha}? Concourse is not touched: the builds "
                "keep running, only this monitor stops reporting."
            ),
            confirm="Stop",
            deny="Keep watching",
        ),
    )
    return section("\n".join(lines), accessory=stop)


def _journey_line(journey: JourneyRecord) -> str:
    label = f"`{journey.short_sha}` {escape(prefix(journey.headline, 80))}"
    if journey.permalink:
        label = f"<{_url(journey.permalink)}|{label}>"
    total = f" in {duration(journey.total)}" if journey.total is not None else ""
    outcome = f"{JOURNEY_WORDS[journey.outcome]}{total}"
    when = _day_and_time(journey.finished_at)
    return f"{JOURNEY_EMOJI[journey.outcome]} {label}: {outcome} · {when}"


def _dm_choice(home: HomeContent) -> dict[str, Any]:
    if not home.dms_enabled:
        return section("The DM at the end of a journey is turned off for everyone here.")
    state = "on" if home.wants_dm else "off"
    toggle = button(
        action_id=HOME_DM_ACTION,
        label="Turn off" if home.wants_dm else "Turn on",
        value="off" if home.wants_dm else "on",
        style=None,
    )
    return section(f"*DM me when one of my journeys ends:* {state}", accessory=toggle)


def home_tab(home: HomeContent) -> dict[str, Any]:
    """The viewer's Home tab view (views.publish's `view`), within the 100 blocks a view
    holds: when the viewer has more monitors than fit, the newest are shown and the rest
    counted."""
    head: list[dict[str, Any]] = [header(escape(HOME_TITLE))]
    if home.notice:
        head.append(context(home.notice))
    if home.staging:
        head += [*staging_blocks(home.staging), divider()]
    head.append(header("Your monitors"))
    tail: list[dict[str, Any]] = [divider(), header("Your last journeys")]
    journey_lines = [_journey_line(j) for j in home.journeys] or [HOME_NO_JOURNEYS]
    tail += line_sections(journey_lines, 2, "… and {n} more")
    tail += [divider(), header("Notifications"), _dm_choice(home)]

    monitors = sorted(home.monitors, key=lambda m: m.monitor.created_at, reverse=True)
    room = MAX_VIEW_BLOCKS - len(head) - len(tail)
    if not monitors:
        body = [section(HOME_NOTHING_FOLLOWED)]
    elif len(monitors) <= room:
        body = [_home_monitor(m) for m in monitors]
    else:
        shown = room - 1  # one block says how many more there are
        more = len(monitors) - shown
        body = [_home_monitor(m) for m in monitors[:shown]]
        body.append(
            context(
                f"… and {more} more of yours, older ones: `/deploy-monitor list` shows them all"
            )
        )
    return home_view([*head, *body, *tail])


# ---------------------------------------------------------------------------------------------
# The chain view's answers: `where`, `status`, and what staging runs (also on the App Home)


def _commit_ref(sha: str | None) -> str:
    return f"`{escape(sha[:7])}`" if sha else "an unknown commit"


def staging_line(status: StatusAnswer) -> str:
    """ "Staging runs `abc1234` (deployed …); main is 7 commits ahead, the oldest waiting
    3h 12m" with the compare link (staging…main); what is known of it otherwise."""
    if status.staging_sha is None:
        return ":grey_question: What staging runs is not known yet (no deploy in recent builds)."
    line = f":rocket: Staging runs {_commit_ref(status.staging_sha)}"
    if status.deployed_at is not None:
        line += f" (deployed {_day_and_time(status.deployed_at)})"
    behind = status.behind
    if behind is None:
        return line + "."
    if behind.ahead_by == 0:
        return line + "; it is main's latest commit."
    commits = "commit" if behind.ahead_by == 1 else "commits"
    line += f"; main is {behind.ahead_by} {commits} ahead"
    if behind.oldest_committed_at is not None:
        waited = max(0.0, status.answered_at - behind.oldest_committed_at)
        line += f", the oldest waiting {duration(waited)}"
    return f"{line} ({_link(behind.url, 'compare')})."


# The Home's staging part takes at most this many sections, however many repositories.
MAX_HOME_STAGING_BLOCKS = 5


def staging_blocks(stagings: list[StatusAnswer]) -> list[dict[str, Any]]:
    """The App Home's "Staging" part: one line per repository, named when there are several."""
    if len(stagings) == 1:
        return [header("Staging"), section(staging_line(stagings[0]))]
    lines = [f"*{escape(s.repository)}*: {staging_line(s)}" for s in stagings]
    return [header("Staging"), *line_sections(lines, MAX_HOME_STAGING_BLOCKS, "… and {n} more")]


def _build_ref(build: str | None, url: str | None) -> str:
    return _link(url or "", build) if build else ""


def _where_stage(stage: StageAnswer) -> str:
    label = f"*{escape(stage.label)}*"
    build = _build_ref(stage.build, stage.url)
    usual = f" (usually {duration(stage.usual_duration)})" if stage.usual_duration else ""
    if stage.state == "passed":
        line = f"{STATE_EMOJI['succeeded']} {label} — passed"
        if build:
            line += f" · {build}"
        if stage.finished_at is not None:
            line += f" · {_day_and_time(stage.finished_at)}"
        if stage.carried_by:
            line += f" · carried by {_commit_ref(stage.carried_by)}"
    elif stage.state == "running":
        line = f"{STATE_EMOJI['running']} {label} — running"
        if stage.started_at is not None:
            line += f" since {_clock_time(stage.started_at)}"
        line += usual + (f" · {build}" if build else "")
    elif stage.state == "failed":
        line = f"{STATE_EMOJI['failed']} {label} — failed" + (f" · {build}" if build else "")
    else:
        line = f"{STATE_EMOJI['waiting']} {label} — not reached{usual}"
    if stage.reason:
        line += f"\n      {BLOCKED_EMOJI} {_blocked(stage.reason)}"
    return line


def _where_outcome(answer: WhereAnswer) -> str:
    if not answer.merged:
        return (
            f":hourglass: PR #{answer.pr_number} is not merged yet "
            f"({escape(answer.approval or 'review state unknown')}): nothing has run for it."
        )
    if answer.deployed:
        since = f" since {_day_and_time(answer.deployed_at)}" if answer.deployed_at else ""
        return f":rocket: On staging{since}."
    if answer.complete:
        note = f" {escape(answer.path_note)}" if answer.path_note else ""
        return f":package: Its path is complete (it does not reach staging).{note}"
    current = answer.current
    where = f"Now at *{escape(current.label)}*" if current else "On its way"
    goal = "on staging" if answer.reaches_staging else "at the end of its path"
    if current is not None and current.state == "failed":
        return f"{STATE_EMOJI['failed']} {where}, which failed: it moves on with a rerun."
    if answer.expected_at is not None:
        return f":clock3: {where}; expected {goal} at {_clock_time(answer.expected_at)}."
    return f":clock3: {where}; no expected time yet (too few recent builds)."


def where_answer(answer: WhereAnswer, *, thread_permalink: str = "") -> SlackMessage:
    """`/deploy-monitor where`: the commit's path and each stage on it, one closing line, and
    a **Follow it** button (a merged commit not at the end of its path and not followed yet;
    `thread_permalink` is the thread of the monitor that follows it, if one does)."""
    title = f"`{escape(answer.short_sha)}` {escape(prefix(answer.headline, 150))}"
    if answer.pr_number is not None:
        title += f" · PR {_link(answer.pr_url or '', f'#{answer.pr_number}')}"
    path = f"Path: *{escape(answer.path)}*"
    if answer.path_description:
        path += f" — {escape(answer.path_description)}"
    head = [section(f"*Where is* {title}"), context(path)]
    tail: list[dict[str, Any]] = [section(_where_outcome(answer))]
    if answer.followed:
        where = _link(thread_permalink, "its thread") if thread_permalink else "its thread"
        tail.append(context(f":eyes: Being followed already: see {where}."))
    elif answer.merged and not answer.complete:
        tail.append(
            actions(
                "where-follow",
                button(
                    action_id=FOLLOW_ACTION,
                    label="Follow it",
                    # `owner/repo@sha`: the click is read in a channel that may mean another.
                    value=f"{answer.repository}@{answer.sha}" if answer.repository else answer.sha,
                    style="primary",
                ),
            )
        )
    room = MAX_BLOCKS - len(head) - len(tail)
    stages = line_sections([_where_stage(s) for s in answer.stages], room, "… and {n} more")
    plain = f"Where is {answer.short_sha} {answer.headline}"
    return message(_fallback(plain), [*head, *stages, *tail])


def _status_build(build: BuildSummary, *, running: bool) -> str:
    ref = _link(build.url, f"{build.job} #{build.name}")
    commit = f" ({_commit_ref(build.commit)})" if build.commit else ""
    if running:
        since = f" since {_clock_time(build.started_at)}" if build.started_at else ""
        return f"{STATE_EMOJI['running']} {ref}{commit} running{since}"
    words = FAILURE_WORDS.get(build.status, build.status)
    emoji = STATE_EMOJI["succeeded"] if build.status == "succeeded" else STATE_EMOJI["failed"]
    if build.status in ("pending", "started"):
        emoji, words = STATE_EMOJI["running"], "running"
    when = f" · {_day_and_time(build.finished_at)}" if build.finished_at else ""
    return f"{emoji} {ref}{commit} {escape(words)}{when}"


def status_answer(status: StatusAnswer, *, several: bool = False) -> SlackMessage:
    """`/deploy-monitor status`: each stage of the default path with its newest build and any
    running one, then what staging runs and how far main is ahead. `several`: the deployment
    serves several repositories, so the answer names its own."""
    lines = []
    for stage in status.stages:
        usual = f" (usually {duration(stage.usual_duration)})" if stage.usual_duration else ""
        builds = []
        if stage.newest is not None and all(r.name != stage.newest.name for r in stage.running):
            builds.append(_status_build(stage.newest, running=False))
        builds += [_status_build(r, running=True) for r in stage.running]
        line = f"*{escape(stage.label)}*{usual}: " + ("; ".join(builds) or "no builds yet")
        if stage.reason:
            line += f"\n      {BLOCKED_EMOJI} {_blocked(stage.reason)}"
        lines.append(line)
    named = f" · `{escape(status.repository)}`" if several and status.repository else ""
    head = [section(f"*The chain now*{named}")]
    tail = [section(staging_line(status))]
    room = MAX_BLOCKS - len(head) - len(tail)
    body = line_sections(lines, room, "… and {n} more stages")
    return message(_fallback("The chain now: " + staging_line(status)), [*head, *body, *tail])


def moved_over_line(moved: CommitRange) -> str:
    """The final report's last line: what this deploy moved staging over (compare link)."""
    commits = "commit" if moved.ahead_by == 1 else "commits"
    span = f"{escape(moved.base[:7])}…{escape(moved.head[:7])}"
    return f"This deploy moved staging over {moved.ahead_by} {commits}: {_link(moved.url, span)}"


def looking_where(spec: TargetSpec, *, several: bool = False) -> str:
    """The ack of `where`, whose answer follows privately."""
    return f":mag: Looking where {describe(spec, several=several)} is…"


LOOKING_AT_THE_CHAIN = ":mag: Looking at the chain…"


def where_failed(reason: str) -> str:
    """`where`/`status` could not be answered; `reason` is outside text."""
    return f":x: Could not answer that: {escape(reason)}"


# ---------------------------------------------------------------------------------------------
# Notices in a thread


def moved_notice() -> SlackMessage:
    """The first reply under a new parent, after someone deleted the old one: text only."""
    return SlackMessage(
        text="The previous status message was deleted; following the commit here now."
    )


# ---------------------------------------------------------------------------------------------
# Answers to one person: the command's ack, its response_url, chat.postEphemeral. Text only,
# so each returns the answer's mrkdwn `text`.

# A request from Slack that lacks what it must carry (a user, a channel): said, not raised.
UNREADABLE = ":x: Slack sent me an incomplete request, so nothing was done. Try again."
REDIS_DOWN = (
    ":x: I can't reach my database (Redis) right now, so nothing was done. Try again in a minute."
)
START_BUSY = ":hourglass: Someone else is starting this one; try again in a minute."
CANNOT_SEE_CONVERSATION = (
    ":lock: I can't see this conversation. Invite me with `/invite @deploy-monitor` and try again."
)
INVITE_ME_FIRST = ":lock: Invite me with `/invite @deploy-monitor` first, then try again."
NOTHING_FOLLOWED = "Nothing is being followed right now."
SAY_WHICH_TO_STOP = "Say which one: `/deploy-monitor stop 1234` or `/deploy-monitor stop a1b2c3d`."
PROMPT_GONE = "That failure message is no longer active."
NO_LONGER_FOLLOWED = "This commit is no longer being followed."
ALREADY_DEALT_WITH = "That failure was already dealt with."


def help_text(targeting: Targeting) -> str:
    """`/deploy-monitor help`: every form of the command."""
    return (
        "*/deploy-monitor* follows a commit through CI until it is deployed to staging, in a "
        "thread.\n"
        + targeting.usage()
        + "\n• `where 1234` or `where a1b2c3d` (nothing: the latest commit on main): where "
        "a commit is on its way to staging, answered only to you, with a *Follow it* button; "
        "never merges\n• `status` (or `status owner/repo`): what staging runs, and how far behind "
        "main it is\n"
        "• `help`: this message\n• `list`: commits being followed, with links to their "
        "threads\n• `stop 1234` or `stop a1b2c3d`: stop following one (its requester or an "
        "admin)\n• `subscribe` (or `subscribe failures`): follow every new commit on main in "
        "this channel, without a command (`failures`: only failures, warnings and the outcome "
        "in its thread); `unsubscribe` ends it; `subscriptions` lists this channel's\n"
        "• `link octocat`: your GitHub login, so you get a DM when your own commits reach the "
        "end of their journey (found by your commit email otherwise)\n• `dm off` or `dm on`: "
        "whether you get those DMs\n"
        + (
            "• `use owner/repo`: the repository this channel's commands mean when they name "
            "none (`use` alone: which one, and every one I follow)\n"
            if targeting.several
            else ""
        )
        + "An open PR is squash-merged first, and only when it is "
        "approved. The app's Home tab shows your monitors, your last journeys and what "
        "staging runs."
    )


def usage_reply(reason: str, targeting: Targeting) -> str:
    """`reason` (mrkdwn: `parse_target`'s messages already are) and the accepted forms."""
    return f":warning: {reason}\n{targeting.usage()}"


def not_found_reply(reason: str, targeting: Targeting) -> str:
    """A target that parsed but does not exist (GitHub's answer is outside text)."""
    return usage_reply(escape(reason), targeting)


def describe(spec: TargetSpec, *, several: bool = False) -> str:
    """The target as the ack names it: `PR #12`, a commit, or the latest commit; with the
    repository when the deployment serves `several`."""
    where = f" of `{escape(spec.repository)}`" if several and spec.repository else ""
    if spec.kind == "pr":
        return f"PR #{spec.pr_number}{where}"
    if spec.kind == "sha":
        return f"commit `{spec.sha}`{where}"
    return f"the latest commit on main{where}"


def looking_up(spec: TargetSpec, *, several: bool = False) -> str:
    """The ack of a command whose start job is queued."""
    return f":mag: Looking up {describe(spec, several=several)}…"


def merge_not_allowed(pr_number: int | None) -> str:
    return (
        f":no_entry: PR #{pr_number} is open, and only the configured mergers may "
        "merge from Slack. Ask one of them, or merge it and run this again."
    )


def merge_refused(reason: str) -> str:
    """GitHub (or the approval rule) refused the merge; `reason` is outside text."""
    return f":no_entry: {escape(reason)}"


def lookup_failed(reason: str) -> str:
    return f":x: Could not look that up: {escape(reason)}. Nothing was merged or posted."


def board_refused(error: str, merged_pr: int | None) -> str:
    """Slack did not take the first status board (`error`: its error code or exception name)."""
    merged = f"PR #{merged_pr} was merged. " if merged_pr is not None else ""
    return (
        f":x: Slack did not take the status message ({error}); "
        f"nothing is being followed. {merged}Run the command again to follow it."
    )


def already_followed(monitor: Monitor, permalink: str) -> str:
    """Someone already follows this commit: point to its thread."""
    where = _link(permalink, "its thread")
    return f":eyes: `{monitor.short_sha}` is already being followed: see {where}."


def cannot_join(error: str) -> str:
    return f":lock: I could not join this channel ({error}). Invite me and try again."


def followed_list(followed: list[tuple[Monitor, str]], *, several: bool = False) -> str:
    """`/deploy-monitor list`: each active monitor with the permalink of its thread ("" if
    unknown), the requester and the first stage not passed yet; its repository first when
    the deployment serves `several`."""
    lines = []
    for monitor, permalink in followed:
        label = f"`{monitor.short_sha}` {escape(prefix(monitor.headline, 80))}"
        if several:
            label = f"{escape(monitor.repository)} {label}"
        if permalink:
            label = f"<{_url(permalink)}|{label}>"
        stage = next((s.label for s in monitor.stages if s.state != "succeeded"), "finishing")
        who = f" for <@{monitor.requester}>" if monitor.requester else ""
        pr = f" (PR #{monitor.pr_number})" if monitor.pr_number else ""
        lines.append(f"• {label}{pr}{who}: {escape(stage)}")
    if not lines:
        return NOTHING_FOLLOWED
    return "Being followed:\n" + "\n".join(lines)


def nothing_matching(argument: str) -> str:
    return (
        f"Nothing matching `{escape(prefix(argument, 40))}` is being followed "
        "(`/deploy-monitor list` shows what is)."
    )


def only_requester_stops(requester: str | None) -> str:
    return f":no_entry: Only <@{requester}> or an admin can stop this one."


def stopping(monitor: Monitor) -> str:
    return (
        f":octagonal_sign: Stopping `{monitor.short_sha}`; the thread will say when it has stopped."
    )


def only_requester_decides(requester: str) -> str:
    return f"Only <@{requester}> (or an admin) can decide whether to continue or stop."


def already_decided(by: str, choice: str) -> str:
    return f"<@{by}> already chose to {choice}."


# ---------------------------------------------------------------------------------------------
# Subscriptions, links and the DM choice (answered in the ack, to the asker alone)

SUBSCRIBE_FORMS = (
    "`subscribe` (every stage), `subscribe failures` (only failures, warnings and the "
    "outcome), `unsubscribe`, `subscriptions`; `subscribe owner/repo` and `unsubscribe "
    "owner/repo` for another repository than this channel's"
)


def _mode_words(subscription: Subscription) -> str:
    if subscription.mode == "failures":
        return "only failures, warnings and the outcome in each thread"
    return "every stage in each thread"


def subscribe_usage(argument: str) -> str:
    """A subscription form with words it does not take."""
    return (
        f":warning: `{escape(prefix(argument, 40))}` is not something subscriptions take. "
        f"Give one of: {SUBSCRIBE_FORMS}."
    )


def subscribed(subscription: Subscription, earlier: Subscription | None) -> str:
    """The ack of `subscribe`: new, changed, or as it was."""
    repository = escape(subscription.repository)
    if earlier is not None and earlier.mode == subscription.mode:
        return (
            f":white_check_mark: This channel already follows every new commit on `{repository}`"
            f" main ({_mode_words(subscription)})."
        )
    if earlier is not None:
        return f":white_check_mark: Now posting {_mode_words(subscription)} for `{repository}`."
    return (
        f":white_check_mark: From the next commit on, every new commit on `{repository}` main "
        f"is followed here, no command needed: {_mode_words(subscription)}. Its author gets "
        "a DM when it is done if their Slack account is known (`link`, `dm off`). "
        "`/deploy-monitor unsubscribe` ends it."
    )


def unsubscribed(repository: str, removed: bool) -> str:
    """The ack of `unsubscribe`."""
    if not removed:
        return f"This channel does not follow `{escape(repository)}` main (nothing to end)."
    return (
        f":wave: This channel no longer follows `{escape(repository)}` main; commits already "
        "being followed carry on to the end of their journey."
    )


def subscription_list(subscriptions: list[Subscription]) -> str:
    """`subscriptions`: the channel's, one line each."""
    if not subscriptions:
        return (
            "This channel follows no repository's main. `/deploy-monitor subscribe` starts "
            "following every new commit here."
        )
    lines = [
        f"• `{escape(s.repository)}` main: {_mode_words(s)}"
        + (f", since {_clock_time(s.since)} by {_mention(s.by)}" if s.by else "")
        for s in subscriptions
    ]
    return "This channel follows, without being asked:\n" + "\n".join(lines)


def repository_usage(argument: str, served: tuple[str, ...]) -> str:
    """A repository that is not served (or more than one word where one is wanted)."""
    return (
        f":warning: I don't follow `{escape(prefix(argument, 60))}`. I follow "
        + ", ".join(f"`{escape(name)}`" for name in served)
        + "."
    )


def channel_repository(repository: str, served: tuple[str, ...]) -> str:
    """`use` alone: what this channel's targets mean, and what else may be named."""
    others = [name for name in served if name != repository]
    text = f"Commands in this channel mean `{escape(repository)}` when they name no repository."
    if others:
        text += (
            " Also followed: "
            + ", ".join(f"`{escape(name)}`" for name in others)
            + " (`/deploy-monitor use owner/repo` changes this channel's; "
            "`owner/repo#1234` names one in a command)."
        )
    return text


def channel_uses(repository: str, earlier: str | None) -> str:
    """The ack of `use owner/repo`."""
    if earlier == repository:
        return f":white_check_mark: This channel already means `{escape(repository)}`."
    return (
        f":white_check_mark: Commands in this channel now mean `{escape(repository)}` when "
        "they name no repository (for everyone here)."
    )


def link_usage(argument: str) -> str:
    """`link` with something that is not a GitHub login."""
    return (
        f":warning: `{escape(prefix(argument, 40))}` is not a GitHub login. Give yours, as in "
        "`/deploy-monitor link octocat`."
    )


def linked(login: str, earlier: str | None, *, wants_dm: bool) -> str:
    """The ack of `link <login>`."""
    was = f" (instead of `{escape(earlier)}`)" if earlier else ""
    dm = (
        "You get a DM when a commit of yours reaches the end of its journey."
        if wants_dm
        else "Your DMs are off: `/deploy-monitor dm on` to get them."
    )
    return f":link: GitHub `{escape(login)}` is you{was}. {dm}"


def linked_login(login: str | None) -> str:
    """`link` alone: which login is linked."""
    if login is None:
        return (
            "No GitHub login is linked to you: `/deploy-monitor link <your-login>` links one "
            "(your commit email finds you otherwise)."
        )
    return f":link: GitHub `{escape(login)}` is linked to you."


def dm_usage(argument: str) -> str:
    """`dm` without `on` or `off`."""
    said = f"`{escape(prefix(argument, 40))}` is not a choice. " if argument else ""
    return f":warning: {said}Say `/deploy-monitor dm on` or `/deploy-monitor dm off`."


def dm_set(wanted: bool) -> str:
    """The ack of `dm on|off`."""
    if wanted:
        return ":bell: You get a DM when a journey you asked for, or of a commit of yours, ends."
    return ":no_bell: No more DMs when journeys end, not even for your own commits."


def followed_elsewhere(monitor: Monitor, permalink: str) -> SlackMessage:
    """What a second subscribed channel gets: the commit and a link to the one thread that
    follows it (in the channel that subscribed first, or that asked for it)."""
    where = f"<{_url(permalink)}|in its thread>" if permalink else "in another channel"
    text = (
        f":eyes: New on main: `{monitor.short_sha}` {escape(prefix(monitor.headline, 80))}, "
        f"followed {where}."
    )
    return SlackMessage(text=text, blocks=[section(text)])


# ---------------------------------------------------------------------------------------------
# The daily digest of what waits on main (bot/slack/digest.py)


def _waiting_line(sha: str, headline: str, author: str, waited: float) -> str:
    by = f" by {escape(prefix(author, 80))}" if author else ""
    return f"• `{escape(sha[:7])}` {escape(prefix(headline, 120))}{by}, waiting {duration(waited)}"


def waiting_digest(digest: Digest, min_age: float) -> SlackMessage:
    """The daily digest: the commits on main that staging lacks and that waited more than
    `min_age`, oldest first, with their authors, and the compare link of staging…main."""
    count = len(digest.commits)
    commits = "commit" if count == 1 else "commits"
    title = (
        f":hourglass_flowing_sand: {count} {commits} on main not on staging for more than "
        f"{duration(min_age)}"
    )
    lines = [
        _waiting_line(c.sha, c.headline, c.author, max(0.0, digest.gathered_at - c.committed_at))
        for c in digest.commits
    ]
    ahead = "commit" if digest.ahead_by == 1 else "commits"
    compare = (
        f"Staging runs {_commit_ref(digest.staging_sha)}; main is {digest.ahead_by} {ahead} "
        f"ahead ({_link(digest.compare_url, 'compare')}) · {escape(digest.repository)}"
    )
    blocks = [
        section(f"*{title}*"),
        *line_sections(lines, MAX_BLOCKS - 2, "… and {n} more"),
        context(compare),
    ]
    return message(_fallback(title), blocks)
