"""What holds builds back, observed: real Redis, the real client and the Concourse simulator.
One look per cycle for every monitor (no request per monitor), shared across workers, and
the transition saying it."""

from __future__ import annotations

from tests.unit.workers.test_observe import COMMITTED, TESTS, Rig, cycle, rig, sha, tick
from workers.concourse import ConcourseClient
from workers.monitor import Monitor

__all__ = ["rig"]  # the fixture, shared with test_observe

STAGING = "galoy-staging/galoy-staging-lana-bank"


def hold_requests(rig: Rig) -> list[str]:
    """The requests about holds the simulator served, in order (paths without queries)."""
    paths = [path.split("?")[0] for _, path, _ in rig.sim.requests]
    return [
        path
        for path in paths
        if path.endswith(("/pipelines", "/jobs", "/preparation"))
        or ("/resources/" in path and "/versions" not in path)
    ]


def at_staging(rig: Rig, n: int) -> Monitor:
    monitor = rig.monitor(n)
    for stage in monitor.stages[:4]:
        stage.state = "succeeded"
        stage.started_at, stage.finished_at = COMMITTED + 10, COMMITTED + 50
    return monitor


def test_a_paused_staging_job_is_seen_by_every_monitor_for_one_look_per_cycle(rig: Rig) -> None:
    rig.sim.pause_job("galoy-staging", "galoy-staging-lana-bank", by="alice")
    observer = rig.observer()
    monitors = [at_staging(rig, i) for i in range(1, 11)]
    before = len(hold_requests(rig))
    monitors, _ = cycle(rig, observer, monitors, COMMITTED + 110)
    asked = hold_requests(rig)[before:]
    # The team's pipelines, the staging job list, the pin of lana-repo: once, for all ten.
    assert sorted(asked) == [
        "/api/v1/teams/dev/pipelines",
        "/api/v1/teams/dev/pipelines/galoy-staging/jobs",
    ]  # the job is paused: its pins say nothing more, so they are not asked
    for monitor in monitors:
        assert [(b.reason, b.where, b.by) for b in monitor.blockers] == [
            ("paused", STAGING, "alice")
        ]
    rig.sim.unpause_job("galoy-staging", "galoy-staging-lana-bank")
    monitors, _ = cycle(rig, observer, monitors, COMMITTED + 120)
    assert all(m.blockers == [] for m in monitors)
    asked = hold_requests(rig)[before:]
    assert len(asked) == 2 + 3  # next cycle: pipelines, jobs, and now lana-repo's pin


def test_a_pinned_version_is_seen_with_its_comment(rig: Rig) -> None:
    old = rig.sim.add_version("galoy-staging", "lana-repo", {"ref": "e" * 40})
    rig.sim.pin_version("galoy-staging", "lana-repo", old, comment="hold staging for the demo")
    observer = rig.observer()
    monitor, observation = tick(rig, observer, at_staging(rig, 1), COMMITTED + 110)
    assert observation.holds is not None
    assert [(b.reason, b.where, b.version, b.comment) for b in monitor.blockers] == [
        ("pinned", "galoy-staging/lana-repo", "eeeeeee", "hold staging for the demo")
    ]


def test_a_paused_pipeline_and_an_archived_one(rig: Rig) -> None:
    rig.sim.pause_pipeline("lana-bank", by="bob")
    observer = rig.observer()
    monitor, _ = tick(rig, observer, rig.monitor(1), COMMITTED + 110)
    assert [(b.reason, b.where, b.by) for b in monitor.blockers] == [("paused", "lana-bank", "bob")]
    rig.sim.unpause_pipeline("lana-bank")
    rig.sim.archive_pipeline("lana-bank")
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 120)
    assert [(b.reason, b.by) for b in monitor.blockers] == [
        ("archived", "automatic-pipeline-archiver")
    ]


def test_a_pending_build_waiting_for_its_inputs_is_explained(rig: Rig) -> None:
    build = rig.sim.create_build("galoy-staging", "galoy-staging-lana-bank")  # manual trigger
    rig.sim.set_resolve_error(build, "lana-repo", "no versions satisfy passed constraints")
    observer = rig.observer()
    monitor, _ = tick(rig, observer, at_staging(rig, 1), COMMITTED + 110)
    assert [(b.reason, b.comment) for b in monitor.blockers] == [
        ("inputs_unsatisfied", "lana-repo: no versions satisfy passed constraints")
    ]
    preparations = [p for p in hold_requests(rig) if p.endswith("/preparation")]
    assert preparations == [f"/api/v1/builds/{build}/preparation"]
    rig.sim.set_inputs(build, {"lana-repo": {"ref": sha(1)}})
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 120)
    assert monitor.blockers == []


def test_a_second_worker_is_served_the_holds_the_first_read(rig: Rig) -> None:
    rig.sim.pause_job("galoy-staging", "galoy-staging-lana-bank", by="alice")
    first = rig.observer(namespace="dm:holds-shared")
    second = rig.observer(namespace="dm:holds-shared")
    tick(rig, first, at_staging(rig, 1), COMMITTED + 110)
    client: ConcourseClient = second.concourse
    before = client.requests_made
    monitor, _ = tick(rig, second, at_staging(rig, 2), COMMITTED + 111)
    assert [b.reason for b in monitor.blockers] == ["paused"]
    # Only the job-build listing of staging, which the first took before it was needed.
    assert client.requests_made - before <= 1


def test_nothing_is_asked_about_holds_while_every_job_of_ours_runs(rig: Rig) -> None:
    rig.ancestry.head, rig.ancestry.carried = sha(1), {sha(1)}
    for job in TESTS:
        rig.build(job, sha(1))
    observer = rig.observer()
    monitor, _ = tick(rig, observer, rig.monitor(1), COMMITTED + 110)
    before = len(hold_requests(rig))
    monitor, _ = tick(rig, observer, monitor, COMMITTED + 120)
    assert monitor.stage("tests").state == "running"
    assert hold_requests(rig)[before:] == []
