"""The engine's dependencies, built once per process from settings.

Front ends (`watch`, the Slack bot, `demo`) and RQ jobs share this: settings, the repositories
served and their chains, Redis, the queue, and lazily the Concourse client and, per repository,
the GitHub client, the observer and the chain viewer (built in the process that uses them, so a
forked work horse never shares a parent's open connections).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from typing import Any, TypeVar

from rq import Queue

from workers import clients, connection, keys, metrics
from workers.chain import Chain
from workers.concourse import ConcourseClient
from workers.events import Event
from workers.github import GitHubClient
from workers.monitor import FailurePolicy, Monitor, new_monitor
from workers.notify import Notifier
from workers.observe import Observer
from workers.repositories import ServedRepositories, load_repositories
from workers.settings import EngineSettings
from workers.store import MonitorStore
from workers.subscriptions import SubscriptionStore
from workers.target import ResolvedTarget, Targeting
from workers.viewer import ChainViewer

T = TypeVar("T")

TICK_FUNC = "workers.jobs.tick"
DELIVER_FUNC = "workers.jobs.deliver"


class Engine:
    """Everything a tick or a front end needs, wired from one `EngineSettings`."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        chain: Chain | None = None,
        repositories: ServedRepositories | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`chain`: the one repository's chain instead of the configured ones (tests)."""
        self.settings = settings
        if repositories is None:
            repositories = (
                ServedRepositories.one(settings.github_repository, chain)
                if chain is not None
                else load_repositories(settings)
            )
        self.repositories = repositories
        # The default repository's chain and name: what a target without a repository means.
        self.chain = repositories.default.chain
        self.repository = repositories.default.name
        self.clock = clock
        self.redis = connection.connect(settings)
        self.store = MonitorStore(self.redis, namespace=keys.namespace(settings.queue_name))
        self.queue = Queue(settings.queue_name, connection=self.redis)
        self.notifiers: list[Notifier] = []
        # Channels following every commit on main (workers/subscriptions.py).
        self.subscriptions = SubscriptionStore(self.redis, namespace=self.store.ns)
        # Who is handed the new commits the watcher of main finds (workers/mainline.py):
        # (repository, SHAs oldest first); the Slack face follows them in subscribed channels.
        self.main_listeners: list[Callable[[str, list[str]], None]] = []
        # Each repository's GitHub client, observer and viewer, built on first use.
        self._github: dict[str, GitHubClient] = {}
        self._observers: dict[str, Observer] = {}
        self._viewers: dict[str, ChainViewer] = {}
        self._pid = os.getpid()

    # Clients are created on first use in the process that uses them.
    @cached_property
    def concourse(self) -> ConcourseClient:
        return clients.concourse_client(self.settings)

    @property
    def github(self) -> GitHubClient:
        """The default repository's GitHub client."""
        return self.github_for(self.repository)

    @property
    def viewer(self) -> ChainViewer:
        """The default repository's chain view."""
        return self.viewer_for(self.repository)

    @property
    def targeting(self) -> Targeting:
        """How a target given to this deployment is read (the terminal: the default
        repository when it names none)."""
        return Targeting(
            repository=self.repository,
            served=self.repositories.names,
            github_host=self.settings.github_host,
        )

    # Per repository: None means the default one; ConfigError when it is not served.
    def chain_for(self, repository: str | None) -> Chain:
        """The chain `repository`'s commits take."""
        return self.repositories.get(repository or self.repository).chain

    def github_for(self, repository: str | None) -> GitHubClient:
        """The GitHub client reading and merging in `repository`."""
        name = self.repositories.get(repository or self.repository).name
        return self._built(self._github, name, lambda: clients.github_client(self.settings, name))

    def observer_for(self, repository: str | None) -> Observer:
        """What a tick of a monitor of `repository` observes with."""
        served = self.repositories.get(repository or self.repository)

        def build() -> Observer:
            return Observer(
                chain=served.chain,
                concourse=self.concourse,
                ancestry=self.github_for(served.name),
                store=self.store,
                concourse_url=self.settings.concourse_url or "",
                team=self.settings.concourse_team,
                usual_times=lambda now: self.viewer_for(served.name).usual_times(now),
            )

        return self._built(self._observers, served.name, build)

    def viewer_for(self, repository: str | None) -> ChainViewer:
        """The chain view of `repository` and the questions it answers (`where`, `status`)."""
        served = self.repositories.get(repository or self.repository)

        def build() -> ChainViewer:
            return ChainViewer(
                chain=served.chain,
                concourse=self.concourse,
                github=self.github_for(served.name),
                store=self.store,
                concourse_url=self.settings.concourse_url or "",
                team=self.settings.concourse_team,
                poll_seconds=self.settings.poll_seconds,
            )

        return self._built(self._viewers, served.name, build)

    @staticmethod
    def _built(built: dict[str, T], repository: str, build: Callable[[], T]) -> T:
        if repository not in built:
            built[repository] = build()
        return built[repository]

    def for_this_process(self) -> Engine:
        """After a fork, drop clients built by the parent: their sockets are not ours."""
        if os.getpid() != self._pid:
            self.__dict__.pop("concourse", None)
            for built in (self._github, self._observers, self._viewers):
                built.clear()
            self._pid = os.getpid()
        return self

    # -- starting and scheduling monitors ---------------------------------------------------

    def prepare_monitor(
        self,
        target: ResolvedTarget,
        *,
        requester: str | None = None,
        on_failure: FailurePolicy = "ask",
    ) -> tuple[Monitor, list[Event]]:
        """A new monitor record for a resolved target and its first events (not stored yet)."""
        served = self.repositories.get(target.repository or self.repository)
        return new_monitor(
            chain=served.chain,
            repository=served.name,
            sha=target.sha,
            headline=target.headline,
            committed_at=target.committed_at,
            files=list(target.files),
            now=self.clock(),
            pr_number=target.pr_number,
            pr_title=target.pr_title,
            pr_url=target.pr_url,
            merged_now=target.merged_now,
            requester=requester,
            on_failure=on_failure,
            author_login=target.author_login,
            author_email=target.author_email,
            pr_author_login=target.pr_author_login,
        )

    def launch(self, monitor: Monitor, events: list[Event]) -> tuple[Monitor, bool]:
        """Store a prepared monitor and kick its first tick. Returns (monitor in charge,
        created): when the commit is already followed, the existing monitor and False."""
        in_charge = self.store.create(monitor, events, due_at=self.clock())
        created = in_charge is monitor
        if created:
            self.schedule_tick(in_charge, delay=0.0)
        return in_charge, created

    def start_monitor(
        self,
        target: ResolvedTarget,
        *,
        requester: str | None = None,
        on_failure: FailurePolicy = "ask",
    ) -> tuple[Monitor, bool]:
        """Prepare and launch in one step (the terminal front end)."""
        monitor, events = self.prepare_monitor(target, requester=requester, on_failure=on_failure)
        return self.launch(monitor, events)

    def schedule_tick(self, monitor: Monitor, *, delay: float, suffix: str = "") -> None:
        """Queue tick(monitor, seq) under an id derived from the monitor and its seq; a suffix
        makes extra kicks (reaper, decisions) distinct from the regular chain."""
        queue_name = self.settings.queue_name
        options: dict[str, Any] = {
            "job_id": keys.tick_job(queue_name, monitor.id, monitor.seq, suffix),
            "job_timeout": int(self.settings.tick_timeout) + keys.JOB_TIMEOUT_MARGIN_SECONDS,
            "result_ttl": keys.TICK_RESULT_TTL_SECONDS,
            "failure_ttl": keys.TICK_FAILURE_TTL_SECONDS,
        }
        if delay <= 0:
            self.queue.enqueue(TICK_FUNC, monitor.id, monitor.seq, **options)
        else:
            self.queue.enqueue_in(
                timedelta(seconds=delay), TICK_FUNC, monitor.id, monitor.seq, **options
            )

    def schedule_delivery(self, monitor: Monitor, *, delay: float) -> None:
        """Retry notifier delivery outside the tick chain (the last tick of a monitor has no
        successor to retry it). No delay: queued at once, without the scheduler (the reaper
        uses this when a dead worker may still hold the scheduler's lock)."""
        options: dict[str, Any] = {
            "job_id": keys.deliver_job(
                self.settings.queue_name,
                monitor.id,
                monitor.events_emitted,
                int(self.clock() * 1000),
            ),
            "job_timeout": int(self.settings.tick_timeout) + keys.JOB_TIMEOUT_MARGIN_SECONDS,
            "result_ttl": keys.TICK_RESULT_TTL_SECONDS,
        }
        if delay <= 0:
            self.queue.enqueue(DELIVER_FUNC, monitor.id, **options)
        else:
            self.queue.enqueue_in(timedelta(seconds=delay), DELIVER_FUNC, monitor.id, **options)

    def kick(self, monitor_id: str, reason: str) -> None:
        """Tick a monitor now (after a decision or a stop request) instead of at the next poll."""
        monitor = self.store.load(monitor_id)
        if monitor is not None and not monitor.done:
            self.schedule_tick(monitor, delay=0.0, suffix=f"-{reason}{int(self.clock() * 1000)}")

    def census(self) -> tuple[dict[str, int], int]:
        """Active monitors by state and how many are overdue (more than two polls late): the
        deployment-wide gauges of `/metrics`."""
        counts: dict[str, int] = {}
        for monitor in self.store.active_monitors():
            state = metrics.monitor_state(monitor)
            counts[state] = counts.get(state, 0) + 1
        grace = 2 * self.settings.poll_seconds + 1.0
        return counts, self.store.overdue_count(time.time() - grace)

    def events(
        self, monitor_id: str, after: str = "0-0", block_ms: int | None = None
    ) -> list[tuple[str, Event]]:
        return self.store.events(monitor_id, after=after, block_ms=block_ms)
