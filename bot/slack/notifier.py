"""The Slack notifier: turns a monitor's recorded events into thread replies and keeps the
parent status board current. Runs in the worker, right after a tick saved its events.

Every message is posted exactly once, across crashes and lost answers. Slack has no
idempotency key, so each post carries message metadata naming it (monitor, run, and a key such
as `event:7`), and an attempt is written to Redis before the post and replaced by the message's
ts after it. Whoever delivers next and finds an attempt of unknown outcome (the worker was
killed, or Slack answered 5xx, or the connection broke, possibly after storing the message)
reads the thread back (`conversations.replies`; `conversations.history` for top-level messages)
and posts only if the message is not there. Posts are therefore never retried blindly: 429s
(nothing stored) are waited out while the delivery's time budget lasts, everything else is left
to the next tick. The thread's cursor advances after each event, so nothing is skipped.

The requester's App Home follows along: a finished journey is added to their list (under its
run id, so again after a crash is no change), the end-of-journey DM is sent only if they want
it (their Home's toggle or `dm off`; on by default), and their Home is published again after
a delivery that moved one of their monitors (a stage started or ended, or the journey did), by
a job queued here (`HomePublisher.refresh`).

The change's author (the PR's author, else the commit's) hears too, once (not twice when they
are the requester), by the same DM and choice, when their Slack account is known: the person
who ran `link <their login>`, else the member with the commit author's email
(`users.lookupByEmail`, remembered for a day, a `users_not_found` too). A commit followed with
nobody asking (a subscription) DMs its author alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blockkit import SlackMessage
from bot.slack.client import classify, without_retries
from bot.slack.home import HomePublisher
from bot.slack.payloads import (
    FoundUser,
    MessagePage,
    OpenedConversation,
    Permalink,
    PostedMessage,
    PostMark,
)
from bot.slack.people import JourneyOutcome, JourneyRecord
from bot.slack.render import final_dm, is_broadcast, moved_notice, status_board, thread_reply
from bot.slack.threads import PostAttempt, SlackThread, SlackThreads, parent_key
from workers.errors import DeployMonitorError
from workers.events import (
    CarriedByLater,
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
    Stopped,
)
from workers.monitor import Monitor, timeline
from workers.store import MonitorStore
from workers.view import CommitRange

log = logging.getLogger(__name__)

# A message Slack keeps refusing (not a rate limit) is skipped after this many tries, so one
# bad message cannot silence the rest of the thread.
MAX_DELIVERY_ATTEMPTS = 3
CONTINUE_REACTION, STOP_REACTION = "arrow_forward", "octagonal_sign"
# Names our posts in their message metadata; a look-up after a crash matches on it.
METADATA_EVENT_TYPE = "deploy_monitor_post"
# A look-up reads back from this long before the attempt: Slack's clock is not ours.
LOOKUP_SKEW_SECONDS = 120.0
LOOKUP_PAGE_SIZE = 200
LOOKUP_MAX_PAGES = 10
# How long one delivery may spend waiting out 429s; the tick's lock must outlive it.
DEFAULT_BUDGET_SECONDS = 30.0
# Events that change what the requester's Home says about the monitor.
HOME_EVENTS = (
    MonitorStarted,
    StageStarted,
    StageSucceeded,
    StageFailed,
    CarriedByLater,
    RecoveredByRerun,
    Deployed,
    PathCompleted,
    Stopped,
)

# GitHub's private commit emails (`ID+login@users.noreply.github.com`) are nobody's in Slack.
NOREPLY_EMAIL_SUFFIX = "@users.noreply.github.com"
# What a `subscribe failures` thread gets: failures (and what was decided about them),
# warnings, and the outcome; no stage starting or passing.
FAILURES_MODE_EVENTS = (
    StageFailed,
    DecisionTaken,
    RecoveredByRerun,
    StageSlow,
    NotPickedUp,
    StageBlocked,
    ConcourseUnreachable,
    Deployed,
    PathCompleted,
    Stopped,
)


class SlackNotifier:
    """Delivers a monitor's undelivered events to its Slack thread, each message once."""

    def __init__(
        self,
        *,
        client: WebClient,
        threads: SlackThreads,
        store: MonitorStore,
        dm_requester: bool = True,
        budget_seconds: float = DEFAULT_BUDGET_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        home: HomePublisher | None = None,
        moved_over: Callable[[Monitor], CommitRange | None] | None = None,
    ) -> None:
        self.client = client
        # The same client without retry handlers, for posts: a 5xx or a broken connection may
        # come after Slack stored the message, so a post is retried only after a look-up.
        self.poster = without_retries(client)
        self.threads = threads
        self.store = store
        self.dm_requester = dm_requester
        self.budget_seconds = budget_seconds
        self._clock = clock
        self._sleep = sleep
        self.home = home
        # What a deploy moved staging over (the chain view's compare), for the final report.
        self.moved_over = moved_over

    def deliver(self, monitor: Monitor) -> None:
        """Refresh the status board, then post every event after the thread's cursor."""
        thread = self.threads.get(monitor.id)
        if thread is None:
            return  # not a Slack monitor (e.g. `watch`)
        if thread.cursor >= monitor.events_emitted:
            if monitor.done:
                self.threads.finish(monitor.id)
            return  # nothing new
        deadline = self._clock() + self.budget_seconds
        # The board first: a deleted parent is replaced before replies go to its thread.
        thread = self._refresh_board(thread, monitor, deadline)
        if thread.moved_to:
            key = f"moved:{thread.moved_to}"
            notice = moved_notice()
            self._post_once(thread, key, notice, thread_ts=thread.moved_to, deadline=deadline)
            self.threads.notice_posted(monitor.id)
        pending = [e for _, e in self.store.events(monitor.id) if e.seq > thread.cursor]
        try:
            self._post_events(thread, monitor, pending, deadline)
        finally:
            # Also after a failure part-way: the Home shows what the thread got so far.
            if self.home is not None and thread.requester and _moves(pending):
                self.home.refresh(thread.requester, monitor)
        if monitor.done:
            self.threads.finish(monitor.id)

    def _post_events(
        self, thread: SlackThread, monitor: Monitor, pending: list[Event], deadline: float
    ) -> None:
        for event in pending:
            try:
                self._post_event(thread, monitor, event, deadline)
            except SlackApiError as exc:
                failure = classify(exc)
                if failure.kind != "refused":
                    raise  # rate limited or Slack trouble: the next tick carries on
                if self.threads.count_failure(monitor.id, event.seq) < MAX_DELIVERY_ATTEMPTS:
                    raise
                log.error("giving up on event %d of %s: %s", event.seq, monitor.id, failure.error)
            self.threads.advance(monitor.id, event.seq)

    def post_parent(self, draft: SlackThread, board: SlackMessage) -> str:
        """Post the first status board of a new run (`draft` names it; its thread is not
        stored yet). An uncertain failure is looked up and the post tried once more."""
        key = parent_key(draft.run)
        deadline = self._clock() + self.budget_seconds
        try:
            return self._post_once(draft, key, board, thread_ts=None, deadline=deadline)
        except (SlackApiError, OSError) as exc:
            # A broken connection, like a 5xx, leaves the board there or not.
            if classify(exc).kind != "uncertain":
                raise
        return self._post_once(draft, key, board, thread_ts=None, deadline=deadline)

    def _post_event(
        self, thread: SlackThread, monitor: Monitor, event: Event, deadline: float
    ) -> None:
        # Every step is idempotent: after a crash the event is handled again from the top.
        moved = self._moved_over(monitor, event) if isinstance(event, Deployed) else None
        reply = thread_reply(event, monitor, moved_over=moved)
        if thread.mode == "failures" and not isinstance(event, FAILURES_MODE_EVENTS):
            reply = None  # the channel asked for failures, warnings and the outcome only
        if reply is not None:
            ts = self._post_once(
                thread,
                f"event:{event.seq}",
                reply,
                thread_ts=thread.parent_ts,
                broadcast=is_broadcast(event),
                deadline=deadline,
            )
            if isinstance(event, StageFailed) and event.prompt is not None:
                self.threads.remember_prompt(monitor.id, event, thread.channel, ts)
                self._offer_reactions(thread.channel, ts)
        if isinstance(event, Deployed | PathCompleted | Stopped):
            self._journey_ended(thread, monitor, event, deadline)

    def _journey_ended(
        self,
        thread: SlackThread,
        monitor: Monitor,
        event: Deployed | PathCompleted | Stopped,
        deadline: float,
    ) -> None:
        """The requester, then the commit's author (once, if not the requester), hear of it
        by DM if they want it, and find it in their Home."""
        told = [thread.requester] if thread.requester else []
        author = self._author(monitor)
        if author and author not in told:
            told.append(author)
        for user, key in zip(told, ("dm", "dm-author"), strict=False):
            if self.home is not None:
                self.home.people.record_journey(user, _journey(thread, monitor, event))
                if user != thread.requester:
                    self.home.refresh(user, monitor)  # the requester's follows the delivery
            if self.dm_requester and self._wants_dm(user):
                self._dm(thread, monitor, event, deadline, user=user, key=key)

    def _author(self, monitor: Monitor) -> str | None:
        """The Slack user whose change it is: the person who linked the GitHub login of the
        PR's author (else the commit's), else the member with the commit author's email
        (users.lookupByEmail, remembered). The email is the commit author's: it is used only
        when they are the PR's author (a merge commit's author is whoever merged)."""
        if self.home is None:
            return None
        people = self.home.people
        login = monitor.pr_author_login or monitor.author_login
        if login:
            linked = people.user_for_login(login)
            if linked:
                return linked
        if monitor.pr_author_login and (
            (monitor.author_login or "").lower() != monitor.pr_author_login.lower()
        ):
            return None  # the commit's email is someone else's
        email = monitor.author_email
        if not email or email.lower().endswith(NOREPLY_EMAIL_SUFFIX):
            return None  # GitHub's private address: no Slack account can have it
        known = people.cached_email(email)
        if known is not None:
            return known or None
        try:
            found = FoundUser.parse(self.client.users_lookupByEmail(email=email)).user.id
        except SlackApiError as exc:
            failure = classify(exc)
            if failure.error == "users_not_found":
                people.remember_email(email, "")
                return None
            if failure.kind != "refused":
                raise  # rate limited or Slack trouble: tried again with the event
            log.info("cannot look the author of %s up: %s", monitor.id, failure.error)
            return None
        people.remember_email(email, found)
        return found

    def _post_once(
        self,
        thread: SlackThread,
        key: str,
        message: SlackMessage,
        *,
        thread_ts: str | None,
        deadline: float,
        broadcast: bool = False,
        channel: str | None = None,
    ) -> str:
        """Post `message` as this run's message `key` unless it is already in Slack; its ts."""
        channel = channel or thread.channel
        posted = self.threads.posted(thread.monitor_id, key)
        if posted is not None:
            return posted
        earlier = self.threads.attempt(thread.monitor_id, key)
        if earlier is not None:
            found = self._look_up(thread, key, earlier)
            if found is not None:
                self.threads.record_post(thread.monitor_id, key, found)
                return found
        self.threads.begin_post(
            thread.monitor_id, key, PostAttempt(channel, thread_ts, self._clock())
        )
        metadata = PostMark(monitor=thread.monitor_id, run=thread.run, key=key).metadata(
            METADATA_EVENT_TYPE
        )
        while True:
            try:
                response = self.poster.chat_postMessage(
                    channel=channel,
                    text=message.text,
                    blocks=message.blocks,
                    thread_ts=thread_ts,
                    reply_broadcast=broadcast or None,
                    unfurl_links=False,
                    unfurl_media=False,
                    metadata=metadata,
                )
                break
            except SlackApiError as exc:
                failure = classify(exc)
                if (
                    failure.kind == "rate_limited"
                    and self._clock() + failure.retry_after < deadline
                ):
                    self._sleep(failure.retry_after)
                    continue
                if failure.kind != "uncertain":
                    self.threads.abandon_post(thread.monitor_id, key)  # nothing was stored
                raise
        ts = PostedMessage.parse(response).ts
        self.threads.record_post(thread.monitor_id, key, ts)
        return ts

    def _look_up(self, thread: SlackThread, key: str, attempt: PostAttempt) -> str | None:
        """The ts of message `key` if an earlier attempt did post it."""
        oldest = f"{max(0.0, attempt.since - LOOKUP_SKEW_SECONDS):.6f}"
        mine = PostMark(monitor=thread.monitor_id, run=thread.run, key=key)
        cursor: str | None = None
        for _ in range(LOOKUP_MAX_PAGES):
            options: dict[str, Any] = {
                "channel": attempt.channel,
                "oldest": oldest,
                "include_all_metadata": True,
                "limit": LOOKUP_PAGE_SIZE,
            }
            if cursor:
                options["cursor"] = cursor
            try:
                if attempt.thread_ts:
                    answer = self.client.conversations_replies(ts=attempt.thread_ts, **options)
                else:
                    answer = self.client.conversations_history(**options)
            except SlackApiError as exc:
                failure = classify(exc)
                if failure.error == "thread_not_found":
                    return None  # no parent and no reply left: ours is not there
                if failure.kind != "refused":
                    raise
                # e.g. missing_scope: a repeated message is a smaller harm than a lost one.
                log.warning(
                    "cannot tell whether %s of %s was posted (%s); posting it",
                    key,
                    thread.monitor_id,
                    failure.error,
                )
                return None
            page = MessagePage.parse(answer)
            for found in page.messages:
                if found.mark(METADATA_EVENT_TYPE) == mine:
                    return found.ts
            cursor = page.next_cursor
            if not page.has_more or not cursor:
                return None
        return None

    def post_elsewhere(self, thread: SlackThread, channel: str, message: SlackMessage) -> str:
        """Post `message` once at the top of `channel`, a channel other than the thread's (a
        second subscribed channel is pointed to the thread); its ts."""
        deadline = self._clock() + self.budget_seconds
        key = f"elsewhere:{channel}"
        return self._post_once(
            thread, key, message, thread_ts=None, deadline=deadline, channel=channel
        )

    def _offer_reactions(self, channel: str, ts: str) -> None:
        """Put the two answers under the failure message so one click is enough."""
        for name in (CONTINUE_REACTION, STOP_REACTION):
            try:
                self.client.reactions_add(channel=channel, timestamp=ts, name=name)
            except SlackApiError as exc:
                log.info("could not add :%s: (%s)", name, classify(exc).error)

    def _refresh_board(self, thread: SlackThread, monitor: Monitor, deadline: float) -> SlackThread:
        board = status_board(monitor, requester=thread.requester or None)
        try:
            self.client.chat_update(
                channel=thread.channel, ts=thread.parent_ts, text=board.text, blocks=board.blocks
            )
        except SlackApiError as exc:
            failure = classify(exc)
            if failure.error != "message_not_found" and failure.kind == "refused":
                # e.g. edit_window_closed: the board stays as it is; the replies must not.
                log.warning("cannot edit the status board of %s: %s", monitor.id, failure.error)
                return thread
            if failure.error != "message_not_found":
                raise  # rate limited or Slack trouble: the next tick carries on
            # Someone deleted the parent: carry on under a new one (posted once, even across
            # crashes); the notice saying so follows in its thread (`moved_to`).
            key = f"parent:{thread.parent_ts}"
            ts = self._post_once(thread, key, board, thread_ts=None, deadline=deadline)
            self.threads.move_parent(monitor.id, ts, self.permalink(thread.channel, ts))
            moved = self.threads.get(monitor.id)
            assert moved is not None
            return moved
        return thread

    def _moved_over(self, monitor: Monitor, event: Deployed) -> CommitRange | None:
        """What the deploy moved staging over, if the chain view can tell (never fails the
        delivery: the report goes out without the link)."""
        if self.moved_over is None or self.threads.posted(monitor.id, f"event:{event.seq}"):
            return None  # nothing to ask, or the report is in Slack already
        try:
            return self.moved_over(monitor)
        except (DeployMonitorError, OSError) as exc:
            log.info("no compare link for %s: %s", monitor.id, exc)
            return None

    def _wants_dm(self, user_id: str) -> bool:
        return self.home is None or self.home.people.wants_dm(user_id)

    def _dm(
        self,
        thread: SlackThread,
        monitor: Monitor,
        event: Event,
        deadline: float,
        *,
        user: str,
        key: str,
    ) -> None:
        """The end-of-journey DM to `user`, posted once as message `key`."""
        if self.threads.posted(monitor.id, key):
            return  # sent already: no conversations.open again
        message = final_dm(monitor, event, permalink=thread.permalink or None)
        try:
            opened = self.client.conversations_open(users=user)
            channel = OpenedConversation.parse(opened).channel.id
            self._post_once(
                thread, key, message, thread_ts=None, deadline=deadline, channel=channel
            )
        except SlackApiError as exc:
            failure = classify(exc)
            if failure.kind != "refused":
                raise  # tried again with the event, next tick
            log.info("could not DM %s: %s", user, failure.error)

    def permalink(self, channel: str, ts: str) -> str:
        try:
            answer = self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError:
            return ""
        return Permalink.parse(answer).permalink


def _moves(events: list[Event]) -> bool:
    """Whether these events change what the requester's Home shows."""
    return any(isinstance(event, HOME_EVENTS) for event in events)


def _journey(
    thread: SlackThread, monitor: Monitor, event: Deployed | PathCompleted | Stopped
) -> JourneyRecord:
    """The finished journey as the requester's Home lists it."""
    outcome: JourneyOutcome
    if isinstance(event, Deployed):
        outcome, total = "deployed", event.total
    elif isinstance(event, PathCompleted):
        outcome, total = "completed", event.total
    else:
        outcome, total = "stopped", timeline(monitor)[1]
    return JourneyRecord(
        monitor_id=monitor.id,
        run=thread.run or monitor.id,
        sha=monitor.sha,
        headline=monitor.headline,
        outcome=outcome,
        total=total,
        finished_at=event.at,
        permalink=thread.permalink,
        pr_number=monitor.pr_number,
    )
