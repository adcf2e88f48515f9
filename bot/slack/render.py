"""Slack renderer: pure functions from the engine's records and events to Slack messages.

No I/O and no clock: the Slack front end decides where a message goes (parent, thread reply,
broadcast, DM) and this module decides what it says. Wording comes from `bot.wording` so the
terminal and Slack tell the same story.

Everything a user or CI controls (headline, PR title, job and build names, log tails, error
details) goes through `escape()`: Slack reads `&`, `<` and `>` as control characters, so an
unescaped `<!channel>` in a commit headline would ping the whole channel. Messages stay within
Block Kit's limits (section text, header text, block count, button values); the limits are
named once below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.wording import FAILURE_WORDS, duration, subject, text, timeline_lines
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

# Block Kit limits (Slack docs and slack_sdk's validators).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_VALUE = 2000
MAX_CONFIRM_TEXT = 300
# Slack truncates `text` above 40,000 characters and chat.update refuses more than 4,000;
# 3,000 keeps both postMessage and update safe.
MAX_FALLBACK_TEXT = 3000

CONTINUE_ACTION = "dm_continue"
STOP_ACTION = "dm_stop"

STATE_EMOJI = {
    "waiting": ":hourglass_flowing_sand:",
    "running": ":arrows_counterclockwise:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
}
SLOW_EMOJI = ":warning:"

HOW_TO_ANSWER = (
    "React :arrow_forward: or :white_check_mark: to continue, :octagonal_sign: or :x: to stop"
    " — only {who} (or an admin) can decide"
)

_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_ZERO_WIDTH_SPACE = "\u200b"
_OMITTED = "… ({n} earlier characters omitted)"


@dataclass(frozen=True)
class SlackMessage:
    """What to send: `text` is the notification and screen-reader fallback, `blocks` the body."""

    text: str
    blocks: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# Text helpers


def escape(text: str) -> str:
    """Escape Slack's three control characters (`&`, `<`, `>`) and nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render_code(raw: str) -> str:
    # A zero-width space between adjacent backticks means no run of three can close the fence.
    return re.sub("`(?=`)", "`" + _ZERO_WIDTH_SPACE, escape(raw))


def code_block(text: str, limit: int) -> str:
    """`text` as an escaped ``` code block of at most `limit` characters.

    When it does not fit, the start is dropped (a log's tail holds the error) and the block
    opens with a `… (N earlier characters omitted)` line; N counts characters of `text`.
    Raises ValueError if `limit` cannot even hold the fences and that line.
    """
    body = text.rstrip()

    def fenced(skip: int) -> str:
        kept = _render_code(body[skip:])
        if skip == 0:
            return f"```\n{kept}\n```"
        return f"```\n{_OMITTED.format(n=skip)}\n{kept}\n```"

    if len(fenced(0)) <= limit:
        return fenced(0)
    if len(fenced(len(body))) > limit:
        raise ValueError(f"a code block cannot fit in {limit} characters")
    # Dropping a character never makes the block longer (the count of omitted characters
    # gains a digit only when at least one character goes), so binary search the cut.
    low, high = 1, len(body)
    while low < high:
        mid = (low + high) // 2
        if len(fenced(mid)) <= limit:
            high = mid
        else:
            low = mid + 1
    skip = low
    # Start on a whole line when the cut landed mid-line and a line break is close by.
    if body[skip - 1] != "\n":
        newline = body.find("\n", skip, skip + 200)
        if newline != -1 and newline + 1 < len(body):
            skip = newline + 1
    return fenced(skip)


def _clip(mrkdwn: str, limit: int) -> str:
    """Escaped mrkdwn cut to `limit` characters with an ellipsis, never inside an entity
    (`&amp;`) or a link/mention (`<…>`)."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    cut = mrkdwn[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    opened = cut.rfind("<")
    if opened != -1 and ">" not in cut[opened:]:
        cut = cut[:opened]
    return cut + "…"


def _mention(who: str | None) -> str:
    """`<@U123>` for a Slack user id; other names (a CLI user, `policy`) as escaped text."""
    if who is None:
        return "the requester"
    return f"<@{who}>" if _SLACK_USER_ID.fullmatch(who) else escape(who)


def _link(url: str, label: str) -> str:
    """A mrkdwn link with both parts escaped; plain escaped label when there is no url."""
    if not url:
        return escape(label)
    return f"<{escape(url).replace('|', '%7C')}|{escape(label)}>"


def _fallback(plain: str) -> str:
    """The top-level `text`: escaped, one line, within the safe length."""
    first = plain.strip().splitlines()[0] if plain.strip() else ""
    return _clip(escape(first), MAX_FALLBACK_TEXT)


# ---------------------------------------------------------------------------------------------
# Block builders


def _header(plain: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": _clip(escape(plain), MAX_HEADER_TEXT),
            "emoji": True,
        },
    }


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(mrkdwn, MAX_SECTION_TEXT)}}


def _context(*mrkdwn: str) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": _clip(m, MAX_SECTION_TEXT)} for m in mrkdwn if m]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _line_sections(lines: list[str], max_blocks: int, more: str) -> list[dict[str, Any]]:
    """Lines packed into as few sections as fit the section limit, at most `max_blocks`;
    lines that do not fit are replaced by `more` (formatted with the count left out)."""

    def pack(chunk: list[str]) -> list[str]:
        texts: list[str] = []
        for line in chunk:
            line = _clip(line, MAX_SECTION_TEXT)
            if texts and len(texts[-1]) + 1 + len(line) <= MAX_SECTION_TEXT:
                texts[-1] += "\n" + line
            else:
                texts.append(line)
        return texts

    def shortened(keep: int) -> list[str]:
        return pack([*lines[:keep], more.format(n=len(lines) - keep)])

    texts = pack(lines)
    if len(texts) <= max_blocks:
        return [_section(t) for t in texts]
    # Keeping fewer lines never needs more sections: binary search the most that fit.
    low, high = 0, len(lines) - 1
    while low < high:
        mid = (low + high + 1) // 2
        if len(shortened(mid)) <= max_blocks:
            low = mid
        else:
            high = mid - 1
    return [_section(t) for t in shortened(low)[:max_blocks]]


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
        return f"{emoji} {label} — passed in {duration(stage.duration)}{follows}"
    if stage.state == "failed":
        # Answered "continue" (or the policy did): the monitor now waits for a passing build.
        rerun = "; waiting for a rerun or a later build that passes" if awaiting_rerun else ""
        return f"{emoji} {label} — failed{follows}{rerun}"
    if stage.slow_warned:
        return f"{SLOW_EMOJI} {label} — running longer than usual{follows}"
    return f"{emoji} {label} — running{follows}"


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
    context = []
    if monitor.pr_number is not None:
        label = f"#{monitor.pr_number}"
        # A squash merge's headline already is the PR title; only repeat a different one.
        if monitor.pr_title and not monitor.headline.startswith(monitor.pr_title):
            label += f" {monitor.pr_title}"
        context.append(f"PR {_link(monitor.pr_url or '', label)}")
    merged = " (merged just now)" if monitor.merged_now else ""
    context.append(f"Commit `{monitor.short_sha}`{merged}")
    if who is not None:
        context.append(f"Requested by {_mention(who)}")
    path = f"Path: *{escape(monitor.path)}*"
    if monitor.path_description:
        path += f" — {escape(monitor.path_description)}"
    context.append(path)

    head: list[dict[str, Any]] = [_header(_title(monitor)), _context(*context)]
    tail: list[dict[str, Any]] = []
    if monitor.unreachable:
        tail.append(_section(f"{SLOW_EMOJI} Concourse is not answering; will keep trying"))
    if monitor.prompt is not None:
        failed = f"{monitor.prompt.job} failed in {monitor.stage(monitor.prompt.stage).label}"
        tail.append(
            _section(
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
        tail.append(_section(final))

    room = MAX_BLOCKS - len(head) - len(tail)
    continuing = not monitor.done and monitor.prompt is None
    lines = [_stage_line(s, awaiting_rerun=continuing) for s in monitor.stages]
    stages = _line_sections(lines, room, "… and {n} more stages")
    return SlackMessage(
        text=_fallback(f"{_title(monitor, subject(monitor))}: {_progress(monitor)}"),
        blocks=[*head, *stages, *tail],
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
            return SlackMessage(
                text=_clip(escape(text(event, monitor)), MAX_FALLBACK_TEXT),
                blocks=_line_sections(lines, MAX_BLOCKS, "… and {n} more lines"),
            )
        case Stopped():
            lines = _stopped_lines(event, monitor)
            return SlackMessage(
                text=_clip(lines[0], MAX_FALLBACK_TEXT),
                blocks=_line_sections(lines, MAX_BLOCKS, "… and {n} more lines"),
            )
    # StageSucceeded, StageSlow, NotPickedUp, CarriedByLater, RecoveredByRerun,
    # ConcourseUnreachable, ConcourseBack: one line each, worded as in the terminal.
    plain = text(event, monitor)
    return SlackMessage(text=_fallback(plain), blocks=[_section(escape(plain))])


# ---------------------------------------------------------------------------------------------
# Failures and decisions


def _failure_blocks(event: StageFailed) -> tuple[str, list[dict[str, Any]]]:
    """The fallback text and the blocks every rendering of a failure shares."""
    words = FAILURE_WORDS[event.status]
    build = _link(event.build_url, f"{event.job} #{event.build_name}")
    headline = f":x: *{escape(event.label)}*: {build} {escape(words)}"
    blocks = [_section(headline)]
    if event.log_tail.strip():
        blocks.append(_section(code_block(event.log_tail, MAX_SECTION_TEXT)))
    plain = f"✘ {event.label}: {event.job} #{event.build_name} {words}"
    return plain, blocks


def _decision_value(monitor: Monitor, prompt: int) -> str:
    value = f"{monitor.id}:{prompt}"
    if len(value) > MAX_BUTTON_VALUE:
        # Truncating would route the click to the wrong monitor; fail loudly instead.
        raise ValueError(f"button value longer than {MAX_BUTTON_VALUE} characters")
    return value


def _decision_actions(monitor: Monitor, prompt: int) -> dict[str, Any]:
    value = _decision_value(monitor, prompt)
    confirm_text = (
        f"Stop following {monitor.short_sha}? Concourse is not touched: the builds keep"
        " running, only this monitor stops reporting."
    )
    return {
        "type": "actions",
        "block_id": f"decision-{prompt}",
        "elements": [
            {
                "type": "button",
                "action_id": CONTINUE_ACTION,
                "text": _plain("Continue"),
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": STOP_ACTION,
                "text": _plain("Stop"),
                "style": "danger",
                "value": value,
                "confirm": {
                    "title": _plain("Stop following this commit?"),
                    "text": {"type": "plain_text", "text": confirm_text[:MAX_CONFIRM_TEXT]},
                    "confirm": _plain("Stop"),
                    "deny": _plain("Keep watching"),
                    "style": "danger",
                },
            },
        ],
    }


def failure_message(event: StageFailed, monitor: Monitor) -> SlackMessage:
    """A failed build: what failed, a link to it, the log's tail, and, when a decision is
    asked for (`event.prompt`), how to answer plus Continue/Stop buttons."""
    plain, blocks = _failure_blocks(event)
    if event.prompt is None:
        return SlackMessage(text=_fallback(plain), blocks=blocks)
    how = HOW_TO_ANSWER.format(who=_mention(monitor.requester))
    blocks.append(_section(f"*Keep watching for a rerun, or stop?*\n{how}"))
    blocks.append(_decision_actions(monitor, event.prompt))
    return SlackMessage(text=_fallback(f"{plain}: continue or stop?"), blocks=blocks)


def decided_message(event: StageFailed, monitor: Monitor, *, choice: str, by: str) -> SlackMessage:
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
    return SlackMessage(text=_fallback(plain), blocks=[*blocks, _context(line)])


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
    context = []
    if monitor.pr_number is not None:
        context.append(f"PR {_link(monitor.pr_url or '', f'#{monitor.pr_number}')}")
    context.append(f"`{monitor.short_sha}` {escape(monitor.headline)}")
    if permalink:
        context.append(_link(permalink, "View the thread"))
    return SlackMessage(
        text=_clip(outcome.splitlines()[0], MAX_FALLBACK_TEXT),
        blocks=[_section(body), _context(*context)],
    )
