"""The workspace's state, what a test scripts and reads back, and the lookups every method
shares (lock held)."""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Self

from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler

from simulators._http import SimulatorServer
from simulators.slack._model import (
    BOT_NAME,
    DEFAULT_BOT_ID,
    DEFAULT_BOT_USER_ID,
    DEFAULT_SCOPES,
    DEFAULT_TEAM_DOMAIN,
    DEFAULT_TEAM_ID,
    DEFAULT_TEAM_NAME,
    DEFAULT_TOKEN,
    USER_ID,
    Channel,
    Ephemeral,
    Message,
    PublishedView,
    Scripted,
    SlackError,
    User,
    WebhookPost,
)


class SlackState(SimulatorServer):
    """A workspace: its channels, users and messages, and every call made to it."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        team_id: str = DEFAULT_TEAM_ID,
        team_domain: str = DEFAULT_TEAM_DOMAIN,
        team_name: str = DEFAULT_TEAM_NAME,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
        scopes: list[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`scopes=None` reports DEFAULT_SCOPES and checks none; a given list is enforced."""
        super().__init__()
        self.token = token
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.scopes = list(DEFAULT_SCOPES if scopes is None else scopes)
        self._enforce_scopes = scopes is not None
        self._clock = clock
        self._last_ts_us = 0
        self._changed = threading.Condition(self.lock)
        self._channels: dict[str, Channel] = {}
        self._users: dict[str, User] = {
            bot_user_id: User(bot_user_id, BOT_NAME, BOT_NAME, is_bot=True)
        }
        self._messages: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self._webhook_posts: list[WebhookPost] = []
        self._calls: list[tuple[str, dict[str, Any]]] = []
        # The App Home: whether the app has it on (manifest `home_tab_enabled`), each user's
        # current view, and every view published.
        self.home_tab_enabled = True
        self._home_views: dict[str, dict[str, Any]] = {}
        self._published: list[PublishedView] = []
        self._scripted: dict[str, deque[Scripted]] = {}
        # Called as on_call(method, params, answer) after a call took effect, before it is
        # answered, outside the simulator's lock.
        self.on_call: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None
        # Socket Mode (see simulators/socket_mode.py): the app-level token that may call
        # apps.connections.open, and what hands out a new WebSocket URL for it.
        self.app_token: str | None = None
        self.open_socket: Callable[[], str] | None = None
        # Web API method → its handler (filled in by the simulator that puts the concerns together).
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

    # ----------------------------------------------------------------- scripting

    @property
    def api_url(self) -> str:
        """The `base_url` to give `WebClient` (ends with a slash, as slack_sdk expects)."""
        return f"{self.url}/api/"

    def web_client(self, *, retry_handlers: list[RetryHandler] | None = None) -> WebClient:
        """A `WebClient` with the bot token, talking to this simulator."""
        return WebClient(token=self.token, base_url=self.api_url, retry_handlers=retry_handlers)

    def add_channel(
        self,
        id: str,
        name: str,
        is_private: bool = False,
        bot_member: bool = True,
        *,
        is_archived: bool = False,
    ) -> None:
        """Create (or replace) a channel; `bot_member=False` makes posting fail until a join."""
        with self._changed:
            self._channels[id] = Channel(id, name, is_private, bot_member, is_archived)
            self._changed.notify_all()

    def add_user(
        self,
        id: str,
        name: str,
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        email: str | None = None,
    ) -> None:
        """Give a user a name, guest/bot flags (users.info) or an email (users.lookupByEmail)."""
        with self.lock:
            self._users[id] = User(
                id,
                name,
                real_name or name,
                is_bot,
                is_restricted,
                is_ultra_restricted,
                email=email,
            )

    def dm_channel_id(self, user_id: str) -> str:
        """The id of the bot's DM with `user_id` (what conversations.open returns for it)."""
        return f"D{user_id[1:]}"

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message as a person or admin would; later chat.update gets message_not_found."""
        with self._changed:
            message = self._find(channel, ts)
            if message is None:
                raise KeyError(f"no message {ts} in {channel}")
            message.deleted = True
            self._changed.notify_all()

    def rate_limit_next(self, method: str, n: int = 1, retry_after: int = 1) -> None:
        """Answer the next `n` calls of `method` with HTTP 429 and `Retry-After: retry_after`."""
        self._script(method, n, Scripted(429, "ratelimited", retry_after))

    def fail_next(self, method: str, n: int = 1, status: int = 500) -> None:
        """Answer the next `n` calls of `method` with an HTTP `status` (5xx) error."""
        self._script(method, n, Scripted(status, "internal_error"))

    def lose_answer_next(self, method: str, n: int = 1, status: int = 500) -> None:
        """Carry out the next `n` calls of `method`, then answer each with HTTP `status`, as
        when Slack stores a message and the answer is lost (a 5xx from a proxy, a timeout)."""
        self._script(method, n, Scripted(status, "internal_error", after_effect=True))

    def error_next(self, method: str, error: str, n: int = 1) -> None:
        """Answer the next `n` calls of `method` with HTTP 200 `{"ok": false, "error": error}`."""
        self._script(method, n, Scripted(200, error))

    def _script(self, method: str, n: int, outcome: Scripted) -> None:
        with self.lock:
            self._scripted.setdefault(method, deque()).extend([outcome] * n)

    # ----------------------------------------------------------------- record

    def messages(self, channel: str) -> list[Message]:
        """What the channel itself shows, in order: top-level messages and broadcast replies."""
        with self.lock:
            return [
                copy.deepcopy(m)
                for m in self._messages.get(channel, [])
                if not m.deleted and (m.thread_ts is None or m.reply_broadcast)
            ]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies whose `thread_ts` is `ts`, in order (broadcast ones included)."""
        with self.lock:
            return [
                copy.deepcopy(m)
                for m in self._messages.get(channel, [])
                if not m.deleted and m.thread_ts == ts
            ]

    def message(self, channel: str, ts: str) -> Message | None:
        """One message by channel and ts, top-level or reply, deleted or not."""
        with self.lock:
            found = self._find(channel, ts)
            return copy.deepcopy(found) if found else None

    def channel(self, id: str) -> Channel:
        """A snapshot of a channel (e.g. to check the bot joined it); KeyError if unknown."""
        with self.lock:
            return copy.deepcopy(self._channels[id])

    @property
    def ephemerals(self) -> list[Ephemeral]:
        """Every chat.postEphemeral that succeeded, in order."""
        with self.lock:
            return copy.deepcopy(self._ephemerals)

    @property
    def webhook_posts(self) -> list[WebhookPost]:
        """Every POST to a simulated response_url, in order."""
        with self.lock:
            return copy.deepcopy(self._webhook_posts)

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """Every Web API call as (method, params without the token), failed ones included."""
        with self.lock:
            return copy.deepcopy(self._calls)

    def wait_for(self, predicate: Callable[[Self], bool], timeout: float = 5.0) -> bool:
        """Block until `predicate(self)` holds (re-checked after each call); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    # ----------------------------------------------------------------- state helpers

    def _next_ts(self) -> str:
        # Real ts values are the posting time in µs; keep them unique and increasing regardless.
        now_us = int(self._clock() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 100)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _find(self, channel: str, ts: str) -> Message | None:
        for message in self._messages.get(channel, []):
            if message.ts == ts:
                return message
        return None

    def _live(self, channel: str, ts: Any) -> Message:
        message = self._find(channel, str(ts)) if ts else None
        if message is None or message.deleted:
            raise SlackError("message_not_found")
        return message

    def _open_dm(self, user_id: str) -> Channel:
        channel_id = self.dm_channel_id(user_id)
        if channel_id not in self._channels:
            self._channels[channel_id] = Channel(channel_id, user_id, is_im=True, user=user_id)
        return self._channels[channel_id]

    def _resolve(self, ref: Any) -> Channel:
        """A channel id, a `#name`/name, or a user id (the bot's DM with them)."""
        ref = str(ref or "")
        if ref in self._channels:
            return self._channels[ref]
        if USER_ID.match(ref):
            return self._open_dm(ref)
        name = ref.removeprefix("#")
        for channel in self._channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        raise SlackError("channel_not_found")

    def _visible(self, ref: Any) -> Channel:
        channel = self._resolve(ref)
        if channel.is_private and not channel.bot_member:
            raise SlackError("channel_not_found")
        return channel

    def _postable(self, ref: Any) -> Channel:
        channel = self._visible(ref)
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.bot_member:
            raise SlackError("not_in_channel")
        return channel
