"""The chain view and the answers read from it (pure: no I/O, no clock).

The **chain view** is, for every job of the chain, its recent builds (`JobView`): name, status,
start and end, link, and (for the jobs whose builds are matched by an input) the commit each
carried. It is kept in Redis by `workers.viewer` (refreshed from the job listings the monitors
share, never more often than the poll interval) and read by every question: `where`, `status`,
expected times. This module holds what the view *means*:

- `usual_duration(builds)`: how long a job usually takes, the median of its last
  `USUAL_SAMPLE` finished successful builds (None before it has one);
- `concourse_order(builds)`: builds as Concourse lists them, reruns next to their original;
- `merge_listing(...)`: a record carried forward by a new listing (what it must start from:
  `refresh_floor`);
- `judging_order`/`ends_judging`: which builds to ask "does it carry our commit?" and when to
  stop asking (the I/O side asks, in that order);
- `replay(monitor, observation, chain)`: the monitor's own transition run on the view, so a
  commit nobody follows is judged exactly like a followed one (batches carried by a descendant,
  reruns under their original, old reruns, commits that never became a version);
- the answers, as pydantic models the front ends render: `WhereAnswer` (its JSON schema is
  `deploy-monitor where --json`'s), `StatusAnswer`, and `CommitRange` (staging…main).

Stable API for the front ends (Slack, terminal, App Home): `WhereAnswer`, `StageAnswer`,
`StatusAnswer`, `StageStatus`, `BuildSummary`, `CommitRange`, `StageWord`. Each stage answer has
a `reason` slot (why it is not moving: paused, pinned, pending inputs) that this module leaves
None for the code that knows those reasons to fill.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from workers.chain import Chain, Stage
from workers.events import FAILURE_STATUSES, RUNNING_STATUSES, Blocker, BuildStatus
from workers.monitor import (
    Monitor,
    Observation,
    ObservedBuild,
    StageState,
    StageTrack,
    UsualTime,
    time_to_go,
    transition,
)
from workers.plan import CLOCK_SKEW_SECONDS

# A job's usual duration: the median of its last 20 finished successful builds.
USUAL_SAMPLE = 20
# Builds kept per job in the view: enough for USUAL_SAMPLE successes among a few failures.
VIEW_DEPTH = 50

StageWord = Literal["passed", "running", "failed", "waiting"]
_WORDS: dict[str, StageWord] = {
    "succeeded": "passed",
    "running": "running",
    "failed": "failed",
    "waiting": "waiting",
}
_STATES: dict[StageWord, StageState] = {
    "passed": "succeeded",
    "running": "running",
    "failed": "failed",
    "waiting": "waiting",
}


# ---------------------------------------------------------------------------------------------
# The view


class ViewBuild(BaseModel):
    """One build of a job as the view keeps it."""

    id: int
    name: str
    status: BuildStatus
    start_time: int | None = None
    end_time: int | None = None
    rerun_of: int | None = None  # the original's id (Concourse names the original, never a rerun)
    url: str = ""

    @property
    def duration(self) -> int | None:
        if self.start_time is None or self.end_time is None:
            return None
        return max(0, self.end_time - self.start_time)

    @property
    def running(self) -> bool:
        return self.status in RUNNING_STATUSES


class JobView(BaseModel):
    """The newest builds of one job (`VIEW_DEPTH` at most, id ascending), as of `taken_at`."""

    pipeline: str
    job: str
    taken_at: float
    builds: list[ViewBuild] = Field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.pipeline}/{self.job}"

    @property
    def usual_duration(self) -> int | None:
        return usual_duration(self.builds)

    @property
    def newest(self) -> ViewBuild | None:
        """The build created last (a rerun of an old build too: it is the newest news)."""
        return max(self.builds, key=lambda b: b.id, default=None)

    @property
    def running(self) -> list[ViewBuild]:
        return [b for b in self.builds if b.running]

    def newest_succeeded(self, below: int | None = None) -> ViewBuild | None:
        """The most recent successful build (by end time), optionally among ids below `below`."""
        passed = [
            b for b in self.builds if b.status == "succeeded" and (below is None or b.id < below)
        ]
        return max(passed, key=lambda b: (b.end_time or 0, b.id), default=None)


def usual_time(builds: Iterable[ViewBuild]) -> UsualTime | None:
    """The median duration of the last `USUAL_SAMPLE` finished successful builds (by end time)
    and how many there were; None when there is none. Failed and aborted builds say nothing
    about a normal run."""
    finished = sorted(
        (b for b in builds if b.status == "succeeded" and b.duration is not None),
        key=lambda b: (b.end_time or 0, b.id),
    )
    sample = [b.duration for b in finished[-USUAL_SAMPLE:] if b.duration is not None]
    if not sample:
        return None
    return UsualTime(seconds=round(statistics.median(sample)), samples=len(sample))


def usual_duration(builds: Iterable[ViewBuild]) -> int | None:
    """`usual_time`'s seconds: how long a job usually takes (None before it has a success)."""
    usual = usual_time(builds)
    return None if usual is None else usual.seconds


def stage_usual_time(stage: Stage, views: dict[str, JobView]) -> UsualTime | None:
    """A stage's jobs run side by side: it usually takes as long as its slowest job."""
    known = [
        usual
        for job in stage.jobs
        if (view := views.get(f"{stage.pipeline}/{job}")) is not None
        and (usual := usual_time(view.builds)) is not None
    ]
    return max(known, key=lambda u: u.seconds, default=None)


def stage_usual_duration(stage: Stage, views: dict[str, JobView]) -> int | None:
    """`stage_usual_time`'s seconds."""
    usual = stage_usual_time(stage, views)
    return None if usual is None else usual.seconds


def concourse_order(builds: Iterable[ViewBuild]) -> list[ViewBuild]:
    """Newest first, reruns sorted under their original, as Concourse lists a job's builds
    (`ORDER BY COALESCE(rerun_of, id) DESC, id DESC`)."""
    return sorted(builds, key=lambda b: (b.rerun_of or b.id, b.id), reverse=True)


def refresh_floor(previous: JobView | None) -> int | None:
    """The lowest build id the next listing must hold to carry `previous` forward: its
    running builds (their status changes) and everything newer than it; None when there is no
    record yet (then the newest builds are listed)."""
    if previous is None or not previous.builds:
        return None
    newest = max(b.id for b in previous.builds)
    return min([b.id for b in previous.running] + [newest + 1])


def merge_listing(
    previous: JobView | None,
    pipeline: str,
    job: str,
    listed: Sequence[ViewBuild],
    floor: int,
    taken_at: float,
) -> JobView:
    """The record after a listing of every build with id >= `floor` (0: the whole history):
    the listing wins from `floor` up, the previous record keeps what lies below; the newest
    `VIEW_DEPTH` builds (by id) are kept."""
    kept = {b.id: b for b in (previous.builds if previous else []) if b.id < floor}
    kept.update((b.id, b) for b in listed)
    builds = sorted(kept.values(), key=lambda b: b.id)[-VIEW_DEPTH:]
    return JobView(pipeline=pipeline, job=job, taken_at=taken_at, builds=builds)


# ---------------------------------------------------------------------------------------------
# Which builds carried a commit


def judging_order(builds: Sequence[ViewBuild], committed_at: int) -> list[ViewBuild]:
    """The builds to ask "does your input carry the commit?", in id order: not those that
    started before the commit existed (a rerun repeats old inputs, so it is asked anyway)."""
    floor = committed_at - CLOCK_SKEW_SECONDS
    return sorted(
        (
            b
            for b in builds
            if b.rerun_of is not None or b.start_time is None or b.start_time >= floor
        ),
        key=lambda b: b.id,
    )


def ends_judging(build: ViewBuild, covers: bool | None) -> bool:
    """Asking stops at the first build carrying the commit that did not fail: that is the one
    the monitor's rules follow (a failed one is followed only until a later one passes)."""
    return covers is True and build.status not in FAILURE_STATUSES


def observed(build: ViewBuild, input_ref: str | None, covers: bool | None) -> ObservedBuild:
    """A view build as the monitor's transition reads it."""
    return ObservedBuild(
        id=build.id,
        name=build.name,
        status=build.status,
        start_time=build.start_time,
        end_time=build.end_time,
        rerun_of=build.rerun_of,
        input_ref=input_ref,
        covers=covers,
        url=build.url,
    )


def replay(monitor: Monitor, observation: Observation, chain: Chain) -> Monitor:
    """The monitor as if it had followed its commit all along: its transition applied to the
    view until nothing changes (a stage passed lets the next one match; a failure lets a later
    build be chosen). Events are not kept: nobody is told, it is only a question."""
    current = monitor
    for _ in range(2 * len(monitor.stages) + 2):
        following, _events = transition(current, observation, chain)
        if following.stages == current.stages:
            return following
        current = following
    return current


# ---------------------------------------------------------------------------------------------
# `where`


class StageAnswer(BaseModel):
    """One stage of a commit's path, as `where` answers it."""

    id: str
    label: str
    state: StageWord
    build: str | None = Field(None, description='The build that decides the state: "job #name".')
    url: str | None = Field(None, description="That build's page in Concourse.")
    started_at: int | None = Field(None, description="When the stage started (epoch seconds).")
    finished_at: int | None = Field(None, description="When it passed (epoch seconds).")
    carried_by: str | None = Field(
        None, description="The later commit (full SHA) whose build carried this one."
    )
    usual_duration: int | None = Field(
        None, description="Seconds the stage usually takes (median of recent successes)."
    )
    reason: Blocker | None = Field(
        None,
        description="Why it is not moving, as Concourse says it (a paused job or pipeline, an "
        "archived pipeline, a pinned resource, a pending build's inputs): known for a commit a "
        "monitor follows, which reads it at every poll.",
    )


class WhereAnswer(BaseModel):
    """Where a commit is on its way to staging (`deploy-monitor where --json`)."""

    sha: str
    short_sha: str
    headline: str = ""
    committed_at: int = 0
    repository: str = ""
    pr_number: int | None = None
    pr_title: str | None = None
    pr_url: str | None = None
    merged: bool = Field(True, description="False for an open PR: nothing has run for it yet.")
    approval: str | None = Field(
        None, description="An open PR's review state: approved, changes requested, …"
    )
    path: str = Field(description="backend, dagster-only, frontend-only or mixed.")
    path_description: str = ""
    reaches_staging: bool = True
    path_note: str | None = None
    stages: list[StageAnswer]
    deployed: bool = Field(description="The commit runs on staging.")
    complete: bool = Field(
        description="Every stage of its path passed (deployed, or a frontend-only path done)."
    )
    deployed_at: int | None = Field(None, description="When staging got it (epoch seconds).")
    at_stage: str | None = Field(None, description="The stage it is at now (id).")
    remaining: int | None = Field(
        None, description="Expected seconds until staging (or the path's end), from usual times."
    )
    expected_at: float | None = Field(None, description="When it is expected there (epoch).")
    followed: bool = Field(False, description="A monitor follows it: the answer is the monitor's.")
    answered_at: float = 0.0

    @property
    def current(self) -> StageAnswer | None:
        return next((s for s in self.stages if s.id == self.at_stage), None)


def _decisive(stage: StageTrack) -> tuple[str | None, str | None]:
    """("job #name", url) of the build that decides a stage's state: a failed one, else a
    running one, else the one that finished last."""
    builds = [(j.job, j.build) for j in stage.jobs if j.build is not None]
    if not builds:
        return None, None
    failed = [(job, b) for job, b in builds if b.status in FAILURE_STATUSES]
    running = [(job, b) for job, b in builds if b.status in RUNNING_STATUSES]
    job, build = (failed or running or sorted(builds, key=lambda jb: jb[1].end_time or 0))[-1]
    return f"{job} #{build.name}", build.url or None


def answer_from_monitor(
    monitor: Monitor,
    chain: Chain,
    views: dict[str, JobView],
    now: float,
    *,
    followed: bool,
) -> WhereAnswer:
    """The `where` answer for a monitor's state (a real one, or one `replay` computed)."""
    stages: list[StageAnswer] = []
    for track in monitor.stages:
        spec = chain.stage(track.id)
        build, url = _decisive(track)
        carriers = [
            j.build.input_ref
            for j in track.jobs
            if spec.match.input is not None
            and j.build is not None
            and j.build.input_ref not in (None, monitor.sha)
        ]
        stages.append(
            StageAnswer(
                id=track.id,
                label=track.label,
                state=_WORDS[track.state],
                build=build,
                url=url,
                started_at=track.started_at,
                finished_at=track.finished_at if track.state == "succeeded" else None,
                carried_by=carriers[0] if carriers else None,
                usual_duration=stage_usual_duration(spec, views),
                reason=next((b for b in monitor.blockers if b.stage == track.id), None),
            )
        )
    complete = bool(stages) and all(s.state == "passed" for s in stages)
    deployed = complete and monitor.reaches_staging
    current = next((s for s in stages if s.state != "passed"), None)
    remaining = None if complete else expected_remaining(stages, now)
    return WhereAnswer(
        sha=monitor.sha,
        short_sha=monitor.short_sha,
        headline=monitor.headline,
        committed_at=monitor.committed_at,
        repository=monitor.repository,
        pr_number=monitor.pr_number,
        pr_title=monitor.pr_title,
        pr_url=monitor.pr_url,
        path=monitor.path,
        path_description=monitor.path_description,
        reaches_staging=monitor.reaches_staging,
        path_note=monitor.path_note,
        stages=stages,
        deployed=deployed,
        complete=complete,
        deployed_at=stages[-1].finished_at if deployed else None,
        at_stage=current.id if current else None,
        remaining=remaining,
        expected_at=None if remaining is None else now + remaining,
        followed=followed,
        answered_at=now,
    )


def expected_remaining(stages: Sequence[StageAnswer], now: float) -> int | None:
    """Seconds until the last stage passes, by the monitor's rule (`time_to_go`): the usual
    durations of the stages not passed yet, less what the running one has already run. None
    when a stage failed or a remaining stage has no usual duration yet."""
    return time_to_go(((_STATES[s.state], s.usual_duration, s.started_at) for s in stages), now)


def not_merged_answer(
    *,
    sha: str,
    headline: str,
    committed_at: int,
    repository: str,
    pr_number: int,
    pr_title: str,
    pr_url: str,
    approval: str,
    files: list[str],
    chain: Chain,
    now: float,
) -> WhereAnswer:
    """An open PR: not merged yet, so nothing ran; the path is the one its head would take."""
    path = chain.classify(files)
    return WhereAnswer(
        sha=sha,
        short_sha=sha[:7],
        headline=headline,
        committed_at=committed_at,
        repository=repository,
        pr_number=pr_number,
        pr_title=pr_title,
        pr_url=pr_url,
        merged=False,
        approval=approval,
        path=path.name,
        path_description=path.description,
        reaches_staging=path.reaches_staging,
        path_note=path.note,
        stages=[
            StageAnswer(id=s.id, label=s.label, state="waiting")
            for s in chain.stages_for(path, files)
        ],
        deployed=False,
        complete=False,
        answered_at=now,
    )


# ---------------------------------------------------------------------------------------------
# `status`


class BuildSummary(BaseModel):
    """One build in the status board: which, how it went, when, and what it carried."""

    job: str
    name: str
    status: BuildStatus
    url: str = ""
    started_at: int | None = None
    finished_at: int | None = None
    commit: str | None = Field(None, description="The commit its matched input carried.")


class StageStatus(BaseModel):
    id: str
    label: str
    newest: BuildSummary | None = None
    running: list[BuildSummary] = Field(default_factory=list)
    usual_duration: int | None = None
    reason: Blocker | None = None  # why it is not moving, when known (paused, pinned, …)


class CommitRange(BaseModel):
    """The commits of `head` that `base` lacks (GitHub's compare `base...head`)."""

    base: str
    head: str
    ahead_by: int
    oldest_committed_at: int | None = None  # the oldest of those commits, when listed
    url: str  # the compare page on GitHub


class StatusAnswer(BaseModel):
    """What runs on staging and how far behind main it is (`deploy-monitor status`)."""

    repository: str = ""
    stages: list[StageStatus]
    staging_sha: str | None = None
    deployed_at: int | None = None
    main_sha: str | None = None
    behind: CommitRange | None = None
    answered_at: float = 0.0


def summary(view: JobView, build: ViewBuild, commit: str | None) -> BuildSummary:
    return BuildSummary(
        job=view.job,
        name=build.name,
        status=build.status,
        url=build.url,
        started_at=build.start_time,
        finished_at=build.end_time,
        commit=commit,
    )


def default_stages(chain: Chain) -> list[Stage]:
    """The stages of the chain's default path (its last: the one most commits take)."""
    return [chain.stage(s) for s in chain.paths[-1].stages]
