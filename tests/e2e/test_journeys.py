"""End-to-end journeys: real Redis, real RQ worker processes (scheduler on), and the Concourse
and GitHub simulators over loopback, driven by a simulated lana-bank CI. Each test reads like
one bullet point of the engine issue."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from bot.watch import EXIT_FAILED, EXIT_OK, follow_target
from simulators.lana_bank import JobPlan, Journey
from tests.conftest import World, chain_file, wait_for
from workers.monitor import monitor_id_for

BACKEND_FILES = ["core/credit/src/fee.rs"]
TIMEOUT = 45.0


def fast(**plans: JobPlan) -> Journey:
    return Journey(plans=dict(plans), default_duration=0.3, check_delay=0.2, handoff_delay=0.2)


def run(
    world: World,
    target: str | None,
    *,
    policy: str = "stop",
    ask: Callable[[str], str] | None = None,
) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = follow_target(
        world.engine(),
        spec_text=target,
        policy=policy,  # type: ignore[arg-type]
        start_worker=False,
        echo=lines.append,
        ask=ask or (lambda _q: "stop"),
        timeout=TIMEOUT,
    )
    return code, lines


def event_kinds(world: World, sha: str) -> list[str]:
    engine = world.engine()
    return [e.kind for _, e in engine.events(monitor_id_for(world.env["GITHUB_REPOSITORY"], sha))]


def assert_clean_log(world: World, sha: str) -> None:
    """Every event recorded once, numbered 1..n with no gap."""
    engine = world.engine()
    seqs = [e.seq for _, e in engine.events(monitor_id_for(world.env["GITHUB_REPOSITORY"], sha))]
    assert seqs == list(range(1, len(seqs) + 1))


def test_approved_pr_is_merged_once_and_followed_to_staging(world: World) -> None:
    world.ci.seed_history(world.github.add_commit("Older change", ["core/old.rs"]))
    world.github.add_pull_request(1234, "Add origination fee", BACKEND_FILES)
    world.ci.follow_main(world.github, fast())
    world.start_worker()
    code, lines = run(world, "1234")
    assert code == EXIT_OK, "\n".join(lines) + world.worker_logs()
    assert len(world.github.merges) == 1
    sha = world.github.merges[0][1]
    report = "\n".join(lines)
    assert (
        f"Deployment complete! Commit {sha[:7]} (Add origination fee (#1234)) "
        "is now deployed to staging." in report
    )
    timeline = report[report.index("Timeline:") :].splitlines()
    assert [line.split(":")[0] for line in timeline] == [
        "Timeline",
        "lana-bank tests",
        "build-rc",
        "open-promote-rc-pr",
        "testflight",
        "staging",
        "Total",
    ]
    kinds = event_kinds(world, sha)
    assert kinds[0] == "started" and kinds[-1] == "deployed"
    assert kinds.count("stage_succeeded") == 5
    assert "carried" not in kinds
    assert_clean_log(world, sha)


def test_unapproved_pr_is_refused_and_never_merged(world: World) -> None:
    world.github.add_pull_request(
        77, "Risky change", BACKEND_FILES, review_decision="REVIEW_REQUIRED"
    )
    code, lines = run(world, "#77")
    assert code == EXIT_FAILED
    assert "not approved" in "\n".join(lines)
    assert world.github.merges == []
    assert world.engine().store.active_ids() == []


def test_frontend_only_commit_follows_its_edge_images(world: World) -> None:
    sha = world.github.add_commit("Tweak admin panel", ["apps/admin-panel/app/page.tsx"])
    world.ci.deliver([(sha, ["apps/admin-panel/app/page.tsx"])], fast())
    world.start_worker()
    code, lines = run(world, sha[:10])
    assert code == EXIT_OK, "\n".join(lines) + world.worker_logs()
    report = "\n".join(lines)
    assert "admin-panel edge image" in report
    assert "next backend-inclusive release" in report
    assert "staging" not in event_kinds(world, sha)
    assert event_kinds(world, sha)[-1] == "completed"


def test_dagster_only_commit_takes_the_full_chain(world: World) -> None:
    sha = world.github.add_commit("New asset", ["dagster/assets.py"])
    world.ci.deliver([(sha, ["dagster/assets.py"])], fast())
    world.start_worker()
    code, lines = run(world, sha)
    assert code == EXIT_OK, "\n".join(lines) + world.worker_logs()
    report = "\n".join(lines)
    assert "dagster edge image passed" in report
    assert "Deployment complete!" in report


def test_failure_then_stop(world: World) -> None:
    sha = world.github.add_commit("Break bats", BACKEND_FILES)
    log = "ok 1 onboarding\nnot ok 2 disbursal\n# status was: Pending\n"
    world.ci.deliver([(sha, BACKEND_FILES)], fast(**{"test-bats": JobPlan(0.3, "failed", log)}))
    world.start_worker()
    questions: list[str] = []

    def answer(question: str) -> str:
        questions.append(question)
        return "stop"

    code, lines = run(world, sha, policy="ask", ask=answer)
    assert code == EXIT_FAILED
    report = "\n".join(lines)
    assert "test-bats" in report and "not ok 2 disbursal" in report
    assert len(questions) == 1
    assert event_kinds(world, sha)[-2:] == ["decision", "stopped"]


def test_failure_then_continue_then_rerun_succeeds(world: World) -> None:
    sha = world.github.add_commit("Flaky", BACKEND_FILES)
    plan = JobPlan(0.3, "failed", "boom\n", rerun_after=1.0, rerun_outcome="succeeded")
    world.ci.deliver([(sha, BACKEND_FILES)], fast(**{"test-integration": plan}))
    world.start_worker()
    code, lines = run(world, sha, policy="ask", ask=lambda _q: "continue")
    assert code == EXIT_OK, "\n".join(lines) + world.worker_logs()
    kinds = event_kinds(world, sha)
    assert kinds.index("stage_failed") < kinds.index("decision") < kinds.index("recovered")
    assert kinds[-1] == "deployed"
    assert_clean_log(world, sha)


def test_batched_commit_is_carried_by_a_descendant(world: World) -> None:
    first = world.github.add_commit("First", ["core/a.rs"])
    second = world.github.add_commit("Second", ["core/b.rs"])
    world.ci.deliver([(first, ["core/a.rs"]), (second, ["core/b.rs"])], fast())
    world.start_worker()
    code, lines = run(world, first)
    assert code == EXIT_OK, "\n".join(lines) + world.worker_logs()
    report = "\n".join(lines)
    assert f"ran {second[:7]}, which includes it" in report
    assert event_kinds(world, first).count("carried") == 1


def test_old_rerun_mid_run_is_not_mistaken_for_ours(world: World) -> None:
    old = world.github.add_commit("Old", ["core/old.rs"])
    world.ci.seed_history(old)
    sha = world.github.add_commit("New", BACKEND_FILES)
    journey = fast(**{"test-integration": JobPlan(1.5)})
    journey.old_rerun_job = "test-integration"
    world.ci.deliver([(sha, BACKEND_FILES)], journey)
    world.start_worker()
    code, lines = run(world, sha)
    assert code == EXIT_OK, "\n".join(lines) + world.worker_logs()
    monitor = world.engine().store.load(monitor_id_for(world.env["GITHUB_REPOSITORY"], sha))
    assert monitor is not None
    followed = monitor.stage("tests").jobs[0].build
    assert followed is not None and followed.rerun_of is None and "." not in followed.name
    assert followed.input_ref == sha


def test_token_expiry_mid_run_is_survived(world: World) -> None:
    sha = world.github.add_commit("Long tests", BACKEND_FILES)
    world.ci.deliver([(sha, BACKEND_FILES)], fast(**{"test-integration": JobPlan(2.0)}))
    world.start_worker()
    engine = world.engine()
    monitor_id = monitor_id_for(world.env["GITHUB_REPOSITORY"], sha)

    def expire_when_running() -> None:
        wait_for(lambda: "stage_started" in event_kinds(world, sha), timeout=TIMEOUT)
        world.concourse.expire_tokens()

    import threading

    threading.Thread(target=expire_when_running, daemon=True).start()
    code, lines = run(world, sha)
    assert code == EXIT_OK, "\n".join(lines) + world.worker_logs()
    assert world.concourse.logins >= 2
    assert "unreachable" not in event_kinds(world, sha)
    assert engine.store.load(monitor_id) is not None


def test_worker_killed_mid_run_is_restarted_and_nothing_is_lost(world: World) -> None:
    sha = world.github.add_commit("Survive", BACKEND_FILES)
    world.ci.deliver([(sha, BACKEND_FILES)], fast(**{"build-rc": JobPlan(1.5)}))
    worker = world.start_worker()
    engine = world.engine()
    resolved_events: list[str] = []

    import threading

    def kill_and_restart() -> None:
        wait_for(lambda: "stage_succeeded" in event_kinds(world, sha), timeout=TIMEOUT)
        world.kill_worker(worker)
        resolved_events.extend(event_kinds(world, sha))
        world.start_worker()

    threading.Thread(target=kill_and_restart, daemon=True).start()
    code, lines = run(world, sha)
    assert code == EXIT_OK, "\n".join(lines) + world.worker_logs()
    kinds = event_kinds(world, sha)
    assert resolved_events and kinds[: len(resolved_events)] == resolved_events
    assert kinds.count("stage_started") == 5 and kinds.count("stage_succeeded") == 5
    assert kinds.count("deployed") == 1
    assert_clean_log(world, sha)
    assert engine.store.active_ids() == []


def test_slow_stage_and_not_picked_up_warnings(world: World) -> None:
    world.env["DEPLOY_MONITOR_CHAIN"] = chain_file(world.tmp, tests_warn="0.5s", pickup="1s")
    slow_sha = world.github.add_commit("Slow tests", BACKEND_FILES)
    world.ci.deliver([(slow_sha, BACKEND_FILES)], fast(**{"test-integration": JobPlan(2.0)}))
    # A commit that only touches ignored paths is never picked up by itself: said at once,
    # naming the filter, and no not-picked-up warning later.
    ignored_sha = world.github.add_commit("CI tweak", ["ci/tasks/lint.sh"])
    # A commit Concourse never builds although it should: the not-picked-up warning.
    unbuilt_sha = world.github.add_commit("Never built", BACKEND_FILES)
    world.start_worker()
    code, lines = run(world, slow_sha)
    assert code == EXIT_OK, "\n".join(lines) + world.worker_logs()
    assert event_kinds(world, slow_sha).count("stage_slow") == 1
    assert "has been running for" in "\n".join(lines)

    engine = world.engine()
    import threading

    def follow_until(sha: str, kind: str, quiet: float = 0.0) -> tuple[int, list[str]]:
        """Follow `sha` from the terminal; stop it `quiet` seconds after `kind` is recorded."""
        monitor_id = monitor_id_for(world.env["GITHUB_REPOSITORY"], sha)
        lines: list[str] = []

        def stop_after() -> None:
            wait_for(lambda: kind in event_kinds(world, sha), timeout=TIMEOUT)
            time.sleep(quiet)
            engine.store.request_stop(monitor_id, "tester")
            engine.kick(monitor_id, "stop")

        threading.Thread(target=stop_after, daemon=True).start()
        code = follow_target(
            engine,
            spec_text=sha,
            policy="stop",
            start_worker=False,
            echo=lines.append,
            ask=lambda _q: "stop",
            timeout=TIMEOUT,
        )
        return code, lines

    # Well past the 1 s pickup threshold, so a warning would have come.
    code, lines2 = follow_until(ignored_sha, "ignored", quiet=3.0)
    assert code == EXIT_FAILED
    kinds = event_kinds(world, ignored_sha)
    assert kinds.count("ignored") == 1 and kinds.index("ignored") == 1  # at once, after started
    assert "not_picked_up" not in kinds
    assert "ci/tasks/lint.sh is ignored by lana-bank/repo" in "\n".join(lines2)

    code, lines3 = follow_until(unbuilt_sha, "not_picked_up")
    assert code == EXIT_FAILED
    assert event_kinds(world, unbuilt_sha).count("not_picked_up") == 1
    assert "Concourse has not picked up" in "\n".join(lines3)


@pytest.mark.parametrize(
    "target", ["not a target", "12ab!", "https://github.com/other/repo/pull/1"]
)
def test_bad_targets_are_refused_before_any_work(world: World, target: str) -> None:
    code, lines = run(world, target)
    assert code == EXIT_FAILED
    assert lines and lines[-1].startswith("✘")
    assert world.github.write_requests == 0


def test_following_a_finished_commit_again_starts_fresh(world: World, redis_conn: object) -> None:
    sha = world.github.add_commit("Twice", BACKEND_FILES)
    world.ci.deliver([(sha, BACKEND_FILES)], fast(**{"test-bats": JobPlan(0.3, "failed", "x\n")}))
    world.start_worker()
    code, _ = run(world, sha, policy="ask", ask=lambda _q: "stop")
    assert code == EXIT_FAILED
    engine = world.engine()
    first = engine.store.load(monitor_id_for(world.env["GITHUB_REPOSITORY"], sha))
    assert first is not None and first.status == "stopped"
    # Following it again: the old answer to prompt 1 must not answer the new monitor's prompt.
    answers: list[str] = []

    def answer(question: str) -> str:
        answers.append(question)
        return "stop"

    code, lines = run(world, sha, policy="ask", ask=answer)
    assert code == EXIT_FAILED and len(answers) == 1, "\n".join(lines)
    second = engine.store.load(monitor_id_for(world.env["GITHUB_REPOSITORY"], sha))
    assert second is not None and second.seq > first.seq
    assert second.prompts_issued == first.prompts_issued + 1
