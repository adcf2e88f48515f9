"""`/deploy-monitor`: what the text means, and the work each form does.

The Bolt listener acks within Slack's 3 seconds; everything that talks to GitHub (approval
check, squash-merge) runs afterwards as an RQ job, `start_from_slack`, in a worker. Every
problem reaches the requester as an ephemeral message with the reason (and usage where it
helps); nothing is posted in the channel until the commit is resolved and merged.

`where [TARGET]` and `status` are questions: their RQ jobs (`where_from_slack`,
`status_from_slack`) read the chain view (GitHub and Concourse are involved, so never in the
ack) and answer only the asker, through the command's response_url. They never merge and
never start a monitor; the `where` answer's **Follow it** button does, through the same
`start_from_slack` as the command (so a second click, or a second person, finds the monitor
the first one started).
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Literal

import redis
from redis.lock import Lock
from slack_sdk.errors import SlackApiError

from bot.slack import face as faces
from bot.slack import render
from bot.slack.blockkit import SlackMessage
from bot.slack.client import classify, webhook_client
from bot.slack.payloads import ConversationInfo
from bot.slack.render import status_board
from bot.slack.settings import BotSettings
from bot.slack.threads import SlackThread, new_run_id
from workers import keys
from workers.errors import DeployMonitorError, MergeRefused, TargetError
from workers.events import Event
from workers.monitor import Monitor, monitor_id_for
from workers.store import MonitorStore
from workers.subscriptions import Subscription, SubscriptionMode
from workers.target import TargetSpec, repository_words, resolve_target

log = logging.getLogger(__name__)

# A failed start job (its worker killed, or Redis gone for a moment) is run again this often.
START_RETRIES = 2


CommandKind = Literal[
    "help",
    "list",
    "stop",
    "where",
    "status",
    "follow",
    "subscribe",
    "unsubscribe",
    "subscriptions",
    "link",
    "dm",
    "use",
]
# Forms answered in the ack from Redis alone, whatever follows the word (a bad argument is
# told with usage; it never becomes a target).
_SETTINGS_FORMS: dict[str, CommandKind] = {
    "subscribe": "subscribe",
    "unsubscribe": "unsubscribe",
    "subscriptions": "subscriptions",
    "link": "link",
    "dm": "dm",
    "use": "use",
}
# A GitHub login: letters, digits and single inner hyphens, 39 at most.
_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    argument: str = ""


def parse_command(text: str | None) -> Command:
    """`help`, `list`, `stop <PR|SHA>`, `where [TARGET]`, `status [REPO]`, `subscribe [REPO]
    [failures]`, `unsubscribe [REPO]`, `subscriptions`, `link [LOGIN]`, `dm on|off`, `use
    [REPO]`, or a target (see `parse_target`)."""
    words = (text or "").strip().split(None, 1)
    first = words[0].lower() if words else ""
    rest = words[1].strip() if len(words) > 1 else ""
    if first in {"help", "-h", "--help"}:
        return Command("help")
    if first in _SETTINGS_FORMS:
        return Command(_SETTINGS_FORMS[first], rest)
    if first == "list" and not rest:
        return Command("list")
    if first == "stop":
        return Command("stop", rest)
    if first == "where":
        return Command("where", rest)
    if first == "status":
        return Command("status", rest)
    return Command("follow", (text or "").strip())


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
    settings = face.settings
    reply = _replier(response_url, settings)
    run = f"cmd-{command_id}" if command_id else new_run_id()
    targeting = face.targeting(channel_id)
    try:
        spec = targeting.parse(text)
    except TargetError as exc:
        reply(render.usage_reply(str(exc), targeting))
        return "usage"
    if not can_post(face, channel_id, reply):
        return "not-in-channel"
    lock = start_lock(face, _target_key(spec))
    if not lock.acquire():
        reply(render.START_BUSY)
        return "busy"
    try:
        return _start(face, spec, user_id, channel_id, run, reply)
    finally:
        try:
            lock.release()
        except Exception:  # expired: harmless, the work is done
            log.info("start lock for %s had expired", _target_key(spec))


def start_lock(face: faces.SlackFace, name: str) -> Lock:
    # Held at most as long as a start job may run; a killed job's lock is gone by its retry.
    timeout = face.settings.start_timeout
    key = keys.start_lock(face.engine.store.ns, name)
    return Lock(face.engine.redis, key, timeout=timeout, blocking_timeout=timeout / 2)


def _start(
    face: faces.SlackFace,
    spec: TargetSpec,
    user_id: str,
    channel_id: str,
    run: str,
    reply: Reply,
) -> str:
    settings, engine = face.settings, face.engine
    already = _existing_for(engine.store, spec)
    if already is not None:
        return _started_or_duplicate(face, already, run, reply)
    try:
        github = engine.github_for(spec.repository)
        target = resolve_target(spec, github, allow_merge=settings.may_merge(user_id))
    except MergeRefused as exc:
        if exc.reason == "not_allowed":
            reply(render.merge_not_allowed(spec.pr_number))
        else:
            reply(render.merge_refused(str(exc)))
        return f"refused-{exc.reason}"
    except TargetError as exc:
        reply(render.not_found_reply(str(exc), face.targeting(channel_id)))
        return "not-found"
    except DeployMonitorError as exc:
        reply(render.lookup_failed(str(exc)))
        return "error"
    monitor, events = engine.prepare_monitor(target, requester=user_id, on_failure="ask")
    # A PR number and its merge SHA are different start locks but one monitor: without this
    # second lock both could post a parent and the loser's thread would replace the winner's.
    lock = start_lock(face, monitor.id)
    if not lock.acquire():
        reply(render.START_BUSY)
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
    reply: Reply,
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
        error = classify(exc).error
        merged_pr = monitor.pr_number if monitor.merged_now else None
        reply(render.board_refused(error or type(exc).__name__, merged_pr))
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


def _existing_for(store: MonitorStore, spec: TargetSpec) -> Monitor | None:
    """An active monitor for this PR or SHA of the spec's repository, without asking GitHub
    (no merge on a repeat)."""
    for monitor_id in store.active_ids():
        monitor = store.load(monitor_id)
        if monitor is None or monitor.done:
            continue
        if spec.repository and monitor.repository.lower() != spec.repository.lower():
            continue
        if spec.kind == "pr" and monitor.pr_number == spec.pr_number:
            return monitor
        if spec.kind == "sha" and spec.sha and monitor.sha.startswith(spec.sha):
            return monitor
    return None


def _started_or_duplicate(face: faces.SlackFace, monitor: Monitor, run: str, reply: Reply) -> str:
    """An active monitor for the target: this command's own (started by an earlier attempt
    of this job) or someone else's, which the requester is pointed to."""
    thread = face.threads.get(monitor.id)
    if thread is not None and thread.run == run:
        return "started"
    reply(_already_followed(face, monitor))
    return "duplicate"


def _already_followed(face: faces.SlackFace, monitor: Monitor) -> str:
    thread = face.threads.get(monitor.id)
    return render.already_followed(monitor, thread.permalink if thread else "")


def can_post(face: faces.SlackFace, channel_id: str, reply: Reply) -> bool:
    """Make sure the bot is in the channel: join a public one, ask to be invited to a private
    one. Checked before anything is merged."""
    try:
        info = ConversationInfo.parse(face.client.conversations_info(channel=channel_id)).channel
    except SlackApiError as exc:
        error = classify(exc).error
        if error == "channel_not_found":
            reply(render.CANNOT_SEE_CONVERSATION)
            return False
        log.info("conversations.info failed (%s); trying anyway", error)
        return True
    if info.is_member or info.is_im:
        return True
    if info.is_private:
        reply(render.INVITE_ME_FIRST)
        return False
    try:
        face.client.conversations_join(channel=channel_id)
    except SlackApiError as exc:
        reply(render.cannot_join(str(classify(exc).error)))
        return False
    return True


def _target_key(spec: TargetSpec) -> str:
    what = f"pr-{spec.pr_number}" if spec.kind == "pr" else (spec.sha or "latest")
    return f"{spec.repository.lower()}:{what}" if spec.repository else what


class Reply:
    """Ephemeral replies to the requester through the command's response_url (works in any
    channel, even one the bot is not in)."""

    def __init__(self, response_url: str, settings: BotSettings) -> None:
        self.client = webhook_client(response_url, settings) if response_url else None

    def __call__(self, text: str) -> None:
        self.message(SlackMessage(text=text))

    def message(self, message: SlackMessage) -> None:
        """An answer with blocks (its `text` is the notification fallback)."""
        if self.client is None:
            return
        try:
            self.client.send(
                text=message.text,
                blocks=message.blocks,
                response_type="ephemeral",
                replace_original=False,
            )
        except Exception:  # the requester misses a hint; nothing else depends on it
            log.warning("could not answer through response_url")


def _replier(response_url: str, settings: BotSettings) -> Reply:
    return Reply(response_url, settings)


# -- where and status: questions, answered privately by a worker -------------------------


def where_from_slack(text: str, user_id: str, channel_id: str, response_url: str) -> str:
    """RQ job: where the commit `text` names is, for the asker alone (with a Follow it button
    that follows it in `channel_id`). Returns what happened, for the job's result."""
    face = faces.current()
    reply = _replier(response_url, face.settings)
    targeting = face.targeting(channel_id)
    try:
        spec = targeting.parse(text)
    except TargetError as exc:
        reply(render.usage_reply(str(exc), targeting))
        return "usage"
    try:
        answer = face.engine.viewer_for(spec.repository).where(spec, face.engine.clock())
    except TargetError as exc:
        reply(render.not_found_reply(str(exc), targeting))
        return "not-found"
    except DeployMonitorError as exc:
        reply(render.where_failed(str(exc)))
        return "error"
    permalink = ""
    if answer.followed:
        repository = answer.repository or face.engine.repository
        thread = face.threads.get(monitor_id_for(repository, answer.sha))
        permalink = thread.permalink if thread else ""
    log.info("where %s for %s in %s", answer.short_sha, user_id, channel_id)
    reply.message(render.where_answer(answer, thread_permalink=permalink))
    return "answered"


def status_from_slack(response_url: str, argument: str = "", channel_id: str = "") -> str:
    """RQ job: what staging runs and how far behind main it is, for the asker alone: of the
    repository `argument` names, else of the channel's."""
    face = faces.current()
    reply = _replier(response_url, face.settings)
    repository = named_repository(face, argument, channel_id)
    if repository is None:
        reply(render.repository_usage(argument, face.engine.repositories.names))
        return "usage"
    try:
        status = face.engine.viewer_for(repository).status(face.engine.clock())
    except DeployMonitorError as exc:
        reply(render.where_failed(str(exc)))
        return "error"
    reply.message(render.status_answer(status, several=face.engine.repositories.several))
    return "answered"


def named_repository(face: faces.SlackFace, argument: str, channel_id: str) -> str | None:
    """The served repository `argument` names (any case), the channel's when it names none;
    None when it names one that is not served."""
    if not argument:
        return face.channels.of(channel_id)
    found = face.engine.repositories.find(repository_words(argument, face.settings.github_host))
    return found.name if found else None


def refresh_home(user_id: str) -> str:
    """RQ job: publish `user_id`'s App Home again (queued by the notifier when one of their
    monitors moved)."""
    return "published" if faces.current().home.publish(user_id) else "refused"


# -- list and stop: quick, answered in the ack ---------------------------------------------


def list_reply(face: faces.SlackFace) -> str:
    """Active monitors, with links to their threads."""
    followed = []
    for monitor_id in face.engine.store.active_ids():
        monitor = face.engine.store.load(monitor_id)
        if monitor is None or monitor.done:
            continue
        thread = face.threads.get(monitor_id)
        followed.append((monitor, thread.permalink if thread else ""))
    return render.followed_list(followed, several=face.engine.repositories.several)


def stop_reply(face: faces.SlackFace, argument: str, user_id: str, channel_id: str = "") -> str:
    """Stop a monitor named by PR or SHA, if the user is its requester or an admin."""
    targeting = face.targeting(channel_id)
    if not argument:
        return render.usage_reply(render.SAY_WHICH_TO_STOP, targeting)
    try:
        spec = targeting.parse(argument)
    except TargetError as exc:
        return render.usage_reply(str(exc), targeting)
    monitor = _existing_for(face.engine.store, spec)
    if monitor is None:
        return render.nothing_matching(argument)
    return stop_monitor(face, monitor, user_id)


def stop_monitor(face: faces.SlackFace, monitor: Monitor, user_id: str) -> str:
    """Ask `monitor` to stop if `user_id` is its requester or an admin; what to tell them."""
    if user_id != monitor.requester and user_id not in face.settings.admins:
        return render.only_requester_stops(monitor.requester)
    face.engine.store.request_stop(monitor.id, user_id)
    face.engine.kick(monitor.id, "stop")
    return render.stopping(monitor)


# -- subscribe, link, dm: settings, answered in the ack --------------------------------------


def subscribe_reply(face: faces.SlackFace, argument: str, user_id: str, channel_id: str) -> str:
    """`subscribe [owner/repo] [all|failures]`: follow every new commit on main of that
    repository (the channel's when none is named) in this channel."""
    words = argument.split()
    modes = [w for w in words if w.lower() in {"all", "failures"}]
    named = [w for w in words if w.lower() not in {"all", "failures"}]
    if len(modes) > 1 or len(named) > 1 or any("/" not in w for w in named):
        return render.subscribe_usage(argument)
    repository = named_repository(face, named[0] if named else "", channel_id)
    if repository is None:
        return render.repository_usage(named[0], face.engine.repositories.names)
    mode: SubscriptionMode = "failures" if modes and modes[0].lower() == "failures" else "all"
    subscription = Subscription(
        repository=repository,
        channel=channel_id,
        mode=mode,
        by=user_id,
        since=face.engine.clock(),
    )
    earlier = face.engine.subscriptions.subscribe(subscription)
    return render.subscribed(subscription, earlier)


def unsubscribe_reply(face: faces.SlackFace, argument: str, channel_id: str) -> str:
    """`unsubscribe [owner/repo]`: this channel no longer follows that repository's main
    (journeys under way carry on). Named none: the channel's only subscription, else the
    channel's repository."""
    if len(argument.split()) > 1 or (argument and "/" not in argument):
        return render.subscribe_usage(argument)
    if argument:
        repository = named_repository(face, argument, channel_id)
        if repository is None:
            return render.repository_usage(argument, face.engine.repositories.names)
    else:
        current = face.engine.subscriptions.for_channel(channel_id)
        repository = current[0].repository if len(current) == 1 else face.channels.of(channel_id)
    removed = face.engine.subscriptions.unsubscribe(repository, channel_id)
    return render.unsubscribed(repository, removed)


def subscriptions_reply(face: faces.SlackFace, argument: str, channel_id: str) -> str:
    """`subscriptions`: what this channel follows without being asked."""
    if argument:
        return render.subscribe_usage(argument)
    return render.subscription_list(face.engine.subscriptions.for_channel(channel_id))


def link_reply(face: faces.SlackFace, argument: str, user_id: str) -> str:
    """`link <github-login>`: commits by that login bring their author the end-of-journey DM;
    `link` alone says which login is linked."""
    people = face.home.people
    login = argument.removeprefix("@")
    if not argument:
        return render.linked_login(people.login_of(user_id))
    if not _GITHUB_LOGIN.fullmatch(login):
        return render.link_usage(argument)
    earlier = people.link(user_id, login)
    return render.linked(login, earlier, wants_dm=people.wants_dm(user_id))


def use_reply(face: faces.SlackFace, argument: str, channel_id: str) -> str:
    """`use owner/repo`: what this channel's targets naming no repository mean; `use` alone
    says which repository that is, and every one served."""
    served = face.engine.repositories.names
    if not argument:
        return render.channel_repository(face.channels.of(channel_id), served)
    named = named_repository(face, argument, channel_id) if len(argument.split()) == 1 else None
    if named is None:
        return render.repository_usage(argument, served)
    earlier = face.channels.use(channel_id, named)
    return render.channel_uses(named, earlier)


def dm_reply(face: faces.SlackFace, argument: str, user_id: str) -> str:
    """`dm on|off`: whether the person gets the end-of-journey DM (as the Home tab's toggle)."""
    word = argument.lower()
    if word not in {"on", "off"}:
        return render.dm_usage(argument)
    face.home.people.set_dm(user_id, word == "on")
    return render.dm_set(word == "on")
