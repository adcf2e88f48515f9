"""What the simulated workspace holds (channels, users, messages, ephemerals, response_url
posts), the scopes each method needs, and Slack's `ok: false` answer."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOKEN = "xoxb-simulated-bot-token"
DEFAULT_TEAM_ID = "T0001"
DEFAULT_TEAM_DOMAIN = "acme"
DEFAULT_TEAM_NAME = "Acme"
DEFAULT_BOT_USER_ID = "U0BOT"
DEFAULT_BOT_ID = "B0BOT"
DEFAULT_APP_ID = "A0APP"
BOT_NAME = "deploy-monitor"

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
    "users.lookupByEmail": "users:read.email",
    # No scope: the Home tab is a feature of the app (manifest `home_tab_enabled`).
    "views.publish": None,
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

TS = re.compile(r"^\d+\.\d+$")
USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


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
    email: str | None = None

    def to_api(self, team_id: str) -> dict[str, Any]:
        """The user object as users.info returns it (minimal)."""
        profile: dict[str, Any] = {"real_name": self.real_name, "display_name": self.name}
        if self.email is not None:
            profile["email"] = self.email
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
            "profile": profile,
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
    """One POST to a simulated `response_url` (served under `/hooks/`), and when the
    simulator received it (its clock; recorded only, Slack sends nothing of it back)."""

    path: str
    payload: dict[str, Any]
    received_at: float = 0.0


@dataclass
class PublishedView:
    """One views.publish that succeeded: whose Home, and the view as Slack answered it."""

    user_id: str
    view: dict[str, Any]

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """The view's blocks."""
        blocks: list[dict[str, Any]] = self.view["blocks"]
        return blocks


@dataclass
class Scripted:
    """The answer scripted for one future call of a method (`rate_limit_next`, …)."""

    status: int
    error: str
    retry_after: int | None = None
    after_effect: bool = False  # the call is carried out, then answered with `status`
