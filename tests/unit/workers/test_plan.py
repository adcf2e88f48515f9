"""The plan of a tick: this monitor (and this listing) → these questions to Concourse."""

from __future__ import annotations

import pytest

from workers.chain import Chain, load_chain
from workers.events import BuildStatus
from workers.monitor import FailurePrompt, JobTrack, Monitor, ObservedBuild, new_monitor
from workers.plan import CLOCK_SKEW_SECONDS, JobPlan, plan_tick

SHA = "a" * 40
OTHER = "c" * 40
T0 = 1_700_000_000
BACKEND = ["core/src/lib.rs"]
TESTS = ["lana-bank/test-integration", "lana-bank/test-bats", "lana-bank/flake-check"]


@pytest.fixture(scope="module")
def chain() -> Chain:
    return load_chain()


def start(chain: Chain) -> Monitor:
    monitor, _ = new_monitor(
        chain=chain,
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline="Add fee",
        committed_at=T0,
        files=BACKEND,
        now=T0,
    )
    return monitor


def b(
    build_id: int,
    status: BuildStatus = "started",
    start: int | None = T0 + 10,
    *,
    ref: str | None = None,
    covers: bool | None = None,
    rerun_of: int | None = None,
) -> ObservedBuild:
    return ObservedBuild(
        id=build_id,
        name=str(build_id),
        status=status,
        start_time=start,
        input_ref=ref,
        covers=covers,
        rerun_of=rerun_of,
    )


def job(chain: Chain, monitor: Monitor, key: str, now: float = T0 + 20) -> JobPlan:
    return next(j for j in plan_tick(monitor, chain, now).jobs if j.key == key)


def track(monitor: Monitor, key: str) -> JobTrack:
    return next(t for s in monitor.stages for t in s.jobs if t.key == key)


def pass_stages(monitor: Monitor, *stage_ids: str, finished_at: int = T0 + 600) -> None:
    for stage_id in stage_ids:
        stage = monitor.stage(stage_id)
        stage.state, stage.started_at, stage.finished_at = "succeeded", T0 + 10, finished_at


def test_a_new_monitor_lists_the_input_matched_jobs_only(chain: Chain) -> None:
    plan = plan_tick(start(chain), chain, T0 + 20)
    assert [j.key for j in plan.jobs] == [
        *TESTS,
        "lana-bank/build-rc",
        "lana-bank/open-promote-rc-pr",
    ]
    assert plan.prompt is None
    assert all(j.scan_from is None for j in plan.jobs)  # first looks: the newest builds


def test_passed_stages_are_not_listed_and_the_next_after_previous_stage_is(chain: Chain) -> None:
    monitor = start(chain)
    pass_stages(monitor, "tests", "build-rc", "open-promote-rc-pr")
    plan = plan_tick(monitor, chain, T0 + 700)
    # Staging waits for testflight: until it passed, which deploy is ours cannot be told.
    assert [j.key for j in plan.jobs] == ["private-charts/lana-bank-testflight"]
    pass_stages(monitor, "testflight", finished_at=T0 + 900)
    plan = plan_tick(monitor, chain, T0 + 1000)
    assert [j.key for j in plan.jobs] == ["galoy-staging/galoy-staging-lana-bank"]


def test_the_open_prompt_is_the_decision_read(chain: Chain) -> None:
    monitor = start(chain)
    monitor.prompt = FailurePrompt(prompt=3, stage="tests", job="test-bats", build_id=11)
    assert plan_tick(monitor, chain, T0 + 20).prompt == 3


def test_the_listing_mark_is_the_tracks(chain: Chain) -> None:
    monitor = start(chain)
    track(monitor, "lana-bank/build-rc").scan_from = 42
    assert job(chain, monitor, "lana-bank/build-rc").scan_from == 42


def test_a_first_look_not_reaching_before_the_commit_asks_for_the_builds_of_its_version(
    chain: Chain,
) -> None:
    monitor = start(chain)
    rc = job(chain, monitor, "lana-bank/build-rc")
    assert rc.version_resource == "repo"
    assert rc.version_question([]) == "builds_of_version"
    assert rc.version_question([b(5, start=T0 + 30)]) == "builds_of_version"
    # A rerun repeats old inputs: its start says nothing about when the commit landed.
    old_rerun = b(6, start=T0 - CLOCK_SKEW_SECONDS - 1, rerun_of=2)
    assert rc.version_question([old_rerun]) == "builds_of_version"
    # Within the clock skew a build may still carry the commit.
    assert rc.version_question([b(7, start=T0 - CLOCK_SKEW_SECONDS)]) == "builds_of_version"


def test_a_listing_reaching_before_the_commit_asks_nothing_until_the_warning_is_due(
    chain: Chain,
) -> None:
    monitor = start(chain)
    old = [b(5, start=T0 - CLOCK_SKEW_SECONDS - 1)]
    assert job(chain, monitor, "lana-bank/build-rc").version_question(old) == "none"
    due = T0 + chain.pickup_warn_after
    assert job(chain, monitor, "lana-bank/build-rc", now=due).version_question(old) == "is_version"
    monitor.pickup_warned = True
    assert job(chain, monitor, "lana-bank/build-rc", now=due).version_question(old) == "none"


def test_a_later_look_asks_for_the_version_only_when_the_warning_is_due(chain: Chain) -> None:
    monitor = start(chain)
    track(monitor, "lana-bank/build-rc").scan_from = 9
    assert job(chain, monitor, "lana-bank/build-rc").version_question([]) == "none"
    due = T0 + chain.pickup_warn_after
    assert job(chain, monitor, "lana-bank/build-rc", now=due).version_question([]) == "is_version"
    monitor.picked_up = True
    assert job(chain, monitor, "lana-bank/build-rc", now=due).version_question([]) == "none"


def test_no_version_question_once_a_build_is_followed_or_for_after_previous_stages(
    chain: Chain,
) -> None:
    monitor = start(chain)
    track(monitor, "lana-bank/build-rc").build = b(5, ref=SHA, covers=True)
    rc = job(chain, monitor, "lana-bank/build-rc")
    assert rc.version_resource is None and rc.version_question([]) == "none"
    pass_stages(monitor, "tests", "build-rc", "open-promote-rc-pr", "testflight")
    staging = job(chain, monitor, "galoy-staging/galoy-staging-lana-bank", now=T0 + 1000)
    assert staging.input == "lana-repo"
    assert staging.version_resource is None and staging.version_question([]) == "none"


def test_time_matched_jobs_judge_nothing(chain: Chain) -> None:
    monitor = start(chain)
    pass_stages(monitor, "tests", "build-rc", "open-promote-rc-pr")
    testflight = job(chain, monitor, "private-charts/lana-bank-testflight", now=T0 + 700)
    assert testflight.judging([b(50)]) is None


def test_while_nothing_is_followed_every_build_but_the_too_early_ones_is_judged(
    chain: Chain,
) -> None:
    rc = job(chain, start(chain), "lana-bank/build-rc")
    early, rerun, new, newer = (
        b(4, start=T0 - CLOCK_SKEW_SECONDS - 1),
        b(5, start=T0 - CLOCK_SKEW_SECONDS - 1, rerun_of=4),
        b(6),
        b(7, status="pending", start=None),
    )
    judging = rc.judging([early, rerun, new, newer])
    assert judging is not None
    assert [x.id for x in judging.too_early] == [4]
    assert [x.id for x in judging.to_judge] == [5, 6, 7]
    assert [x.id for x in judging.cached] == [5, 6, 7]
    assert judging.known == {}


def test_a_followed_running_build_is_not_asked_about_again(chain: Chain) -> None:
    monitor = start(chain)
    track(monitor, "lana-bank/build-rc").build = b(6, ref=OTHER, covers=True)
    rc = job(chain, monitor, "lana-bank/build-rc")
    judging = rc.judging([b(6), b(7), b(8)])
    assert judging is not None
    assert [x.id for x in judging.to_judge] == [6]
    assert judging.known == {6: (OTHER, True)}
    assert judging.cached == []  # a steady tick asks nothing


def test_a_followed_build_of_unknown_input_is_looked_up(chain: Chain) -> None:
    monitor = start(chain)
    track(monitor, "lana-bank/build-rc").build = b(6, status="pending", start=None)
    judging = job(chain, monitor, "lana-bank/build-rc").judging([b(6), b(7)])
    assert judging is not None
    assert judging.known == {}
    assert [x.id for x in judging.to_judge] == [6] and [x.id for x in judging.cached] == [6]


def test_after_a_failure_the_later_builds_are_judged(chain: Chain) -> None:
    monitor = start(chain)
    track(monitor, "lana-bank/build-rc").build = b(6, status="failed", ref=SHA, covers=True)
    judging = job(chain, monitor, "lana-bank/build-rc").judging([b(5), b(6), b(7), b(9)])
    assert judging is not None
    assert [x.id for x in judging.to_judge] == [6, 7, 9]
    assert judging.known == {6: (SHA, True)}
    # Redis answers for the earlier ones too (one round trip), so their marks can move on.
    assert [x.id for x in judging.cached] == [5, 7, 9]


def test_judging_ends_at_the_first_candidate_while_nothing_is_followed(chain: Chain) -> None:
    monitor = start(chain)
    rc = job(chain, monitor, "lana-bank/build-rc")
    assert not rc.ends_judging(b(5, ref=OTHER, covers=False))
    assert not rc.ends_judging(b(5, status="pending", start=None))  # input not known yet
    assert rc.ends_judging(b(6, ref=SHA, covers=True))
    track(monitor, "lana-bank/build-rc").build = b(4, status="failed", ref=SHA, covers=True)
    assert not job(chain, monitor, "lana-bank/build-rc").ends_judging(b(6, ref=SHA, covers=True))


def test_the_log_tail_of_a_new_failure_of_ours_is_due(chain: Chain) -> None:
    monitor = start(chain)
    rc = job(chain, monitor, "lana-bank/build-rc")
    assert rc.log_tail_due([b(5, ref=OTHER, covers=False, status="failed")]) is None
    assert rc.log_tail_due([b(6, ref=SHA, covers=True, status="started")]) is None
    assert rc.log_tail_due([b(6, ref=SHA, covers=True, status="errored")]) == 6
    track(monitor, "lana-bank/build-rc").failed_ids = [6]
    reported = job(chain, monitor, "lana-bank/build-rc")
    assert reported.log_tail_due([b(6, ref=SHA, covers=True, status="errored")]) is None


def test_the_log_tail_of_a_failed_rerun_after_a_failure_is_due(chain: Chain) -> None:
    monitor = start(chain)
    rc_track = track(monitor, "lana-bank/build-rc")
    rc_track.build, rc_track.failed_ids = b(6, ref=SHA, covers=True, status="failed"), [6]
    rc = job(chain, monitor, "lana-bank/build-rc")
    failed_rerun = b(8, ref=SHA, covers=True, status="failed", rerun_of=6)
    assert rc.log_tail_due([b(6, ref=SHA, covers=True, status="failed"), failed_rerun]) == 8
