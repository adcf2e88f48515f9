"""`subscribe`, `unsubscribe`, `subscriptions`, `link` and `dm` through the real Bolt app,
signed as Slack signs them: answered in the ack from Redis, bad words get usage, nothing is
queued or posted."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import redis

from bot.slack.commands import Command, parse_command
from simulators.slack_client import FORM
from tests.unit.bot.test_slack_requests import Bot, bot_over_wsgi
from workers.subscriptions import Subscription, SubscriptionStore

CHANNEL, OTHER, ALICE, BOB = "C0DEPLOYS", "C0OTHER", "U0ALICE", "U0BOB"
REPO = "GaloyMoney/lana-bank"


@pytest.fixture
def bot(redis_conn: redis.Redis) -> Iterator[Bot]:
    with bot_over_wsgi("dm-test-subscribe", {CHANNEL: "deploys"}) as running:
        yield running


def say(bot: Bot, text: str, *, user: str = ALICE, channel: str = CHANNEL) -> str:
    fields = bot.slack.command_fields(text, user_id=user, channel_id=channel)
    response = bot.slack.post(urlencode(fields), FORM)
    assert response.status_code == 200, response.text
    assert bot.face.engine.queue.count == 0  # answered in the ack: no job
    return response.text if not response.text.startswith("{") else str(response.json()["text"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subscribe", Command("subscribe")),
        ("Subscribe failures", Command("subscribe", "failures")),
        ("subscribe loudly", Command("subscribe", "loudly")),
        ("unsubscribe", Command("unsubscribe")),
        ("subscriptions", Command("subscriptions")),
        ("link octocat", Command("link", "octocat")),
        ("link", Command("link")),
        ("dm off", Command("dm", "off")),
        ("DM On", Command("dm", "On")),
    ],
)
def test_parse_settings_forms(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


def test_subscribe_then_list_then_unsubscribe(bot: Bot) -> None:
    said = say(bot, "subscribe")
    assert "every new commit on `GaloyMoney/lana-bank` main" in said
    assert "every stage" in said
    store = bot.face.engine.subscriptions
    (subscription,) = store.for_repository(REPO)
    assert (subscription.channel, subscription.mode, subscription.by) == (CHANNEL, "all", ALICE)
    assert store.repositories() == {REPO}

    assert "already follows" in say(bot, "subscribe")
    assert "only failures" in say(bot, "subscribe failures", user=BOB)
    (changed,) = store.for_repository(REPO)
    assert changed.mode == "failures"
    assert changed.since == subscription.since  # still the oldest: it keeps owning threads

    listed = say(bot, "subscriptions")
    assert "`GaloyMoney/lana-bank` main: only failures" in listed
    assert "follows no repository" in say(bot, "subscriptions", channel=OTHER)

    assert "no longer follows" in say(bot, "unsubscribe")
    assert store.for_repository(REPO) == []
    assert store.repositories() == set()
    assert "nothing to end" in say(bot, "unsubscribe")
    assert bot.sim.messages(CHANNEL) == []


@pytest.mark.parametrize("text", ["subscribe loudly", "unsubscribe now", "subscriptions <!here>"])
def test_bad_subscription_words_get_usage(bot: Bot, text: str) -> None:
    said = say(bot, text)
    assert "Give one of" in said and "`subscribe failures`" in said
    assert "<!here>" not in said
    assert bot.face.engine.subscriptions.repositories() == set()


def test_link_maps_a_login_to_the_person(bot: Bot) -> None:
    people = bot.face.home.people
    assert "No GitHub login is linked" in say(bot, "link")
    assert "GitHub `octocat` is you" in say(bot, "link @octocat")
    assert people.user_for_login("OctoCat") == ALICE
    assert "`octocat` is linked" in say(bot, "link")
    said = say(bot, "link hubot")
    assert "instead of `octocat`" in said
    assert people.user_for_login("octocat") is None
    assert people.user_for_login("hubot") == ALICE
    # Bob taking the login makes it his; Alice relinking elsewhere does not take it from him.
    say(bot, "link hubot", user=BOB)
    say(bot, "link octocat")
    assert people.user_for_login("hubot") == BOB


@pytest.mark.parametrize("login", ["-bad", "two words", "a" * 40, "<@U0BOB>", "x--y"])
def test_link_refuses_what_is_not_a_login(bot: Bot, login: str) -> None:
    said = say(bot, f"link {login}")
    assert "is not a GitHub login" in said
    assert "<@U0BOB>" not in said
    assert bot.face.home.people.login_of(ALICE) is None


def test_dm_off_and_on(bot: Bot) -> None:
    people = bot.face.home.people
    assert people.wants_dm(ALICE)
    assert "No more DMs" in say(bot, "dm off")
    assert not people.wants_dm(ALICE)
    assert "Your DMs are off" in say(bot, "link octocat")
    assert "You get a DM" in say(bot, "dm ON")
    assert people.wants_dm(ALICE)
    assert "Say `/deploy-monitor dm on`" in say(bot, "dm")
    assert "`maybe` is not a choice" in say(bot, "dm maybe")


def test_subscriptions_are_listed_oldest_first(redis_conn: redis.Redis) -> None:
    store = SubscriptionStore(redis_conn, namespace="dm:test-subs")
    store.subscribe(Subscription(repository=REPO, channel="C2", since=20.0))
    store.subscribe(Subscription(repository=REPO, channel="C1", since=30.0, mode="failures"))
    store.subscribe(Subscription(repository=REPO, channel="C3", since=10.0))
    assert [s.channel for s in store.for_repository(REPO)] == ["C3", "C2", "C1"]
    assert [s.repository for s in store.for_channel("C1")] == [REPO]
    assert store.unsubscribe(REPO, "C2")
    assert not store.unsubscribe(REPO, "C2")
    assert store.repositories() == {REPO}
