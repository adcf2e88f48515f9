"""What one tick asks Concourse and GitHub: the pure plan that `workers.observe` carries out.

`plan_tick(monitor, chain, now)` decides it next to `transition`, from the same rules: which
jobs to list (and from which build id), which failure prompt's decision to read, whether our
commit is looked up as a resource version, which pipelines' holds (pauses, pins) are looked at
and which pending builds' preparation. Some questions depend on answers the tick gets
(a listing, a build's input), so a `JobPlan` also carries the rules that read them: which
builds are worth judging, when judging can stop, which failed build's log tail is due.

A question is asked only when its answer can change what `transition` does or says: builds are
judged only as far as `choose_build` can use them, in id order (up to the first candidate while
nothing is followed; only the followed build while it runs or passed; every later one once it
failed). No I/O and no clock here (`now` is passed in), so a test is "this monitor, this
listing → these questions".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from workers.blockers import (
    Holds,
    WaitingJob,
    pipelines_to_watch,
    preparation_wanted,
    resources_to_watch,
)
from workers.chain import Chain, Stage
from workers.events import FAILURE_STATUSES, Blocker
from workers.monitor import (
    JobTrack,
    Monitor,
    ObservedBuild,
    choose_build,
    is_candidate,
    pickup_warning_due,
    stage_is_observable,
    waiting_jobs,
)

# Concourse and GitHub clocks are not ours: a build may report a start a little before the
# commit time we got from GitHub. Builds starting earlier than this cannot carry the commit.
CLOCK_SKEW_SECONDS = 120

# What to ask about our commit as a version of a job's input resource: nothing; only whether
# it is a version (a known version means picked up); or that and the builds that took it.
VersionQuestion = Literal["none", "is_version", "builds_of_version"]


@dataclass(frozen=True)
class Judging:
    """How to learn what the builds of one job's listing carry (their input ref and whether it
    covers our commit), each build asked about only where the answer can matter."""

    too_early: list[ObservedBuild]  # started before the commit existed: cannot carry it
    known: dict[int, tuple[str, bool | None]]  # the followed build: its input stays as learned
    cached: list[ObservedBuild]  # look these up in Redis (one round trip); none: ask nothing
    to_judge: list[ObservedBuild]  # ask about the rest of these, in id order, until `ends_judging`


@dataclass(frozen=True)
class JobPlan:
    """One job the monitor watches this tick, and the rules that read the answers about it."""

    monitor: Monitor
    chain: Chain
    spec: Stage
    track: JobTrack
    pickup_warning_due: bool

    @property
    def key(self) -> str:
        return self.track.key

    @property
    def pipeline(self) -> str:
        return self.track.pipeline

    @property
    def job(self) -> str:
        return self.track.job

    @property
    def scan_from(self) -> int | None:
        """The lowest build id worth listing; None on a first look (the newest builds)."""
        return self.track.scan_from

    @property
    def input(self) -> str | None:
        """The get-step whose version says whether a build carries our commit."""
        return self.spec.match.input

    @property
    def version_resource(self) -> str | None:
        """The resource to look our commit up in (the exact route): for input-matched stages
        while no build is followed yet."""
        if self.spec.match.after_previous or self.track.build is not None:
            return None
        return self.spec.match.resource_name

    def version_question(self, view: Sequence[ObservedBuild]) -> VersionQuestion:
        """Per-commit questions cost a request per monitor: asked on a first look whose listing
        `view` does not reach back to before the commit (its builds may be older than the
        listing: an old commit followed late), and when the not-picked-up warning is due (a
        version Concourse knows means it is picked up: no warning)."""
        if self.version_resource is None:
            return "none"
        if self.scan_from is None and not reaches_before_commit(view, self.monitor):
            return "builds_of_version"
        return "is_version" if self.pickup_warning_due else "none"

    def judging(self, builds: Sequence[ObservedBuild]) -> Judging | None:
        """What to learn about `builds` (in id order); None when the job's builds are matched
        by time alone and carry nothing to judge."""
        if self.input is None:
            return None
        too_early = [b for b in builds if started_before_commit(b, self.monitor)]
        early = {b.id for b in too_early}
        judged = [b for b in builds if b.id not in early]
        followed = self.track.build
        if followed is None:
            to_judge = judged
        elif followed.status in FAILURE_STATUSES:
            to_judge = [b for b in judged if b.id >= followed.id]
        else:
            to_judge = [b for b in judged if b.id == followed.id]
        known: dict[int, tuple[str, bool | None]] = {}
        if (
            followed is not None
            and followed.input_ref is not None
            and any(b.id == followed.id for b in to_judge)
        ):
            known[followed.id] = (followed.input_ref, followed.covers)
        following = followed is not None and followed.status not in FAILURE_STATUSES
        cached = [b for b in (to_judge if following else judged) if b.id not in known]
        return Judging(too_early=too_early, known=known, cached=cached, to_judge=to_judge)

    def ends_judging(self, build: ObservedBuild) -> bool:
        """Whether judging stops after `build`: while nothing is followed, the first candidate
        is the one `choose_build` takes."""
        return self.track.build is None and self.is_candidate(build)

    def is_candidate(self, build: ObservedBuild) -> bool:
        """Whether `build` may be the one carrying our commit through this job."""
        return is_candidate(build, self.spec, self.monitor, self.track)

    def log_tail_due(self, builds: Sequence[ObservedBuild]) -> int | None:
        """The build whose log tail the transition will quote: the one it is about to follow,
        when that failed and was not reported yet."""
        chosen = choose_build(self.track, [b for b in builds if self.is_candidate(b)])
        if (
            chosen is not None
            and chosen.status in FAILURE_STATUSES
            and chosen.id not in self.track.failed_ids
        ):
            return chosen.id
        return None


@dataclass(frozen=True)
class TickPlan:
    """What one tick asks about one monitor."""

    jobs: list[JobPlan]  # the jobs of the stages not passed yet that can be matched now
    prompt: int | None  # the open failure prompt, whose decision is read
    # The jobs a blocker can hold back; what holds builds back is asked of their pipelines.
    waiting: list[WaitingJob] = field(default_factory=list)
    # The blockers said and not cleared: their facts are looked at until they clear.
    said: list[Blocker] = field(default_factory=list)

    @property
    def hold_pipelines(self) -> list[str]:
        """The pipelines whose pause, archive and job pauses are looked at (shared answers,
        refreshed once a cycle for every monitor)."""
        said = [b.where.partition("/")[0] for b in self.said]
        return list(dict.fromkeys([*pipelines_to_watch(self.waiting), *said]))

    def pin_resources(self, holds: Holds) -> list[str]:
        """The resources (`pipeline/resource`) whose pin is asked, once the jobs are known."""
        said = [b.where for b in self.said if b.reason == "pinned"]
        return list(dict.fromkeys([*resources_to_watch(self.waiting, holds), *said]))

    def preparations(self, holds: Holds) -> list[int]:
        """The pending builds whose preparation is asked, once the jobs are known."""
        return preparation_wanted(self.waiting, holds)


def plan_tick(monitor: Monitor, chain: Chain, now: float) -> TickPlan:
    """The questions the next tick of `monitor` puts to the world at `now`."""
    due = pickup_warning_due(monitor, chain, now)
    jobs = [
        JobPlan(
            monitor=monitor,
            chain=chain,
            spec=chain.stage(stage.id),
            track=track,
            pickup_warning_due=due,
        )
        for stage in monitor.stages
        if stage.state != "succeeded" and stage_is_observable(monitor, chain, stage)
        for track in stage.jobs
    ]
    return TickPlan(
        jobs=jobs,
        prompt=monitor.prompt.prompt if monitor.prompt else None,
        waiting=waiting_jobs(monitor, chain),
        said=list(monitor.blockers),
    )


def started_before_commit(build: ObservedBuild, monitor: Monitor) -> bool:
    """A build (not a rerun, which repeats old inputs anyway) that started before the commit
    existed cannot carry it: no need to ask what it carries."""
    return (
        build.start_time is not None
        and build.rerun_of is None
        and build.start_time < monitor.committed_at - CLOCK_SKEW_SECONDS
    )


def reaches_before_commit(view: Sequence[ObservedBuild], monitor: Monitor) -> bool:
    """Whether a listing holds a build that started before the commit existed: ids grow with
    creation, so every build that can carry the commit is listed above it."""
    return any(started_before_commit(b, monitor) for b in view)
