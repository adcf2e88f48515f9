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
from typing import Any

from bot.slack.blockkit import (
    MAX_BLOCKS,
    MAX_SECTION_TEXT,
    SlackMessage,
    actions,
    button,
    code_block,
    confirm,
    context,
    escape,
    fallback,
    header,
    line_sections,
    message,
    prefix,
    section,
)
from bot.wording import (
    FAILURE_WORDS,
    duration,
    expected_words,
    subject,
    text,
    timeline_lines,
    usual_words,
    zoned_clock,
)
from workers.events import (
    DecisionTaken,
    Deployed,
    Event,
    MonitorStarted,
    PathCompleted,
    StageFailed,
    StageStarted,
    Stopped,
)
from workers.monitor import Monitor, StageTrack, timeline
from workers.settings import EngineSettings
from workers.target import TargetSpec, usage

CONTINUE_ACTION = "dm_continue"
STOP_ACTION = "dm_stop"

STATE_EMOJI = {
    "waiting": ":hourglass_flowing_sand:",
    "running": ":arrows_counterclockwise:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
}
SLOW_EMOJI = ":warning:"
ETA_EMOJI = ":stopwatch:"

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


def _stage_line(stage: StageTrack, *, awaiting_rerun: bool = False) -> str:
    emoji = STATE_EMOJI[stage.state]
    label = f"*{escape(stage.label)}*"
    if stage.state == "waiting":
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
    lines = [_stage_line(s, awaiting_rerun=continuing) for s in monitor.stages]
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


def thread_reply(event: Event, monitor: Monitor) -> SlackMessage | None:
    """The thread reply for an event worth a notification, None for events the status board
    already shows (started, stage started) or that edit an earlier message (decisions)."""
    match event:
        case MonitorStarted() | StageStarted() | DecisionTaken():
            return None
        case StageFailed():
            return failure_message(event, monitor)
        case Deployed() | PathCompleted():
            # The terminal wording, exactly; everything in it is plain text, so escape it all.
            lines = [escape(line) for line in text(event, monitor).splitlines()]
            # The whole report in `text` too: it is what notifications and screen readers get.
            return message(
                fallback(escape(text(event, monitor))),
                line_sections(lines, MAX_BLOCKS, "… and {n} more lines"),
            )
        case Stopped():
            lines = _stopped_lines(event, monitor)
            return message(
                fallback(lines[0]),
                line_sections(lines, MAX_BLOCKS, "… and {n} more lines"),
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
    blocks.append(section(f"*Keep watching for a rerun, or stop?*\n{how}"))
    blocks.append(_decision_actions(monitor, event.prompt))
    return message(_fallback(f"{plain}: continue or stop?"), blocks)


def decided_message(event: StageFailed, *, choice: str, by: str) -> SlackMessage:
    """The failure message once answered: no buttons, and who chose what (`by` is a Slack
    user id, or `policy` for the configured automatic answer)."""
    if choice not in ("continue", "stop"):
        raise ValueError(f"unknown decision {choice!r}")
    if by == "policy":
        said = "continued automatically" if choice == "continue" else "stopped automatically"
        line = f":robot_face: {said.capitalize()} (policy)"
    elif choice == "continue":
        line = f":arrow_forward: {_mention(by)} chose to continue watching"
    else:
        line = f":octagonal_sign: {_mention(by)} stopped the monitor"
    plain, blocks = _failure_blocks(event)
    return message(_fallback(plain), [*blocks, context(line)])


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


def help_text(settings: EngineSettings) -> str:
    """`/deploy-monitor help`: every form of the command."""
    return (
        "*/deploy-monitor* follows a commit through CI until it is deployed to staging, in a "
        "thread.\n"
        + usage(settings.github_repository, settings.github_host)
        + "\n• `help`: this message\n• `list`: commits being followed, with links to their "
        "threads\n• `stop 1234` or `stop a1b2c3d`: stop following one (its requester or an "
        "admin)\nAn open PR is squash-merged first, and only when it is approved."
    )


def usage_reply(reason: str, settings: EngineSettings) -> str:
    """`reason` (mrkdwn: `parse_target`'s messages already are) and the accepted forms."""
    return f":warning: {reason}\n{usage(settings.github_repository, settings.github_host)}"


def not_found_reply(reason: str, settings: EngineSettings) -> str:
    """A target that parsed but does not exist (GitHub's answer is outside text)."""
    return usage_reply(escape(reason), settings)


def describe(spec: TargetSpec) -> str:
    """The target as the ack names it: `PR #12`, a commit, or the latest commit."""
    if spec.kind == "pr":
        return f"PR #{spec.pr_number}"
    if spec.kind == "sha":
        return f"commit `{spec.sha}`"
    return "the latest commit on main"


def looking_up(spec: TargetSpec) -> str:
    """The ack of a command whose start job is queued."""
    return f":mag: Looking up {describe(spec)}…"


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


def followed_list(followed: list[tuple[Monitor, str]]) -> str:
    """`/deploy-monitor list`: each active monitor with the permalink of its thread ("" if
    unknown), the requester and the first stage not passed yet."""
    lines = []
    for monitor, permalink in followed:
        label = f"`{monitor.short_sha}` {escape(prefix(monitor.headline, 80))}"
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
