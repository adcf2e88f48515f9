"""Malformed requests from Slack through the real Bolt app (`create_app` behind `wsgi_app`),
signed as Slack signs them and routed in-process: the requester gets a clear ephemeral
answer, never a stack trace, and nothing is queued or posted."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis

from bot.slack.app import create_app, wsgi_app
from bot.slack.face import SlackFace, build_face
from bot.slack.render import UNREADABLE
from bot.slack.settings import BotSettings
from simulators.slack import SlackSimulator
from simulators.slack_client import FORM, JSON, SlackRequestSender
from tests.conftest import TEST_REDIS_URL, wait_for

SECRET = "test-signing-secret-0123456789abcdef"
CHANNEL, ALICE = "C0DEPLOYS", "U0ALICE"


@dataclass
class Bot:
    face: SlackFace
    sim: SlackSimulator
    slack: SlackRequestSender

    def ephemeral_texts(self) -> list[str]:
        return [str(post.payload.get("text", "")) for post in self.sim.webhook_posts]


@contextlib.contextmanager
def bot_over_wsgi(queue: str, channels: dict[str, str], **env: str) -> Iterator[Bot]:
    """The real Bolt app behind its WSGI app, driven by signed requests in this process, with a
    Slack simulator holding `channels` (id → name) and `env` added to the settings."""
    with SlackSimulator() as sim:
        for channel_id, name in channels.items():
            sim.add_channel(channel_id, name)
        settings = BotSettings.model_validate(
            {
                "REDIS_URL": TEST_REDIS_URL,
                "DEPLOY_MONITOR_QUEUE": queue,
                "SLACK_BOT_TOKEN": sim.token,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": sim.api_url,
                **env,
            }
        )
        face = build_face(settings)
        http = httpx.Client(transport=httpx.WSGITransport(app=wsgi_app(face, create_app(face))))
        sender = SlackRequestSender(
            "http://bot", SECRET, http=http, response_url_base=sim.url + "/hooks"
        )
        try:
            yield Bot(face, sim, sender)
        finally:
            http.close()


@pytest.fixture
def bot(redis_conn: redis.Redis) -> Iterator[Bot]:
    with bot_over_wsgi("dm-test-requests", {CHANNEL: "deploys"}) as running:
        yield running


def command(bot: Bot, fields: dict[str, str]) -> str:
    response = bot.slack.post(urlencode(fields), FORM)
    assert response.status_code == 200, response.text
    # Bolt answers a text-only ack as text/plain.
    return response.text if not response.text.startswith("{") else response.json()["text"]


def no_trace(caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize("missing", ["user_id", "channel_id"])
def test_a_command_without_who_or_where_is_answered_clearly(
    bot: Bot, caplog: pytest.LogCaptureFixture, missing: str
) -> None:
    fields = bot.slack.command_fields("1234", user_id=ALICE, channel_id=CHANNEL)
    del fields[missing]
    assert command(bot, fields) == UNREADABLE
    assert bot.face.engine.queue.count == 0
    assert bot.sim.messages(CHANNEL) == []
    assert "/deploy-monitor not handled: malformed SlashCommand" in caplog.text
    no_trace(caplog)


def test_a_command_with_a_bad_target_still_gets_usage(bot: Bot) -> None:
    fields = bot.slack.command_fields("not a target", user_id=ALICE, channel_id=CHANNEL)
    assert "Give one of" in command(bot, fields)
    assert bot.face.engine.queue.count == 0


def test_a_command_without_text_is_read_as_empty(bot: Bot) -> None:
    fields = bot.slack.command_fields("help", user_id=ALICE, channel_id=CHANNEL)
    del fields["text"]  # Slack omits it when nothing follows the command
    assert "Looking up the latest commit on main" in command(bot, fields)


def click(bot: Bot, payload: dict[str, Any]) -> None:
    response = bot.slack.post(urlencode({"payload": json.dumps(payload)}), FORM)
    assert response.status_code == 200, response.text


def test_a_click_without_a_user_is_answered_privately(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    payload = bot.slack.block_actions(ALICE, "dm_stop", "m-1:1", CHANNEL, "1700000000.000100")
    del payload["user"]
    click(bot, payload)
    wait_for(bot.ephemeral_texts, timeout=5)
    assert bot.ephemeral_texts() == [UNREADABLE]
    assert "button click not handled: malformed BlockActions" in caplog.text
    no_trace(caplog)


def test_a_click_with_a_value_of_no_prompt_says_so(bot: Bot) -> None:
    click(bot, bot.slack.block_actions(ALICE, "dm_stop", "garbage", CHANNEL, "1.000100"))
    wait_for(bot.ephemeral_texts, timeout=5)
    assert bot.ephemeral_texts() == ["That failure message is no longer active."]


def test_a_malformed_reaction_delivery_is_dropped_quietly(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    event = bot.slack.reaction_event(ALICE, "octagonal_sign", CHANNEL, "1.000100")
    del event["item"]["ts"]
    response = bot.slack.post(json.dumps(bot.slack.event_envelope(event)), JSON)
    assert response.status_code == 200
    wait_for(lambda: "reaction not handled: malformed EventCallback" in caplog.text, timeout=5)
    assert bot.sim.ephemerals == [] and bot.ephemeral_texts() == []
    no_trace(caplog)
