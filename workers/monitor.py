"""The monitor: one commit's journey, and the pure transition function that moves it along.

`transition(monitor, observation)` is where the product's judgement lives: which build is ours,
when a stage started, passed, failed or runs long, what a decision means, when we are done.
It does no I/O and reads no clock (the observation carries `now`), so a test is "this monitor +
this observation → this monitor + these events".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

from workers.blockers import Holds, WaitingJob, find_blockers, still_holds
from workers.chain import Chain, Stage
from workers.events import (
    FAILURE_STATUSES,
    Blocker,
    BuildStatus,
    CarriedByLater,
    CommitIgnored,
    ConcourseBack,
    ConcourseUnreachable,
    DecisionChoice,
    DecisionTaken,
    Deployed,
    Event,
    IgnoredFile,
    MonitorStarted,
    NotPickedUp,
    PathCompleted,
    RecoveredByRerun,
    RerunAsked,
    StageBlocked,
    StageFailed,
    StageSlow,
    StageStarted,
    StageSucceeded,
    StageUnblocked,
    Stopped,
    TimelineEntry,
)

StageState = Literal["waiting", "running", "succeeded", "failed"]
# A commit whose files no pipeline watches: how many of them its first events name.
IGNORED_FILES_LISTED = 10
MonitorStatus = Literal["active", "deployed", "completed", "stopped"]
# `rerun`: rerun a failed build once automatically, then stop on a second failure.
FailurePolicy = Literal["ask", "stop", "continue", "rerun"]

# The slow rule besides a stage's `warn_after`: a stage is slow once it has run longer than
# SLOW_FACTOR x its usual duration and at least the chain's `slow_margin` (5 min) more than
# usual, when that usual duration comes from SLOW_MIN_SAMPLES finished builds or more.
SLOW_FACTOR = 2.0
SLOW_MIN_SAMPLES = 3

# ---------------------------------------------------------------------------------------------
# What a tick observes


class ObservedBuild(BaseModel):
    """One build of a job, as seen this tick, with what we know about its input."""

    id: int
    name: str
    status: BuildStatus
    start_time: int | None = None
    end_time: int | None = None
    rerun_of: int | None = None
    input_ref: str | None = None
    covers: bool | None = None  # input is our commit or a descendant; None = not known (yet)
    url: str = ""


class UsualTime(BaseModel):
    """How long a stage usually takes (`workers.view`: its slowest job's median of recent
    successful builds), and how many finished builds that median is made of."""

    seconds: int
    samples: int


class Decision(BaseModel):
    """A user's answer to a failure prompt; the first one recorded wins."""

    prompt: int
    choice: DecisionChoice
    by: str = ""
    rerun: RerunAsked | None = None  # a "continue" that asked Concourse for a rerun
    reason: str | None = None  # why a stop was chosen (the automatic rerun was refused)


class Observation(BaseModel):
    """Everything one tick learned about the world; `builds` is keyed by `pipeline/job`."""

    now: float
    version_seen: bool = False
    builds: dict[str, list[ObservedBuild]] = Field(default_factory=dict)
    log_tails: dict[int, str] = Field(default_factory=dict)
    decision: Decision | None = None
    stop_requested_by: str | None = None
    concourse_error: str | None = None
    usual: dict[str, UsualTime] = Field(default_factory=dict)  # stage id → from the chain view
    holds: Holds | None = None  # what holds builds back; None: not looked at this tick


# ---------------------------------------------------------------------------------------------
# The monitor record


class JobTrack(BaseModel):
    pipeline: str
    job: str
    build: ObservedBuild | None = None  # the build we follow now
    first_start: int | None = None  # start of the first build we followed, for the timeline
    failed_ids: list[int] = Field(default_factory=list)  # our builds that failed, reported
    scan_from: int | None = None  # lowest build id still worth listing (`from=`)

    @property
    def key(self) -> str:
        return f"{self.pipeline}/{self.job}"


class StageTrack(BaseModel):
    id: str
    label: str
    state: StageState = "waiting"
    jobs: list[JobTrack]
    started_at: int | None = None
    finished_at: int | None = None
    slow_warned: bool = False
    usual_duration: int | None = None  # seconds, from the chain view; kept once it passed
    usual_samples: int = 0

    @property
    def duration(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0, self.finished_at - self.started_at)


class FailurePrompt(BaseModel):
    prompt: int
    stage: str
    job: str
    build_id: int
    pipeline: str = ""
    build_name: str = ""
    auto_rerun: bool = False  # answered by the worker, which asks Concourse for a rerun


class Monitor(BaseModel):
    """One commit's journey. Stored in Redis; `seq` fences stale and duplicate ticks."""

    id: str
    seq: int = 0
    repository: str
    sha: str
    headline: str
    committed_at: int
    pr_number: int | None = None
    pr_title: str | None = None
    pr_url: str | None = None
    merged_now: bool = False
    requester: str | None = None
    # Who wrote the commit (GitHub login, git email): they hear when its journey ends.
    author_login: str | None = None
    author_email: str | None = None
    pr_author_login: str | None = None  # who opened the PR, when it came from one
    chain: str
    path: str
    path_description: str = ""
    reaches_staging: bool = True
    path_note: str | None = None
    stages: list[StageTrack]
    on_failure: FailurePolicy = "ask"
    status: MonitorStatus = "active"
    created_at: float
    updated_at: float = 0.0
    picked_up: bool = False
    pickup_warned: bool = False
    carried_noted: bool = False
    prompt: FailurePrompt | None = None
    prompts_issued: int = 0
    reruns_asked: int = 0  # reruns asked for from a prompt (by a person or the policy)
    unreachable: bool = False
    blockers: list[Blocker] = Field(default_factory=list)  # said, and not cleared yet
    ignored: bool = False  # no resource on the path watches its files (said when it started)
    events_emitted: int = 0
    expected_at: float | None = None  # when the path's last stage should pass (usual times)

    @property
    def short_sha(self) -> str:
        return self.sha[:7]

    @property
    def done(self) -> bool:
        return self.status != "active"

    def stage(self, stage_id: str) -> StageTrack:
        return next(s for s in self.stages if s.id == stage_id)


# ---------------------------------------------------------------------------------------------
# Creating a monitor


def monitor_id_for(repository: str, sha: str) -> str:
    """Deterministic id: one monitor per commit (letters, digits and `-` only, as RQ requires)."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in repository.lower())
    return f"{slug}-{sha[:12]}"


def new_monitor(
    *,
    chain: Chain,
    repository: str,
    sha: str,
    headline: str,
    committed_at: int,
    files: list[str],
    now: float,
    pr_number: int | None = None,
    pr_title: str | None = None,
    pr_url: str | None = None,
    merged_now: bool = False,
    requester: str | None = None,
    on_failure: FailurePolicy = "ask",
    author_login: str | None = None,
    author_email: str | None = None,
    pr_author_login: str | None = None,
) -> tuple[Monitor, list[Event]]:
    """A new monitor for `sha`, on the path its changed `files` choose, and its first event."""
    path = chain.classify(files)
    stages = chain.stages_for(path, files)
    monitor = Monitor(
        id=monitor_id_for(repository, sha),
        repository=repository,
        sha=sha,
        headline=headline,
        committed_at=committed_at,
        pr_number=pr_number,
        pr_title=pr_title,
        pr_url=pr_url,
        merged_now=merged_now,
        requester=requester,
        author_login=author_login,
        author_email=author_email,
        pr_author_login=pr_author_login,
        chain=chain.name,
        path=path.name,
        path_description=path.description,
        reaches_staging=path.reaches_staging,
        path_note=path.note,
        stages=[
            StageTrack(
                id=s.id,
                label=s.label,
                jobs=[JobTrack(pipeline=s.pipeline, job=j) for j in s.jobs],
            )
            for s in stages
        ],
        on_failure=on_failure,
        created_at=now,
        updated_at=now,
    )
    started = MonitorStarted(
        path=path.name, path_description=path.description, stages=[s.label for s in stages]
    )
    events: list[Event] = [started]
    unwatched = chain.unwatched(stages, files)
    if unwatched is not None:
        # Said at once: it will never be a version by itself, and is followed on until a
        # later commit's build carries it.
        monitor.ignored = True
        listed = [
            IgnoredFile(file=u.file, resource=u.resource, rule=u.rule, pattern=u.pattern)
            for u in unwatched[:IGNORED_FILES_LISTED]
        ]
        events.append(CommitIgnored(files=listed, more=len(unwatched) - len(listed)))
    return monitor, _stamp(monitor, events, now)


def _stamp(monitor: Monitor, events: list[Event], now: float) -> list[Event]:
    for event in events:
        monitor.events_emitted += 1
        event.seq = monitor.events_emitted
        event.at = now
    return events


# ---------------------------------------------------------------------------------------------
# The transition


def previous_stage(monitor: Monitor, stage_id: str) -> StageTrack | None:
    """The stage before `stage_id` on this monitor's path, for `after_previous` matching."""
    ids = [s.id for s in monitor.stages]
    index = ids.index(stage_id)
    return monitor.stages[index - 1] if index > 0 else None


def stage_is_observable(monitor: Monitor, chain: Chain, stage: StageTrack) -> bool:
    """Input-matched stages are watched from the start; `after_previous` ones only once the
    previous stage has passed (before that we cannot tell which build is ours)."""
    rule = chain.stage(stage.id).match
    if not rule.after_previous:
        return True
    prev = previous_stage(monitor, stage.id)
    return prev is None or (prev.state == "succeeded" and prev.finished_at is not None)


def is_candidate(build: ObservedBuild, spec: Stage, monitor: Monitor, track: JobTrack) -> bool:
    """Whether `build` may be the one carrying our commit through this job."""
    if spec.match.input is not None and build.covers is not True:
        return False
    if spec.match.after_previous:
        prev = previous_stage(monitor, spec.id)
        floor = prev.finished_at if prev is not None else None
        if floor is not None:
            # A pending build has not started yet, so it will start after `floor`.
            if build.start_time is not None and build.start_time < floor:
                return False
            # A rerun repeats an older build with its old inputs: only reruns of our own
            # builds count.
            ours = set(track.failed_ids) | ({track.build.id} if track.build else set())
            if build.rerun_of is not None and build.rerun_of not in ours:
                return False
    return True


def choose_build(track: JobTrack, candidates: list[ObservedBuild]) -> ObservedBuild | None:
    """The build to follow: the first candidate, and after a failure the first later one,
    preferring a later success (a rerun or a newer commit's build that passed)."""
    if track.build is None:
        return min(candidates, key=lambda b: b.id, default=None)
    later = [b for b in candidates if b.id > track.build.id]
    if track.build.status not in FAILURE_STATUSES or not later:
        same = [b for b in candidates if b.id == track.build.id]
        return same[0] if same else track.build
    succeeded = [b for b in later if b.status == "succeeded"]
    return min(succeeded or later, key=lambda b: b.id)


def waiting_jobs(monitor: Monitor, chain: Chain) -> list[WaitingJob]:
    """The jobs the commit waits on now, which a blocker can hold back: those of the first
    stage of the path not passed yet with no build of ours started (none yet, one pending,
    or one failed awaiting a rerun). Stages further on are looked at once the commit gets
    there: asking sooner would cost every cycle for a wait that may never come."""
    stage = next((s for s in monitor.stages if s.state != "succeeded"), None)
    if stage is None:
        return []
    spec = chain.stage(stage.id)
    return [
        WaitingJob(
            stage=stage.id,
            label=stage.label,
            pipeline=spec.pipeline,
            job_key=track.key,
            match_resource=spec.match.resource_name,
        )
        for track in stage.jobs
        if track.build is None or track.build.status in FAILURE_STATUSES | {"pending"}
    ]


def pickup_warning_due(monitor: Monitor, chain: Chain, now: float) -> bool:
    """Whether the monitor is to warn, once, that no build has picked its commit up yet. A
    commit the path filters ignore was told so when it started (`CommitIgnored`, naming the
    filters) instead: waiting is what it is expected to do."""
    return (
        not monitor.picked_up
        and not monitor.ignored
        and not monitor.pickup_warned
        and now - monitor.created_at >= chain.pickup_warn_after
    )


def _stage_state(stage: StageTrack) -> StageState:
    builds = [j.build for j in stage.jobs]
    if all(b is not None and b.status == "succeeded" for b in builds):
        return "succeeded"
    if any(b is not None and b.status in FAILURE_STATUSES for b in builds):
        return "failed"
    if any(b is not None for b in builds):
        return "running"
    return "waiting"


def timeline(monitor: Monitor) -> tuple[list[TimelineEntry], int | None]:
    """Per-stage durations (with their usual ones, when known) and the total, from the
    builds' start and end times."""
    entries = [
        TimelineEntry(label=s.label, duration=s.duration, usual=s.usual_duration)
        for s in monitor.stages
    ]
    starts = [s.started_at for s in monitor.stages if s.started_at is not None]
    ends = [s.finished_at for s in monitor.stages if s.finished_at is not None]
    total = max(ends) - min(starts) if starts and ends else None
    return entries, total


def time_to_go(
    stages: Iterable[tuple[StageState, int | None, int | None]], now: float
) -> int | None:
    """Seconds until the last of `stages` (state, usual seconds, started_at) passes: the usual
    durations of those not passed yet, less what a running one has already run (never below
    zero). None when one failed (only a rerun moves it on) or one has no usual duration yet."""
    total = 0.0
    for state, usual, started_at in stages:
        if state == "succeeded":
            continue
        if state == "failed" or usual is None:
            return None
        elapsed = now - started_at if state == "running" and started_at else 0
        total += max(0.0, usual - elapsed)
    return round(total)


def expected_at(monitor: Monitor, now: float) -> float | None:
    """When the monitor's last stage should pass, from the usual durations it knows."""
    if monitor.done:
        return None
    left = time_to_go(((s.state, s.usual_duration, s.started_at) for s in monitor.stages), now)
    return None if left is None else now + left


def _learn_usual(m: Monitor, observation: Observation) -> None:
    """Take the chain view's usual durations; a passed stage keeps the one it ran against."""
    for stage in m.stages:
        usual = observation.usual.get(stage.id)
        if usual is not None and stage.state != "succeeded":
            stage.usual_duration, stage.usual_samples = usual.seconds, usual.samples


def _estimated(m: Monitor, events: list[Event], now: float) -> list[Event]:
    """Keep the expected time current, and tell it with the stage events (the board and the
    terminal show it when a stage starts or passes)."""
    m.expected_at = expected_at(m, now)
    for event in events:
        if isinstance(event, StageStarted | StageSucceeded):
            event.expected_at = m.expected_at
    return events


def transition(
    monitor: Monitor, observation: Observation, chain: Chain
) -> tuple[Monitor, list[Event]]:
    """Apply one observation: returns the updated monitor (a copy) and the events to announce."""
    m = monitor.model_copy(deep=True)
    now = observation.now
    events: list[Event] = []
    if m.done:
        return m, []
    m.updated_at = now

    if observation.stop_requested_by is not None:
        return m, _stamp(m, _stop(m, observation.stop_requested_by, "stopped on request"), now)

    if observation.concourse_error is not None:
        if not m.unreachable:
            m.unreachable = True
            events.append(ConcourseUnreachable(detail=observation.concourse_error))
        return m, _stamp(m, _estimated(m, events, now), now)
    if m.unreachable:
        m.unreachable = False
        events.append(ConcourseBack())

    if observation.version_seen:
        m.picked_up = True
    _learn_usual(m, observation)

    for stage in m.stages:
        spec = chain.stage(stage.id)
        if stage.state == "succeeded" or not stage_is_observable(m, chain, stage):
            continue  # a stage that passed stays passed: a later rerun changes nothing for us
        if spec.match.after_previous:
            _scan_after_previous(m, stage)
        notes: list[Event] = []
        for track in stage.jobs:
            observed = observation.builds.get(track.key, [])
            candidates = [b for b in observed if is_candidate(b, spec, m, track)]
            chosen = choose_build(track, candidates)
            if chosen is None:
                _advance_scan(track, observed, spec)
                continue
            previous = track.build
            if (
                track.failed_ids
                and chosen.status == "succeeded"
                and (previous is None or previous.status != "succeeded")
            ):
                events.append(
                    RecoveredByRerun(
                        stage=stage.id, label=stage.label, job=track.job, build_name=chosen.name
                    )
                )
            track.build = chosen
            _advance_scan(track, observed, spec)
            if track.first_start is None and chosen.start_time is not None:
                track.first_start = chosen.start_time
            m.picked_up = True
            if (
                spec.match.input is not None
                and chosen.input_ref is not None
                and chosen.input_ref != m.sha
                and not m.carried_noted
            ):
                m.carried_noted = True
                notes.append(
                    CarriedByLater(
                        stage=stage.id,
                        label=stage.label,
                        job=track.job,
                        carrier_sha=chosen.input_ref,
                    )
                )
        stage_events = _update_stage(m, stage, spec, observation, chain.slow_margin)
        # Notes about the build (carried by a later commit) read best right after "started".
        at = 1 if stage_events and isinstance(stage_events[0], StageStarted) else 0
        events.extend([*stage_events[:at], *notes, *stage_events[at:]])
        if m.done:
            return m, _stamp(m, _estimated(m, events, now), now)

    events.extend(_apply_decision(m, observation))
    if m.done:
        return m, _stamp(m, _estimated(m, events, now), now)
    events.extend(_update_blockers(m, chain, observation.holds))

    if pickup_warning_due(m, chain, now):
        m.pickup_warned = True
        events.append(NotPickedUp(waited=int(now - m.created_at)))

    if all(s.state == "succeeded" for s in m.stages):
        entries, total = timeline(m)
        if m.reaches_staging:
            m.status = "deployed"
            events.append(
                Deployed(short_sha=m.short_sha, headline=m.headline, timeline=entries, total=total)
            )
        else:
            m.status = "completed"
            events.append(
                PathCompleted(
                    short_sha=m.short_sha,
                    headline=m.headline,
                    timeline=entries,
                    total=total,
                    note=m.path_note,
                )
            )
    return m, _stamp(m, _estimated(m, events, now), now)


def _update_blockers(m: Monitor, chain: Chain, holds: Holds | None) -> list[Event]:
    """Say each blocker once when it appears and once when it clears. Without a look at the
    holds this tick, the ones said stand. One whose jobs no longer wait (our build started,
    the stage passed) is said cleared only if its facts say so (unpaused, unpinned): a pin
    that carried our commit anyway is dropped without a word."""
    if holds is None:
        current = [b for b in m.blockers if m.stage(b.stage).state != "succeeded"]
    else:
        current = find_blockers(waiting_jobs(m, chain), holds, m.sha)
    before = {b.key: b for b in m.blockers}
    now_keys = {b.key for b in current}
    waiting = {w.stage for w in waiting_jobs(m, chain)}
    events: list[Event] = []
    for blocker in m.blockers:
        if blocker.key in now_keys:
            continue
        if blocker.stage not in waiting:
            cleared = holds is not None and still_holds(blocker, holds, m.sha) is False
            if not cleared:
                continue
        events.append(
            StageUnblocked(
                reason=blocker.reason,
                where=blocker.where,
                stage=blocker.stage,
                label=blocker.label,
            )
        )
    for blocker in current:
        if blocker.key not in before:
            events.append(StageBlocked(**blocker.model_dump()))
    m.blockers = current
    return events


def _scan_after_previous(m: Monitor, stage: StageTrack) -> None:
    """Start an `after_previous` stage's listing just above the previous stage's builds.
    Build ids are global and grow with creation, and a build that can be ours was created after
    those finished: so none is missed however many builds the job has had since (a commit
    followed hours late), which the newest-builds listing of a first look could miss."""
    prev = previous_stage(m, stage.id)
    ids = [j.build.id for j in prev.jobs if j.build is not None] if prev is not None else []
    if not ids:
        return
    for track in stage.jobs:
        if track.scan_from is None and track.build is None:
            track.scan_from = max(ids) + 1


def _advance_scan(track: JobTrack, observed: list[ObservedBuild], spec: Stage) -> None:
    """Move the job's `from=` high-water mark: keep the build we follow and any build whose
    input we could not judge yet (pending builds may have no inputs); skip the rest."""
    if not observed:
        return
    keep = [b.id for b in observed if spec.match.input is not None and b.covers is None]
    if track.build is not None:
        keep.append(track.build.id)
    track.scan_from = min(keep) if keep else max(b.id for b in observed) + 1


def _update_stage(
    m: Monitor, stage: StageTrack, spec: Stage, observation: Observation, chain_margin: float
) -> list[Event]:
    events: list[Event] = []
    now = observation.now
    before = stage.state
    state = _stage_state(stage)
    starts = [j.first_start for j in stage.jobs if j.first_start is not None]
    if starts:
        stage.started_at = min(starts)
    if state in ("running", "succeeded", "failed") and before == "waiting":
        events.append(
            StageStarted(
                stage=stage.id,
                label=stage.label,
                builds=[f"{j.job} #{j.build.name}" for j in stage.jobs if j.build is not None],
            )
        )
    if state == "succeeded" and before != "succeeded":
        ends = [j.build.end_time for j in stage.jobs if j.build and j.build.end_time]
        stage.finished_at = max(ends) if ends else int(now)
        stage.state = "succeeded"
        events.append(StageSucceeded(stage=stage.id, label=stage.label, duration=stage.duration))
        if m.prompt is not None and m.prompt.stage == stage.id:
            m.prompt = None  # a rerun passed before anyone answered: nothing left to decide
        return events
    stage.state = state
    if state == "failed":
        for track in stage.jobs:
            build = track.build
            if build is None or build.status not in FAILURE_STATUSES:
                continue
            if build.id in track.failed_ids:
                continue
            track.failed_ids.append(build.id)
            events.extend(_failure(m, stage, track, build, observation))
            if m.done:
                return events
    threshold = slow_threshold(stage, spec, chain_margin)
    if (
        state == "running"
        and not stage.slow_warned
        and threshold is not None
        and stage.started_at is not None
        and now - stage.started_at > threshold
    ):
        stage.slow_warned = True
        events.append(
            StageSlow(
                stage=stage.id,
                label=stage.label,
                elapsed=int(now - stage.started_at),
                threshold=int(threshold),
                usual=stage.usual_duration if _usual_counts(stage) else None,
            )
        )
    return events


def _usual_counts(stage: StageTrack) -> bool:
    return stage.usual_duration is not None and stage.usual_samples >= SLOW_MIN_SAMPLES


def slow_threshold(stage: StageTrack, spec: Stage, margin: float) -> float | None:
    """Seconds of running after which the stage is slow: its `warn_after`, or (see SLOW_FACTOR)
    twice its usual duration and at least `margin` more, whichever comes first."""
    limits = [spec.warn_after] if spec.warn_after is not None else []
    if _usual_counts(stage):
        assert stage.usual_duration is not None
        usual = stage.usual_duration
        limits.append(max(SLOW_FACTOR * usual, usual + margin))
    return min(limits, default=None)


def _failure(
    m: Monitor, stage: StageTrack, track: JobTrack, build: ObservedBuild, observation: Observation
) -> list[Event]:
    prompt_id: int | None = None
    what = f"{track.job} #{build.name} {build.status}"
    rerun_due = m.on_failure == "rerun" and m.reruns_asked == 0
    if m.on_failure == "ask" or rerun_due:
        m.prompts_issued += 1
        prompt_id = m.prompts_issued
        m.prompt = FailurePrompt(
            prompt=prompt_id,
            stage=stage.id,
            job=track.job,
            build_id=build.id,
            pipeline=track.pipeline,
            build_name=build.name,
            auto_rerun=rerun_due,
        )
    failed = StageFailed(
        stage=stage.id,
        label=stage.label,
        job=track.job,
        build_name=build.name,
        build_url=build.url,
        status=build.status,
        log_tail=observation.log_tails.get(build.id, ""),
        prompt=prompt_id if m.on_failure == "ask" else None,
        rerun_due=rerun_due,
    )
    if m.on_failure == "stop":
        return [failed, *_stop(m, "policy", what)]
    if m.on_failure == "rerun" and not rerun_due:
        return [failed, *_stop(m, "policy", f"{what} again after a rerun")]
    if m.on_failure == "continue":
        return [failed, DecisionTaken(choice="continue", by="policy", prompt=None)]
    return [failed]


def _apply_decision(m: Monitor, observation: Observation) -> list[Event]:
    decision = observation.decision
    if decision is None or m.prompt is None or decision.prompt != m.prompt.prompt:
        return []
    m.prompt = None
    if decision.choice == "stop":
        stopped = _stop(m, decision.by, decision.reason or "stopped after a failure")
        return [DecisionTaken(choice="stop", by=decision.by, prompt=decision.prompt), *stopped]
    if decision.rerun is not None:
        m.reruns_asked += 1
    taken = DecisionTaken(
        choice="continue", by=decision.by, prompt=decision.prompt, rerun=decision.rerun
    )
    return [taken]


def _stop(m: Monitor, by: str, reason: str) -> list[Event]:
    """End the monitor where it stands; the events are stamped by the caller."""
    m.status = "stopped"
    m.prompt = None
    m.expected_at = None
    entries, _ = timeline(m)
    return [Stopped(by=by, reason=reason, timeline=entries)]
