"""Sends the bot what Slack would: signed slash commands, events and button clicks.

Bodies are built the way Slack builds them (form-encoded commands, a form field `payload`
holding the block_actions JSON, JSON Events API envelopes) and signed with
`slack_sdk.signature.SignatureVerifier.generate_signature`, so the bot's real request
verification runs. Everything goes to `<bot_url>/slack/events`, the one URL Bolt serves.

Two knobs make requests Slack would never send, to test that the bot refuses them:
`timestamp_offset` (seconds added to the signing timestamp; -600 is outside Slack's
5-minute replay window) and `wrong_secret` (sign with a different secret). Both can be
changed on the instance between requests.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Self, TypedDict, Unpack
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from simulators.slack import (
    DEFAULT_APP_ID,
    DEFAULT_BOT_USER_ID,
    DEFAULT_TEAM_DOMAIN,
    DEFAULT_TEAM_ID,
)

# Slack's outgoing requests identify themselves like this.
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
# The deprecated verification token Slack still puts in payloads; Bolt ignores it.
VERIFICATION_TOKEN = "verification-token-not-checked"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class CommandOptions(TypedDict, total=False):
    """The optional parts of a slash command (`SlackPayloads.command_fields`)."""

    command: str
    channel_name: str | None
    user_name: str | None
    response_url: str | None


class ClickOptions(TypedDict, total=False):
    """The optional parts of a button click (`SlackPayloads.block_actions`)."""

    message: Mapping[str, Any] | None
    block_id: str | None
    thread_ts: str | None
    channel_name: str | None


class Identity(TypedDict, total=False):
    """Whose requests these are (`SlackPayloads`' parameters)."""

    team_id: str
    clock: Callable[[], float]
    team_domain: str
    api_app_id: str
    bot_user_id: str
    response_url_base: str


class SlackPayloads:
    """What Slack sends an app, as payloads for any transport: slash-command fields, Events
    API envelopes, block_actions payloads (signed HTTP below; Socket Mode envelopes in
    `simulators/socket_mode.py`)."""

    def __init__(
        self,
        *,
        team_id: str = DEFAULT_TEAM_ID,
        clock: Callable[[], float] = time.time,
        team_domain: str = DEFAULT_TEAM_DOMAIN,
        api_app_id: str = DEFAULT_APP_ID,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        response_url_base: str = "https://hooks.slack.com",
    ) -> None:
        """`response_url_base` is where `response_url`s point: give `SlackSimulator.url +
        "/hooks"` so a bot's `respond()` lands in the simulator's `webhook_posts`."""
        self.team_id = team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self.response_url_base = response_url_base.rstrip("/")
        self.last_event_id: str | None = None
        self._clock = clock

    def command_fields(
        self, text: str, *, user_id: str, channel_id: str, **options: Unpack[CommandOptions]
    ) -> dict[str, str]:
        """The fields of a slash command invocation, field for field as Slack sends them."""
        channel_name = options.get("channel_name")
        user_name = options.get("user_name")
        response_url = options.get("response_url")
        command = options.get("command", "/deploy-monitor")
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name or _channel_name(channel_id),
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url or self._response_url("commands"),
            "trigger_id": self._trigger_id(),
        }

    def reaction_event(
        self, user_id: str, reaction: str, channel: str, ts: str, *, item_user: str | None = None
    ) -> dict[str, Any]:
        """A `reaction_added` event (to wrap with `event_envelope`)."""
        return {
            "type": "reaction_added",
            "user": user_id,
            "reaction": reaction,
            "item_user": item_user or self.bot_user_id,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": f"{self._clock():.6f}",
        }

    def app_home_opened_event(
        self, user_id: str, *, tab: str = "home", view: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """An `app_home_opened` event (to wrap with `event_envelope`): `view` is the Home the
        user last had published, which Slack includes once there is one."""
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": f"D{user_id[1:]}",
            "tab": tab,
            "event_ts": f"{self._clock():.6f}",
        }
        if view is not None:
            event["view"] = dict(view)
        return event

    def event_envelope(
        self, event: Mapping[str, Any], *, event_id: str | None = None
    ) -> dict[str, Any]:
        """Any event in Slack's `event_callback` envelope (sets `last_event_id`)."""
        event_id = event_id or f"Ev{uuid.uuid4().hex[:10].upper()}"
        self.last_event_id = event_id
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(self._clock()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.uuid4().hex}",
        }

    def block_actions(
        self,
        user_id: str,
        action_id: str,
        value: str,
        channel: str,
        message_ts: str,
        **options: Unpack[ClickOptions],
    ) -> dict[str, Any]:
        """A button click on a message, as a `block_actions` interactivity payload.

        Pass `message` (e.g. `SlackSimulator.message(...).to_api()`) to embed the real message;
        the clicked button's `block_id` and label are then taken from its blocks.
        """
        message = options.get("message")
        block_id = options.get("block_id")
        thread_ts = options.get("thread_ts")
        channel_name = options.get("channel_name")
        if message is None:
            message = {
                "type": "message",
                "user": self.bot_user_id,
                "text": "",
                "ts": message_ts,
                "team": self.team_id,
                "blocks": [],
            }
            if thread_ts:
                message = {**message, "thread_ts": thread_ts}
        found_block_id, label = _find_button(message, action_id)
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if thread_ts or message.get("thread_ts"):
            container["thread_ts"] = thread_ts or message["thread_ts"]
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {
                "id": user_id,
                "username": user_id.lower(),
                "name": user_id.lower(),
                "team_id": self.team_id,
            },
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": channel_name or _channel_name(channel)},
            "message": dict(message),
            "state": {"values": {}},
            "response_url": self._response_url("actions"),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id or found_block_id or "actions",
                    "text": {"type": "plain_text", "text": label or action_id, "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": f"{self._clock():.6f}",
                }
            ],
        }
        return payload

    def home_block_actions(
        self, user_id: str, action_id: str, value: str, view: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A button click in the App Home `view` (e.g. `SlackSimulator.home_view(user)`): its
        container is the view, and it carries no channel, message or response_url."""
        block_id, label = _find_button(view, action_id)
        return {
            "type": "block_actions",
            "user": {
                "id": user_id,
                "username": user_id.lower(),
                "name": user_id.lower(),
                "team_id": self.team_id,
            },
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "container": {"type": "view", "view_id": str(view.get("id", ""))},
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": dict(view),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id or "actions",
                    "text": {"type": "plain_text", "text": label or action_id, "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": f"{self._clock():.6f}",
                }
            ],
        }

    def _response_url(self, kind: str) -> str:
        # Shaped like https://hooks.slack.com/commands/T…/<number>/<secret>.
        number, secret = uuid.uuid4().int % 10**13, uuid.uuid4().hex[:24]
        return f"{self.response_url_base}/{kind}/{self.team_id}/{number}/{secret}"

    def _trigger_id(self) -> str:
        return f"{int(self._clock())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}"


class SlackRequestSender(SlackPayloads):
    """A stand-in for Slack's side of slash commands, the Events API and interactivity over
    HTTP: every request signed and POSTed to the bot's `/slack/events`."""

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        *,
        timestamp_offset: float = 0.0,
        wrong_secret: bool = False,
        http: httpx.Client | None = None,
        **identity: Unpack[Identity],
    ) -> None:
        """`http` lets a test route requests in-process, e.g. `httpx.WSGITransport`;
        `identity` is the workspace and app the requests come from (see `SlackPayloads`)."""
        super().__init__(**identity)
        self.events_url = bot_url.rstrip("/") + "/slack/events"
        self.signing_secret = signing_secret
        self.timestamp_offset = timestamp_offset
        self.wrong_secret = wrong_secret
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=10.0)

    def close(self) -> None:
        """Close the HTTP client if this sender created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- slash commands

    def slash_command(
        self, text: str, *, user_id: str, channel_id: str, **options: Unpack[CommandOptions]
    ) -> httpx.Response:
        """POST a slash command invocation, field for field as Slack sends it."""
        fields = self.command_fields(text, user_id=user_id, channel_id=channel_id, **options)
        return self.post(urlencode(fields), FORM)

    # ----------------------------------------------------------------- Events API

    def reaction_added(
        self,
        user_id: str,
        reaction: str,
        channel: str,
        ts: str,
        *,
        event_id: str | None = None,
        item_user: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> httpx.Response:
        """POST a `reaction_added` event; the event_id used is kept in `last_event_id`.

        Redeliver it as Slack's retries do with `event_id=sender.last_event_id, retry_num=1`.
        """
        event = self.reaction_event(user_id, reaction, channel, ts, item_user=item_user)
        return self.event_callback(
            event, event_id=event_id, retry_num=retry_num, retry_reason=retry_reason
        )

    def app_home_opened(
        self, user_id: str, *, tab: str = "home", view: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """POST an `app_home_opened` event (the user opened the app's Home or Messages tab)."""
        return self.event_callback(self.app_home_opened_event(user_id, tab=tab, view=view))

    def event_callback(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> httpx.Response:
        """POST any event in Slack's `event_callback` envelope (sets `last_event_id`).

        `retry_num` adds the `X-Slack-Retry-Num`/`X-Slack-Retry-Reason` headers of a retry.
        """
        envelope = self.event_envelope(event, event_id=event_id)
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self.post(json.dumps(envelope), JSON, headers)

    def url_verification(self, challenge: str) -> httpx.Response:
        """POST the challenge Slack sends when a request URL is saved in the app config."""
        body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return self.post(json.dumps(body), JSON)

    # ----------------------------------------------------------------- interactivity

    def block_action(
        self,
        user_id: str,
        action_id: str,
        value: str,
        channel: str,
        message_ts: str,
        **options: Unpack[ClickOptions],
    ) -> httpx.Response:
        """POST a button click on a message (see `block_actions`)."""
        payload = self.block_actions(user_id, action_id, value, channel, message_ts, **options)
        return self.post(urlencode({"payload": json.dumps(payload)}), FORM)

    def home_action(
        self, user_id: str, action_id: str, value: str, view: Mapping[str, Any]
    ) -> httpx.Response:
        """POST a button click in an App Home view (see `home_block_actions`)."""
        payload = self.home_block_actions(user_id, action_id, value, view)
        return self.post(urlencode({"payload": json.dumps(payload)}), FORM)

    # ----------------------------------------------------------------- signing

    def signed_headers(self, body: str, content_type: str) -> dict[str, str]:
        """The headers Slack would send with `body` (honours the two knobs)."""
        timestamp = str(int(self._clock() + self.timestamp_offset))
        secret = self.signing_secret + "-wrong" if self.wrong_secret else self.signing_secret
        signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
        assert signature is not None  # only None without a timestamp
        return {
            "Content-Type": content_type,
            "User-Agent": SLACK_USER_AGENT,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        }

    def post(
        self, body: str, content_type: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Sign `body` and POST it to the bot's `/slack/events`."""
        all_headers = {**self.signed_headers(body, content_type), **(headers or {})}
        return self._http.post(self.events_url, content=body.encode(), headers=all_headers)


def _channel_name(channel_id: str) -> str:
    # What Slack puts in channel_name where the id alone says the conversation kind.
    if channel_id.startswith("D"):
        return "directmessage"
    if channel_id.startswith("G"):
        return "privategroup"
    return channel_id.lower()


def _find_button(message: Mapping[str, Any], action_id: str) -> tuple[str | None, str | None]:
    """(block_id, label) of the element with `action_id` in the message's blocks, if any."""
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                text = element.get("text")
                label = text.get("text") if isinstance(text, dict) else None
                return block.get("block_id"), label
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("action_id") == action_id:
            text = accessory.get("text")
            return block.get("block_id"), text.get("text") if isinstance(text, dict) else None
    return None, None
