"""`/deploy-monitor`: what the text means, and the work each form does.

The Bolt listener acks within Slack's 3 seconds; everything that talks to GitHub (approval
check, squash-merge) runs afterwards as an RQ job, `start_from_slack`, in a worker. Every
problem reaches the requester as an ephemeral message with the reason (and usage where it
helps); nothing is posted in the channel until the commit is resolved and merged.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

import redis
from redis.lock import Lock
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.slack import face as faces
from bot.slack.render import escape, status_board
from bot.slack.settings import BotSettings
from bot.slack.threads import SlackThread, new_run_id
from workers.errors import DeployMonitorError, MergeRefused, TargetError
from workers.events import Event
from workers.monitor import Monitor
from workers.settings import EngineSettings
from workers.store import MonitorStore
from workers.target import TargetSpec, parse_target, resolve_target, usage

log = logging.getLogger(__name__)

# A failed start job (its worker killed, or Redis gone for a moment) is run again this often.
START_RETRIES = 2


@dataclass(frozen=True)
class Command:
    kind: Literal["help", "list", "stop", "follow"]
    argument: str = ""


def parse_command(text: str | None) -> Command:
    """`help`, `list`, `stop <PR|SHA>`, or a target (see `parse_target`)."""
    words = (text or "").strip().split(None, 1)
    first = words[0].lower() if words else ""
    rest = words[1].strip() if len(words) > 1 else ""
    if first in {"help", "-h", "--help"}:
        return Command("help")
    if first == "list" and not rest:
        return Command("list")
    if first == "stop":
        return Command("stop", rest)
    return Command("follow", (text or "").strip())


def help_text(settings: EngineSettings) -> str:
    return (
        "*/deploy-monitor* follows a commit through CI until it is deployed to staging, in a "
        "thread.\n"
        + usage(settings.github_repository, settings.github_host)
        + "\n• `help`: this message\n• `list`: commits being followed, with links to their "
        "threads\n• `stop 1234` or `stop a1b2c3d`: stop following one (its requester or an "
        "admin)\nAn open PR is squash-merged first, and only when it is approved."
    )


def usage_reply(reason: str, settings: EngineSettings) -> str:
    return f":warning: {reason}\n{usage(settings.github_repository, settings.github_host)}"


# -- follow: runs in a worker ---------------------------------------------------------------


def start_from_slack(
    text: str, user_id: str, channel_id: str, response_url: str, command_id: str = ""
) -> str:
    """RQ job: resolve the target (merging an approved PR), post the parent message and start
    the monitor. Returns what happened, for the job's result.

    RQ runs it again when its worker dies, so every step can be repeated: a merged PR is
    followed, not merged again; the parent message is posted once per command (the run id is
    the command's); a monitor this command already started is recognised and left alone."""
    face = faces.current()
    reply = _replier(response_url)
    settings = face.settings
    run = f"cmd-{command_id}" if command_id else new_run_id()
    try:
        spec = parse_target(text, settings.github_repository, settings.github_host)
    except TargetError as exc:
        reply(usage_reply(str(exc), settings))
        return "usage"
    if not _can_post(face, channel_id, reply):
        return "not-in-channel"
    lock = _start_lock(face, _target_key(spec))
    if not lock.acquire():
        reply(":hourglass: Someone else is starting this one; try again in a minute.")
        return "busy"
    try:
        return _start(face, spec, user_id, channel_id, run, reply)
    finally:
        try:
            lock.release()
        except Exception:  # expired: harmless, the work is done
            log.info("start lock for %s had expired", _target_key(spec))


def _start_lock(face: faces.SlackFace, name: str) -> Lock:
    # Held at most as long as a start job may run; a killed job's lock is gone by its retry.
    timeout = face.settings.start_timeout
    key = face.engine.store.key("start", name)
    return Lock(face.engine.redis, key, timeout=timeout, blocking_timeout=timeout / 2)


def _start(
    face: faces.SlackFace,
    spec: TargetSpec,
    user_id: str,
    channel_id: str,
    run: str,
    reply: _Reply,
) -> str:
    settings, engine = face.settings, face.engine
    already = _existing_for(engine.store, settings, spec)
    if already is not None:
        return _started_or_duplicate(face, already, run, reply)
    try:
        target = resolve_target(spec, engine.github, allow_merge=settings.may_merge(user_id))
    except MergeRefused as exc:
        if exc.reason == "not_allowed":
            reply(
                f":no_entry: PR #{spec.pr_number} is open, and only the configured mergers may "
                "merge from Slack. Ask one of them, or merge it and run this again."
            )
        else:
            reply(f":no_entry: {escape(str(exc))}")
        return f"refused-{exc.reason}"
    except TargetError as exc:
        reply(usage_reply(escape(str(exc)), settings))
        return "not-found"
    except DeployMonitorError as exc:
        reply(f":x: Could not look that up: {escape(str(exc))}. Nothing was merged or posted.")
        return "error"
    monitor, events = engine.prepare_monitor(target, requester=user_id, on_failure="ask")
    # A PR number and its merge SHA are different start locks but one monitor: without this
    # second lock both could post a parent and the loser's thread would replace the winner's.
    lock = _start_lock(face, monitor.id)
    if not lock.acquire():
        reply(":hourglass: Someone else is starting this one; try again in a minute.")
        return "busy"
    try:
        return _post_and_launch(face, monitor, events, user_id, channel_id, run, reply)
    finally:
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()


def _post_and_launch(
    face: faces.SlackFace,
    monitor: Monitor,
    events: list[Event],
    user_id: str,
    channel_id: str,
    run: str,
    reply: _Reply,
) -> str:
    engine = face.engine
    existing = engine.store.load(monitor.id)
    if existing is not None and not existing.done:
        return _started_or_duplicate(face, existing, run, reply)
    board = status_board(monitor, requester=user_id)
    draft = SlackThread(
        monitor_id=monitor.id,
        channel=channel_id,
        parent_ts="",
        requester=user_id,
        permalink="",
        cursor=0,
        run=run,
    )
    try:
        parent_ts = face.notifier.post_parent(draft, board)
    except (SlackApiError, OSError) as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else None
        merged = f"PR #{monitor.pr_number} was merged. " if monitor.merged_now else ""
        reply(
            f":x: Slack did not take the status message ({error or type(exc).__name__}); "
            f"nothing is being followed. {merged}Run the command again to follow it."
        )
        return "slack-error"
    permalink = face.notifier.permalink(channel_id, parent_ts)
    # The thread must exist before the first tick looks for it.
    face.threads.create(
        monitor.id,
        channel=channel_id,
        parent_ts=parent_ts,
        requester=user_id,
        permalink=permalink,
        run=run,
    )
    in_charge, created = engine.launch(monitor, events)
    if not created:
        # Lost a race with another bot process: ours is the extra parent, remove it.
        face.client.chat_delete(channel=channel_id, ts=parent_ts)
        reply(_already_followed(face, in_charge))
        return "duplicate"
    return "started"


def _existing_for(store: MonitorStore, settings: BotSettings, spec: TargetSpec) -> Monitor | None:
    """An active monitor for this PR or SHA, without asking GitHub (no merge on a repeat)."""
    for monitor_id in store.active_ids():
        monitor = store.load(monitor_id)
        if monitor is None or monitor.done:
            continue
        if spec.kind == "pr" and monitor.pr_number == spec.pr_number:
            return monitor
        if spec.kind == "sha" and spec.sha and monitor.sha.startswith(spec.sha):
            return monitor
    return None


def _started_or_duplicate(face: faces.SlackFace, monitor: Monitor, run: str, reply: _Reply) -> str:
    """An active monitor for the target: this command's own (started by an earlier attempt
    of this job) or someone else's, which the requester is pointed to."""
    thread = face.threads.get(monitor.id)
    if thread is not None and thread.run == run:
        return "started"
    reply(_already_followed(face, monitor))
    return "duplicate"


def _already_followed(face: faces.SlackFace, monitor: Monitor) -> str:
    thread = face.threads.get(monitor.id)
    where = f"<{thread.permalink}|its thread>" if thread and thread.permalink else "its thread"
    return f":eyes: `{monitor.short_sha}` is already being followed: see {where}."


def _can_post(face: faces.SlackFace, channel_id: str, reply: _Reply) -> bool:
    """Make sure the bot is in the channel: join a public one, ask to be invited to a private
    one. Checked before anything is merged."""
    try:
        info = face.client.conversations_info(channel=channel_id)["channel"]
    except SlackApiError as exc:
        if exc.response.get("error") == "channel_not_found":
            reply(
                ":lock: I can't see this conversation. "
                "Invite me with `/invite @deploy-monitor` and try again."
            )
            return False
        log.info("conversations.info failed (%s); trying anyway", exc.response.get("error"))
        return True
    if info.get("is_member") or info.get("is_im"):
        return True
    if info.get("is_private"):
        reply(":lock: Invite me with `/invite @deploy-monitor` first, then try again.")
        return False
    try:
        face.client.conversations_join(channel=channel_id)
    except SlackApiError as exc:
        reply(
            f":lock: I could not join this channel ({exc.response.get('error')}). "
            "Invite me and try again."
        )
        return False
    return True


def _target_key(spec: TargetSpec) -> str:
    return f"pr-{spec.pr_number}" if spec.kind == "pr" else (spec.sha or "latest")


class _Reply:
    """Ephemeral replies to the requester through the command's response_url (works in any
    channel, even one the bot is not in)."""

    def __init__(self, response_url: str) -> None:
        self.client = WebhookClient(response_url) if response_url else None

    def __call__(self, text: str) -> None:
        if self.client is None:
            return
        try:
            self.client.send(text=text, response_type="ephemeral")
        except Exception:  # the requester misses a hint; nothing else depends on it
            log.warning("could not answer through response_url")


def _replier(response_url: str) -> _Reply:
    return _Reply(response_url)


# -- list and stop: quick, answered in the ack ---------------------------------------------


def list_reply(face: faces.SlackFace) -> str:
    """Active monitors, with links to their threads."""
    lines = []
    for monitor_id in face.engine.store.active_ids():
        monitor = face.engine.store.load(monitor_id)
        if monitor is None or monitor.done:
            continue
        thread = face.threads.get(monitor_id)
        label = f"`{monitor.short_sha}` {escape(monitor.headline[:80])}"
        if thread and thread.permalink:
            label = f"<{thread.permalink}|{label}>"
        stage = next((s.label for s in monitor.stages if s.state != "succeeded"), "finishing")
        who = f" for <@{monitor.requester}>" if monitor.requester else ""
        pr = f" (PR #{monitor.pr_number})" if monitor.pr_number else ""
        lines.append(f"• {label}{pr}{who}: {escape(stage)}")
    if not lines:
        return "Nothing is being followed right now."
    return "Being followed:\n" + "\n".join(lines)


def stop_reply(face: faces.SlackFace, argument: str, user_id: str) -> str:
    """Stop a monitor named by PR or SHA, if the user is its requester or an admin."""
    if not argument:
        return usage_reply(
            "Say which one: `/deploy-monitor stop 1234` or `/deploy-monitor stop a1b2c3d`.",
            face.settings,
        )
    settings = face.settings
    try:
        spec = parse_target(argument, settings.github_repository, settings.github_host)
    except TargetError as exc:
        return usage_reply(str(exc), settings)
    monitor = _existing_for(face.engine.store, settings, spec)
    if monitor is None:
        return (
            f"Nothing matching `{escape(argument[:40])}` is being followed "
            "(`/deploy-monitor list` shows what is)."
        )
    if user_id != monitor.requester and user_id not in settings.admins:
        return f":no_entry: Only <@{monitor.requester}> or an admin can stop this one."
    face.engine.store.request_stop(monitor.id, user_id)
    face.engine.kick(monitor.id, "stop")
    return (
        f":octagonal_sign: Stopping `{monitor.short_sha}`; the thread will say when it has stopped."
    )
