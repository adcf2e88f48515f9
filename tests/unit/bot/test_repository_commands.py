"""Several repositories in one bot, through the real Bolt app signed as Slack signs them:
`use` sets what a channel's commands mean, targets and subscriptions may name a repository,
and a repository that is not served is refused with the list of those that are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis

from simulators.slack_client import FORM
from tests.unit.bot.test_slack_requests import Bot, bot_over_wsgi

CHANNEL, OTHER, ALICE = "C0DEPLOYS", "C0OTHER", "U0ALICE"
LANA, WIDGETS = "GaloyMoney/lana-bank", "acme/widgets"
WIDGETS_CHAIN = Path(__file__).parents[2] / "data" / "chains" / "widgets.yaml"


@pytest.fixture
def bot(redis_conn: redis.Redis) -> Iterator[Bot]:
    with bot_over_wsgi(
        "dm-test-repos",
        {CHANNEL: "deploys", OTHER: "widgets"},
        DEPLOY_MONITOR_CHAINS=f"lana-bank,{WIDGETS_CHAIN}",
    ) as running:
        yield running


def say(bot: Bot, text: str, *, channel: str = CHANNEL) -> str:
    fields = bot.slack.command_fields(text, user_id=ALICE, channel_id=channel)
    response = bot.slack.post(urlencode(fields), FORM)
    assert response.status_code == 200, response.text
    return response.text if not response.text.startswith("{") else str(response.json()["text"])


def queued(bot: Bot) -> list[tuple[str, tuple[object, ...]]]:
    queue = bot.face.engine.queue
    jobs = [queue.fetch_job(job_id) for job_id in queue.job_ids]
    return [(job.func_name, tuple(job.args)) for job in jobs if job is not None]


def test_use_sets_what_one_channels_commands_mean(bot: Bot) -> None:
    assert f"mean `{LANA}`" in say(bot, "use") and f"`{WIDGETS}`" in say(bot, "use")
    assert f"now mean `{WIDGETS}`" in say(bot, "use ACME/Widgets", channel=OTHER)
    assert f"already means `{WIDGETS}`" in say(bot, "use acme/widgets", channel=OTHER)
    assert bot.face.channels.of(OTHER) == WIDGETS
    assert bot.face.channels.of(CHANNEL) == LANA  # another channel keeps the default
    # A bare PR number now means a widgets PR there, and the ack says which repository.
    assert f"PR #12 of `{WIDGETS}`" in say(bot, "12", channel=OTHER)
    assert f"PR #12 of `{LANA}`" in say(bot, "12", channel=CHANNEL)
    assert f"PR #5 of `{WIDGETS}`" in say(bot, "acme/widgets#5", channel=CHANNEL)
    # The start jobs carry the text; the worker reads it in the same channel.
    starts = [args for name, args in queued(bot) if name.endswith("start_from_slack")]
    assert [(a[0], a[2]) for a in starts] == [
        ("12", OTHER),
        ("12", CHANNEL),
        ("acme/widgets#5", CHANNEL),
    ]


@pytest.mark.parametrize(
    "text", ["use other/repo", "use", "other/repo#3", "status other/repo", "subscribe other/x"]
)
def test_a_repository_not_served_is_refused_with_those_that_are(bot: Bot, text: str) -> None:
    said = say(bot, text)
    if text == "use":
        return  # `use` alone is a question, answered above
    assert "other/" in said and LANA in said and WIDGETS in said
    assert bot.face.engine.queue.count == 0  # refused in the ack: nothing queued
    assert bot.face.engine.subscriptions.repositories() == set()


def test_subscribe_and_unsubscribe_name_their_repository(bot: Bot) -> None:
    assert f"every new commit on `{WIDGETS}` main" in say(bot, "subscribe acme/widgets failures")
    assert f"every new commit on `{LANA}` main" in say(bot, "subscribe")
    listed = say(bot, "subscriptions")
    assert LANA in listed and WIDGETS in listed
    # `unsubscribe` alone ends the channel's own repository's subscription, not widgets'.
    assert f"no longer follows `{LANA}`" in say(bot, "unsubscribe")
    assert [s.repository for s in bot.face.engine.subscriptions.for_channel(CHANNEL)] == [WIDGETS]
    # With only one left, `unsubscribe` alone ends that one.
    assert f"no longer follows `{WIDGETS}`" in say(bot, "unsubscribe")
    assert bot.face.engine.subscriptions.for_channel(CHANNEL) == []


def test_status_names_its_repository_for_the_worker(bot: Bot) -> None:
    say(bot, "use acme/widgets", channel=OTHER)
    say(bot, "status", channel=OTHER)
    say(bot, f"status {LANA}", channel=OTHER)
    asked = [args for name, args in queued(bot) if name.endswith("status_from_slack")]
    assert [a[1] for a in asked] == [WIDGETS, LANA]


def test_help_tells_the_repository_forms(bot: Bot) -> None:
    text = say(bot, "help")
    assert "`use owner/repo`" in text and "owner/repo#1234" in text and f"`{WIDGETS}`" in text


@pytest.mark.parametrize(
    "named",
    [
        "`acme/widgets`",
        "<https://github.com/acme/widgets>",
        "<https://github.com/Acme/Widgets|acme/widgets>",
        "https://github.com/acme/widgets.git",
    ],
)
def test_a_repository_may_be_named_as_people_paste_it(bot: Bot, named: str) -> None:
    assert f"now mean `{WIDGETS}`" in say(bot, f"use {named}", channel=OTHER)
    assert f"on `{WIDGETS}` main" in say(bot, f"subscribe {named} failures", channel=OTHER)
    assert [s.mode for s in bot.face.engine.subscriptions.for_channel(OTHER)] == ["failures"]


@pytest.mark.parametrize(
    "text",
    ["use <https://gitlab.com/acme/widgets>", "use https://[github.com/acme/widgets", "use [x"],
)
def test_a_link_elsewhere_or_junk_is_not_a_repository(bot: Bot, text: str) -> None:
    said = say(bot, text, channel=OTHER)
    assert "I don't follow" in said and bot.face.channels.chosen(OTHER) is None
