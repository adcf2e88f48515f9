"""One look at the world for one monitor: the I/O half of a tick.

`observe()` asks Concourse (and GitHub, for ancestry) only what the monitor still needs and
returns an `Observation` for the pure `transition()`. What it learns is shared in Redis by all
monitors and workers, so a hundred monitors on one chain cost Concourse about what one does.

Shared per poll cycle: a job's builds. For each job there is one listing, a *window*: every
build with id >= its floor (0: the job's whole history), paged with `from=`, so reruns, which
sort next to their original and carry a new id, are in it too; nothing is picked by position.
Its floor is the lowest `scan_from` any monitor asked for recently (each tick records its
monitors' needs), so one listing serves them all and each monitor keeps the builds with
id >= its own `scan_from`. A monitor's first look at a job (no `scan_from` yet) gets the
newest builds instead, and in that case the window reaches back far enough to hold them.

How long a shared answer lasts, the one rule (`taken_after_previous_look`): it serves a
monitor when it was taken after that monitor's previous look began. Every monitor therefore
sees newer facts every tick (the build it follows is refreshed each cycle, a build never seems
to go back in time), and a listing is refreshed about once per poll interval, by whichever
monitor comes first, without knowing the interval. Shared answers of the same kind: the
builds that took our commit's version (`input_to`), and "this pending build has no inputs
yet" (re-asked next cycle, once for everyone). Redis expiry only collects garbage.

What holds builds back (pauses, archives, pins, a pending build's preparation) is read and
shared the same way by `workers/holds.py`: one team pipeline list, and one job list and one
resource list per pipeline on a remaining path, per cycle for all monitors.

Facts that never change are kept for days: a build's settled inputs, whether a commit
descends from ours (`workers/ancestry.py`: from lists of commits shared by all monitors,
compare for the rest), the version ids of a commit, the log tail of a finished build.
Questions about one commit (is it a version yet, which builds took it) cost a request per
monitor, so they are asked only when the answer can change something: on a first look whose
listing does not reach back to before the commit, and when the not-picked-up warning is
due. Otherwise a commit is picked up when a build carrying it is found.

What to ask is not decided here: `workers.plan` decides it next to the transition (which jobs,
from which build id, which builds to judge and how far, whether our commit is looked up as a
version, which log tail is due); this module carries the plan out and judges nothing. A worker
keeps the last listing it parsed per job and reads only its stamp while it is current: a
steady tick is one Redis round trip, whatever the number of monitors.

Each observation also carries every stage's usual time (`usual_times`, the chain view's,
worked out once per poll interval per process): the expected time and the slow rule use it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from pydantic import BaseModel, TypeAdapter

from workers.ancestry import Ancestry, CoverageResolver
from workers.chain import Chain
from workers.concourse import Build, ConcourseClient
from workers.errors import (
    ConcourseAuthError,
    ConcourseError,
)
from workers.holds import HoldsReader
from workers.monitor import Monitor, Observation, ObservedBuild, UsualTime
from workers.plan import JobPlan, plan_tick
from workers.store import MonitorStore

# A job's first look covers its newest builds; later looks list from the high-water mark.
FIRST_LISTING_LIMIT = 25
# Page size of the shared `from=` listings (one request holds a normal cycle's builds).
PAGE_LIMIT = 100
LOG_TAIL_CHARS = 3500
# Redis drops shared answers nobody refreshed for this long (garbage collection only).
SHARED_GC_SECONDS = 15 * 60
# One worker refreshes a listing while others wait up to FILL_WAIT_SECONDS for it, then ask
# Concourse themselves. The lock outlives a slow listing (the client's timeout is 10 s).
FILL_LOCK_SECONDS = 15.0
FILL_WAIT_SECONDS = 1.0
FILL_POLL_SECONDS = 0.02
# A monitor's need (its scan_from) counts for this many of its cycles: a late tick keeps it.
NEED_CYCLES = 5
MIN_CYCLE_SECONDS = 1.0
NOTED_MAX = 10_000


class JobWindow(BaseModel):
    """Every build of one job with id >= `floor` (0: all of them), listed at `taken_at`."""

    taken_at: float
    floor: int
    builds: list[Build]  # by id ascending

    def serves(self, scan_from: int | None) -> bool:
        """Whether this listing holds everything a monitor at `scan_from` must see."""
        if scan_from is None:
            return self.floor == 0 or len(self.builds) >= FIRST_LISTING_LIMIT
        return self.floor <= scan_from

    def view(self, scan_from: int | None) -> list[Build]:
        """The builds a monitor at `scan_from` sees: from its mark, or the newest on a first
        look (the highest ids of a complete listing, so a new rerun of an old build too)."""
        if scan_from is None:
            return self.builds[-FIRST_LISTING_LIMIT:]
        return [b for b in self.builds if b.id >= scan_from]


_WINDOW = TypeAdapter(JobWindow)
_BUILDS = TypeAdapter(list[Build])


def taken_after_previous_look(taken_at: float, monitor: Monitor) -> bool:
    """The lifetime of every shared answer: usable by a monitor if taken after its previous
    look began (`updated_at` is the `now` of its last transition). Answers are stamped with
    the `now` of the tick that asked, which is never later than the asking."""
    return taken_at > monitor.updated_at


class Observer:
    """Gathers observations; one per worker process, shared by all monitors it ticks."""

    def __init__(
        self,
        *,
        chain: Chain,
        concourse: ConcourseClient,
        ancestry: Ancestry,
        store: MonitorStore,
        concourse_url: str,
        team: str,
        usual_times: Callable[[float], dict[str, UsualTime]] | None = None,
    ) -> None:
        self.chain = chain
        # Each stage's usual time from the chain view (`ChainViewer.usual_times`), if wired.
        self.usual_times = usual_times
        self.concourse = concourse
        self.coverage = CoverageResolver(ancestry, store)
        self.store = store
        self.concourse_url = concourse_url.rstrip("/")
        self.team = team
        self.holds = HoldsReader(
            concourse=concourse, store=store, team=team, fresh=taken_after_previous_look
        )
        # The last listing parsed per job, reused while Redis holds the same one: a worker
        # ticking hundreds of monitors reads and parses each listing once per cycle.
        self._parsed: dict[str, JobWindow] = {}
        # The marks each monitor last recorded here, and until when (see _needs_to_record).
        self._noted: dict[str, tuple[dict[str, int], float]] = {}
        # Listings whose refresh lock seemed abandoned, and until when (monotonic clock).
        self._stuck: dict[str, float] = {}

    def observe(self, monitor: Monitor, now: float) -> Observation:
        """Everything the next transition needs. Concourse trouble becomes `concourse_error`;
        a GitHub rate limit propagates (the tick is rescheduled after the reset)."""
        observation = Observation(now=now)
        plan = plan_tick(monitor, self.chain, now)
        needs, until = self._needs_to_record(monitor, plan.jobs, now)
        hold_questions = self.holds.questions(plan)
        stop_by, decision, stamps, hold_stamps = self.store.read_for_observation(
            monitor.id, plan.prompt, [job.key for job in plan.jobs], needs, until, hold_questions
        )
        observation.stop_requested_by = stop_by
        observation.decision = decision
        try:
            self._observe_builds(monitor, plan.jobs, stamps, observation)
            observation.holds = self.holds.read(monitor, plan, hold_stamps, now)
        except ConcourseAuthError as exc:
            observation.concourse_error = str(exc)
        except ConcourseError as exc:
            observation.concourse_error = f"Concourse is not answering ({exc})"
        if observation.concourse_error is None and self.usual_times is not None:
            with contextlib.suppress(ConcourseError):  # the monitor keeps the ones it knows
                observation.usual = self.usual_times(now)
        return observation

    def _needs_to_record(
        self, monitor: Monitor, jobs: list[JobPlan], now: float
    ) -> tuple[dict[str, int], float]:
        """The monitor's marks (lowest build id it needs listed, per job) and until when they
        count: NEED_CYCLES of its cycles (the time since its previous look). Unchanged marks
        are written again only when they would lapse within two cycles."""
        cycle = max(now - monitor.updated_at, MIN_CYCLE_SECONDS)
        needs = {job.key: job.scan_from for job in jobs if job.scan_from is not None}
        noted = self._noted.get(monitor.id)
        if noted is not None and noted[0] == needs and noted[1] > now + 2 * cycle:
            return {}, noted[1]
        if len(self._noted) >= NOTED_MAX:
            self._noted.clear()  # finished monitors are never forgotten otherwise
        until = now + NEED_CYCLES * cycle + MIN_CYCLE_SECONDS
        self._noted[monitor.id] = (needs, until)
        return needs, until

    # -- builds of the jobs the monitor watches now -----------------------------------------

    def _observe_builds(
        self,
        monitor: Monitor,
        jobs: list[JobPlan],
        stamps: dict[str, float],
        observation: Observation,
    ) -> None:
        windows = self._windows(stamps)
        versions: dict[tuple[str, str], list[int]] = {}  # asked once per tick per resource
        for job in jobs:
            listed = self._job_view(monitor, job, windows.get(job.key), observation.now)
            view = [self._observed(build) for build in listed]
            found = {b.id: b for b in view}
            for build in self._builds_of_our_version(monitor, job, view, versions, observation):
                found.setdefault(build.id, self._observed(build))
            builds = sorted(found.values(), key=lambda b: b.id)
            self._describe(monitor, job, builds, observation.now)
            observation.builds[job.key] = builds
            tail_of = job.log_tail_due(builds)
            if tail_of is not None:
                observation.log_tails[tail_of] = self._log_tail(tail_of)

    def _windows(self, stamps: dict[str, float]) -> dict[str, JobWindow]:
        """The shared listings taken at `stamps`: the ones this process parsed already, and
        the others read from Redis (about once per listing and cycle)."""
        windows = {
            key: self._parsed[key]
            for key, stamp in stamps.items()
            if key in self._parsed and self._parsed[key].taken_at == stamp
        }
        missing = [key for key in stamps if key not in windows]
        for key, answer in self.store.shared_answers("builds", missing).items():
            window = self._parse_window(key, answer)
            if window is not None:
                windows[key] = window
        return windows

    def _job_view(
        self, monitor: Monitor, job: JobPlan, window: JobWindow | None, now: float
    ) -> list[Build]:
        """The job's builds as this monitor must see them: from the shared listing when it is
        fresh and deep enough for the monitor, else from a refreshed one."""
        if not self._usable(window, monitor, job.scan_from):
            window = self._refresh_window(monitor, job, now)
        assert window is not None
        return window.view(job.scan_from)

    def _usable(self, window: JobWindow | None, monitor: Monitor, scan_from: int | None) -> bool:
        return (
            window is not None
            and taken_after_previous_look(window.taken_at, monitor)
            and window.serves(scan_from)
        )

    def _parse_window(self, job_key: str, answer: tuple[float, str] | None) -> JobWindow | None:
        if answer is None:
            return None
        parsed = self._parsed.get(job_key)
        if parsed is not None and parsed.taken_at == answer[0]:
            return parsed
        window = _WINDOW.validate_json(answer[1])
        self._parsed[job_key] = window
        return window

    def _refresh_window(self, monitor: Monitor, job: JobPlan, now: float) -> JobWindow:
        """List the job from the lowest build id any monitor needs, and share it. Another
        worker already refreshing it is waited for briefly rather than asked twice."""
        key = job.key
        with self.store.fill_lock("builds", key, FILL_LOCK_SECONDS) as ours:
            if not ours and time.monotonic() >= self._stuck.get(key, 0.0):
                deadline = time.monotonic() + FILL_WAIT_SECONDS
                while time.monotonic() < deadline:
                    time.sleep(FILL_POLL_SECONDS)
                    window = self._read_window(key)
                    if self._usable(window, monitor, job.scan_from):
                        assert window is not None
                        return window
                # Its holder may have died: do not wait for it again until the lock lapses.
                self._stuck[key] = time.monotonic() + FILL_LOCK_SECONDS
            elif ours:
                window = self._read_window(key)  # it may have been refreshed since we looked
                if self._usable(window, monitor, job.scan_from):
                    assert window is not None
                    return window
            window = self._list_window(job, now)
            payload = window.model_dump_json(exclude_none=True)
            self.store.save_shared_answer("builds", key, now, payload, SHARED_GC_SECONDS)
            self._parsed[key] = window
            return window

    def _read_window(self, job_key: str) -> JobWindow | None:
        return self._parse_window(
            job_key, self.store.shared_answers("builds", [job_key]).get(job_key)
        )

    def _list_window(self, job: JobPlan, now: float) -> JobWindow:
        floors = self.store.live_needs(job.key, now)
        if job.scan_from is not None:
            floors.append(job.scan_from)
        floor = min(floors, default=None)
        newest: list[Build] | None = None
        if floor is None or job.scan_from is None:
            # A first look wants the newest builds: find where they start.
            newest = self.concourse.job_builds(job.pipeline, job.job, limit=FIRST_LISTING_LIMIT)
            if len(newest) < FIRST_LISTING_LIMIT:
                return JobWindow(taken_at=now, floor=0, builds=newest)  # the whole history
            floor = min(newest[0].id, floor if floor is not None else newest[0].id)
        builds = self.concourse.job_builds(
            job.pipeline, job.job, since_id=max(floor, 1), limit=PAGE_LIMIT
        )
        return JobWindow(taken_at=now, floor=floor, builds=builds)

    # -- our commit as a resource version ---------------------------------------------------

    def _builds_of_our_version(
        self,
        monitor: Monitor,
        job: JobPlan,
        view: list[ObservedBuild],
        versions: dict[tuple[str, str], list[int]],
        observation: Observation,
    ) -> list[Build]:
        """The exact route, as the plan asks: our commit as a version of the job's input
        resource, and the builds that took it as input."""
        question = job.version_question(view)
        resource = job.version_resource
        if question == "none" or resource is None:
            return []
        ids = self._version_ids(monitor, job.pipeline, resource, versions)
        if ids:
            observation.version_seen = True
        if question != "builds_of_version":
            return []
        return [
            build
            for version_id in ids
            for build in self._input_to(
                monitor, job.pipeline, resource, version_id, observation.now
            )
            if build.job_name == job.job
        ]

    def _version_ids(
        self,
        monitor: Monitor,
        pipeline: str,
        resource: str,
        asked: dict[tuple[str, str], list[int]],
    ) -> list[int]:
        if (pipeline, resource) in asked:
            return asked[(pipeline, resource)]
        ids = self.store.cached_version_ids(pipeline, resource, monitor.sha)
        if ids is None:
            ids = [v.id for v in self.concourse.versions(pipeline, resource, ref=monitor.sha)]
            if ids:  # a version, once seen, stays; "not yet" may change at the next check
                self.store.cache_version_ids(pipeline, resource, monitor.sha, ids)
        asked[(pipeline, resource)] = ids
        return ids

    def _input_to(
        self, monitor: Monitor, pipeline: str, resource: str, version_id: int, now: float
    ) -> list[Build]:
        name = f"{pipeline}/{resource}/{version_id}"
        answer = self.store.shared_answers("input_to", [name]).get(name)
        if answer is not None and taken_after_previous_look(answer[0], monitor):
            return _BUILDS.validate_json(answer[1])
        builds = self.concourse.input_to(pipeline, resource, version_id)
        payload = _BUILDS.dump_json(builds, exclude_none=True).decode()
        self.store.save_shared_answer("input_to", name, now, payload, SHARED_GC_SECONDS)
        return builds

    # -- what each build carries ------------------------------------------------------------

    def _describe(
        self, monitor: Monitor, job: JobPlan, builds: list[ObservedBuild], now: float
    ) -> None:
        """Fill in what the builds carry (input ref, whether it covers our commit) as far as
        the plan's `judging` asks: Redis is read first; Concourse and GitHub about the rest."""
        judging = job.judging(builds)
        input_name = job.input
        if judging is None or input_name is None:
            return
        for seen in judging.too_early:
            seen.covers = False  # it ran before the commit existed: no need to ask
        settled: set[int] = set()
        for seen in judging.to_judge:
            if seen.id in judging.known:
                seen.input_ref, seen.covers = judging.known[seen.id]
                settled.add(seen.id)
        if not judging.cached:
            return  # everything worth knowing is known: a steady tick asks nothing
        inputs = self.store.cached_inputs_many([s.id for s in judging.cached])
        for seen in judging.cached:
            if seen.id in inputs:
                seen.input_ref = inputs[seen.id].get(input_name)
                settled.add(seen.id)
        self._known_covers(monitor, judging.cached)
        pending = self.store.shared_answers(
            "pending", [str(s.id) for s in judging.to_judge if s.id not in settled]
        )
        for seen in judging.to_judge:
            if seen.id not in settled:
                seen.input_ref = self._ask_input_ref(
                    monitor, seen.id, input_name, pending.get(str(seen.id)), now
                )
            if seen.input_ref is not None and seen.covers is None:
                seen.covers = self.coverage.covers(
                    monitor.sha, monitor.committed_at, seen.input_ref
                )
            if job.ends_judging(seen):
                break

    def _observed(self, build: Build) -> ObservedBuild:
        # The fields come from a validated Build: no need to validate them again.
        return ObservedBuild.model_construct(
            id=build.id,
            name=build.name,
            status=build.status,
            start_time=build.start_time,
            end_time=build.end_time,
            rerun_of=build.rerun_of.id if build.rerun_of else None,
            url=self.build_url(build),
        )

    def _known_covers(self, monitor: Monitor, builds: list[ObservedBuild]) -> None:
        """Fill in the ancestry answers Redis already has (one round trip)."""
        refs = sorted({b.input_ref for b in builds if b.input_ref} - {monitor.sha})
        known = self.store.cached_covers_many(monitor.sha, refs)
        for seen in builds:
            if seen.input_ref == monitor.sha:
                seen.covers = True
            elif seen.input_ref is not None:
                seen.covers = known.get(seen.input_ref)

    def _ask_input_ref(
        self,
        monitor: Monitor,
        build_id: int,
        input_name: str,
        unsettled: tuple[float, str] | None,
        now: float,
    ) -> str | None:
        """A build's input ref from Concourse. Settled inputs are cached forever; a build
        without inputs yet is asked again next cycle, once for all monitors."""
        if unsettled is not None and taken_after_previous_look(unsettled[0], monitor):
            return None  # asked this cycle already: still no inputs
        resources = self.concourse.build_resources(build_id)
        refs = {i.name: i.version["ref"] for i in resources.inputs if "ref" in i.version}
        if resources.inputs:
            self.store.cache_inputs(build_id, refs)
        else:
            # A pending build may not have its inputs yet; only a settled list is final.
            self.store.save_shared_answer("pending", str(build_id), now, "", SHARED_GC_SECONDS)
        return refs.get(input_name)

    def _log_tail(self, build_id: int) -> str:
        """A failed build's log tail; it is finished, so the tail is final and shared."""
        tail = self.store.cached_log_tail(build_id)
        if tail is None:
            tail = self.concourse.log_tail(build_id, max_chars=LOG_TAIL_CHARS)
            self.store.cache_log_tail(build_id, tail)
        return tail

    def build_url(self, build: Build) -> str:
        """The build's page in the Concourse web UI."""
        if build.pipeline_name and build.job_name:
            return (
                f"{self.concourse_url}/teams/{build.team_name or self.team}/pipelines/"
                f"{build.pipeline_name}/jobs/{build.job_name}/builds/{build.name}"
            )
        return f"{self.concourse_url}/builds/{build.id}"
