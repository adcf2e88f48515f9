"""Posting and changing messages: chat.* and reactions.add."""

from __future__ import annotations

import copy
from typing import Any

from simulators.slack._content import MAX_TEXT_CHARS, MAX_UPDATE_TEXT_CHARS, message_content
from simulators.slack._model import TS, USER_ID, Ephemeral, Message, MessageVersion, SlackError
from simulators.slack._params import optional_bool, parse_bool, parse_metadata
from simulators.slack._state import SlackState


class Chat(SlackState):
    """chat.postMessage, chat.update, chat.postEphemeral, chat.delete, chat.getPermalink and
    reactions.add."""

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(params.get("channel"))
        text, blocks, attachments = message_content(params, MAX_TEXT_CHARS)
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None:
            thread_ts = str(thread_ts)
            if not TS.match(thread_ts):
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
            reply_broadcast=thread_ts is not None and parse_bool(params.get("reply_broadcast")),
            attachments=attachments,
            unfurl_links=optional_bool(params.get("unfurl_links")),
            unfurl_media=optional_bool(params.get("unfurl_media")),
            metadata=parse_metadata(params.get("metadata")),
        )
        self._messages.setdefault(channel.id, []).append(message)
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api()}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._visible(params.get("channel"))
        message = self._live(channel.id, params.get("ts"))
        if message.user != self.bot_user_id:
            raise SlackError("cant_update_message")
        text, blocks, attachments = message_content(params, MAX_UPDATE_TEXT_CHARS)
        metadata = parse_metadata(params.get("metadata"))
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
        if not USER_ID.match(user):
            raise SlackError("user_not_in_channel")
        text, blocks, _ = message_content(params, MAX_TEXT_CHARS)
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
