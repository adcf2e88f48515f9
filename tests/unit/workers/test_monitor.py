"""The pure transition: this monitor + this observation → these events."""

from __future__ import annotations

import pytest

from workers.chain import Chain, load_chain
from workers.events import (
    CarriedByLater,
    ConcourseBack,
    ConcourseUnreachable,
    DecisionTaken,
    Deployed,
    Event,
    MonitorStarted,
    NotPickedUp,
    PathCompleted,
    RecoveredByRerun,
    RerunAsked,
    StageFailed,
    StageSlow,
    StageStarted,
    StageSucceeded,
    Stopped,
)
from workers.monitor import (
    Decision,
    Monitor,
    Observation,
    ObservedBuild,
    UsualTime,
    monitor_id_for,
    new_monitor,
    transition,
)

SHA = "a" * 40
LATER = "b" * 40
OLD = "c" * 40
T0 = 1_700_000_000
BACKEND = ["core/src/lib.rs"]


@pytest.fixture(scope="module")
def chain() -> Chain:
    return load_chain()


def start(chain: Chain, files: list[str] = BACKEND, policy: str = "ask") -> Monitor:
    monitor, events = new_monitor(
        chain=chain,
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline="Add fee",
        committed_at=T0,
        files=files,
        now=T0,
        on_failure=policy,  # type: ignore[arg-type]
    )
    assert isinstance(events[0], MonitorStarted)
    return monitor


def b(
    build_id: int,
    status: str,
    start: int | None = None,
    end: int | None = None,
    *,
    ref: str | None = SHA,
    covers: bool | None = None,
    rerun_of: int | None = None,
    name: str | None = None,
) -> ObservedBuild:
    if covers is None and ref is not None:
        covers = ref in (SHA, LATER)
    return ObservedBuild(
        id=build_id,
        name=name or str(build_id),
        status=status,  # type: ignore[arg-type]
        start_time=start,
        end_time=end,
        input_ref=ref,
        covers=covers,
        rerun_of=rerun_of,
    )


def obs(now: int, **builds: list[ObservedBuild]) -> Observation:
    keys = {
        "integration": "lana-bank/test-integration",
        "bats": "lana-bank/test-bats",
        "flake": "lana-bank/flake-check",
        "rc": "lana-bank/build-rc",
        "promote": "lana-bank/open-promote-rc-pr",
        "testflight": "private-charts/lana-bank-testflight",
        "staging": "galoy-staging/galoy-staging-lana-bank",
        "admin": "lana-bank/build-admin-panel-edge-image",
        "portal": "lana-bank/build-customer-portal-edge-image",
    }
    return Observation(now=now, builds={keys[k]: v for k, v in builds.items()})


def step(monitor: Monitor, observation: Observation, chain: Chain) -> tuple[Monitor, list[Event]]:
    return transition(monitor, observation, chain)


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def passed_tests(at: int) -> dict[str, list[ObservedBuild]]:
    return {
        "integration": [b(10, "succeeded", T0 + 10, at)],
        "bats": [b(11, "succeeded", T0 + 10, at - 5)],
        "flake": [b(12, "succeeded", T0 + 11, at - 8)],
    }


def test_monitor_id_is_deterministic_and_rq_safe() -> None:
    assert monitor_id_for("GaloyMoney/lana-bank", SHA) == "galoymoney-lana-bank-aaaaaaaaaaaa"


def test_happy_path_reports_each_stage_and_a_timeline(chain: Chain) -> None:
    m = start(chain)
    m, ev = step(
        m,
        obs(
            T0 + 20,
            **{
                k: [x.model_copy(update={"status": "started", "end_time": None}) for x in v]
                for k, v in passed_tests(T0 + 300).items()
            },
        ),
        chain,
    )
    assert kinds(ev) == ["stage_started"]
    assert isinstance(ev[0], StageStarted) and ev[0].label == "lana-bank tests"
    m, ev = step(m, obs(T0 + 310, **passed_tests(T0 + 300)), chain)
    assert kinds(ev) == ["stage_succeeded"]
    assert isinstance(ev[0], StageSucceeded) and ev[0].duration == 290
    m, ev = step(
        m,
        obs(
            T0 + 400,
            rc=[b(20, "succeeded", T0 + 320, T0 + 380)],
            promote=[b(21, "succeeded", T0 + 385, T0 + 395)],
        ),
        chain,
    )
    assert kinds(ev) == ["stage_started", "stage_succeeded", "stage_started", "stage_succeeded"]
    # testflight: the first build that starts after promote finished (T0+395)
    early = b(30, "succeeded", T0 + 390, T0 + 420, ref=None)
    ours = b(31, "started", T0 + 398, None, ref=None)
    m, ev = step(m, obs(T0 + 430, testflight=[early, ours]), chain)
    assert kinds(ev) == ["stage_started"]
    assert m.stage("testflight").jobs[0].build is not None
    assert m.stage("testflight").jobs[0].build.id == 31
    m, ev = step(
        m,
        obs(
            T0 + 700,
            testflight=[
                early,
                ours.model_copy(update={"status": "succeeded", "end_time": T0 + 698}),
            ],
        ),
        chain,
    )
    assert kinds(ev) == ["stage_succeeded"]
    staging_old = b(40, "succeeded", T0 + 650, T0 + 690, ref=OLD)
    staging_ours = b(41, "succeeded", T0 + 705, T0 + 900)
    m, ev = step(m, obs(T0 + 910, staging=[staging_old, staging_ours]), chain)
    assert kinds(ev) == ["stage_started", "stage_succeeded", "deployed"]
    deployed = ev[-1]
    assert isinstance(deployed, Deployed)
    assert [(e.label, e.duration) for e in deployed.timeline] == [
        ("lana-bank tests", 290),
        ("build-rc", 60),
        ("open-promote-rc-pr", 10),
        ("testflight", 300),
        ("staging", 195),
    ]
    assert deployed.total == 890
    assert m.status == "deployed"
    assert [e.seq for e in ev] == sorted(e.seq for e in ev)


def test_done_monitor_ignores_observations(chain: Chain) -> None:
    m = start(chain)
    m.status = "stopped"
    _, ev = step(m, obs(T0 + 5, **passed_tests(T0 + 4)), chain)
    assert ev == []


def test_old_rerun_is_not_mistaken_for_ours(chain: Chain) -> None:
    m = start(chain)
    # Build 5 ran an old commit; its rerun 5.1 appears mid-run with a fresh start time.
    old_rerun = b(15, "started", T0 + 30, ref=OLD, rerun_of=5, name="5.1")
    m, ev = step(m, obs(T0 + 40, integration=[old_rerun]), chain)
    assert ev == []
    assert m.stage("tests").jobs[0].build is None


def test_batched_commit_is_carried_by_a_descendant(chain: Chain) -> None:
    m = start(chain)
    carrier = b(10, "started", T0 + 30, ref=LATER)
    m, ev = step(m, obs(T0 + 40, integration=[carrier]), chain)
    assert kinds(ev) == ["stage_started", "carried"]
    carried = ev[1]
    assert isinstance(carried, CarriedByLater) and carried.carrier_sha == LATER
    m, ev = step(m, obs(T0 + 50, bats=[b(11, "started", T0 + 31, ref=LATER)]), chain)
    assert "carried" not in kinds(ev)  # said once per monitor


def test_failure_asks_then_continue_then_rerun_recovers(chain: Chain) -> None:
    m = start(chain)
    failing = b(11, "failed", T0 + 10, T0 + 100)
    m, ev = step(
        m,
        Observation(
            now=T0 + 110, builds={"lana-bank/test-bats": [failing]}, log_tails={11: "not ok 3"}
        ),
        chain,
    )
    assert kinds(ev) == ["stage_started", "stage_failed"]
    failed = ev[1]
    assert isinstance(failed, StageFailed)
    assert failed.prompt == 1 and failed.log_tail == "not ok 3" and failed.job == "test-bats"
    assert m.prompt is not None
    # The same failure observed again is not reported twice.
    m, ev = step(m, obs(T0 + 120, bats=[failing]), chain)
    assert ev == []
    decided = obs(T0 + 130, bats=[failing])
    decided.decision = Decision(prompt=1, choice="continue", by="U123")
    m, ev = step(m, decided, chain)
    assert kinds(ev) == ["decision"]
    assert isinstance(ev[0], DecisionTaken) and ev[0].by == "U123"
    assert m.prompt is None and m.status == "active"
    rerun = b(19, "succeeded", T0 + 140, T0 + 200, rerun_of=11, name="11.1")
    m, ev = step(
        m,
        obs(
            T0 + 210,
            bats=[failing, rerun],
            integration=[b(10, "succeeded", T0 + 10, T0 + 90)],
            flake=[b(12, "succeeded", T0 + 10, T0 + 50)],
        ),
        chain,
    )
    assert kinds(ev) == ["recovered", "stage_succeeded"]
    assert isinstance(ev[0], RecoveredByRerun) and ev[0].build_name == "11.1"
    assert m.stage("tests").duration == 190


def test_failure_then_stop_decision_ends_with_summary(chain: Chain) -> None:
    m = start(chain)
    failing = b(11, "errored", T0 + 10, T0 + 100)
    m, _ = step(m, obs(T0 + 110, bats=[failing]), chain)
    decided = obs(T0 + 120, bats=[failing])
    decided.decision = Decision(prompt=1, choice="stop", by="U123")
    m, ev = step(m, decided, chain)
    assert kinds(ev) == ["decision", "stopped"]
    assert m.status == "stopped"
    stopped = ev[1]
    assert isinstance(stopped, Stopped) and stopped.by == "U123"


def test_decision_for_another_prompt_is_ignored(chain: Chain) -> None:
    m = start(chain)
    m, _ = step(m, obs(T0 + 110, bats=[b(11, "failed", T0 + 10, T0 + 100)]), chain)
    stale = obs(T0 + 120)
    stale.decision = Decision(prompt=7, choice="stop", by="U9")
    m, ev = step(m, stale, chain)
    assert ev == [] and m.status == "active"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("stop", ["stage_started", "stage_failed", "stopped"]),
        ("continue", ["stage_started", "stage_failed", "decision"]),
    ],
)
def test_failure_policy_without_asking(chain: Chain, policy: str, expected: list[str]) -> None:
    m = start(chain, policy=policy)
    m, ev = step(m, obs(T0 + 110, bats=[b(11, "aborted", T0 + 10, T0 + 100)]), chain)
    assert kinds(ev) == expected
    failed = ev[1]
    assert isinstance(failed, StageFailed) and failed.prompt is None


def test_a_continue_with_a_rerun_is_said_and_the_rerun_followed(chain: Chain) -> None:
    m = start(chain)
    failing = b(11, "failed", T0 + 10, T0 + 100, name="57")
    m, _ = step(m, obs(T0 + 110, bats=[failing]), chain)
    assert m.prompt is not None
    assert (m.prompt.pipeline, m.prompt.job, m.prompt.build_name) == (
        "lana-bank",
        "test-bats",
        "57",
    )
    assert not m.prompt.auto_rerun
    decided = obs(T0 + 120, bats=[failing])
    asked = RerunAsked(job="test-bats", build_name="57", rerun_name="57.1")
    decided.decision = Decision(prompt=1, choice="continue", by="U123", rerun=asked)
    m, ev = step(m, decided, chain)
    assert kinds(ev) == ["decision"]
    assert isinstance(ev[0], DecisionTaken) and ev[0].rerun == asked
    assert m.reruns_asked == 1 and m.prompt is None
    rerun = b(19, "started", T0 + 130, rerun_of=11, name="57.1")
    m, ev = step(m, obs(T0 + 140, bats=[failing, rerun]), chain)
    assert m.stage("tests").jobs[1].build is not None
    assert m.stage("tests").jobs[1].build.name == "57.1"
    assert m.stage("tests").state == "running"


def test_the_rerun_policy_reruns_once_then_stops_on_a_second_failure(chain: Chain) -> None:
    m = start(chain, policy="rerun")
    failing = b(11, "failed", T0 + 10, T0 + 100, name="57")
    m, ev = step(m, obs(T0 + 110, bats=[failing]), chain)
    assert kinds(ev) == ["stage_started", "stage_failed"]
    failed = ev[1]
    assert isinstance(failed, StageFailed) and failed.prompt is None and failed.rerun_due
    assert m.prompt is not None and m.prompt.auto_rerun and m.status == "active"
    decided = obs(T0 + 120, bats=[failing])
    asked = RerunAsked(job="test-bats", build_name="57", rerun_name="57.1")
    decided.decision = Decision(prompt=1, choice="continue", by="policy", rerun=asked)
    m, ev = step(m, decided, chain)
    assert kinds(ev) == ["decision"] and m.reruns_asked == 1
    again = b(19, "failed", T0 + 130, T0 + 200, rerun_of=11, name="57.1")
    m, ev = step(m, obs(T0 + 210, bats=[failing, again]), chain)
    assert kinds(ev) == ["stage_failed", "stopped"]
    second = ev[0]
    assert isinstance(second, StageFailed) and not second.rerun_due and second.prompt is None
    stopped = ev[1]
    assert isinstance(stopped, Stopped) and stopped.by == "policy"
    assert "57.1 failed again after a rerun" in stopped.reason


def test_a_refused_automatic_rerun_stops_with_the_reason(chain: Chain) -> None:
    m = start(chain, policy="rerun")
    failing = b(11, "failed", T0 + 10, T0 + 100)
    m, _ = step(m, obs(T0 + 110, bats=[failing]), chain)
    decided = obs(T0 + 120, bats=[failing])
    reason = "the automatic rerun was refused: needs pipeline-operator"
    decided.decision = Decision(prompt=1, choice="stop", by="policy", reason=reason)
    m, ev = step(m, decided, chain)
    assert kinds(ev) == ["decision", "stopped"]
    assert isinstance(ev[1], Stopped) and ev[1].reason == reason


def test_slow_stage_warns_once(chain: Chain) -> None:
    m = start(chain)
    running = {"integration": [b(10, "started", T0 + 10)]}
    m, ev = step(m, obs(T0 + 10 + 29 * 60, **running), chain)
    assert kinds(ev) == ["stage_started"]
    m, ev = step(m, obs(T0 + 10 + 31 * 60, **running), chain)
    assert kinds(ev) == ["stage_slow"]
    assert isinstance(ev[0], StageSlow) and ev[0].threshold == 1800
    m, ev = step(m, obs(T0 + 10 + 40 * 60, **running), chain)
    assert ev == []


def test_not_picked_up_warns_once_after_threshold(chain: Chain) -> None:
    m = start(chain)
    m, ev = step(m, obs(T0 + 299), chain)
    assert ev == []
    m, ev = step(m, obs(T0 + 301), chain)
    assert kinds(ev) == ["not_picked_up"]
    assert isinstance(ev[0], NotPickedUp) and ev[0].waited == 301
    m, ev = step(m, obs(T0 + 400), chain)
    assert ev == []


def test_seen_version_counts_as_picked_up(chain: Chain) -> None:
    m = start(chain)
    seen = obs(T0 + 400)
    seen.version_seen = True
    m, ev = step(m, seen, chain)
    assert ev == [] and m.picked_up


def test_testflight_ignores_reruns_of_older_builds(chain: Chain) -> None:
    m = start(chain)
    m, _ = step(m, obs(T0 + 310, **passed_tests(T0 + 300)), chain)
    m, _ = step(
        m,
        obs(
            T0 + 400,
            rc=[b(20, "succeeded", T0 + 320, T0 + 380)],
            promote=[b(21, "succeeded", T0 + 385, T0 + 395)],
        ),
        chain,
    )
    old_rerun = b(33, "started", T0 + 410, ref=None, rerun_of=29, name="29.1")
    pending = b(34, "pending", ref=None)
    m, ev = step(m, obs(T0 + 420, testflight=[old_rerun, pending]), chain)
    track = m.stage("testflight").jobs[0]
    assert track.build is not None and track.build.id == 34
    assert kinds(ev) == ["stage_started"]


def test_staging_requires_our_commit_in_its_input(chain: Chain) -> None:
    m = start(chain)
    for stage in m.stages[:4]:
        stage.state = "succeeded"
        stage.started_at, stage.finished_at = T0 + 10, T0 + 100
    older_content = b(40, "succeeded", T0 + 150, T0 + 200, ref=OLD, covers=False)
    m, ev = step(m, obs(T0 + 210, staging=[older_content]), chain)
    assert ev == []
    m, ev = step(
        m,
        obs(T0 + 400, staging=[older_content, b(41, "succeeded", T0 + 250, T0 + 390, ref=LATER)]),
        chain,
    )
    assert kinds(ev) == ["stage_started", "carried", "stage_succeeded", "deployed"]


def test_frontend_only_completes_without_staging(chain: Chain) -> None:
    m = start(chain, files=["apps/admin-panel/src/page.tsx"])
    assert [s.id for s in m.stages] == ["admin-panel-image"]
    m, ev = step(m, obs(T0 + 100, admin=[b(50, "succeeded", T0 + 10, T0 + 90)]), chain)
    assert kinds(ev) == ["stage_started", "stage_succeeded", "completed"]
    done = ev[-1]
    assert isinstance(done, PathCompleted) and done.note and "next backend" in done.note
    assert m.status == "completed"


def test_concourse_outage_is_reported_once_and_recovery_noted(chain: Chain) -> None:
    m = start(chain)
    down = Observation(now=T0 + 10, concourse_error="Concourse is not answering (502)")
    m, ev = step(m, down, chain)
    assert kinds(ev) == ["unreachable"]
    assert isinstance(ev[0], ConcourseUnreachable)
    m, ev = step(m, down.model_copy(update={"now": T0 + 20}), chain)
    assert ev == []
    m, ev = step(m, obs(T0 + 30), chain)
    assert kinds(ev) == ["reachable"]
    assert isinstance(ev[0], ConcourseBack)


def test_stop_request_ends_monitor(chain: Chain) -> None:
    m = start(chain)
    request = obs(T0 + 10)
    request.stop_requested_by = "U42"
    m, ev = step(m, request, chain)
    assert kinds(ev) == ["stopped"] and m.status == "stopped"


def test_transition_does_not_mutate_its_input(chain: Chain) -> None:
    m = start(chain)
    before = m.model_dump()
    step(m, obs(T0 + 400, **passed_tests(T0 + 300)), chain)
    assert m.model_dump() == before


def test_high_water_mark_keeps_the_followed_build_in_view(chain: Chain) -> None:
    m = start(chain)
    m, _ = step(
        m,
        obs(
            T0 + 20,
            rc=[
                b(3, "succeeded", T0 - 500, T0 - 400, ref=OLD, covers=False),
                b(6, "started", T0 + 10),
            ],
        ),
        chain,
    )
    track = m.stage("build-rc").jobs[0]
    assert track.build is not None and track.build.id == 6
    assert track.scan_from == 6  # listing from=6 still shows the build we follow
    m, _ = step(m, obs(T0 + 30, integration=[b(7, "pending", ref=None, covers=None)]), chain)
    assert m.stage("tests").jobs[0].scan_from == 7  # a build whose inputs are not known yet


def test_recovery_is_announced_when_the_rerun_was_seen_running_first(chain: Chain) -> None:
    m = start(chain)
    failing = b(11, "failed", T0 + 10, T0 + 100)
    m, _ = step(m, obs(T0 + 110, bats=[failing]), chain)
    rerun = b(19, "started", T0 + 140, rerun_of=11, name="11.1")
    m, ev = step(m, obs(T0 + 150, bats=[failing, rerun]), chain)
    assert ev == []
    m, ev = step(
        m,
        obs(
            T0 + 210,
            bats=[failing, rerun.model_copy(update={"status": "succeeded", "end_time": T0 + 200})],
        ),
        chain,
    )
    assert kinds(ev) == ["recovered"]


# -- usual times: the expected time at staging, the slow rule, the timeline ------------------

USUAL = {
    "tests": 600,
    "build-rc": 540,
    "open-promote-rc-pr": 60,
    "testflight": 1080,
    "staging": 420,
}


def usual(now: int, samples: int = 20, **seconds: int) -> dict[str, UsualTime]:
    """The chain view's usual times (the lana-bank history's), with overrides."""
    return {
        stage: UsualTime(seconds=s, samples=samples) for stage, s in {**USUAL, **seconds}.items()
    }


def with_usual(observation: Observation, samples: int = 20, **seconds: int) -> Observation:
    observation.usual = usual(int(observation.now), samples, **seconds)
    return observation


def test_the_expected_time_is_the_usual_times_left(chain: Chain) -> None:
    m = start(chain)
    running = {"integration": [b(10, "started", T0 + 10)]}
    m, ev = step(m, with_usual(obs(T0 + 70, **running)), chain)
    assert kinds(ev) == ["stage_started"]
    # tests ran 60 of its usual 600 s; everything after it takes its usual time.
    left = (600 - 60) + 540 + 60 + 1080 + 420
    assert m.expected_at == T0 + 70 + left
    assert isinstance(ev[0], StageStarted) and ev[0].expected_at == m.expected_at
    assert [s.usual_duration for s in m.stages] == list(USUAL.values())
    # tests passed early (after 290 s): the expected time moves forward.
    m, ev = step(m, with_usual(obs(T0 + 310, **passed_tests(T0 + 300))), chain)
    assert isinstance(ev[0], StageSucceeded)
    assert m.expected_at == T0 + 310 + 540 + 60 + 1080 + 420
    assert ev[0].expected_at == m.expected_at


def test_a_stage_running_past_its_usual_time_counts_as_about_to_end(chain: Chain) -> None:
    m = start(chain)
    running = {"integration": [b(10, "started", T0 + 10)]}
    m, _ = step(m, with_usual(obs(T0 + 10 + 700, **running)), chain)
    assert m.expected_at == T0 + 10 + 700 + 540 + 60 + 1080 + 420


def test_no_expected_time_without_every_usual_time_or_after_a_failure(chain: Chain) -> None:
    m = start(chain)
    running = {"integration": [b(10, "started", T0 + 10)]}
    observation = with_usual(obs(T0 + 70, **running))
    del observation.usual["testflight"]  # never passed yet
    m, _ = step(m, observation, chain)
    assert m.expected_at is None
    m, _ = step(m, with_usual(obs(T0 + 80, **running)), chain)
    assert m.expected_at is not None
    failed = {"integration": [b(10, "failed", T0 + 10, T0 + 90)]}
    m, ev = step(m, with_usual(obs(T0 + 100, **failed)), chain)
    assert kinds(ev) == ["stage_failed"] and m.expected_at is None


def test_the_usual_times_are_kept_when_the_view_says_nothing(chain: Chain) -> None:
    m = start(chain)
    running = {"integration": [b(10, "started", T0 + 10)]}
    m, _ = step(m, with_usual(obs(T0 + 70, **running)), chain)
    m, _ = step(m, obs(T0 + 80, **running), chain)  # e.g. Concourse did not answer the view
    assert m.stage("tests").usual_duration == 600 and m.expected_at == T0 + 80 + 530 + 2100


def test_a_passed_stage_keeps_the_usual_time_it_ran_against(chain: Chain) -> None:
    m = start(chain)
    m, _ = step(m, with_usual(obs(T0 + 310, **passed_tests(T0 + 300))), chain)
    m, _ = step(m, with_usual(obs(T0 + 320), tests=400), chain)
    assert m.stage("tests").usual_duration == 600
    assert m.stage("build-rc").usual_duration == 540


def test_a_finished_monitor_expects_nothing(chain: Chain) -> None:
    m = start(chain)
    m, _ = step(m, with_usual(obs(T0 + 70, integration=[b(10, "started", T0 + 10)])), chain)
    assert m.expected_at is not None
    stopping = with_usual(obs(T0 + 80))
    stopping.stop_requested_by = "U0BOB"
    m, _ = step(m, stopping, chain)
    assert m.done and m.expected_at is None


def test_the_timeline_carries_each_stage_s_usual_time(chain: Chain) -> None:
    m = start(chain)
    m, _ = step(m, with_usual(obs(T0 + 310, **passed_tests(T0 + 300))), chain)
    stopping = obs(T0 + 320)
    stopping.stop_requested_by = "U0BOB"
    m, ev = step(m, stopping, chain)
    stopped = ev[-1]
    assert isinstance(stopped, Stopped)
    assert [(e.duration, e.usual) for e in stopped.timeline[:2]] == [(290, 600), (None, 540)]


def test_a_stage_far_past_its_usual_time_warns_once(chain: Chain) -> None:
    # The rule: longer than twice the usual time and at least `slow_margin` (5 min) more.
    m = start(chain)
    running = {"integration": [b(10, "started", T0 + 10)]}
    m, ev = step(m, with_usual(obs(T0 + 10 + 1199, **running)), chain)
    assert kinds(ev) == ["stage_started"]  # 2 x 600 s not reached yet (warn_after is 30m)
    m, ev = step(m, with_usual(obs(T0 + 10 + 1201, **running)), chain)
    assert kinds(ev) == ["stage_slow"]
    slow = ev[0]
    assert isinstance(slow, StageSlow)
    assert (slow.elapsed, slow.threshold, slow.usual) == (1201, 1200, 600)
    m, ev = step(m, with_usual(obs(T0 + 10 + 31 * 60, **running)), chain)
    assert ev == []  # warn_after passes too: still one warning for the stage


def test_a_short_stage_needs_the_margin_as_well(chain: Chain) -> None:
    m = start(chain)
    running = {"integration": [b(10, "started", T0 + 10)]}
    m, ev = step(m, with_usual(obs(T0 + 10 + 100, **running), tests=60), chain)
    assert kinds(ev) == ["stage_started"]  # past 2 x 60 s, but not 60 s + 5 min
    m, ev = step(m, with_usual(obs(T0 + 10 + 359, **running), tests=60), chain)
    assert ev == []
    m, ev = step(m, with_usual(obs(T0 + 10 + 361, **running), tests=60), chain)
    assert kinds(ev) == ["stage_slow"]
    assert isinstance(ev[0], StageSlow) and ev[0].threshold == 360


def test_a_usual_time_from_fewer_than_three_builds_never_warns(chain: Chain) -> None:
    m = start(chain)
    running = {"integration": [b(10, "started", T0 + 10)]}
    m, ev = step(m, with_usual(obs(T0 + 10 + 1500, **running), samples=2), chain)
    assert kinds(ev) == ["stage_started"]
    m, ev = step(m, with_usual(obs(T0 + 10 + 31 * 60, **running), samples=2), chain)
    assert kinds(ev) == ["stage_slow"]  # the chain's warn_after still applies
    assert isinstance(ev[0], StageSlow) and ev[0].usual is None and ev[0].threshold == 1800


def test_warn_after_first_still_names_the_usual_time(chain: Chain) -> None:
    m = start(chain)
    running = {"integration": [b(10, "started", T0 + 10)]}
    m, ev = step(m, with_usual(obs(T0 + 10 + 31 * 60, **running), tests=1200), chain)
    slow = ev[-1]
    assert isinstance(slow, StageSlow) and (slow.threshold, slow.usual) == (1800, 1200)
