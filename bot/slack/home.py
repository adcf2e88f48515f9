"""The App Home: each person's Home tab, published with views.publish.

Published when someone opens the tab (`app_home_opened`), after a click in it (Stop, the DM
choice), and when one of their monitors changes stage or ends: the notifier asks for it
(`refresh`), and an RQ job publishes it (`commands.refresh_home`), so reading the chain view
for the Home never holds up a thread's replies nor the tick's lock. A Home shows the viewer's
own monitors and journeys only: monitors are matched on their requester. Publishing is best
effort: a Home that Slack refuses is logged, never retried, and replaced at the next change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis
from rq import Queue
from rq.job import Job
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import render
from bot.slack.client import classify
from bot.slack.payloads import PublishedHome, SlackPayloadError
from bot.slack.people import SlackPeople
from bot.slack.render import HomeContent, HomeMonitor
from bot.slack.threads import SlackThreads
from workers import keys
from workers.errors import DeployMonitorError
from workers.monitor import Monitor
from workers.store import MonitorStore
from workers.view import StatusAnswer, answer_from_monitor
from workers.viewer import ChainViewer

log = logging.getLogger(__name__)

# What a repository's staging runs is shared by every Home for one poll interval (one GitHub
# compare per interval, however many Homes are published): `keys.shared(ns, STATUS_KIND,
# status_name(repository))`.
STATUS_KIND = "status"


def status_name(repository: str) -> str:
    return f"default-path:{repository.lower()}"


# The RQ job that publishes a Home the notifier asked for, and how long it may take.
REFRESH_FUNC = "bot.slack.commands.refresh_home"
HOME_JOB_TIMEOUT_SECONDS = 60


class HomePublisher:
    """Builds and publishes one person's Home tab from what Redis holds."""

    def __init__(
        self,
        *,
        client: WebClient,
        store: MonitorStore,
        threads: SlackThreads,
        people: SlackPeople,
        dms_enabled: bool = True,
        viewer: Callable[[str], ChainViewer] | None = None,
        repositories: Sequence[str] = (),
        status_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        queue: Queue | None = None,
    ) -> None:
        """`viewer` gives a repository's chain view (built lazily, in the process that uses
        it): what each of `repositories` has on staging; without it the Home leaves it out.
        `status_seconds`: how long one reading of staging serves every Home. `queue`: where
        `refresh` queues the publishing (None: `refresh` publishes at once)."""
        self.client = client
        self.store = store
        self.threads = threads
        self.people = people
        self.dms_enabled = dms_enabled
        self.viewer = viewer
        self.repositories = tuple(repositories)
        self.status_seconds = status_seconds
        self._clock = clock
        self.queue = queue

    def content(self, user_id: str, *, notice: str = "") -> HomeContent:
        """What `user_id`'s Home shows now."""
        now = self._clock()
        mine = [m for m in self.store.active_monitors() if _belongs_to(m, user_id)]
        expected = self._expected([m for m in mine if m.expected_at is None], now)
        monitors = []
        for monitor in mine:
            thread = self.threads.get(monitor.id)
            monitors.append(
                HomeMonitor(
                    monitor=monitor,
                    permalink=thread.permalink if thread else "",
                    # The tick's own reckoning from the usual durations; before its first
                    # tick, the chain view's.
                    expected_at=monitor.expected_at or expected.get(monitor.id),
                    stopping=self.store.stop_requested_by(monitor.id) is not None,
                )
            )
        return HomeContent(
            viewer=user_id,
            monitors=monitors,
            journeys=self.people.journeys(user_id),
            wants_dm=self.people.wants_dm(user_id),
            dms_enabled=self.dms_enabled,
            notice=notice,
            staging=[s for s in map(lambda r: self._staging(r, now), self.repositories) if s],
        )

    def _expected(self, monitors: list[Monitor], now: float) -> dict[str, float | None]:
        """When each monitor's commit is expected on staging, from its repository's chain
        view (left out when the view cannot be read)."""
        if self.viewer is None or not monitors:
            return {}
        by_repository: dict[str, list[Monitor]] = {}
        for monitor in monitors:
            by_repository.setdefault(monitor.repository, []).append(monitor)
        found: dict[str, float | None] = {}
        for repository, theirs in by_repository.items():
            try:
                viewer = self.viewer(repository)
                jobs = [(j.pipeline, j.job) for m in theirs for s in m.stages for j in s.jobs]
                views = viewer.job_views(jobs, now)  # one read of the view per repository
                for m in theirs:
                    answer = answer_from_monitor(m, viewer.chain, views, now, followed=True)
                    found[m.id] = answer.expected_at
            except (DeployMonitorError, OSError, KeyError) as exc:
                log.info("no expected times on the Home for %s: %s", repository, exc)
        return found

    def _staging(self, repository: str, now: float) -> StatusAnswer | None:
        """What `repository`'s staging runs, read at most once per `status_seconds` for every
        Home."""
        if self.viewer is None:
            return None
        name = status_name(repository)
        shared = self.store.shared_answers(STATUS_KIND, [name]).get(name)
        if shared is not None and shared[0] > now - self.status_seconds:
            try:
                return StatusAnswer.model_validate_json(shared[1])
            except ValueError:
                pass  # written by another release: read again
        try:
            status = self.viewer(repository).status(now)
        except (DeployMonitorError, OSError, KeyError) as exc:
            log.info("no staging line on the Home for %s: %s", repository, exc)
            return None
        self.store.save_shared_answer(
            STATUS_KIND, name, now, status.model_dump_json(), ttl=self.status_seconds
        )
        return status

    def refresh(self, user_id: str, monitor: Monitor) -> None:
        """Have `user_id`'s Home published again, now that `monitor` moved: by a job when
        there is a queue (one per monitor state: a delivery repeated asks once)."""
        if self.queue is None:
            self.publish(user_id)
            return
        job_id = keys.home_job(self.queue.name, user_id, monitor.id, monitor.events_emitted)
        try:
            if Job.exists(job_id, connection=self.queue.connection):
                return  # asked for this state already (RQ would run a second job of one id)
            self.queue.enqueue(
                REFRESH_FUNC,
                user_id,
                job_id=job_id,
                job_timeout=HOME_JOB_TIMEOUT_SECONDS,
                result_ttl=keys.TICK_RESULT_TTL_SECONDS,
            )
        except redis.exceptions.RedisError as exc:
            log.warning("could not queue the Home of %s: %s", user_id, exc)

    def publish(self, user_id: str, *, notice: str = "") -> bool:
        """Publish `user_id`'s Home; False (logged) when Slack did not take it."""
        try:
            view = render.home_tab(self.content(user_id, notice=notice))
            PublishedHome.parse(self.client.views_publish(user_id=user_id, view=view))
        except SlackApiError as exc:
            log.warning("could not publish the Home of %s: %s", user_id, classify(exc).error)
            return False
        except (OSError, SlackPayloadError, redis.exceptions.RedisError) as exc:
            log.warning("could not publish the Home of %s: %s", user_id, exc)
            return False
        return True


def _belongs_to(monitor: Monitor, user_id: str) -> bool:
    return not monitor.done and monitor.requester == user_id
