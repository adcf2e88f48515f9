"""Several repositories in one bot, end to end: real Redis, ONE real worker, the Bolt app over
signed HTTP, and the Concourse, GitHub and Slack simulators (one GitHub serving both
repositories, as api.github.com does). lana-bank's commit takes the bundled chain and
acme/widgets' takes its own, at the same time; a channel that chose widgets with `use` means
widgets by a bare PR number, and a channel subscribed to widgets' main follows a push there."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slack.render import FOLLOWED_AUTOMATICALLY
from simulators.concourse import ConcourseSimulator, JobInput
from simulators.slack import Message
from tests.conftest import REPOSITORY, World, wait_for
from tests.e2e.test_digest import DIGEST_TITLE, digest_hour_now
from tests.slack_fixtures import BACKEND, CHANNEL, SlackWorld, fast, slack_world
from workers import keys
from workers.monitor import Monitor, monitor_id_for

WIDGETS = "acme/widgets"
WIDGETS_CHAIN = Path(__file__).parents[1] / "data" / "chains" / "widgets.yaml"
WIDGETS_CHANNEL = "C0WIDGETS"


class WidgetsCI:
    """The widgets pipeline on the Concourse simulator: a commit on main becomes a version of
    `source`; `unit` builds it, then `deploy-staging` (gated on `unit` passing) deploys it."""

    def __init__(self, concourse: ConcourseSimulator) -> None:
        self.sim = concourse
        self.threads: list[threading.Thread] = []
        concourse.add_pipeline(
            "widgets",
            ["unit", "deploy-staging"],
            ["source"],
            inputs={
                "unit": [JobInput(name="source", resource="source", trigger=True)],
                "deploy-staging": [
                    JobInput(name="source", resource="source", trigger=True, passed=("unit",))
                ],
            },
        )

    def deliver(self, sha: str, duration: float = 0.4) -> None:
        def run() -> None:
            time.sleep(0.2)  # until the resource check sees the commit
            self.sim.add_version("widgets", "source", {"ref": sha})
            for job in ("unit", "deploy-staging"):
                build = self.sim.create_build("widgets", job, inputs={"source": {"ref": sha}})
                self.sim.start_build(build)
                time.sleep(duration)
                self.sim.log(build, f"{job}: ok\n")
                self.sim.finish_build(build, "succeeded")

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)


@pytest.fixture
def sw(world: World, request: pytest.FixtureRequest) -> Iterator[SlackWorld]:
    # The bundled chain (with the suite's test thresholds) for lana-bank, widgets' own file.
    lana_chain = world.env.pop("DEPLOY_MONITOR_CHAIN")
    world.env["DEPLOY_MONITOR_CHAINS"] = f"{lana_chain},{WIDGETS_CHAIN}"
    if "digest" in request.node.name:
        world.env["DEPLOY_MONITOR_DIGEST_HOUR"] = str(digest_hour_now())
        world.env["DEPLOY_MONITOR_DIGEST_MIN_AGE"] = "30m"
    with slack_world(world) as s:
        s.slack.add_channel(WIDGETS_CHANNEL, "widgets")
        yield s


def monitor(sw: SlackWorld, repository: str, sha: str) -> Monitor | None:
    return sw.face.engine.store.load(monitor_id_for(repository, sha))


def parents(sw: SlackWorld, channel: str) -> list[Message]:
    return [m for m in sw.slack.messages(channel) if m.thread_ts in (None, m.ts)]


def thread_text(sw: SlackWorld, channel: str, parent: Message) -> str:
    return "\n".join(m.text + str(m.blocks) for m in sw.slack.thread(channel, parent.ts))


def test_two_repositories_with_their_own_chains_are_followed_at_once_by_one_worker(
    sw: SlackWorld,
) -> None:
    github = sw.world.github
    widgets = github.add_repository(WIDGETS)
    widgets_ci = WidgetsCI(sw.world.concourse)
    assert len(sw.world.workers) == 1

    # widgets' channel means widgets: a bare PR number there is a widgets PR.
    assert f"now mean `{WIDGETS}`" in sw.command("use acme/widgets", channel=WIDGETS_CHANNEL)
    widgets.add_pull_request(7, "Faster widgets", ["src/widget.py"])
    # lana-bank has an approved PR #7 too: the number alone must not reach it from there.
    github.add_pull_request(7, "Lana's seventh", BACKEND)
    lana_head = github.add_commit("Lana change", BACKEND)
    assert f"PR #7 of `{WIDGETS}`" in sw.command("7", channel=WIDGETS_CHANNEL)
    assert f"commit `{lana_head[:7]}` of `{REPOSITORY}`" in sw.command(lana_head[:7])

    wait_for(lambda: widgets.merges != [], timeout=20)
    widgets_sha = widgets.merges[0][1]
    assert github.merges == []  # nothing merged in lana-bank
    widgets_ci.deliver(widgets_sha)
    sw.world.ci.deliver([(lana_head, BACKEND)], fast())

    wait_for(lambda: (m := monitor(sw, WIDGETS, widgets_sha)) is not None and m.done, timeout=45)
    wait_for(lambda: (m := monitor(sw, REPOSITORY, lana_head)) is not None and m.done, timeout=60)
    done_widgets, done_lana = monitor(sw, WIDGETS, widgets_sha), monitor(sw, REPOSITORY, lana_head)
    assert done_widgets is not None and done_lana is not None
    assert (done_widgets.status, done_lana.status) == ("deployed", "deployed")
    # Each took its own chain: widgets' two stages, lana-bank's five.
    assert (done_widgets.chain, [s.id for s in done_widgets.stages]) == (
        "widgets",
        ["unit", "staging"],
    )
    assert done_lana.chain == "lana-bank" and "testflight" in [s.id for s in done_lana.stages]
    assert done_widgets.pr_number == 7 and done_lana.pr_number is None

    # Each thread lives in the channel its command came from and tells its own stages.
    [widgets_parent] = parents(sw, WIDGETS_CHANNEL)
    [lana_parent] = parents(sw, CHANNEL)
    widgets_thread = thread_text(sw, WIDGETS_CHANNEL, widgets_parent)
    lana_thread = thread_text(sw, CHANNEL, lana_parent)
    assert "widgets unit tests" in widgets_thread and "testflight" not in widgets_thread
    assert "testflight" in lana_thread and "widgets unit tests" not in lana_thread

    # One worker served both: every tick of both monitors ran in it.
    logs = sw.world.worker_logs()
    assert monitor_id_for(WIDGETS, widgets_sha) in logs
    assert monitor_id_for(REPOSITORY, lana_head) in logs
    assert "cannot be followed" not in logs


def test_a_channel_subscribed_to_widgets_follows_a_push_to_widgets_main(sw: SlackWorld) -> None:
    github = sw.world.github
    widgets = github.add_repository(WIDGETS)
    widgets_ci = WidgetsCI(sw.world.concourse)
    said = sw.command("subscribe acme/widgets failures", channel=WIDGETS_CHANNEL)
    assert f"every new commit on `{WIDGETS}` main" in said
    seen = keys.main_seen(sw.face.engine.store.ns, WIDGETS)
    wait_for(lambda: sw.face.engine.redis.get(seen) is not None, timeout=10)
    # Nobody subscribed to lana-bank: its main is never asked for.
    assert sw.face.engine.redis.get(keys.main_seen(sw.face.engine.store.ns, REPOSITORY)) is None

    pushed = widgets.add_commit("Widgets on main", ["src/widget.py"])
    github.add_commit("Lana on main", BACKEND)  # not subscribed: not followed
    widgets_ci.deliver(pushed)
    wait_for(lambda: (m := monitor(sw, WIDGETS, pushed)) is not None and m.done, timeout=45)
    followed = monitor(sw, WIDGETS, pushed)
    assert followed is not None and followed.status == "deployed"
    [parent] = parents(sw, WIDGETS_CHANNEL)
    assert FOLLOWED_AUTOMATICALLY in parent.text + str(parent.blocks)
    # Only widgets' commit became a monitor.
    engine = sw.face.engine
    assert [
        keys.as_text(k) for k in engine.redis.scan_iter(keys.monitor(engine.store.ns, "*"))
    ] == [keys.monitor(engine.store.ns, monitor_id_for(WIDGETS, pushed))]


def test_the_digest_of_a_subscribed_repository_lists_its_own_waiting_commits(
    sw: SlackWorld,
) -> None:
    github = sw.world.github
    widgets = github.add_repository(WIDGETS)
    widgets_ci = WidgetsCI(sw.world.concourse)
    staged = widgets.add_commit("Widgets deployed", ["src/widget.py"])
    widgets_ci.deliver(staged, duration=0.1)
    for thread in widgets_ci.threads:
        thread.join(10)
    now = time.time()
    waiting = widgets.add_commit("Widgets waiting", ["src/w.py"], committed_at=now - 7200)
    # lana-bank has waiting commits too, but no channel subscribed to it.
    github.add_commit("Lana waiting", BACKEND, committed_at=now - 7200)
    sw.command("subscribe acme/widgets", channel=WIDGETS_CHANNEL)

    def digests() -> list[Message]:
        return [m for m in sw.slack.messages(WIDGETS_CHANNEL) if DIGEST_TITLE in m.text]

    wait_for(lambda: digests() != [], timeout=20)
    body = str(digests()[0].blocks)
    assert f"`{waiting[:7]}`" in body and "Widgets waiting" in body and "Lana" not in body
    assert f"https://github.com/{WIDGETS}/compare/{staged}...{waiting}" in body
    assert all(DIGEST_TITLE not in m.text for m in sw.slack.messages(CHANNEL))
