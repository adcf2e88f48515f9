"""Why is it not moving: the pure rules (workers/blockers.py), the transition saying each
blocker once and its clearing once, the plan's questions, and ignored paths said up front."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.workers.test_monitor import SHA, T0, b, kinds, obs, start
from workers.blockers import (
    STILL_CHECKING,
    Holds,
    JobHold,
    JobInputFact,
    Pin,
    PipelineHold,
    Preparation,
    find_blockers,
)
from workers.chain import Chain, load_chain
from workers.events import CommitIgnored, StageBlocked, StageUnblocked
from workers.monitor import Monitor, Observation, new_monitor, transition, waiting_jobs
from workers.plan import plan_tick

CHAIN = load_chain()
STAGING = "galoy-staging/galoy-staging-lana-bank"
OLD_REF = "d" * 40


def at_staging(chain: Chain = CHAIN) -> Monitor:
    """A backend commit that passed everything up to testflight: it waits at staging."""
    m = start(chain)
    for stage in m.stages[:4]:
        stage.state = "succeeded"
        stage.started_at, stage.finished_at = T0 + 10, T0 + 100
    return m


def staging_job(**fields: object) -> JobHold:
    inputs = [JobInputFact(name="lana-repo", resource="lana-repo", trigger=True)]
    return JobHold(inputs=inputs, **fields)  # type: ignore[arg-type]


def holds(
    *,
    pipeline: PipelineHold | None = None,
    job: JobHold | None = None,
    pin: Pin | None = None,
) -> Holds:
    found = Holds(
        pipelines={"galoy-staging": pipeline or PipelineHold()},
        jobs={STAGING: job or staging_job()},
    )
    if pin is not None:
        found.pins["galoy-staging/lana-repo"] = pin
    return found


def look(now: int, found: Holds | None, **builds: object) -> Observation:
    observation = obs(now, **builds)  # type: ignore[arg-type]
    observation.holds = found
    return observation


# -- the rules ----------------------------------------------------------------------------------


def test_the_commit_waits_on_the_first_stage_not_passed_only() -> None:
    m = start(CHAIN)
    assert [w.stage for w in waiting_jobs(m, CHAIN)] == ["tests"] * 3
    m, _ = transition(m, obs(T0 + 20, integration=[b(10, "started", T0 + 15)]), CHAIN)
    assert [w.job_key for w in waiting_jobs(m, CHAIN)] == [
        "lana-bank/test-bats",
        "lana-bank/flake-check",
    ]
    m = at_staging()
    assert [w.job_key for w in waiting_jobs(m, CHAIN)] == [STAGING]
    assert plan_tick(m, CHAIN, T0 + 200).hold_pipelines == ["galoy-staging"]


def test_a_paused_job_blocks_with_who_and_since() -> None:
    found = find_blockers(
        waiting_jobs(at_staging(), CHAIN),
        holds(job=staging_job(paused=True, paused_by="alice", paused_at=T0 + 5)),
        SHA,
    )
    assert [(f.reason, f.where, f.by, f.since, f.stage) for f in found] == [
        ("paused", STAGING, "alice", T0 + 5, "staging")
    ]


def test_a_paused_or_archived_pipeline_says_nothing_finer() -> None:
    paused_job = staging_job(paused=True, paused_by="alice")
    pin = Pin(version={"ref": OLD_REF}, comment="freeze")
    waiting = waiting_jobs(at_staging(), CHAIN)
    pipeline = PipelineHold(paused=True, paused_by="bob", paused_at=T0)
    found = find_blockers(waiting, holds(pipeline=pipeline, job=paused_job, pin=pin), SHA)
    assert [(f.reason, f.where, f.by) for f in found] == [("paused", "galoy-staging", "bob")]
    archived = PipelineHold(paused=True, paused_by="automatic-pipeline-archiver", archived=True)
    found = find_blockers(waiting, holds(pipeline=archived), SHA)
    assert [(f.reason, f.where) for f in found] == [("archived", "galoy-staging")]


def test_a_pin_on_another_version_of_a_triggering_input_blocks() -> None:
    waiting = waiting_jobs(at_staging(), CHAIN)
    pin = Pin(version={"ref": OLD_REF}, comment="hold staging for the demo")
    found = find_blockers(waiting, holds(pin=pin), SHA)
    assert [(f.reason, f.where, f.version, f.comment) for f in found] == [
        ("pinned", "galoy-staging/lana-repo", OLD_REF[:7], "hold staging for the demo")
    ]
    assert find_blockers(waiting, holds(pin=Pin(version={"ref": SHA})), SHA) == []
    # A pin on an input that neither triggers the job nor carries our commit holds nothing.
    quiet = JobHold(inputs=[JobInputFact(name="tools", resource="tools")])
    found_holds = holds(job=quiet)
    found_holds.pins["galoy-staging/tools"] = Pin(version={"ref": OLD_REF})
    assert find_blockers(waiting, found_holds, SHA) == []


def test_a_pending_build_waiting_for_inputs_or_a_slot_blocks() -> None:
    waiting = waiting_jobs(at_staging(), CHAIN)
    missing = {"lana-repo": "no versions satisfy passed constraints"}
    job = staging_job(
        pending_build=77,
        preparation=Preparation(build_id=77, missing_inputs=missing, max_in_flight=True),
    )
    found = find_blockers(waiting, holds(job=job), SHA)
    assert [(f.reason, f.comment) for f in found] == [
        ("inputs_unsatisfied", "lana-repo: no versions satisfy passed constraints"),
        ("max_in_flight", None),
    ]
    checking = staging_job(
        pending_build=77,
        preparation=Preparation(build_id=77, missing_inputs={"lana-repo": STILL_CHECKING}),
    )
    assert find_blockers(waiting, holds(job=checking), SHA) == []  # clears by itself
    stale = staging_job(
        pending_build=78, preparation=Preparation(build_id=77, missing_inputs=missing)
    )
    assert find_blockers(waiting, holds(job=stale), SHA) == []  # about another build


def test_a_paused_pipeline_holding_several_jobs_is_one_blocker() -> None:
    m = start(CHAIN)
    tests = {
        f"lana-bank/{job}": JobHold() for job in ("test-integration", "test-bats", "flake-check")
    }
    found = find_blockers(
        waiting_jobs(m, CHAIN),
        Holds(pipelines={"lana-bank": PipelineHold(paused=True)}, jobs=tests),
        SHA,
    )
    assert [(f.reason, f.where, f.stage) for f in found] == [("paused", "lana-bank", "tests")]


# -- the plan -----------------------------------------------------------------------------------


def test_the_plan_asks_pins_and_preparations_only_where_they_can_be_said() -> None:
    plan = plan_tick(at_staging(), CHAIN, T0 + 200)
    assert plan.pin_resources(holds()) == ["galoy-staging/lana-repo"]
    assert plan.preparations(holds(job=staging_job(pending_build=77))) == [77]
    paused = holds(job=staging_job(paused=True, pending_build=77))
    assert plan.pin_resources(paused) == [] and plan.preparations(paused) == []
    assert plan_tick(start(CHAIN), CHAIN, T0).hold_pipelines == ["lana-bank"]
    running = start(CHAIN)
    running, _ = transition(
        running,
        obs(
            T0 + 20,
            integration=[b(10, "started", T0 + 15)],
            bats=[b(11, "started", T0 + 15)],
            flake=[b(12, "started", T0 + 15)],
        ),
        CHAIN,
    )
    assert plan_tick(running, CHAIN, T0 + 30).hold_pipelines == []  # nothing waits: no cost


# -- the transition -----------------------------------------------------------------------------


def test_a_paused_staging_job_is_said_once_and_its_unpause_once() -> None:
    m = at_staging()
    paused = holds(job=staging_job(paused=True, paused_by="alice", paused_at=T0 + 150))
    m, ev = transition(m, look(T0 + 200, paused), CHAIN)
    assert kinds(ev) == ["stage_blocked"]
    blocked = ev[0]
    assert isinstance(blocked, StageBlocked) and blocked.by == "alice"
    assert [x.reason for x in m.blockers] == ["paused"]
    m, ev = transition(m, look(T0 + 210, paused), CHAIN)
    assert ev == []  # said once
    m, ev = transition(m, look(T0 + 220, None), CHAIN)
    assert ev == [] and len(m.blockers) == 1  # not looked at: it stands
    m, ev = transition(m, look(T0 + 230, holds()), CHAIN)
    assert kinds(ev) == ["stage_unblocked"]
    assert isinstance(ev[0], StageUnblocked) and ev[0].where == STAGING
    assert m.blockers == []


def test_a_blocker_whose_stage_passed_is_dropped_without_a_word() -> None:
    m = at_staging()
    m, _ = transition(m, look(T0 + 200, holds(pin=Pin(version={"ref": OLD_REF}))), CHAIN)
    assert [x.reason for x in m.blockers] == ["pinned"]
    m, ev = transition(
        m, look(T0 + 400, None, staging=[b(41, "succeeded", T0 + 250, T0 + 390)]), CHAIN
    )
    assert kinds(ev) == ["stage_started", "stage_succeeded", "deployed"]


def test_a_reason_changing_clears_the_old_and_says_the_new() -> None:
    m = at_staging()
    m, _ = transition(m, look(T0 + 200, holds(pipeline=PipelineHold(paused=True))), CHAIN)
    job = staging_job(paused=True, paused_by="alice")
    m, ev = transition(m, look(T0 + 210, holds(job=job)), CHAIN)
    assert [(e.kind, e.where) for e in ev] == [  # type: ignore[union-attr]
        ("stage_unblocked", "galoy-staging"),
        ("stage_blocked", STAGING),
    ]


def test_a_running_build_of_ours_is_not_held_back() -> None:
    m = at_staging()
    paused = holds(job=staging_job(paused=True))
    m, ev = transition(m, look(T0 + 300, paused, staging=[b(41, "started", T0 + 250)]), CHAIN)
    assert kinds(ev) == ["stage_started"]  # paused after ours started: it runs on


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=12))
def test_blocked_and_unblocked_alternate_and_end_with_what_holds_now(
    looks: list[tuple[bool, bool, bool]],
) -> None:
    """Whatever the sequence of looks, each blocker's messages alternate blocked, unblocked,
    starting with blocked, and the monitor ends holding exactly the last look's blockers."""
    m = at_staging()
    said: dict[tuple[str, str], list[str]] = {}
    for i, (paused, pinned, pipeline_paused) in enumerate(looks):
        found = holds(
            pipeline=PipelineHold(paused=pipeline_paused),
            job=staging_job(paused=paused),
            pin=Pin(version={"ref": OLD_REF}) if pinned else None,
        )
        m, ev = transition(m, look(T0 + 200 + i, found), CHAIN)
        for event in ev:
            assert isinstance(event, StageBlocked | StageUnblocked)
            said.setdefault((event.reason, event.where), []).append(event.kind)
        expected = find_blockers(waiting_jobs(m, CHAIN), found, SHA)
        assert {x.key for x in m.blockers} == {x.key for x in expected}
    for kinds_said in said.values():
        assert kinds_said[0] == "stage_blocked"
        assert all(x != y for x, y in pairwise(kinds_said))


# -- ignored paths ------------------------------------------------------------------------------


def test_a_commit_changing_only_ignored_paths_is_said_at_once() -> None:
    monitor, events = new_monitor(
        chain=CHAIN,
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline="Deploy script",
        committed_at=T0,
        files=["ci/tasks/deploy.sh", "apps/admin-panel/README.md"],
        now=T0,
    )
    assert kinds(events) == ["started", "ignored"]
    ignored = events[1]
    assert isinstance(ignored, CommitIgnored)
    assert [(f.file, f.resource, f.rule, f.pattern) for f in ignored.files] == [
        ("ci/tasks/deploy.sh", "lana-bank/repo", "ignore_paths", "ci/*"),
        ("apps/admin-panel/README.md", "lana-bank/repo", "ignore_paths", "apps/**/*"),
    ]
    assert monitor.ignored
    # A later commit's build carries it.
    m, ev = transition(monitor, obs(T0 + 3600), CHAIN)
    m, ev = transition(
        m, obs(T0 + 3700, integration=[b(10, "started", T0 + 3650, ref="b" * 40)]), CHAIN
    )
    assert kinds(ev) == ["stage_started", "carried"]


def test_a_commit_any_resource_watches_is_not_said_ignored() -> None:
    for files in (["core/src/lib.rs", "ci/x.sh"], ["apps/admin-panel/src/a.ts"], []):
        monitor, events = new_monitor(
            chain=CHAIN,
            repository="GaloyMoney/lana-bank",
            sha=SHA,
            headline="x",
            committed_at=T0,
            files=files,
            now=T0,
        )
        assert "ignored" not in kinds(events) and not monitor.ignored, files


def test_files_outside_a_resources_paths_are_named_so() -> None:
    dagster = CHAIN.stage("dagster-image")
    found = CHAIN.unwatched([dagster], ["README.md"])
    assert found is not None
    assert [(u.resource, u.rule, u.pattern) for u in found] == [
        ("lana-bank/dagster-src", "paths", None)
    ]
    assert CHAIN.unwatched([dagster], ["dagster/defs.py"]) is None
    assert CHAIN.unwatched([CHAIN.stage("testflight")], ["ci/x"]) is None  # no filters known


def test_many_ignored_files_are_listed_up_to_a_limit() -> None:
    files = [f"ci/task-{i}.sh" for i in range(25)]
    _, events = new_monitor(
        chain=CHAIN,
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline="x",
        committed_at=T0,
        files=files,
        now=T0,
    )
    ignored = events[1]
    assert isinstance(ignored, CommitIgnored)
    assert len(ignored.files) == 10 and ignored.more == 15


def test_an_unpause_seen_with_our_build_already_started_is_still_said() -> None:
    m = at_staging()
    m, _ = transition(m, look(T0 + 200, holds(job=staging_job(paused=True))), CHAIN)
    assert plan_tick(m, CHAIN, T0 + 300).hold_pipelines == ["galoy-staging"]
    m, ev = transition(
        m, look(T0 + 300, holds(), staging=[b(41, "succeeded", T0 + 250, T0 + 290)]), CHAIN
    )
    assert kinds(ev) == ["stage_started", "stage_succeeded", "stage_unblocked", "deployed"]


def test_a_pin_that_carried_our_commit_anyway_is_dropped_without_a_word() -> None:
    m = at_staging()
    pinned = holds(pin=Pin(version={"ref": OLD_REF}))
    m, _ = transition(m, look(T0 + 200, pinned), CHAIN)
    assert plan_tick(m, CHAIN, T0 + 300).pin_resources(holds()) == ["galoy-staging/lana-repo"]
    m, ev = transition(m, look(T0 + 300, pinned, staging=[b(41, "started", T0 + 250)]), CHAIN)
    assert kinds(ev) == ["stage_started"] and m.blockers == []
