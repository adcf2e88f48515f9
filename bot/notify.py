"""The Slack notifier: turns a monitor's recorded events into thread replies and keeps the
parent status board current. Runs in the worker, right after a tick saved its events.

Each event is posted, then the thread's cursor is advanced, one event at a time: a crash
repeats at most the one message that was in flight, and a 429 (retried by slack_sdk's
handler, then left for the next tick) delays messages without dropping any.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.render_slack import SlackMessage, final_dm, is_broadcast, status_board, thread_reply
from bot.settings import BotSettings
from bot.threads import SlackThread, SlackThreads
from workers.monitor import Deployed, Event, Monitor, PathCompleted, StageFailed, Stopped
from workers.store import MonitorStore

log = logging.getLogger(__name__)

# A message Slack keeps refusing (not a rate limit) is skipped after this many tries, so one
# bad message cannot silence the rest of the thread.
MAX_DELIVERY_ATTEMPTS = 3
CONTINUE_REACTION, STOP_REACTION = "arrow_forward", "octagonal_sign"


def web_client(settings: BotSettings) -> WebClient:
    """A WebClient that waits out 429s (Retry-After) and retries 5xx and connection errors."""
    assert settings.slack_bot_token is not None
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=4),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class SlackNotifier:
    """Delivers a monitor's undelivered events to its Slack thread."""

    def __init__(
        self,
        *,
        client: WebClient,
        threads: SlackThreads,
        store: MonitorStore,
        dm_requester: bool = True,
    ) -> None:
        self.client = client
        self.threads = threads
        self.store = store
        self.dm_requester = dm_requester

    def deliver(self, monitor: Monitor) -> None:
        """Post every event after the thread's cursor, then refresh the status board."""
        thread = self.threads.get(monitor.id)
        if thread is None or thread.cursor >= monitor.events_emitted:
            return  # not a Slack monitor (e.g. `watch`), or nothing new
        pending = [e for _, e in self.store.events(monitor.id) if e.seq > thread.cursor]
        for event in pending:
            try:
                self._post_event(thread, monitor, event)
            except SlackApiError as exc:
                if exc.response.status_code == 429:
                    raise  # still rate limited after the retries: the next tick carries on
                if self.threads.count_failure(monitor.id, event.seq) < MAX_DELIVERY_ATTEMPTS:
                    raise
                log.error(
                    "giving up on event %d of %s: %s",
                    event.seq,
                    monitor.id,
                    exc.response.get("error"),
                )
            self.threads.advance(monitor.id, event.seq)
        thread = self._refresh_board(thread, monitor)
        if monitor.done:
            self.threads.finish(monitor.id)

    def _post_event(self, thread: SlackThread, monitor: Monitor, event: Event) -> None:
        reply = thread_reply(event, monitor)
        if reply is not None:
            ts = self._post(
                thread.channel, reply, thread_ts=thread.parent_ts, broadcast=is_broadcast(event)
            )
            if isinstance(event, StageFailed) and event.prompt is not None:
                self.threads.remember_prompt(monitor.id, event, thread.channel, ts)
                self._offer_reactions(thread.channel, ts)
        if (
            isinstance(event, Deployed | PathCompleted | Stopped)
            and self.dm_requester
            and thread.requester
            and self.threads.mark_once(monitor.id, "final-dm")
        ):
            self._dm(thread, monitor, event)

    def _post(
        self, channel: str, message: SlackMessage, *, thread_ts: str | None, broadcast: bool = False
    ) -> str:
        response = self.client.chat_postMessage(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            thread_ts=thread_ts,
            reply_broadcast=broadcast or None,
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    def _offer_reactions(self, channel: str, ts: str) -> None:
        """Put the two answers under the failure message so one click is enough."""
        for name in (CONTINUE_REACTION, STOP_REACTION):
            try:
                self.client.reactions_add(channel=channel, timestamp=ts, name=name)
            except SlackApiError as exc:
                log.info("could not add :%s: (%s)", name, exc.response.get("error"))

    def _refresh_board(self, thread: SlackThread, monitor: Monitor) -> SlackThread:
        board = status_board(monitor, requester=thread.requester or None)
        try:
            self.client.chat_update(
                channel=thread.channel, ts=thread.parent_ts, text=board.text, blocks=board.blocks
            )
        except SlackApiError as exc:
            if exc.response.get("error") != "message_not_found":
                raise
            # Someone deleted the parent: carry on in a new one and say why.
            ts = self._post(thread.channel, board, thread_ts=None)
            permalink = self.permalink(thread.channel, ts)
            self.threads.move_parent(monitor.id, ts, permalink)
            notice = SlackMessage(
                text="The previous status message was deleted; following the commit here now.",
                blocks=[],
            )
            self._post(thread.channel, notice, thread_ts=ts)
            refreshed = self.threads.get(monitor.id)
            assert refreshed is not None
            return refreshed
        return thread

    def _dm(self, thread: SlackThread, monitor: Monitor, event: Event) -> None:
        message = final_dm(monitor, event, permalink=thread.permalink or None)
        try:
            channel = self.client.conversations_open(users=thread.requester)["channel"]["id"]
            self._post(str(channel), message, thread_ts=None)
        except SlackApiError as exc:
            log.info("could not DM %s: %s", thread.requester, exc.response.get("error"))

    def permalink(self, channel: str, ts: str) -> str:
        try:
            return str(self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
        except SlackApiError:
            return ""
