"""The chain view's pure parts: usual durations, Concourse's order, carrying a record forward,
and `where` judged by the monitor's own rules on the view."""

from __future__ import annotations

import pytest

from workers.chain import Chain, load_chain
from workers.monitor import Monitor, Observation, new_monitor
from workers.view import (
    USUAL_SAMPLE,
    VIEW_DEPTH,
    JobView,
    StageAnswer,
    ViewBuild,
    WhereAnswer,
    answer_from_monitor,
    concourse_order,
    ends_judging,
    expected_remaining,
    judging_order,
    merge_listing,
    not_merged_answer,
    observed,
    refresh_floor,
    replay,
    stage_usual_duration,
    usual_duration,
)

SHA = "a" * 40
LATER = "b" * 40
OLD = "c" * 40
T0 = 1_700_000_000
BACKEND = ["core/src/lib.rs"]


@pytest.fixture(scope="module")
def chain() -> Chain:
    return load_chain()


def vb(
    build_id: int,
    status: str = "succeeded",
    start: int | None = None,
    end: int | None = None,
    *,
    rerun_of: int | None = None,
    name: str | None = None,
) -> ViewBuild:
    return ViewBuild(
        id=build_id,
        name=name or str(build_id),
        status=status,  # type: ignore[arg-type]
        start_time=start,
        end_time=end,
        rerun_of=rerun_of,
        url=f"https://ci/builds/{build_id}",
    )


def view(job: str, builds: list[ViewBuild], pipeline: str = "lana-bank") -> JobView:
    return JobView(pipeline=pipeline, job=job, taken_at=T0, builds=builds)


# -- usual durations --------------------------------------------------------------------------


def test_usual_duration_is_the_median_of_the_last_twenty_finished_successes() -> None:
    # 25 old successes of 1000 s, then 20 of 60..79 s, with failures and a running one between.
    builds = [vb(i, "succeeded", i * 10_000, i * 10_000 + 1000) for i in range(25)]
    builds += [
        vb(100 + i, "succeeded", 300_000 + i * 1000, 300_000 + i * 1000 + 60 + i) for i in range(20)
    ]
    builds += [vb(200, "failed", 400_000, 400_005), vb(201, "aborted", 400_010, 400_011)]
    builds += [vb(202, "started", 400_020)]
    assert USUAL_SAMPLE == 20
    assert usual_duration(builds) == 70  # median of 60..79 is 69.5, rounded to even 70
    assert usual_duration([vb(1, "failed", 0, 10), vb(2, "started", 20)]) is None
    assert usual_duration([]) is None


def test_usual_duration_orders_by_end_time_so_a_late_rerun_counts_as_recent() -> None:
    old = [vb(i, "succeeded", i * 100, i * 100 + 10) for i in range(1, 21)]
    rerun = vb(99, "succeeded", 50_000, 50_500, rerun_of=1)
    assert usual_duration([*old, rerun]) == 10
    # Ordered by end time, the rerun is the newest sample and pushes out the oldest one.
    assert usual_duration([*old[:19], vb(30, "succeeded", 9_000, 9_500), rerun]) == 10


def test_a_stage_usually_takes_as_long_as_its_slowest_job(chain: Chain) -> None:
    tests = chain.stage("tests")
    views = {
        "lana-bank/test-integration": view("test-integration", [vb(1, "succeeded", 0, 600)]),
        "lana-bank/test-bats": view("test-bats", [vb(2, "succeeded", 0, 900)]),
        "lana-bank/flake-check": view("flake-check", [vb(3, "failed", 0, 5)]),
    }
    assert stage_usual_duration(tests, views) == 900
    assert stage_usual_duration(tests, {}) is None


# -- the record -------------------------------------------------------------------------------


def test_concourse_order_sorts_reruns_under_their_original() -> None:
    builds = [vb(10), vb(11), vb(12), vb(13, rerun_of=10, name="1.1"), vb(14, rerun_of=12)]
    assert [b.id for b in concourse_order(builds)] == [14, 12, 11, 13, 10]


def test_refresh_floor_keeps_running_builds_and_everything_newer() -> None:
    assert refresh_floor(None) is None
    assert refresh_floor(view("j", [])) is None
    assert refresh_floor(view("j", [vb(5), vb(9)])) == 10
    assert refresh_floor(view("j", [vb(5), vb(7, "started", 1), vb(9)])) == 7
    assert refresh_floor(view("j", [vb(5, "pending"), vb(9)])) == 5


def test_merge_listing_takes_the_listing_from_its_floor_and_keeps_the_newest() -> None:
    before = view("j", [vb(5), vb(7, "started", 1), vb(9)])
    listed = [vb(7, "failed", 1, 2), vb(9), vb(12, "started", 3), vb(13, rerun_of=5)]
    merged = merge_listing(before, "lana-bank", "j", listed, floor=7, taken_at=T0 + 30)
    assert [(b.id, b.status) for b in merged.builds] == [
        (5, "succeeded"),
        (7, "failed"),
        (9, "succeeded"),
        (12, "started"),
        (13, "succeeded"),
    ]
    assert merged.taken_at == T0 + 30
    many = merge_listing(None, "p", "j", [vb(i) for i in range(1, 80)], floor=0, taken_at=T0)
    assert len(many.builds) == VIEW_DEPTH and many.builds[0].id == 80 - VIEW_DEPTH


def test_newest_and_newest_succeeded() -> None:
    job = view("j", [vb(5, "succeeded", 0, 10), vb(6, "failed", 11, 12), vb(7, "started", 13)])
    assert job.newest is not None and job.newest.id == 7
    assert [b.id for b in job.running] == [7]
    passed = job.newest_succeeded()
    assert passed is not None and passed.id == 5
    assert job.newest_succeeded(below=5) is None


# -- judging ----------------------------------------------------------------------------------


def test_judging_skips_builds_started_before_the_commit_but_not_reruns() -> None:
    builds = [
        vb(1, start=T0 - 3600),  # long before the commit: cannot carry it
        vb(2, start=T0 - 60),  # within the clock skew: asked
        vb(3, "pending"),
        vb(4, start=T0 - 3600, rerun_of=1),  # a rerun repeats old inputs: asked anyway
    ]
    assert [b.id for b in judging_order(builds, T0)] == [2, 3, 4]
    assert ends_judging(vb(1), True)
    assert ends_judging(vb(1, "started"), True)
    assert not ends_judging(vb(1, "failed"), True)
    assert not ends_judging(vb(1), False)
    assert not ends_judging(vb(1), None)


def start(chain: Chain, files: list[str] = BACKEND, committed_at: int = T0) -> Monitor:
    monitor, _ = new_monitor(
        chain=chain,
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline="Add fee",
        committed_at=committed_at,
        files=files,
        now=T0 + 10_000,
        on_failure="continue",
    )
    return monitor


def observation(now: float, **jobs: list[tuple[ViewBuild, str | None]]) -> Observation:
    """Builds per job, each with the ref its input carried (SHA and LATER carry our commit)."""
    pipelines = {
        "lana-bank-testflight": "private-charts",
        "galoy-staging-lana-bank": "galoy-staging",
    }
    found = Observation(now=now)
    for name, builds in jobs.items():
        job = name.replace("_", "-")
        key = f"{pipelines.get(job, 'lana-bank')}/{job}"
        found.builds[key] = [
            observed(b, ref, None if ref is None else ref in (SHA, LATER)) for b, ref in builds
        ]
    return found


def passed_to_staging(carrier: str = SHA) -> dict[str, list[tuple[ViewBuild, str | None]]]:
    base = T0 + 100
    return {
        "test_integration": [(vb(10, "succeeded", base, base + 600), carrier)],
        "test_bats": [(vb(11, "succeeded", base, base + 500), carrier)],
        "flake_check": [(vb(12, "succeeded", base, base + 200), carrier)],
        "build_rc": [(vb(20, "succeeded", base + 700, base + 1000), carrier)],
        "open_promote_rc_pr": [(vb(21, "succeeded", base + 1010, base + 1100), carrier)],
        "lana_bank_testflight": [
            (vb(5, "succeeded", T0 - 9000, T0 - 8000), None),  # an old one: not ours
            (vb(30, "succeeded", base + 1200, base + 2400), None),
        ],
        "galoy_staging_lana_bank": [(vb(40, "succeeded", base + 2500, base + 3000), carrier)],
    }


def test_replay_follows_a_commit_to_staging_like_a_monitor(chain: Chain) -> None:
    judged = replay(start(chain), observation(T0 + 10_000, **passed_to_staging()), chain)
    assert [s.state for s in judged.stages] == ["succeeded"] * 5
    testflight = judged.stage("testflight").jobs[0].build
    assert testflight is not None and testflight.id == 30
    answer = answer_from_monitor(judged, chain, {}, T0 + 10_000, followed=False)
    assert answer.deployed and answer.complete and answer.at_stage is None
    assert answer.deployed_at == T0 + 3100
    assert [s.state for s in answer.stages] == ["passed"] * 5
    assert answer.stages[0].build == "test-integration #10"  # the one that finished last
    assert answer.stages[-1].url == "https://ci/builds/40"
    assert all(s.carried_by is None for s in answer.stages)


def test_a_commit_carried_by_a_descendant_says_so(chain: Chain) -> None:
    judged = replay(start(chain), observation(T0 + 10_000, **passed_to_staging(LATER)), chain)
    answer = answer_from_monitor(judged, chain, {}, T0 + 10_000, followed=False)
    assert answer.deployed
    carried = {s.id: s.carried_by for s in answer.stages}
    assert carried == {
        "tests": LATER,
        "build-rc": LATER,
        "open-promote-rc-pr": LATER,
        "testflight": None,  # matched by time: it carries no commit of ours to name
        "staging": LATER,
    }


def test_a_failure_then_a_rerun_that_passed_is_followed_to_the_rerun(chain: Chain) -> None:
    jobs = passed_to_staging()
    base = T0 + 100
    jobs["test_bats"] = [
        (vb(11, "failed", base, base + 300), SHA),
        (vb(15, "succeeded", base + 400, base + 600, rerun_of=11, name="11.1"), SHA),
    ]
    judged = replay(start(chain), observation(T0 + 10_000, **jobs), chain)
    assert judged.stage("tests").state == "succeeded"
    bats = judged.stage("tests").jobs[1].build
    assert bats is not None and bats.name == "11.1"


def test_an_old_rerun_in_testflight_is_not_taken_for_ours(chain: Chain) -> None:
    jobs = passed_to_staging()
    base = T0 + 100
    # Someone reruns an old testflight build after our promote PR opened: it starts later, but
    # repeats old inputs; the next real build is ours.
    jobs["lana_bank_testflight"] = [
        (vb(5, "succeeded", T0 - 9000, T0 - 8000), None),
        (vb(29, "succeeded", base + 1150, base + 1190, rerun_of=5, name="1.1"), None),
        (vb(30, "succeeded", base + 1200, base + 2400), None),
    ]
    judged = replay(start(chain), observation(T0 + 10_000, **jobs), chain)
    testflight = judged.stage("testflight").jobs[0].build
    assert testflight is not None and testflight.id == 30


def test_a_commit_in_tests_answers_running_with_an_expected_time(chain: Chain) -> None:
    base = T0 + 100
    now = base + 100
    jobs = {
        "test_integration": [(vb(10, "started", base), SHA)],
        "test_bats": [(vb(11, "succeeded", base, base + 50), SHA)],
        "flake_check": [(vb(12, "started", base), SHA)],
    }
    history = [vb(i, "succeeded", i * 1000, i * 1000 + 600) for i in range(1, 4)]
    views = {
        "lana-bank/test-integration": view("test-integration", history),
        "lana-bank/build-rc": view("build-rc", [vb(7, "succeeded", 0, 300)]),
        "lana-bank/open-promote-rc-pr": view("open-promote-rc-pr", [vb(8, "succeeded", 0, 60)]),
        "private-charts/lana-bank-testflight": view(
            "lana-bank-testflight", [vb(9, "succeeded", 0, 1200)], "private-charts"
        ),
        "galoy-staging/galoy-staging-lana-bank": view(
            "galoy-staging-lana-bank", [vb(6, "succeeded", 0, 500)], "galoy-staging"
        ),
    }
    judged = replay(start(chain), observation(now, **jobs), chain)
    answer = answer_from_monitor(judged, chain, views, now, followed=False)
    assert not answer.deployed and answer.at_stage == "tests"
    assert [s.state for s in answer.stages] == [
        "running",
        "waiting",
        "waiting",
        "waiting",
        "waiting",
    ]
    assert answer.stages[0].usual_duration == 600
    # 600 - 100 elapsed in tests, then 300 + 60 + 1200 + 500.
    assert answer.remaining == 500 + 300 + 60 + 1200 + 500
    assert answer.expected_at == now + answer.remaining


def test_a_failed_stage_has_no_expected_time(chain: Chain) -> None:
    base = T0 + 100
    jobs = {
        "test_integration": [(vb(10, "failed", base, base + 60), SHA)],
        "test_bats": [(vb(11, "succeeded", base, base + 50), SHA)],
        "flake_check": [(vb(12, "succeeded", base, base + 50), SHA)],
    }
    judged = replay(start(chain), observation(base + 100, **jobs), chain)
    answer = answer_from_monitor(judged, chain, {}, base + 100, followed=False)
    assert answer.stages[0].state == "failed"
    assert answer.stages[0].build == "test-integration #10"
    assert answer.stages[0].url == "https://ci/builds/10"
    assert answer.remaining is None and not answer.deployed


def test_a_commit_no_build_carried_yet_waits_at_its_first_stage(chain: Chain) -> None:
    # Only `ci/*` changed: `repo` ignores it, so no version; no descendant built yet either.
    monitor = start(chain, files=["ci/tasks/deploy.sh"])
    old = [(vb(3, "succeeded", T0 - 5000, T0 - 4000), OLD)]
    jobs = {"test_integration": old, "test_bats": old, "flake_check": old}
    judged = replay(monitor, observation(T0 + 50, **jobs), chain)
    answer = answer_from_monitor(judged, chain, {}, T0 + 50, followed=False)
    assert answer.path == "backend"
    assert [s.state for s in answer.stages] == ["waiting"] * 5
    assert answer.at_stage == "tests" and not answer.deployed


def test_a_frontend_only_commit_is_complete_when_its_images_are_built(chain: Chain) -> None:
    monitor = start(chain, files=["apps/admin-panel/page.tsx"])
    jobs = {
        "build_admin_panel_edge_image": [(vb(50, "succeeded", T0 + 10, T0 + 200), SHA)],
    }
    judged = replay(monitor, observation(T0 + 300, **jobs), chain)
    answer = answer_from_monitor(judged, chain, {}, T0 + 300, followed=False)
    assert answer.path == "frontend-only" and not answer.reaches_staging
    assert [s.id for s in answer.stages] == ["admin-panel-image"]
    assert answer.complete and not answer.deployed and answer.deployed_at is None


def test_expected_remaining_needs_every_usual_duration() -> None:
    stages = [
        StageAnswer(id="a", label="a", state="passed"),
        StageAnswer(id="b", label="b", state="running", started_at=100, usual_duration=50),
        StageAnswer(id="c", label="c", state="waiting", usual_duration=30),
    ]
    assert expected_remaining(stages, now=200) == 30  # b overran: it counts as about to end
    stages.append(StageAnswer(id="d", label="d", state="waiting"))
    assert expected_remaining(stages, now=200) is None


def test_an_open_pr_is_not_merged_and_nothing_ran(chain: Chain) -> None:
    answer = not_merged_answer(
        sha=SHA,
        headline="Risky",
        committed_at=T0,
        repository="GaloyMoney/lana-bank",
        pr_number=7,
        pr_title="Risky",
        pr_url="https://github.com/GaloyMoney/lana-bank/pull/7",
        approval="review required",
        files=BACKEND,
        chain=chain,
        now=T0,
    )
    assert not answer.merged and not answer.deployed and answer.path == "backend"
    assert {s.state for s in answer.stages} == {"waiting"}


def test_the_answer_has_a_json_schema_with_the_documented_fields() -> None:
    schema = WhereAnswer.model_json_schema()
    assert {"sha", "path", "deployed", "stages"} <= set(schema["required"])
    stage = schema["$defs"]["StageAnswer"]
    assert {"id", "label", "state", "build", "url", "finished_at"} <= set(stage["properties"])
    assert stage["properties"]["state"]["enum"] == ["passed", "running", "failed", "waiting"]
