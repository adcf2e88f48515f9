"""Commits on main followed in subscribed channels, with no command.

The watcher of main (`workers/mainline.py`) hands new commits to `hand_on`, which queues one
RQ job, `follow_pushed`, for the lot: the commits are followed one by one in push order, each
as if someone had asked for it by SHA, except that nobody did (no requester: the board says
"followed automatically", no prompt waits for an answer: a failure is reported and following
goes on, as `--on-failure continue`; an admin may `stop` it).

One commit is one monitor and one thread, whoever asked and however many channels subscribed:
the thread lives in the channel that subscribed first (or, for a commit someone already
asked for, in the requester's channel), with that channel's mode; every other subscribed
channel gets one top-level message linking to it (posted once, like every message). A request
for a commit that a subscription follows already is pointed to its thread, as for any
commit followed twice.

Every step can be repeated (the watcher hands a commit on again after a crash, RQ runs the
job again when its worker dies): the parent is posted once per commit (its run id is the
commit's), a monitor already started is recognised, each link is posted once.
"""

from __future__ import annotations

import contextlib
import logging

import redis
from rq import Retry
from slack_sdk.errors import SlackApiError

from bot.slack import face as faces
from bot.slack import render
from bot.slack.client import classify
from bot.slack.commands import START_RETRIES, Reply, can_post, start_lock
from bot.slack.render import status_board
from bot.slack.threads import SlackThread
from workers import keys
from workers.errors import DeployMonitorError, TargetError
from workers.monitor import Monitor, monitor_id_for
from workers.subscriptions import Subscription
from workers.target import TargetSpec, resolve_target

log = logging.getLogger(__name__)

FOLLOW_FUNC = "bot.slack.subscribed.follow_pushed"


def hand_on(face: faces.SlackFace) -> None:
    """Make `face` the follower of the commits the engine's watcher of main finds."""

    def follow(repository: str, shas: list[str]) -> None:
        if not shas:
            return
        face.engine.queue.enqueue(
            FOLLOW_FUNC,
            repository,
            shas,
            job_id=keys.follow_job(face.engine.settings.queue_name, repository, shas[-1]),
            job_timeout=int(face.settings.start_timeout) * len(shas),
            retry=Retry(max=START_RETRIES),
            result_ttl=keys.START_RESULT_TTL_SECONDS,
        )

    face.engine.main_listeners.append(follow)


def follow_pushed(repository: str, shas: list[str]) -> list[str]:
    """RQ job: follow each commit of a push to main, oldest first, in the channels subscribed
    to `repository`; what happened to each, for the job's result."""
    face = faces.current()
    return [follow_commit(face, repository, sha) for sha in shas]


def follow_commit(face: faces.SlackFace, repository: str, sha: str) -> str:
    """Follow one commit on main in the subscribed channels (see the module's docstring)."""
    subscriptions = face.engine.subscriptions.for_repository(repository)
    # Only channels the bot can post in: it joins public ones; a private one must invite it.
    usable = [s for s in subscriptions if can_post(face, s.channel, Reply("", face.settings))]
    if not usable:
        return "no-channel"
    lock = start_lock(face, monitor_id_for(repository, sha))
    if not lock.acquire():
        # A request for the same commit is starting it: RQ runs this job again (`Retry`).
        raise RuntimeError(f"{sha[:7]} is being started by someone else; trying again")
    try:
        monitor = _monitor_for(face, repository, sha, usable[0])
    finally:
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()
    if monitor is None:
        return "not-followed"
    thread = face.threads.get(monitor.id)
    if thread is None:
        return "no-thread"
    for subscription in usable:
        if subscription.channel != thread.channel:
            _point_to_thread(face, thread, monitor, subscription.channel)
    return "followed"


def _monitor_for(
    face: faces.SlackFace, repository: str, sha: str, owner: Subscription
) -> Monitor | None:
    """The active monitor of `sha`: the one already following it, or a new one whose thread
    is in the `owner` channel. None when the commit cannot be followed."""
    engine = face.engine
    existing = engine.store.load(monitor_id_for(repository, sha))
    if existing is not None and not existing.done:
        return existing
    try:
        spec = TargetSpec("sha", sha=sha, repository=repository)
        target = resolve_target(spec, engine.github_for(repository), allow_merge=False)
    except (TargetError, DeployMonitorError) as exc:
        log.warning("cannot follow %s of %s's main: %s", sha[:7], repository, exc)
        return None
    # Nobody to answer a prompt: a failure is said, and the journey goes on.
    monitor, events = engine.prepare_monitor(target, requester=None, on_failure="continue")
    run = f"main-{sha[:12]}"
    draft = SlackThread(
        monitor_id=monitor.id,
        channel=owner.channel,
        parent_ts="",
        requester="",
        permalink="",
        cursor=0,
        run=run,
        mode=owner.mode,
    )
    try:
        parent_ts = face.notifier.post_parent(draft, status_board(monitor))
    except (SlackApiError, OSError) as exc:
        log.warning("cannot post %s in %s: %s", sha[:7], owner.channel, _error(exc))
        return None
    face.threads.create(
        monitor.id,
        channel=owner.channel,
        parent_ts=parent_ts,
        requester="",
        permalink=face.notifier.permalink(owner.channel, parent_ts),
        run=run,
        mode=owner.mode,
    )
    in_charge, created = engine.launch(monitor, events)
    if not created:
        # Someone's request started it meanwhile (another bot process): theirs is the thread.
        face.client.chat_delete(channel=owner.channel, ts=parent_ts)
    return in_charge


def _point_to_thread(
    face: faces.SlackFace, thread: SlackThread, monitor: Monitor, channel: str
) -> None:
    try:
        face.notifier.post_elsewhere(
            thread, channel, render.followed_elsewhere(monitor, thread.permalink)
        )
    except (SlackApiError, OSError) as exc:
        log.warning("cannot point %s to %s's thread: %s", channel, monitor.id, _error(exc))


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(classify(exc).error)
    return type(exc).__name__
