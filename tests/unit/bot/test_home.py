"""The App Home: what is kept per person (their DM choice, their last journeys), the Home tab
as rendered (their monitors only, escaped, within 100 blocks however many they have), and the
publisher and notifier keeping it current, against the Slack simulator and a real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bot.slack.blockkit import MAX_VIEW_BLOCKS
from bot.slack.client import web_client, without_retries
from bot.slack.home import HomePublisher
from bot.slack.notifier import SlackNotifier
from bot.slack.people import JourneyRecord, SlackPeople
from bot.slack.render import (
    HOME_DM_ACTION,
    HOME_NO_JOURNEYS,
    HOME_NOTHING_FOLLOWED,
    HOME_STOP_ACTION,
    HomeContent,
    HomeMonitor,
    home_tab,
)
from bot.slack.settings import BotSettings
from bot.slack.threads import SlackThreads
from simulators.slack import SlackSimulator
from workers import keys
from workers.chain import load_chain
from workers.events import Deployed, StageStarted
from workers.monitor import Monitor, new_monitor
from workers.store import MonitorStore

NAMESPACE = "dm:test-home"
CHANNEL = "C0DEPLOYS"
ALICE, BOB = "U0ALICE", "U0BOB"
NASTY = "<!channel> fix & tidy > done"
T0 = 1_700_000_000


def make(n: int = 0, *, requester: str = ALICE, headline: str = "Add fee") -> Monitor:
    monitor, _ = new_monitor(
        chain=load_chain(),
        repository="GaloyMoney/lana-bank",
        sha=f"{n:07x}" + "a" * 33,
        headline=headline,
        committed_at=T0,
        files=["core/credit/src/fee.rs"],
        now=T0 + n,
        requester=requester,
    )
    return monitor


def journey(n: int, **extra: Any) -> JourneyRecord:
    fields: dict[str, Any] = {
        "monitor_id": f"m-{n}",
        "run": f"run-{n}",
        "sha": f"{n:07x}" + "b" * 33,
        "headline": f"Change {n}",
        "outcome": "deployed",
        "total": 600 + n,
        "finished_at": T0 + n,
        "permalink": f"https://acme.slack.com/archives/C1/p{n}",
    }
    return JourneyRecord(**{**fields, **extra})


def texts(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def buttons(view: dict[str, Any], action_id: str) -> list[dict[str, Any]]:
    found = []
    for block in view["blocks"]:
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("action_id") == action_id:
            found.append(accessory)
    return found


# -- what is kept per person ---------------------------------------------------------------


@pytest.fixture
def people(redis_conn: redis.Redis) -> SlackPeople:
    return SlackPeople(redis_conn, namespace=NAMESPACE)


def test_the_dm_choice_is_on_until_turned_off(people: SlackPeople) -> None:
    assert people.wants_dm(ALICE)
    people.set_dm(ALICE, False)
    assert not people.wants_dm(ALICE) and people.wants_dm(BOB)
    people.set_dm(ALICE, True)
    assert people.wants_dm(ALICE)


def test_the_last_ten_journeys_newest_first_each_once(
    people: SlackPeople, redis_conn: redis.Redis
) -> None:
    for n in range(13):
        people.record_journey(ALICE, journey(n))
    people.record_journey(ALICE, journey(12))  # recorded again after a crash: no change
    assert [j.run for j in people.journeys(ALICE)] == [f"run-{n}" for n in range(12, 2, -1)]
    assert people.journeys(BOB) == []
    # Only ten are kept, besides the DM choice.
    people.set_dm(ALICE, False)
    stored = redis_conn.hkeys(keys.slack_user(NAMESPACE, ALICE))
    assert len(stored) == keys.HOME_JOURNEYS + 1


def test_a_journey_stored_in_another_shape_is_skipped(
    people: SlackPeople, redis_conn: redis.Redis
) -> None:
    redis_conn.hset(keys.slack_user(NAMESPACE, ALICE), keys.journey_field("old"), "{not json")
    people.record_journey(ALICE, journey(1))
    assert [j.run for j in people.journeys(ALICE)] == ["run-1"]


# -- the Home tab, rendered ----------------------------------------------------------------


def content(**extra: Any) -> HomeContent:
    fields: dict[str, Any] = {"viewer": ALICE, "monitors": [], "journeys": [], "wants_dm": True}
    return HomeContent(**{**fields, **extra})


def test_an_empty_home_says_how_to_start() -> None:
    view = home_tab(content())
    assert view["type"] == "home"
    assert HOME_NOTHING_FOLLOWED in texts(view) and HOME_NO_JOURNEYS in texts(view)
    (toggle,) = buttons(view, HOME_DM_ACTION)
    assert (toggle["text"]["text"], toggle["value"]) == ("Turn off", "off")
    assert "journeys ends:* on" in texts(view)


def test_a_home_shows_monitors_with_stage_eta_thread_and_stop() -> None:
    monitor = make(1, headline=NASTY)
    monitor.stages[0].state = "running"
    item = HomeMonitor(
        monitor=monitor, permalink="https://acme.slack.com/archives/C1/p1", expected_at=T0 + 900
    )
    view = home_tab(content(monitors=[item], journeys=[journey(1, headline=NASTY)]))
    blob = texts(view)
    assert "<!channel>" not in blob and "&lt;!channel&gt; fix &amp; tidy &gt; done" in blob
    assert "<https://acme.slack.com/archives/C1/p1|`" in blob
    assert f"*{monitor.stages[0].label}* — running" in blob
    assert f"<!date^{T0 + 900}^{{time}}|" in blob
    (stop,) = buttons(view, HOME_STOP_ACTION)
    assert stop["value"] == monitor.id and stop["style"] == "danger" and "confirm" in stop
    assert ":rocket:" in blob and "deployed in 10m 01s" in blob


def test_a_monitor_being_stopped_has_no_stop_button() -> None:
    view = home_tab(content(monitors=[HomeMonitor(monitor=make(1), stopping=True)]))
    assert buttons(view, HOME_STOP_ACTION) == [] and "Stopping" in texts(view)


def test_the_dm_toggle_offers_the_other_choice_or_says_it_is_off_for_all() -> None:
    (toggle,) = buttons(home_tab(content(wants_dm=False)), HOME_DM_ACTION)
    assert (toggle["text"]["text"], toggle["value"]) == ("Turn on", "on")
    view = home_tab(content(dms_enabled=False))
    assert buttons(view, HOME_DM_ACTION) == [] and "turned off for everyone" in texts(view)


def test_a_notice_leads_the_home() -> None:
    view = home_tab(content(notice=":octagonal_sign: Stopping `abc1234`"))
    assert "Stopping `abc1234`" in json.dumps(view["blocks"][1])


@pytest.mark.parametrize("count", [1, 80, 86, 87, 500])
def test_many_monitors_stay_within_a_views_hundred_blocks(count: int) -> None:
    monitors = [HomeMonitor(monitor=make(n, headline="x" * 300)) for n in range(count)]
    journeys = [journey(n, headline="y" * 300) for n in range(10)]
    view = home_tab(content(monitors=monitors, journeys=journeys, notice="n"))
    assert len(view["blocks"]) <= MAX_VIEW_BLOCKS
    shown = buttons(view, HOME_STOP_ACTION)
    if len(shown) < count:
        # The newest are shown, and the rest counted.
        assert shown[0]["value"] == monitors[-1].monitor.id
        assert f"and {count - len(shown)} more of yours" in texts(view)
    assert len({b["value"] for b in shown}) == len(shown)
    # Every journey is still there.
    assert texts(view).count(":rocket:") == 10


# -- publishing ----------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator() as simulator:
        simulator.add_channel(CHANNEL, "deploys")
        yield simulator


@pytest.fixture
def publisher(sim: SlackSimulator, redis_conn: redis.Redis, people: SlackPeople) -> HomePublisher:
    settings = BotSettings.model_validate(
        {"SLACK_BOT_TOKEN": sim.token, "SLACK_API_URL": sim.api_url}
    )
    return HomePublisher(
        client=without_retries(web_client(settings)),
        store=MonitorStore(redis_conn, namespace=NAMESPACE),
        threads=SlackThreads(redis_conn, namespace=NAMESPACE),
        people=people,
    )


def test_a_home_shows_the_viewers_monitors_only(
    publisher: HomePublisher, sim: SlackSimulator
) -> None:
    mine, theirs = make(1, headline="Mine"), make(2, requester=BOB, headline="Theirs")
    for monitor in (mine, theirs):
        publisher.store.create(monitor, [], due_at=0.0)
    publisher.threads.create(
        mine.id, channel=CHANNEL, parent_ts="1.1", requester=ALICE, permalink="https://p/1"
    )
    assert publisher.publish(ALICE)
    view = sim.home_view(ALICE)
    assert view is not None
    assert [b["value"] for b in buttons(view, HOME_STOP_ACTION)] == [mine.id]
    assert "Mine" in texts(view) and "Theirs" not in texts(view)
    assert "https://p/1" in texts(view)
    publisher.store.request_stop(mine.id, ALICE)
    publisher.publish(ALICE)
    view = sim.home_view(ALICE)
    assert view is not None and buttons(view, HOME_STOP_ACTION) == []


def test_a_refused_home_is_logged_not_raised(publisher: HomePublisher, sim: SlackSimulator) -> None:
    sim.home_tab_enabled = False
    assert publisher.publish(ALICE) is False
    sim.home_tab_enabled = True
    sim.fail_next("views.publish")
    assert publisher.publish(ALICE) is False
    assert publisher.publish(ALICE) is True


# -- the notifier keeps it current and honours the DM choice ------------------------------


def delivered(
    sim: SlackSimulator, publisher: HomePublisher, *, wants_dm: bool
) -> tuple[SlackNotifier, Monitor]:
    """A monitor of Alice's taken to staging, delivered by a notifier with her Home."""
    publisher.people.set_dm(ALICE, wants_dm)
    notifier = SlackNotifier(
        client=publisher.client,
        threads=publisher.threads,
        store=publisher.store,
        home=publisher,
    )
    monitor, events = new_monitor(
        chain=load_chain(),
        repository="GaloyMoney/lana-bank",
        sha="d" * 40,
        headline="Ship it",
        committed_at=T0,
        files=["core/credit/src/fee.rs"],
        now=time.time(),
        requester=ALICE,
    )
    publisher.store.create(monitor, events, due_at=0.0)
    posted = sim.web_client().chat_postMessage(channel=CHANNEL, text="board")
    publisher.threads.create(
        monitor.id,
        channel=CHANNEL,
        parent_ts=str(posted["ts"]),
        requester=ALICE,
        permalink="https://p/ship",
        run="run-ship",
    )
    notifier.deliver(monitor)
    assert len(sim.published_views) == 1  # started: it shows up on her Home
    stage = monitor.stages[0]
    later = monitor.model_copy(deep=True)
    later.seq += 1
    later.status = "deployed"
    started = StageStarted(stage=stage.id, label=stage.label, builds=["build #1"])
    done = Deployed(short_sha=monitor.short_sha, headline="Ship it", timeline=[], total=300)
    for event in (started, done):
        later.events_emitted += 1
        event.seq, event.at = later.events_emitted, time.time()
    publisher.store.commit(monitor.seq, later, [started, done], due_at=0.0)
    notifier.deliver(later)
    notifier.deliver(later)  # nothing new: no Home, no journey, no DM again
    return notifier, later


def test_the_notifier_records_the_journey_and_refreshes_the_home(
    publisher: HomePublisher, sim: SlackSimulator
) -> None:
    delivered(sim, publisher, wants_dm=True)
    assert [p.user_id for p in sim.published_views] == [ALICE, ALICE]
    (record,) = publisher.people.journeys(ALICE)
    assert (record.run, record.outcome, record.total) == ("run-ship", "deployed", 300)
    assert record.permalink == "https://p/ship"
    view = sim.home_view(ALICE)
    assert view is not None and buttons(view, HOME_STOP_ACTION) == []
    assert "deployed in 5m 00s" in texts(view)
    assert len(sim.messages(sim.dm_channel_id(ALICE))) == 1


def test_the_dm_is_not_sent_to_who_turned_it_off(
    publisher: HomePublisher, sim: SlackSimulator
) -> None:
    delivered(sim, publisher, wants_dm=False)
    assert sim.messages(sim.dm_channel_id(ALICE)) == []
    assert len(publisher.people.journeys(ALICE)) == 1


def test_a_refresh_with_a_queue_is_a_job_once_per_monitor_state(
    publisher: HomePublisher, redis_conn: redis.Redis, sim: SlackSimulator
) -> None:
    from rq import Queue

    queue = Queue("test-home", connection=redis_conn)
    publisher.queue = queue
    monitor = make(1)
    publisher.refresh(ALICE, monitor)
    publisher.refresh(ALICE, monitor)  # the same delivery again
    (job,) = queue.get_jobs()
    assert job.id == keys.home_job("test-home", ALICE, monitor.id, monitor.events_emitted)
    assert (job.func_name, job.args) == ("bot.slack.commands.refresh_home", (ALICE,))
    assert sim.published_views == []  # the worker publishes it, not the notifier
