"""Conversations: join, info, open, and the history reads (time ranges, cursors, threads,
tombstones)."""

from __future__ import annotations

import base64
import re
from typing import Any

from simulators.slack._model import (
    HISTORY_SCOPES,
    MAX_HISTORY_LIMIT,
    MAX_REPLIES_LIMIT,
    TOMBSTONE_TEXT,
    TS,
    USER_ID,
    Channel,
    Message,
    SlackError,
)
from simulators.slack._params import parse_bool
from simulators.slack._state import SlackState


class Conversations(SlackState):
    """conversations.join, .info, .open, .history and .replies."""

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
        if not USER_ID.match(users[0]):
            raise SlackError("user_not_found")
        existed = self.dm_channel_id(users[0]) in self._channels
        channel = self._open_dm(users[0])
        body: dict[str, Any] = {
            "channel": channel.to_api()
            if parse_bool(params.get("return_im"))
            else {"id": channel.id}
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
        message = self._find(channel.id, ts) if TS.match(ts) else None
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
        include = parse_bool(params.get("include_all_metadata"))
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
        include = parse_bool(params.get("include_all_metadata"))
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
    return bounds[0], bounds[1], parse_bool(params.get("inclusive"))


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
