"""Properties of the pure core: random histories of a simulated CI fed to `transition`.

A scenario is a commit (its changed files choose the path of the default chain), a failure
policy, and a list of things that happen in the world, one per tick: builds appear (carrying
our commit, a descendant or an old commit; started or pending), start, pass or fail (or do
all that between two ticks), finished builds are rerun (mostly failed ones, sometimes an old
one), someone answers a prompt (the open one or a stale one) or asks to stop, Concourse is
unreachable, or time just passes. Every job starts with an old build that passed before our
commit existed. Each tick observes the world the way
`workers.observe` does: the jobs `plan_tick` names, from each job's `scan_from`, inputs known
once a build has started, the log tail the plan says is due. Then a finishing tail lets every
build finish and a fresh build of ours pass on each job still waiting, answering "continue".

The world knows the truth the monitor has to guess: a build is *ours* when its input carries
our commit (input-matched stages) and, for `after_previous` stages, when it was started after
our previous stage passed in the world (a rerun keeps its original's inputs, so its truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers.chain import Chain, load_chain
from workers.events import (
    FAILURE_STATUSES,
    BuildStatus,
    CarriedByLater,
    ConcourseBack,
    ConcourseUnreachable,
    DecisionTaken,
    Deployed,
    Event,
    NotPickedUp,
    PathCompleted,
    RecoveredByRerun,
    StageFailed,
    StageSlow,
    StageStarted,
    StageSucceeded,
    Stopped,
)
from workers.monitor import (
    Decision,
    FailurePolicy,
    Monitor,
    Observation,
    ObservedBuild,
    UsualTime,
    new_monitor,
    previous_stage,
    transition,
)
from workers.observe import FIRST_LISTING_LIMIT
from workers.plan import plan_tick

CHAIN: Chain = load_chain()
SHA, LATER, OLD = "a" * 40, "b" * 40, "c" * 40  # ours, a descendant of ours, an older commit
CARRIES = {SHA, LATER}
T0 = 1_700_000_000
FILES = {
    "backend": ["core/credit/src/fee.rs"],
    "mixed": ["core/credit/src/fee.rs", "apps/admin-panel/src/page.tsx"],
    "frontend-only": ["apps/admin-panel/src/page.tsx", "apps/customer-portal/src/app.tsx"],
    "dagster-only": ["dagster/assets.py"],
}
TERMINAL: tuple[BuildStatus, ...] = ("succeeded", "failed", "errored", "aborted")
TERMINAL_EVENTS = (Deployed, PathCompleted, Stopped)
# The chain view's usual times: short enough that the slow rule (2x usual, at least usual +
# 5 min) fires within a history, besides each stage's warn_after.
USUAL_TIMES = {s.id: UsualTime(seconds=120, samples=5) for s in CHAIN.stages}

# What happens in the world in one tick, weighted by repetition: mostly builds appearing and
# moving on (`quick`: on any job, started and finished between two ticks); now and then a
# decision, an outage, a quiet tick. (A request to stop comes at most once: see `scenarios`.)
KINDS = ["new"] * 8 + ["progress"] * 12 + ["quick"] * 3 + ["rerun"] * 4 + ["decide"] * 4
KINDS += ["outage", "wait"] * 2


@dataclass(frozen=True)
class Happening:
    kind: str
    pick: int  # which job or build it concerns (modulo what exists)
    ref: str  # the input of a new build
    flag: bool  # new (now and then), rerun: pending; decide: for a stale prompt
    outcome: BuildStatus  # how a started build ends
    choice: str  # a decision's answer
    seconds: int  # time since the previous tick


@dataclass
class WorldBuild:
    id: int
    job_key: str
    stage_id: str
    status: BuildStatus
    ref: str
    ours: bool
    start_time: int | None
    end_time: int | None = None
    rerun_of: int | None = None


@dataclass
class World:
    """The CI the monitor watches: builds of the jobs on its path, ids growing with creation."""

    monitor: Monitor
    builds: list[WorldBuild] = field(default_factory=list)
    next_id: int = 100

    def job_keys(self) -> list[tuple[str, str]]:
        return [(s.id, j.key) for s in self.monitor.stages for j in s.jobs]

    def passed(self, stage_id: str) -> bool:
        """Whether every job of the stage has a build of ours that passed (in the world)."""
        stage = self.monitor.stage(stage_id)
        return all(
            any(b.ours and b.status == "succeeded" for b in self.builds if b.job_key == j.key)
            for j in stage.jobs
        )

    def is_ours(self, stage_id: str, ref: str) -> bool:
        match = CHAIN.stage(stage_id).match
        if match.input is not None and ref not in CARRIES:
            return False
        if match.after_previous:
            prev = previous_stage(self.monitor, stage_id)
            return prev is None or self.passed(prev.id)
        return True

    def add(
        self,
        stage_id: str,
        job_key: str,
        ref: str,
        now: int,
        *,
        pending: bool = False,
        status: BuildStatus = "started",
        rerun_of: WorldBuild | None = None,
    ) -> WorldBuild:
        if rerun_of is not None:
            ours, ref = rerun_of.ours, rerun_of.ref  # a rerun repeats its original's inputs
        else:
            ours = self.is_ours(stage_id, ref)
            # A build started before our previous stage passed is never pending: a pending one
            # starts later, after it, and may be ours (the transition counts on that).
            pending = pending and (ours or not CHAIN.stage(stage_id).match.after_previous)
        build = WorldBuild(
            id=self.next_id,
            job_key=job_key,
            stage_id=stage_id,
            status="pending" if pending else status,
            ref=ref,
            ours=ours,
            start_time=None if pending else now,
            end_time=now if status in TERMINAL and not pending else None,
            rerun_of=rerun_of.id if rerun_of is not None else None,
        )
        self.next_id += 1
        self.builds.append(build)
        return build

    def happen(self, event: Happening, now: int, monitor: Monitor) -> None:
        # Mostly about the jobs the monitor watches now, so histories get somewhere.
        watched = {j.key for j in plan_tick(monitor, CHAIN, now).jobs}
        near = event.pick % 4 != 0 and bool(watched)
        if event.kind == "new":
            jobs = [(s, j) for s, j in self.job_keys() if j in watched or not near]
            stage_id, job_key = jobs[event.pick % len(jobs)]
            pending = event.flag and event.pick % 3 == 0
            self.add(stage_id, job_key, event.ref, now, pending=pending)
        elif event.kind == "progress":
            running = [b for b in self.builds if b.status in ("pending", "started")]
            running = [b for b in running if b.job_key in watched] if near else running
            if running:
                build = running[event.pick % len(running)]
                if build.status == "pending":
                    build.status, build.start_time = "started", now
                else:
                    build.status, build.end_time = event.outcome, now
        elif event.kind == "quick":
            stage_id, job_key = self.job_keys()[event.pick % len(self.job_keys())]
            self.add(stage_id, job_key, event.ref, now - 1)
            self.builds[-1].status, self.builds[-1].end_time = event.outcome, now
        elif event.kind == "rerun":
            # Mostly a failed build; any finished one now and then (an old one, say).
            finished = [b for b in self.builds if b.status in TERMINAL]
            failed = [b for b in finished if b.status in FAILURE_STATUSES]
            rerunnable = failed if failed and event.pick % 3 != 0 else finished
            if rerunnable:
                original = rerunnable[event.pick % len(rerunnable)]
                # Concourse names the original build, never an intermediate rerun.
                root = next((b for b in self.builds if b.id == original.rerun_of), original)
                self.add(
                    original.stage_id,
                    original.job_key,
                    root.ref,
                    now,
                    pending=event.flag,
                    rerun_of=root,
                )

    def observe(self, monitor: Monitor, now: int, event: Happening | None) -> Observation:
        """What `Observer.observe` would return: the jobs the plan names, from their marks."""
        observation = Observation(now=now, version_seen=any(b.ref == SHA for b in self.builds))
        if event is not None and event.kind == "outage":
            observation.concourse_error = "Concourse is not answering (timed out)"
            return observation
        if event is not None and event.kind == "stop":
            observation.stop_requested_by = "U0BOB"
        if event is not None and event.kind == "decide":
            stale = event.flag or monitor.prompt is None
            prompt = monitor.prompt.prompt + 1 if monitor.prompt else 1
            observation.decision = Decision(
                prompt=prompt if stale else prompt - 1,
                choice="stop" if event.choice == "stop" else "continue",
                by="U0ALICE",
            )
        observation.usual = USUAL_TIMES
        for job in plan_tick(monitor, CHAIN, now).jobs:
            builds = [b for b in self.builds if b.job_key == job.key]
            if job.scan_from is None:
                builds = builds[-FIRST_LISTING_LIMIT:]
            else:
                builds = [b for b in builds if b.id >= job.scan_from]
            seen = [_observed(b, judged=job.input is not None) for b in builds]
            observation.builds[job.key] = seen
            tail_of = job.log_tail_due(seen)
            if tail_of is not None:
                observation.log_tails[tail_of] = f"log of build {tail_of}"
        return observation


def _observed(build: WorldBuild, *, judged: bool) -> ObservedBuild:
    """A build as observe reports it: its input is known once it started."""
    known = judged and build.status != "pending"
    return ObservedBuild(
        id=build.id,
        name=str(build.id),
        status=build.status,
        start_time=build.start_time,
        end_time=build.end_time,
        rerun_of=build.rerun_of,
        input_ref=build.ref if known else None,
        covers=build.ref in CARRIES if known else None,
    )


happenings = st.builds(
    Happening,
    kind=st.sampled_from(KINDS),
    pick=st.integers(0, 1000),
    ref=st.sampled_from([SHA, SHA, SHA, LATER, OLD]),
    flag=st.booleans(),
    outcome=st.sampled_from(["succeeded"] * 4 + ["failed", "errored", "aborted"]),
    choice=st.sampled_from(["continue", "continue", "continue", "stop"]),
    seconds=st.integers(1, 900),
)


@dataclass
class Run:
    """One scenario played: every monitor after each tick, with the events of that tick."""

    world: World
    states: list[tuple[Monitor, list[Event]]]

    @property
    def events(self) -> list[Event]:
        return [e for _, events in self.states for e in events]


def play(
    path: str, policy: FailurePolicy, history: list[Happening], stop_at: int | None = None
) -> Run:
    monitor, started = new_monitor(
        chain=CHAIN,
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline="Add fee",
        committed_at=T0,
        files=FILES[path],
        now=T0,
        on_failure=policy,
    )
    assert monitor.path == path
    world = World(monitor)
    for stage_id, job_key in world.job_keys():  # history from before our commit
        world.add(stage_id, job_key, OLD, T0 - 3600, status="succeeded")
    states: list[tuple[Monitor, list[Event]]] = [(monitor, started)]
    now = T0
    for index, event in enumerate(history):
        if index == stop_at:
            event = replace(event, kind="stop")
        now += event.seconds
        world.happen(event, now, monitor)
        monitor, events = transition(monitor, world.observe(monitor, now, event), CHAIN)
        states.append((monitor, events))
    # The finishing tail: everything finishes, each waiting job gets a passing build of ours.
    for _ in range(2 * len(monitor.stages) + 2):
        if monitor.done:
            break
        now += 60
        for build in world.builds:
            if build.status in ("pending", "started"):
                build.status, build.start_time = "succeeded", build.start_time or now
                build.end_time = now
        for job in plan_tick(monitor, CHAIN, now).jobs:
            if job.track.build is None or job.track.build.status != "succeeded":
                world.add(job.spec.id, job.key, SHA, now, status="succeeded")
        now += 5
        answer = Happening(
            kind="decide",
            pick=0,
            ref=SHA,
            flag=False,
            outcome="succeeded",
            choice="continue",
            seconds=0,
        )
        monitor, events = transition(monitor, world.observe(monitor, now, answer), CHAIN)
        states.append((monitor, events))
    return Run(world, states)


scenarios = st.tuples(
    st.sampled_from(sorted(FILES)),
    st.sampled_from(["ask", "ask", "continue", "stop"]),
    st.lists(happenings, min_size=10, max_size=32),
    st.integers(0, 120).map(lambda i: i if i < 40 else None),  # a request to stop, if ever
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios)
def test_random_histories_keep_the_monitors_promises(
    scenario: tuple[str, FailurePolicy, list[Happening], int | None],
) -> None:
    run = play(*scenario)
    check_announced_only_after_a_covering_build_passed(run)
    check_no_event_twice(run)
    check_passed_stages_stay_passed(run)
    check_it_ends(run)
    check_the_expected_time(run)


def check_announced_only_after_a_covering_build_passed(run: Run) -> None:
    """A stage is announced passed only when each of its jobs follows a build of ours that
    passed; "Deployment complete" (or a path's completion) only after every stage was."""
    by_id = {b.id: b for b in run.world.builds}
    announced: set[str] = set()
    for monitor, events in run.states:
        for event in events:
            if isinstance(event, StageSucceeded):
                for track in monitor.stage(event.stage).jobs:
                    assert track.build is not None, (event.stage, track.key)
                    truth = by_id[track.build.id]
                    assert truth.job_key == track.key
                    assert truth.ours, (event.stage, track.key, truth)
                    assert truth.status == "succeeded" == track.build.status
                announced.add(event.stage)
            if isinstance(event, Deployed | PathCompleted):
                assert announced == {s.id for s in monitor.stages}
                assert isinstance(event, Deployed) == monitor.reaches_staging


def check_no_event_twice(run: Run) -> None:
    """Events are numbered 1..n in order, and none is announced twice."""
    events = run.events
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert run.states[-1][0].events_emitted == len(events)
    once: list[tuple[object, ...]] = []
    outages: list[str] = []
    for event in events:
        if isinstance(event, StageStarted | StageSucceeded | StageSlow):
            once.append((event.kind, event.stage))
        elif isinstance(event, StageFailed | RecoveredByRerun):
            once.append((event.kind, event.stage, event.job, event.build_name))
        elif isinstance(event, NotPickedUp | CarriedByLater):
            once.append((event.kind,))
        elif isinstance(event, DecisionTaken) and event.prompt is not None:
            once.append((event.kind, event.prompt))
        elif isinstance(event, ConcourseUnreachable | ConcourseBack):
            outages.append(event.kind)
    assert len(once) == len(set(once)), once
    assert outages == ["unreachable", "reachable"] * (len(outages) // 2) + (
        ["unreachable"] if len(outages) % 2 else []
    )
    ends = [i for i, e in enumerate(events) if isinstance(e, TERMINAL_EVENTS)]
    assert ends in ([], [len(events) - 1])


def check_passed_stages_stay_passed(run: Run) -> None:
    """A stage that passed never moves back: same state, end and builds ever after, and
    nothing more is said about it."""
    passed: dict[str, tuple[int | None, list[int | None]]] = {}
    for monitor, events in run.states:
        for stage_id, (finished_at, builds) in passed.items():
            stage = monitor.stage(stage_id)
            assert stage.state == "succeeded"
            assert stage.finished_at == finished_at
            assert [j.build.id if j.build else None for j in stage.jobs] == builds
        for event in events:
            if isinstance(event, StageStarted | StageFailed | StageSlow | StageSucceeded):
                assert event.stage not in passed, event
            if isinstance(event, StageSucceeded):
                stage = monitor.stage(event.stage)
                passed[event.stage] = (
                    stage.finished_at,
                    [j.build.id if j.build else None for j in stage.jobs],
                )


def check_it_ends(run: Run) -> None:
    """The history always ends without raising: deployed (or the path completed) or stopped
    once the world lets it, waiting (active) before; a finished monitor says nothing more."""
    final = run.states[-1][0]
    assert final.status in ("deployed", "completed", "stopped")
    ended = [e for e in run.events if isinstance(e, TERMINAL_EVENTS)]
    kind = {"deployed": Deployed, "completed": PathCompleted, "stopped": Stopped}[final.status]
    assert len(ended) == 1 and isinstance(ended[0], kind)
    for monitor, _ in run.states[:-1]:
        assert monitor.status == "active" or monitor.status == final.status
    again, events = transition(final, Observation(now=final.updated_at + 60), CHAIN)
    assert events == [] and again.status == final.status


def check_the_expected_time(run: Run) -> None:
    """An active monitor expects its path done no earlier than its last look, unless a stage
    failed or one left has no usual time yet (then nothing is expected); a finished one
    expects nothing. Stage events tell the expected time of their tick."""
    for monitor, events in run.states[1:]:
        unknown = any(s.state != "succeeded" and s.usual_duration is None for s in monitor.stages)
        if monitor.done or unknown or any(s.state == "failed" for s in monitor.stages):
            assert monitor.expected_at is None
        else:
            assert monitor.expected_at is not None
            assert monitor.expected_at >= monitor.updated_at
        for event in events:
            if isinstance(event, StageStarted | StageSucceeded):
                assert event.expected_at == monitor.expected_at
