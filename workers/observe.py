"""One look at the world for one monitor: the I/O half of a tick.

`observe()` asks Concourse (and GitHub, for ancestry) only what the monitor still needs — builds
of the jobs it can match now, from each job's high-water mark — and returns an `Observation`
for the pure `transition()`. Facts that never change (a build's inputs, whether a commit
descends from ours) are cached in Redis and shared by all monitors and workers.
"""

from __future__ import annotations

from typing import Protocol

from workers.chain import Chain, Stage
from workers.concourse import Build, ConcourseClient
from workers.errors import (
    ConcourseAuthError,
    ConcourseError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
)
from workers.monitor import (
    CLOCK_SKEW_SECONDS,
    FAILURE_STATUSES,
    JobTrack,
    Monitor,
    Observation,
    ObservedBuild,
    choose_build,
    is_candidate,
    stage_is_observable,
)
from workers.store import MonitorStore

# Enough to span a burst of builds between two polls; later polls list from the high-water mark.
FIRST_LISTING_LIMIT = 25
LOG_TAIL_CHARS = 3500


class AncestryOracle(Protocol):
    def is_ancestor(self, ancestor: str, descendant: str) -> bool: ...


class Observer:
    """Gathers observations; one per worker process, shared by all monitors it ticks."""

    def __init__(
        self,
        *,
        chain: Chain,
        concourse: ConcourseClient,
        ancestry: AncestryOracle,
        store: MonitorStore,
        concourse_url: str,
        team: str,
    ) -> None:
        self.chain = chain
        self.concourse = concourse
        self.ancestry = ancestry
        self.store = store
        self.concourse_url = concourse_url.rstrip("/")
        self.team = team

    def observe(self, monitor: Monitor, now: float) -> Observation:
        """Everything the next transition needs. Concourse trouble becomes `concourse_error`;
        a GitHub rate limit propagates (the tick is rescheduled after the reset)."""
        observation = Observation(now=now)
        observation.stop_requested_by = self.store.stop_requested_by(monitor.id)
        if monitor.prompt is not None:
            observation.decision = self.store.decision(monitor.id, monitor.prompt.prompt)
        try:
            self._observe_builds(monitor, observation)
        except ConcourseAuthError as exc:
            observation.concourse_error = str(exc)
        except ConcourseError as exc:
            observation.concourse_error = f"Concourse is not answering ({exc})"
        return observation

    def _observe_builds(self, monitor: Monitor, observation: Observation) -> None:
        for stage in monitor.stages:
            if stage.state == "succeeded" or not stage_is_observable(monitor, self.chain, stage):
                continue
            spec = self.chain.stage(stage.id)
            for track in stage.jobs:
                builds = self._job_builds(monitor, spec, track, observation)
                observation.builds[track.key] = builds
                chosen = choose_build(
                    track,
                    [b for b in builds if is_candidate(b, spec, monitor, self.chain, track)],
                )
                if (
                    chosen is not None
                    and chosen.status in FAILURE_STATUSES
                    and chosen.id not in track.failed_ids
                ):
                    observation.log_tails[chosen.id] = self.concourse.log_tail(
                        chosen.id, max_chars=LOG_TAIL_CHARS
                    )

    def _job_builds(
        self, monitor: Monitor, spec: Stage, track: JobTrack, observation: Observation
    ) -> list[ObservedBuild]:
        found: dict[int, Build] = {}
        for build in self.concourse.job_builds(
            track.pipeline, track.job, since_id=track.scan_from, limit=FIRST_LISTING_LIMIT
        ):
            found[build.id] = build
        resource = spec.match.resource_name
        if resource is not None and not spec.match.after_previous and track.build is None:
            # The exact route: the commit as a version, and the builds that took it as input.
            # It also finds builds older than the first listing (an old commit followed late).
            for version in self.concourse.versions(track.pipeline, resource, ref=monitor.sha):
                observation.version_seen = True
                for build in self.concourse.input_to(track.pipeline, resource, version.id):
                    if build.job_name == track.job:
                        found.setdefault(build.id, build)
        return [
            self._describe(monitor, spec, build)
            for build in sorted(found.values(), key=lambda b: b.id)
        ]

    def _describe(self, monitor: Monitor, spec: Stage, build: Build) -> ObservedBuild:
        observed = ObservedBuild(
            id=build.id,
            name=build.name,
            status=build.status,
            start_time=build.start_time,
            end_time=build.end_time,
            rerun_of=build.rerun_of.id if build.rerun_of else None,
            url=self.build_url(build),
        )
        if spec.match.input is None:
            return observed
        started_too_early = (
            build.start_time is not None
            and build.rerun_of is None
            and build.start_time < monitor.committed_at - CLOCK_SKEW_SECONDS
        )
        if started_too_early:
            observed.covers = False  # it ran before the commit existed: no need to ask
            return observed
        observed.input_ref = self._input_ref(build.id, spec.match.input)
        if observed.input_ref is not None:
            observed.covers = self._covers(monitor.sha, observed.input_ref)
        return observed

    def _input_ref(self, build_id: int, input_name: str) -> str | None:
        refs = self.store.cached_inputs(build_id)
        if refs is None:
            resources = self.concourse.build_resources(build_id)
            refs = {i.name: i.version["ref"] for i in resources.inputs if "ref" in i.version}
            if resources.inputs:
                # A pending build may not have its inputs yet; only a settled list is final.
                self.store.cache_inputs(build_id, refs)
        return refs.get(input_name)

    def _covers(self, sha: str, ref: str) -> bool | None:
        if ref == sha:
            return True
        cached = self.store.cached_covers(sha, ref)
        if cached is not None:
            return cached
        try:
            covers = self.ancestry.is_ancestor(sha, ref)
        except GitHubRateLimited:
            raise
        except GitHubNotFound:
            covers = False  # a commit GitHub does not know cannot contain ours
        except GitHubError:
            return None  # unknown for now; asked again next tick
        self.store.cache_covers(sha, ref, covers)
        return covers

    def build_url(self, build: Build) -> str:
        """The build's page in the Concourse web UI."""
        if build.pipeline_name and build.job_name:
            return (
                f"{self.concourse_url}/teams/{build.team_name or self.team}/pipelines/"
                f"{build.pipeline_name}/jobs/{build.job_name}/builds/{build.name}"
            )
        return f"{self.concourse_url}/builds/{build.id}"
