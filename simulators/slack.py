"""A Slack Web API simulator for tests and the demo.

Point a real client at it: `WebClient(token=sim.token, base_url=sim.api_url)`. Methods are
answered on `/api/<method>` the way Slack documents them: HTTP 200 with `{"ok": true, …}` or
`{"ok": false, "error": "<code>"}`, HTTP 429 + `Retry-After` when rate limited. Bodies may be
form-encoded, multipart or JSON (slack_sdk picks per method); query parameters count too.

What is modelled, because the bot depends on it:
- the bot token (`invalid_auth`, `not_authed`) and, optionally, its scopes (`missing_scope`);
- channel membership: `not_in_channel` for a public channel the bot has not joined,
  `channel_not_found` for a private one (Slack does not reveal those exist);
- threads, broadcasts, edits, deletions, reactions, ephemerals, permalinks, DMs;
- message metadata (`metadata` on chat.postMessage / chat.update), returned by
  conversations.history and conversations.replies with `include_all_metadata`; those two
  read methods need the history scope of the conversation's type, page with `cursor`, and
  show a deleted message that still has replies as a tombstone;
- the size limits of chat.postMessage / chat.update and the Block Kit limits that matter here;
- scripted failures: 429s, 5xx, and arbitrary `ok: false` errors for the next n calls, and
  5xx answers to calls that did take effect (`lose_answer_next`: Slack stored the message,
  the answer never arrived), the case that makes a blind retry post twice;
- `on_call`: a hook run after each call took effect, before it is answered (a test can kill
  the caller there).

What is not: search methods, attachments beyond storing them, files, user groups,
multi-person DMs, `response_url` semantics beyond recording what was posted to it.
Any `U…`/`W…` id is taken as a workspace member; `add_user` only gives one a name or flags.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs

from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler

from simulators._http import Request, Response, SimulatorServer

DEFAULT_TOKEN = "xoxb-simulated-bot-token"
DEFAULT_TEAM_ID = "T0001"
DEFAULT_TEAM_DOMAIN = "acme"
DEFAULT_TEAM_NAME = "Acme"
DEFAULT_BOT_USER_ID = "U0BOT"
DEFAULT_BOT_ID = "B0BOT"
DEFAULT_APP_ID = "A0APP"
BOT_NAME = "deploy-monitor"

# Limits from the chat.postMessage / chat.update docs and slack_sdk's Block Kit validators.
MAX_TEXT_CHARS = 40_000
MAX_UPDATE_TEXT_CHARS = 4_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT_CHARS = 3_000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT_CHARS = 2_000
MAX_HEADER_TEXT_CHARS = 150
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID_CHARS = 255
MAX_ACTION_ID_CHARS = 255
MAX_BUTTON_TEXT_CHARS = 75
MAX_BUTTON_VALUE_CHARS = 2_000

# Bot-token scope each simulated method requires (None: no scope needed).
METHOD_SCOPES: dict[str, str | None] = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.delete": "chat:write",
    "chat.getPermalink": None,
    "reactions.add": "reactions:write",
    "conversations.join": "channels:join",
    "conversations.info": "channels:read",
    "conversations.open": "im:write",
    "users.info": "users:read",
    # The history scope depends on the conversation's type: checked by the method itself.
    "conversations.history": None,
    "conversations.replies": None,
}
# conversations.history / conversations.replies: the scope each kind of conversation needs.
HISTORY_SCOPES = {"public": "channels:history", "private": "groups:history", "im": "im:history"}
# What a deleted message that still has replies shows as (Slack keeps the thread readable).
TOMBSTONE_TEXT = "This message was deleted."
MAX_REPLIES_LIMIT = 1000
MAX_HISTORY_LIMIT = 999

# What auth.test reports by default: the methods' scopes plus the slash command's and the
# reaction_added event's, i.e. what manifest.yml grants.
DEFAULT_SCOPES = sorted(
    {s for s in METHOD_SCOPES.values() if s}
    | set(HISTORY_SCOPES.values())
    | {"commands", "reactions:read"}
)

_TS = re.compile(r"^\d+\.\d+$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


class SlackError(Exception):
    """An `ok: false` answer; `extra` fields are merged into the response body."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class Channel:
    """A conversation the workspace knows about."""

    id: str
    name: str
    is_private: bool = False
    bot_member: bool = True
    is_archived: bool = False
    is_im: bool = False
    user: str | None = None  # the other party of a DM

    def to_api(self) -> dict[str, Any]:
        """The conversation object as Slack returns it (the fields the bot may read)."""
        body: dict[str, Any] = {
            "id": self.id,
            "created": 1_700_000_000,
            "is_archived": self.is_archived,
            "is_im": self.is_im,
            "is_member": self.bot_member,
        }
        if self.is_im:
            body["user"] = self.user
        else:
            body.update(
                name=self.name,
                is_channel=not self.is_private,
                is_group=False,
                is_private=self.is_private,
            )
        return body


@dataclass
class User:
    """A workspace member, for users.info."""

    id: str
    name: str
    real_name: str
    is_bot: bool = False
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    tz: str = "Europe/Zurich"

    def to_api(self, team_id: str) -> dict[str, Any]:
        """The user object as users.info returns it (minimal)."""
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "is_admin": False,
            "is_owner": False,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "tz": self.tz,
            "profile": {"real_name": self.real_name, "display_name": self.name},
        }


@dataclass
class MessageVersion:
    """What a message said before one chat.update."""

    text: str
    blocks: list[dict[str, Any]]


@dataclass
class Message:
    """One message as stored; `history` holds its earlier versions, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    user: str
    bot_id: str | None = None
    team: str = DEFAULT_TEAM_ID
    thread_ts: str | None = None
    reply_broadcast: bool = False
    attachments: list[dict[str, Any]] = field(default_factory=list)
    unfurl_links: bool | None = None
    unfurl_media: bool | None = None
    history: list[MessageVersion] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    deleted: bool = False
    # {"event_type": …, "event_payload": {…}}: only API reads with include_all_metadata see it.
    metadata: dict[str, Any] | None = None

    @property
    def edited(self) -> bool:
        """Whether chat.update changed it at least once."""
        return bool(self.history)

    def to_api(self, *, include_metadata: bool = False) -> dict[str, Any]:
        """The message object as Slack returns it (e.g. inside a block_actions payload)."""
        body: dict[str, Any] = {
            "type": "message",
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
            "team": self.team,
            "blocks": copy.deepcopy(self.blocks),
        }
        if self.bot_id:
            body["bot_id"] = self.bot_id
            body["app_id"] = DEFAULT_APP_ID
        if self.thread_ts:
            body["thread_ts"] = self.thread_ts
            if self.reply_broadcast:
                body["subtype"] = "thread_broadcast"
        if self.attachments:
            body["attachments"] = copy.deepcopy(self.attachments)
        if self.reactions:
            body["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if include_metadata and self.metadata is not None:
            body["metadata"] = copy.deepcopy(self.metadata)
        return body


@dataclass
class Ephemeral:
    """A chat.postEphemeral message: only `user` saw it, and Slack keeps no copy."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None


@dataclass
class WebhookPost:
    """One POST to a simulated `response_url` (served under `/hooks/`)."""

    path: str
    payload: dict[str, Any]


@dataclass
class _Scripted:
    status: int
    error: str
    retry_after: int | None = None
    after_effect: bool = False  # the call is carried out, then answered with `status`


class SlackSimulator(SimulatorServer):
    """The Slack Web API on loopback, with a record of everything the bot did to it."""

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
        self._scripted: dict[str, deque[_Scripted]] = {}
        # Called as on_call(method, params, answer) after a call took effect, before it is
        # answered, outside the simulator's lock.
        self.on_call: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None
        # Socket Mode (see simulators/socket_mode.py): the app-level token that may call
        # apps.connections.open, and what hands out a new WebSocket URL for it.
        self.app_token: str | None = None
        self.open_socket: Callable[[], str] | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "conversations.join": self._conversations_join,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
        }
        for verb in ("GET", "POST"):
            self.route(verb, r"/api/(?P<method>[A-Za-z0-9_.]+)", self._api)
        self.route("POST", r"/hooks/(?P<rest>.+)", self._webhook)

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
    ) -> None:
        """Give a user a name or guest/bot flags for users.info."""
        with self.lock:
            self._users[id] = User(
                id, name, real_name or name, is_bot, is_restricted, is_ultra_restricted
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
        self._script(method, n, _Scripted(429, "ratelimited", retry_after))

    def fail_next(self, method: str, n: int = 1, status: int = 500) -> None:
        """Answer the next `n` calls of `method` with an HTTP `status` (5xx) error."""
        self._script(method, n, _Scripted(status, "internal_error"))

    def lose_answer_next(self, method: str, n: int = 1, status: int = 500) -> None:
        """Carry out the next `n` calls of `method`, then answer each with HTTP `status`, as
        when Slack stores a message and the answer is lost (a 5xx from a proxy, a timeout)."""
        self._script(method, n, _Scripted(status, "internal_error", after_effect=True))

    def error_next(self, method: str, error: str, n: int = 1) -> None:
        """Answer the next `n` calls of `method` with HTTP 200 `{"ok": false, "error": error}`."""
        self._script(method, n, _Scripted(200, error))

    def _script(self, method: str, n: int, outcome: _Scripted) -> None:
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

    def wait_for(self, predicate: Callable[[SlackSimulator], bool], timeout: float = 5.0) -> bool:
        """Block until `predicate(self)` holds (re-checked after each call); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    # ----------------------------------------------------------------- HTTP

    def _api(self, request: Request) -> Response:
        method = request.params["method"]
        try:
            params = _parse_params(request)
        except SlackError as exc:
            return Response.json({"ok": False, "error": exc.error})
        # Slack also takes the token as a body parameter; never keep it in the record.
        body_token = params.pop("token", None)
        token = _bearer(request.header("authorization")) or body_token
        with self._changed:
            self._calls.append((method, copy.deepcopy(params)))
            try:
                response = self._answer(method, token, params)
            finally:
                self._changed.notify_all()
        hook = self.on_call
        if hook is not None and response.status == 200:
            hook(method, params, json.loads(response.body or b"{}"))
        return response

    def _answer(self, method: str, token: str | None, params: dict[str, Any]) -> Response:
        scripted = self._scripted.get(method)
        if scripted:
            outcome = scripted.popleft()
            if outcome.after_effect:
                self._perform(method, token, params)  # done; the answer below replaces its own
            headers = []
            if outcome.retry_after is not None:
                headers.append(("Retry-After", str(outcome.retry_after)))
            return Response.json(
                {"ok": False, "error": outcome.error}, status=outcome.status, headers=headers
            )
        return self._perform(method, token, params)

    def _perform(self, method: str, token: str | None, params: dict[str, Any]) -> Response:
        if not token:
            return Response.json({"ok": False, "error": "not_authed"})
        if method == "apps.connections.open":
            return Response.json(self._apps_connections_open(token))
        if self.app_token is not None and token == self.app_token:
            # An app-level token only opens connections; Web API methods want the bot token.
            return Response.json({"ok": False, "error": "not_allowed_token_type"})
        if token != self.token:
            return Response.json({"ok": False, "error": "invalid_auth"})
        scope_header = [("x-oauth-scopes", ",".join(self.scopes))]
        handler = self._methods.get(method)
        if handler is None:
            return Response.json({"ok": False, "error": "unknown_method"}, headers=scope_header)
        needed = METHOD_SCOPES.get(method)
        if self._enforce_scopes and needed and needed not in self.scopes:
            body = {
                "ok": False,
                "error": "missing_scope",
                "needed": needed,
                "provided": ",".join(self.scopes),
            }
            return Response.json(body, headers=scope_header)
        try:
            body = {"ok": True, **handler(params)}
        except SlackError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
        return Response.json(body, headers=scope_header)

    def _webhook(self, request: Request) -> Response:
        try:
            payload = request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            payload = {"text": request.body.decode(errors="replace")}
        with self._changed:
            self._webhook_posts.append(WebhookPost(request.path, payload))
            self._changed.notify_all()
        return Response.text("ok")

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
        if _USER_ID.match(ref):
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

    # ----------------------------------------------------------------- methods

    def _apps_connections_open(self, token: str) -> dict[str, Any]:
        """Only an app-level token (xapp-) with connections:write opens a connection."""
        if token == self.token:
            return {"ok": False, "error": "not_allowed_token_type"}
        if self.app_token is None or token != self.app_token or self.open_socket is None:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.open_socket()}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(params.get("channel"))
        text, blocks, attachments = _content(params, MAX_TEXT_CHARS)
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None:
            thread_ts = str(thread_ts)
            if not _TS.match(thread_ts):
                raise SlackError(
                    "invalid_thread_ts",
                    response_metadata={
                        "messages": [f"[ERROR] {thread_ts} is not a valid thread_ts"]
                    },
                )
        # A well-formed but unknown thread_ts is accepted, as Slack does: the reply is
        # stored under it and shows up in neither the channel nor any real thread.
        message = Message(
            channel=channel.id,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            user=self.bot_user_id,
            bot_id=self.bot_id,
            team=self.team_id,
            thread_ts=thread_ts,
            reply_broadcast=thread_ts is not None and _bool(params.get("reply_broadcast")),
            attachments=attachments,
            unfurl_links=_optional_bool(params.get("unfurl_links")),
            unfurl_media=_optional_bool(params.get("unfurl_media")),
            metadata=_metadata(params.get("metadata")),
        )
        self._messages.setdefault(channel.id, []).append(message)
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api()}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(params.get("channel"))
        message = self._live(channel.id, params.get("ts"))
        if message.user != self.bot_user_id:
            raise SlackError("cant_update_message")
        text, blocks, attachments = _content(params, MAX_UPDATE_TEXT_CHARS)
        metadata = _metadata(params.get("metadata"))
        message.history.append(MessageVersion(message.text, copy.deepcopy(message.blocks)))
        if metadata is not None:
            message.metadata = metadata
        # Slack keeps what the update leaves out: omitted blocks stay, an omitted text stays.
        if "text" in params:
            message.text = text
        if "blocks" in params:
            message.blocks = blocks
        if "attachments" in params:
            message.attachments = attachments
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_api(),
        }

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(params.get("channel"))
        user = str(params.get("user") or "")
        if not _USER_ID.match(user):
            raise SlackError("user_not_in_channel")
        text, blocks, _ = _content(params, MAX_TEXT_CHARS)
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        ephemeral = Ephemeral(channel.id, user, self._next_ts(), text, blocks, thread_ts)
        self._ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(params.get("channel"))
        message = self._live(channel.id, params.get("ts"))
        if message.user != self.bot_user_id:
            raise SlackError("cant_delete_message")
        message.deleted = True
        return {"channel": channel.id, "ts": message.ts}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(params.get("channel"))
        message = self._live(channel.id, params.get("message_ts"))
        link = (
            f"https://{self.team_domain}.slack.com/archives/{channel.id}/"
            f"p{message.ts.replace('.', '')}"
        )
        if message.thread_ts:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(params.get("channel"))
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        if not params.get("timestamp"):
            raise SlackError("no_item_specified")
        message = self._live(channel.id, params["timestamp"])
        users = message.reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise SlackError("already_reacted")
        users.append(self.bot_user_id)
        return {}

    def _conversations_join(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(params.get("channel") or "")
        channel = self._channels.get(channel_id)
        if channel is None:
            raise SlackError("channel_not_found")
        if channel.is_im or channel.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("is_archived")
        already = channel.bot_member
        channel.bot_member = True
        body: dict[str, Any] = {"channel": channel.to_api()}
        if already:
            body["warning"] = "already_in_channel"
            body["response_metadata"] = {"warnings": ["already_in_channel"]}
        return body

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        # Private conversations the bot is not in do not exist as far as it can tell.
        return {"channel": self._visible(params.get("channel")).to_api()}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            return {"channel": self._visible(params["channel"]).to_api()}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise SlackError("not_supported_by_simulator")
        if not _USER_ID.match(users[0]):
            raise SlackError("user_not_found")
        existed = self.dm_channel_id(users[0]) in self._channels
        channel = self._open_dm(users[0])
        body: dict[str, Any] = {
            "channel": channel.to_api() if _bool(params.get("return_im")) else {"id": channel.id}
        }
        if existed:
            body.update(no_op=True, already_open=True)
        return body

    def _readable(self, ref: Any) -> Channel:
        """A conversation whose history the bot may read: a member, with the right scope."""
        channel = self._visible(ref)
        if not channel.bot_member and not channel.is_im:
            raise SlackError("not_in_channel")  # bot tokens read only where they are members
        kind = "im" if channel.is_im else "private" if channel.is_private else "public"
        needed = HISTORY_SCOPES[kind]
        if self._enforce_scopes and needed not in self.scopes:
            raise SlackError("missing_scope", needed=needed, provided=",".join(self.scopes))
        return channel

    def _replies_of(self, channel: str, ts: str) -> list[Message]:
        return sorted(
            (
                m
                for m in self._messages.get(channel, [])
                if m.thread_ts == ts and m.ts != ts and not m.deleted
            ),
            key=lambda m: _ts_key(m.ts),
        )

    def _listed(self, message: Message, include_metadata: bool) -> dict[str, Any]:
        """A message as the history methods list it; a deleted one with replies: a tombstone."""
        body = message.to_api(include_metadata=include_metadata)
        replies = self._replies_of(message.channel, message.ts)
        if message.thread_ts is None and replies:
            body.update(
                thread_ts=message.ts,
                reply_count=len(replies),
                latest_reply=replies[-1].ts,
                reply_users=sorted({r.user for r in replies}),
            )
        elif message.thread_ts is not None and message.thread_ts != message.ts:
            parent = self._find(message.channel, message.thread_ts)
            body["parent_user_id"] = parent.user if parent else message.user
        if message.deleted:
            body = {
                "type": "message",
                "subtype": "tombstone",
                "text": TOMBSTONE_TEXT,
                "user": "USLACKBOT",
                "hidden": True,
                "ts": message.ts,
                **{k: body[k] for k in ("thread_ts", "reply_count", "latest_reply") if k in body},
            }
        return body

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(params.get("channel"))
        ts = str(params.get("ts") or "")
        message = self._find(channel.id, ts) if _TS.match(ts) else None
        if message is None:
            raise SlackError("thread_not_found")
        parent_ts = message.thread_ts or message.ts  # a reply's ts names its thread too
        parent = self._find(channel.id, parent_ts)
        replies = self._replies_of(channel.id, parent_ts)
        if parent is None or (parent.deleted and not replies):
            raise SlackError("thread_not_found")
        oldest, latest, inclusive = _time_range(params)
        window = [m for m in replies if _in_range(m.ts, oldest, latest, inclusive)]
        # The parent always leads the answer, whatever the time range.
        listed = [parent, *window]
        page, more, cursor = _page(listed, params, default=MAX_REPLIES_LIMIT, top=MAX_REPLIES_LIMIT)
        include = _bool(params.get("include_all_metadata"))
        body: dict[str, Any] = {
            "messages": [self._listed(m, include) for m in page],
            "has_more": more,
        }
        if cursor:
            body["response_metadata"] = {"next_cursor": cursor}
        return body

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(params.get("channel"))
        oldest, latest, inclusive = _time_range(params)
        shown = [
            m
            for m in self._messages.get(channel.id, [])
            if (m.thread_ts is None or m.reply_broadcast)
            and (not m.deleted or (m.thread_ts is None and self._replies_of(channel.id, m.ts)))
            and _in_range(m.ts, oldest, latest, inclusive)
        ]
        shown.sort(key=lambda m: _ts_key(m.ts), reverse=True)  # newest first
        page, more, cursor = _page(shown, params, default=100, top=MAX_HISTORY_LIMIT)
        include = _bool(params.get("include_all_metadata"))
        body: dict[str, Any] = {
            "messages": [self._listed(m, include) for m in page],
            "has_more": more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if cursor:
            body["response_metadata"] = {"next_cursor": cursor}
        return body

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user") or "")
        user = self._users.get(user_id)
        if user is None:
            if not _USER_ID.match(user_id):
                raise SlackError("user_not_found")
            user = User(user_id, user_id.lower(), user_id.lower())
        return {"user": user.to_api(self.team_id)}


# --------------------------------------------------------------------- request parsing


def _bearer(header: str | None) -> str | None:
    if header and header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip() or None
    return None


def _parse_params(request: Request) -> dict[str, Any]:
    """Query parameters plus the body, whichever of Slack's three encodings it uses."""
    params: dict[str, Any] = {k: v[0] for k, v in request.query.items()}
    if not request.body:
        return params
    content_type = (request.header("content-type") or "").lower()
    if content_type.startswith("application/json"):
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise SlackError("invalid_json") from exc
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        params.update(body)
    elif content_type.startswith("multipart/form-data"):
        params.update(_multipart(request.header("content-type") or "", request.body))
    else:
        try:
            form = parse_qs(request.body.decode(), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise SlackError("invalid_form_data") from exc
        params.update({k: v[0] for k, v in form.items()})
    return params


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    parsed = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not parsed.is_multipart():
        raise SlackError("invalid_form_data")
    fields: dict[str, Any] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode() if isinstance(payload, bytes) else ""
    return fields


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else _bool(value)


def _metadata(value: Any) -> dict[str, Any] | None:
    """Validated message metadata: a JSON object with `event_type` and `event_payload`."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise SlackError("invalid_metadata_format") from exc
    if not isinstance(value, dict):
        raise SlackError("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise SlackError("invalid_metadata_schema")
    return {"event_type": event_type, "event_payload": copy.deepcopy(payload)}


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _time_range(params: dict[str, Any]) -> tuple[str | None, str | None, bool]:
    """(oldest, latest, inclusive) of a history read; bad timestamps are Slack's errors."""
    bounds: list[str | None] = []
    for name in ("oldest", "latest"):
        value = params.get(name)
        if value is None or value == "":
            bounds.append(None)
            continue
        text = str(value)
        if not re.fullmatch(r"\d+(\.\d+)?", text):
            raise SlackError(f"invalid_ts_{name}")
        bounds.append(text if "." in text else f"{text}.000000")
    return bounds[0], bounds[1], _bool(params.get("inclusive"))


def _in_range(ts: str, oldest: str | None, latest: str | None, inclusive: bool) -> bool:
    key = _ts_key(ts)
    if oldest is not None:
        low = _ts_key(oldest)
        if key < low or (key == low and not inclusive):
            return False
    if latest is not None:
        high = _ts_key(latest)
        if key > high or (key == high and not inclusive):
            return False
    return True


def _page(
    items: list[Message], params: dict[str, Any], *, default: int, top: int
) -> tuple[list[Message], bool, str]:
    """One page of `items` after the `cursor`; (page, has_more, next_cursor or "")."""
    try:
        limit = int(params.get("limit") or default)
    except (TypeError, ValueError):
        limit = default
    limit = max(1, min(limit, top))
    start = 0
    cursor = str(params.get("cursor") or "")
    if cursor:
        try:
            decoded = base64.b64decode(cursor.encode(), validate=True).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise SlackError("invalid_cursor") from exc
        if not decoded.startswith("next_ts:"):
            raise SlackError("invalid_cursor")
        next_ts = decoded.removeprefix("next_ts:")
        positions = [i for i, m in enumerate(items) if m.ts == next_ts]
        if not positions:
            raise SlackError("invalid_cursor")
        start = positions[0]
    page = items[start : start + limit]
    rest = items[start + limit :]
    next_cursor = base64.b64encode(f"next_ts:{rest[0].ts}".encode()).decode() if rest else ""
    return page, bool(rest), next_cursor


def _json_list(value: Any, error: str) -> list[Any]:
    """A list argument that may arrive as JSON (form bodies) or as a list (JSON bodies)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise SlackError(error) from exc
    if not isinstance(value, list):
        raise SlackError(error)
    return value


def _content(
    params: dict[str, Any], max_text: int
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Validated (text, blocks, attachments) of a message-posting call."""
    text = "" if params.get("text") is None else str(params["text"])
    blocks = _blocks(params.get("blocks"))
    attachments = _json_list(params.get("attachments"), "invalid_attachments")
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if len(text) > max_text:
        raise SlackError("msg_too_long")
    return text, blocks, attachments


def _blocks(raw: Any) -> list[dict[str, Any]]:
    blocks = _json_list(raw, "invalid_blocks_format")
    problems = _block_problems(blocks)
    if problems:
        raise SlackError(
            "invalid_blocks",
            errors=problems,
            response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
        )
    return blocks


def _block_problems(blocks: list[Any]) -> list[str]:
    """Block Kit rules Slack enforces that a renderer can plausibly break."""
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(_at(f"no more than {MAX_BLOCKS} items allowed", "/blocks"))
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(_at("missing required field: type", where))
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > MAX_BLOCK_ID_CHARS:
                problems.append(_at("block_id too long", where))
            if block_id in block_ids:
                problems.append(_at("duplicate block_id", where))
            block_ids.add(str(block_id))
        kind = block["type"]
        if kind == "section":
            problems += _section_problems(block, where)
        elif kind == "header":
            text = _text_of(block.get("text"))
            if text is None or len(text) > MAX_HEADER_TEXT_CHARS:
                problems.append(
                    _at(f"must be 1..{MAX_HEADER_TEXT_CHARS} characters", f"{where}/text")
                )
        elif kind == "actions":
            problems += _actions_problems(block, where)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(
                    _at(f"must have 1..{MAX_CONTEXT_ELEMENTS} elements", f"{where}/elements")
                )
    return problems


def _at(message: str, pointer: str) -> str:
    """A block problem worded the way Slack reports it."""
    return f"{message} [json-pointer:{pointer}]"


def _text_of(obj: Any) -> str | None:
    """The `text` of a text object, or None if it is not one."""
    if (
        isinstance(obj, dict)
        and obj.get("type") in ("plain_text", "mrkdwn")
        and isinstance(obj.get("text"), str)
    ):
        return str(obj["text"])
    return None


def _section_problems(block: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    if "text" not in block and "fields" not in block:
        problems.append(_at("must provide text or fields", where))
    if "text" in block:
        text = _text_of(block["text"])
        if text is None:
            problems.append(_at("invalid text object", f"{where}/text"))
        elif not 1 <= len(text) <= MAX_SECTION_TEXT_CHARS:
            problems.append(
                _at(
                    f"must be between 1 and {MAX_SECTION_TEXT_CHARS} characters",
                    f"{where}/text/text",
                )
            )
    if "fields" in block:
        fields = block["fields"]
        if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
            problems.append(
                _at(f"no more than {MAX_SECTION_FIELDS} items allowed", f"{where}/fields")
            )
        else:
            for j, item in enumerate(fields):
                text = _text_of(item)
                if text is None or len(text) > MAX_FIELD_TEXT_CHARS:
                    problems.append(_at("invalid field", f"{where}/fields/{j}"))
    return problems


def _actions_problems(block: dict[str, Any], where: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
        return [_at(f"must have 1..{MAX_ACTIONS_ELEMENTS} elements", f"{where}/elements")]
    problems: list[str] = []
    action_ids: set[str] = set()
    for j, element in enumerate(elements):
        at = f"{where}/elements/{j}"
        if not isinstance(element, dict):
            problems.append(_at("invalid element", at))
            continue
        action_id = element.get("action_id")
        if action_id is not None:
            if len(str(action_id)) > MAX_ACTION_ID_CHARS:
                problems.append(_at("action_id too long", at))
            if action_id in action_ids:
                problems.append(_at("duplicate action_id", at))
            action_ids.add(str(action_id))
        if element.get("type") == "button":
            label = _text_of(element.get("text"))
            if label is None or len(label) > MAX_BUTTON_TEXT_CHARS:
                problems.append(_at(f"button text must be 1..{MAX_BUTTON_TEXT_CHARS} chars", at))
            if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE_CHARS:
                problems.append(_at("button value too long", at))
    return problems
