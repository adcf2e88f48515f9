"""A simulated lana-bank CI: drives the Concourse simulator the way the real pipelines react
to commits landing on main.

The pipeline config mirrored here (resources, path filters, job order, `passed:` gates) is the
one the bundled chain describes; scenarios add failures, reruns, batching, slow jobs and noise
(old reruns, unrelated builds) to show the monitor copes with what real Concourse does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from simulators.concourse import ConcourseSimulator, JobInput
from simulators.github import GitHubSimulator

TESTS = ("test-integration", "test-bats", "flake-check")
EDGE_IMAGES = {
    "admin-panel-src": "build-admin-panel-edge-image",
    "customer-portal-src": "build-customer-portal-edge-image",
    "dagster-src": "build-dagster-edge-image",
}
LANA_JOBS = (
    *TESTS,
    "build-rc",
    "open-promote-rc-pr",
    *EDGE_IMAGES.values(),
    "release",
    "bump-image-in-chart",
)

# How long a build waits for its paused job or pinned input to be released.
RUNNABLE_WAIT_SECONDS = 120.0

# Path filters of the lana-bank pipeline's git resources: (paths, ignore_paths).
RESOURCE_FILTERS: dict[str, tuple[list[str], list[str]]] = {
    "repo": ([], ["apps/**/*", "ci/*"]),
    "admin-panel-src": (
        ["apps/admin-panel/**", "flake.nix", "flake.lock", "pnpm-lock.yaml"],
        [],
    ),
    "customer-portal-src": (
        ["apps/customer-portal/**", "flake.nix", "flake.lock", "pnpm-lock.yaml"],
        [],
    ),
    "dagster-src": (["dagster/*"], []),
}


# How long each job takes on the real pipelines, in seconds: what a history is made of.
USUAL_SECONDS: dict[str, float] = {
    "test-integration": 14 * 60,
    "test-bats": 11 * 60,
    "flake-check": 4 * 60,
    "build-rc": 9 * 60,
    "open-promote-rc-pr": 60,
    "build-dagster-edge-image": 6 * 60,
    "build-admin-panel-edge-image": 5 * 60,
    "build-customer-portal-edge-image": 5 * 60,
    "lana-bank-testflight": 18 * 60,
    "galoy-staging-lana-bank": 7 * 60,
}
# Promote PR merged → testflight starts; testflight passed → the staging deploy starts.
HANDOFF_SECONDS = 60.0


def watches(resource: str, files: list[str]) -> bool:
    """Whether git-resource `check` would emit a version for a commit changing `files`."""
    paths, ignore = RESOURCE_FILTERS[resource]

    def hit(file: str, patterns: list[str]) -> bool:
        return any(fnmatchcase(file, p) for p in patterns)

    return any((not paths or hit(f, paths)) and not hit(f, ignore) for f in files)


def _inputs(resource: str, passed: tuple[str, ...] = ()) -> list[JobInput]:
    return [JobInput(name=resource, resource=resource, trigger=True, passed=passed)]


# Each job's `get` steps, as the pipelines' configs have them (`passed:` gates included).
LANA_INPUTS: dict[str, list[JobInput]] = {
    **{job: _inputs("repo") for job in TESTS},
    "build-rc": _inputs("repo", TESTS),
    "open-promote-rc-pr": _inputs("repo", ("build-rc",)),
    **{job: _inputs(resource) for resource, job in EDGE_IMAGES.items()},
    "release": [JobInput(name="repo", resource="repo", trigger=False, passed=("build-rc",))],
}


@dataclass
class JobPlan:
    """How one job's build for our commit behaves."""

    duration: float = 1.0
    outcome: str = "succeeded"
    log: str = ""
    # After a failure, a person reruns the build this long after it ended (None: nobody does).
    rerun_after: float | None = None
    rerun_outcome: str = "succeeded"
    # Without `rerun_after`: how long the CI waits for a rerun asked for over the API (a
    # button, `fly rerun-build`), which then runs like any build of the job.
    await_rerun: float = 0.0
    # The outcomes of those reruns, in turn (then `rerun_outcome`).
    api_rerun_outcomes: tuple[str, ...] = ()


@dataclass
class Journey:
    """A scenario: per-job plans (default: pass after `default_duration`), and timings."""

    plans: dict[str, JobPlan] = field(default_factory=dict)
    default_duration: float = 1.0
    check_delay: float = 0.5  # until the resource check sees the commit
    handoff_delay: float = 0.5  # promote PR merged → testflight starts, and so on
    # An old build of this job gets rerun while our journey runs (noise that must be ignored).
    old_rerun_job: str | None = None

    def plan(self, job: str) -> JobPlan:
        return self.plans.get(job, JobPlan(duration=self.default_duration))


class LanaBankCI:
    """The three pipelines of the lana-bank chain on a ConcourseSimulator."""

    def __init__(
        self,
        concourse: ConcourseSimulator,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sim = concourse
        self.sleep = sleep
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._chart_version = 0
        concourse.add_pipeline(
            "lana-bank", list(LANA_JOBS), list(RESOURCE_FILTERS), inputs=LANA_INPUTS
        )
        concourse.add_pipeline(
            "private-charts",
            ["lana-bank-testflight"],
            ["charts-repo"],
            inputs={"lana-bank-testflight": _inputs("charts-repo")},
        )
        concourse.add_pipeline(
            "galoy-staging",
            ["galoy-staging-lana-bank"],
            ["lana-repo"],
            inputs={"galoy-staging-lana-bank": _inputs("lana-repo")},
        )

    # -- history --------------------------------------------------------------------------

    def seed_history(self, old_sha: str, builds_per_job: int = 2) -> None:
        """Finished builds of an older commit on every job, so there is something to skip."""
        inputs = {"repo": {"ref": old_sha}}
        for _ in range(builds_per_job):
            for job in (*TESTS, "build-rc", "open-promote-rc-pr"):
                self._run_now("lana-bank", job, inputs, "succeeded")
            self._run_now(
                "private-charts", "lana-bank-testflight", self._chart_inputs(), "succeeded"
            )
            self._run_now(
                "galoy-staging",
                "galoy-staging-lana-bank",
                {"lana-repo": {"ref": old_sha}},
                "succeeded",
            )

    def seed_deploys(
        self,
        github: GitHubSimulator,
        count: int,
        *,
        since: float,
        every: float = 3600.0,
        files: tuple[str, ...] = ("core/src/lib.rs",),
        batch: int = 1,
        durations: dict[str, float] | None = None,
    ) -> list[str]:
        """`count` past deploys, one every `every` seconds from `since`, each of `batch`
        commits landed on main together (one check sees them all; the jobs build the newest,
        which carries the others) and taken to staging by builds that ran as long as the real
        jobs do (`USUAL_SECONDS`, or `durations` where given: the demo's are seconds), within
        ±10%, the same every run: a history for usual durations, `status`, and `where` about
        old commits. Returns the SHAs, oldest first."""
        took = {**USUAL_SECONDS, **(durations or {})}
        shas: list[str] = []
        for n in range(count):
            at = since + n * every
            landed = [
                github.add_commit(
                    f"Past change {n * batch + i + 1}",
                    list(files),
                    committed_at=at - (batch - 1) + i,
                )
                for i in range(batch)
            ]
            for sha in landed:
                self.sim.add_version("lana-bank", "repo", {"ref": sha})
            sha = landed[-1]
            repo = {"repo": {"ref": sha}}
            ends = [self._past_build("lana-bank", job, repo, at + 60, n, took) for job in TESTS]
            end = self._past_build("lana-bank", "build-rc", repo, max(ends) + 30, n, took)
            end = self._past_build("lana-bank", "open-promote-rc-pr", repo, end + 10, n, took)
            end = self._past_build(
                "private-charts",
                "lana-bank-testflight",
                self._chart_inputs(),
                end + HANDOFF_SECONDS,
                n,
                took,
            )
            self._past_build(
                "galoy-staging",
                "galoy-staging-lana-bank",
                {"lana-repo": {"ref": sha}},
                end + HANDOFF_SECONDS,
                n,
                took,
            )
            shas += landed
        return shas

    def _past_build(
        self,
        pipeline: str,
        job: str,
        inputs: dict[str, dict[str, str]],
        start: float,
        n: int,
        took: dict[str, float],
    ) -> float:
        """A build that started at `start` and passed after about `took[job]`; its end."""
        jitter = ((n * 7 + len(job)) % 5 - 2) / 20  # -10% … +10%
        end = start + took[job] * (1 + jitter)
        build = self.sim.create_build(pipeline, job, inputs=inputs)
        self.sim.start_build(build, at=start)
        self.sim.finish_build(build, "succeeded", at=end)
        return end

    def _run_now(
        self, pipeline: str, job: str, inputs: dict[str, dict[str, str]], status: str
    ) -> int:
        build = self.sim.create_build(pipeline, job, inputs=inputs)
        self.sim.start_build(build)
        self.sim.finish_build(build, status)
        return build

    def _chart_inputs(self) -> dict[str, dict[str, str]]:
        self._chart_version += 1
        return {"charts-repo": {"ref": f"{self._chart_version:040x}"}}

    # -- journeys -------------------------------------------------------------------------

    def follow_main(
        self,
        github: GitHubSimulator,
        journey: Journey | Callable[[str], Journey] | None = None,
        poll: float = 0.05,
    ) -> threading.Event:
        """Run the pipelines whenever main moves, as Concourse's resource check would: commits
        that landed between two checks are delivered together. `journey` may be chosen per
        delivery (called with main's new head). Set the returned event to stop."""
        stop = threading.Event()

        def loop() -> None:
            seen = github.main_head
            while not stop.wait(poll):
                head = github.main_head
                if head == seen:
                    continue
                landed: list[tuple[str, list[str]]] = []
                with github.lock:
                    sha = head
                    while sha != seen and sha in github.commits:
                        commit = github.commits[sha]
                        landed.append((sha, list(commit.files)))
                        if not commit.parents:
                            break
                        sha = commit.parents[0]  # first parent, as git-resource walks main
                seen = head
                chosen = journey(head) if callable(journey) else journey
                self.deliver(list(reversed(landed)), chosen)

        threading.Thread(target=loop, daemon=True).start()
        return stop

    def deliver(
        self, commits: list[tuple[str, list[str]]], journey: Journey | None = None
    ) -> threading.Thread:
        """Run the pipelines for commits that landed on main together (one check sees them
        all; jobs build only the newest, which carries the others). Returns the thread."""
        thread = threading.Thread(
            target=self._guarded, args=(commits, journey or Journey()), daemon=True
        )
        self.threads.append(thread)
        thread.start()
        return thread

    def wait(self, timeout: float = 60.0) -> None:
        for thread in self.threads:
            thread.join(timeout)
        if self.errors:
            raise self.errors[0]

    def _guarded(self, commits: list[tuple[str, list[str]]], journey: Journey) -> None:
        try:
            self._journey(commits, journey)
        except BaseException as exc:  # surfaced by wait(): a broken script must fail the test
            self.errors.append(exc)

    def _journey(self, commits: list[tuple[str, list[str]]], journey: Journey) -> None:
        self.sleep(journey.check_delay)
        head_sha = commits[-1][0]
        all_files = [f for _, files in commits for f in files]
        triggered = [r for r in RESOURCE_FILTERS if watches(r, all_files)]
        for sha, files in commits:
            for resource in triggered:
                if watches(resource, files):
                    self.sim.add_version("lana-bank", resource, {"ref": sha})
        if journey.old_rerun_job is not None:
            self._rerun_oldest(journey.old_rerun_job)
        images = [EDGE_IMAGES[r] for r in triggered if r in EDGE_IMAGES]
        parallel = [
            (job, {r: {"ref": head_sha}}) for r, job in EDGE_IMAGES.items() if job in images
        ]
        if "repo" in triggered:
            parallel += [(job, {"repo": {"ref": head_sha}}) for job in TESTS]
        passed = self._run_parallel("lana-bank", parallel, journey)
        if "repo" not in triggered and "dagster-src" not in triggered:
            return  # frontend-only: the edge images are the end of this road
        # build-rc's `passed:` gate: every test job passed (an edge image is not in it).
        if not all(ok for job, ok in passed.items() if job in TESTS):
            return
        rc_inputs = {"repo": {"ref": head_sha}}
        if not self._run_job("lana-bank", "build-rc", rc_inputs, journey):
            return
        # release waits for a manual trigger: it stays pending and must never be waited for.
        self.sim.create_build("lana-bank", "release", inputs=rc_inputs)
        if not self._run_job("lana-bank", "open-promote-rc-pr", rc_inputs, journey):
            return  # no promote PR: nothing for testflight
        self.sleep(journey.handoff_delay)
        chart = self._chart_inputs()
        if not self._run_job("private-charts", "lana-bank-testflight", chart, journey):
            return
        self.sleep(journey.handoff_delay)
        self._run_job(
            "galoy-staging", "galoy-staging-lana-bank", {"lana-repo": {"ref": head_sha}}, journey
        )

    def _run_parallel(
        self, pipeline: str, jobs: list[tuple[str, dict[str, dict[str, str]]]], journey: Journey
    ) -> dict[str, bool]:
        """Run the jobs at once; whether each ended passed."""
        passed: dict[str, bool] = {}

        def run(job: str, inputs: dict[str, dict[str, str]]) -> None:
            passed[job] = self._run_job(pipeline, job, inputs, journey)

        threads = [
            threading.Thread(target=run, args=(job, inputs), daemon=True) for job, inputs in jobs
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return passed

    def _run_job(
        self, pipeline: str, job: str, inputs: dict[str, dict[str, str]], journey: Journey
    ) -> bool:
        """One build of `job`, then reruns per plan, until it passes (Concourse's `passed:`
        gate: nothing downstream runs before a success); whether it passed."""
        plan = journey.plan(job)
        # The scheduler skips a paused job (or pipeline), and a pinned input keeps the job on
        # the version it already built: the build comes once someone unpauses or unpins.
        self.sim.wait_until_runnable(pipeline, job, list(inputs), timeout=RUNNABLE_WAIT_SECONDS)
        build = self.sim.create_build(pipeline, job, inputs=inputs)
        status = self._execute(build, plan.duration, plan.outcome, plan.log or f"{job}: ok\n")
        api_reruns = 0
        while status != "succeeded":
            if plan.rerun_after is None:
                rerun = self.sim.wait_for_rerun(build, plan.await_rerun)
                if rerun is None:
                    return False  # a person has to rerun it; the journey ends here unless they do
                outcomes = plan.api_rerun_outcomes
                outcome = outcomes[api_reruns] if api_reruns < len(outcomes) else None
                api_reruns += 1
                build = rerun
            else:
                self.sleep(plan.rerun_after)
                build = self.sim.rerun(build)
                outcome = None
            outcome = outcome or plan.rerun_outcome
            status = self._execute(build, plan.duration, outcome, f"{job}: rerun\n")
        return True

    def _execute(self, build: int, duration: float, outcome: str, log: str) -> str:
        self.sim.start_build(build)
        steps = max(1, int(duration / 0.25))
        lines = log.splitlines(keepends=True) or [""]
        for i in range(steps):
            self.sleep(duration / steps)
            if i < len(lines):
                self.sim.log(build, lines[i])
        for line in lines[steps:]:
            self.sim.log(build, line)
        self.sim.finish_build(build, outcome)
        return outcome

    def _rerun_oldest(self, job: str) -> None:
        pipeline = (
            "lana-bank"
            if job in LANA_JOBS
            else ("private-charts" if job == "lana-bank-testflight" else "galoy-staging")
        )
        oldest = self.sim.oldest_build(pipeline, job)
        if oldest is None:
            return
        rerun = self.sim.rerun(oldest)
        threading.Thread(
            target=self._execute, args=(rerun, 0.5, "succeeded", "old rerun\n"), daemon=True
        ).start()


def demo_journey(scale: float = 1.0, *, rerun_button: bool = False) -> Journey:
    """The demo's journey, about a minute at scale 1 (`scale` multiplies every duration): a
    flaky bats test fails once and is rerun; testflight runs long. The rerun comes from a
    person 5 s after the failure, or with `rerun_button` from the API (the failure message's
    Rerun button), which the CI waits for."""
    s = scale
    flaky_log = (
        "running bats tests\n"
        "ok 1 customer onboarding\n"
        "ok 2 deposit and withdrawal\n"
        "not ok 3 credit facility disbursal\n"
        "# (in test file bats/credit-facility.bats, line 88)\n"
        '#   `[[ "$status" == "Active" ]]\' failed\n'
        "# status was: PendingCollateralization\n"
    )
    return Journey(
        plans={
            "test-integration": JobPlan(duration=9 * s),
            "flake-check": JobPlan(duration=4 * s),
            "test-bats": JobPlan(
                duration=7 * s,
                outcome="failed",
                log=flaky_log,
                rerun_after=None if rerun_button else 5 * s,
                await_rerun=60 * s,
                api_rerun_outcomes=("succeeded",),
            ),
            "build-rc": JobPlan(duration=7 * s),
            "open-promote-rc-pr": JobPlan(duration=3 * s),
            "lana-bank-testflight": JobPlan(duration=10 * s),
            "galoy-staging-lana-bank": JobPlan(duration=6 * s),
        },
        check_delay=2 * s,
        handoff_delay=2 * s,
    )
