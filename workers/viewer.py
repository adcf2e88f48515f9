"""The chain view kept current, and the questions answered from it: `where`, `status` (I/O).

`ChainViewer.job_views(jobs, now)` gives each job's `JobView` (workers/view.py: its newest
builds), shared in Redis by every monitor, worker and question (`shared:view:<pipeline/job>`,
see workers/keys.py). A record is refreshed at most once per poll interval (`poll_seconds`),
by whichever question comes first, and only for the jobs a question needs:

- from the listing the monitors' ticks shared this cycle (`shared:builds:<pipeline/job>`,
  workers/observe.py) when it is that fresh and reaches back far enough (`refresh_floor`):
  no request at all;
- else with one listing of the job (`from=` the record's floor, or its newest `VIEW_DEPTH`
  builds the first time). One refresher per job at a time; the others wait for it briefly.

What a build carried comes from the caches `observe` fills and reads (`inputs:<build id>`,
then Concourse once per build, ever) and `workers/ancestry.py` (lists of commits shared by
every monitor; one GitHub request per ref not listed yet). A commit nobody follows is judged
by the monitor's own pure transition run on the view (`view.replay`); a commit a monitor
follows is answered from that monitor (it is authoritative).

Public API (stable, for the front ends): `ChainViewer.where(spec, now)` → `WhereAnswer`,
`ChainViewer.status(now)` → `StatusAnswer`, `ChainViewer.moved_over(monitor)` →
`CommitRange | None` (what a deploy moved staging over: for the final report),
`ChainViewer.job_views(jobs, now)`, `ChainViewer.usual_durations(now)` (stage id → seconds),
`ChainViewer.usual_times(now)` (what each tick's observation carries: workers/observe.py) and
`ChainViewer.replayed(target, now)` (a monitor as if it had followed the commit all along).
Errors are those of `workers.errors`: `TargetError` (unknown commit or PR, closed PR),
`ConcourseError`, `GitHubError`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from pydantic import ValidationError

from workers import keys
from workers.ancestry import Ancestry, CoverageResolver
from workers.chain import Chain
from workers.concourse import Build, ConcourseClient
from workers.errors import GitHubError, GitHubNotFound
from workers.github import Commit, GitHubClient
from workers.monitor import Monitor, Observation, UsualTime, monitor_id_for, new_monitor
from workers.observe import JobWindow
from workers.store import MonitorStore
from workers.target import OpenPullRequest, ResolvedTarget, TargetSpec, look_up_target
from workers.view import (
    VIEW_DEPTH,
    CommitRange,
    JobView,
    StageStatus,
    StatusAnswer,
    ViewBuild,
    WhereAnswer,
    answer_from_monitor,
    default_stages,
    ends_judging,
    judging_order,
    merge_listing,
    not_merged_answer,
    observed,
    refresh_floor,
    replay,
    stage_usual_duration,
    stage_usual_time,
    summary,
)

VIEW_KIND = "view"
# Page size of a refresh from the record's floor (one request holds a normal cycle's builds).
PAGE_LIMIT = 100
# One question refreshes a job's record while the others wait up to FILL_WAIT_SECONDS for it,
# then list it themselves. The lock outlives a slow listing (the client's timeout is 10 s).
FILL_LOCK_SECONDS = 15.0
FILL_WAIT_SECONDS = 1.0
FILL_POLL_SECONDS = 0.02
# The records usual times are read from may be this old (ticks); `where` wants them fresher.
USUAL_MAX_AGE_SECONDS = 300.0


class ChainViewer:
    """Keeps the chain view and answers questions from it; one per process."""

    def __init__(
        self,
        *,
        chain: Chain,
        concourse: ConcourseClient,
        github: GitHubClient,
        store: MonitorStore,
        concourse_url: str,
        team: str,
        poll_seconds: float,
        ancestry: Ancestry | None = None,
    ) -> None:
        self.chain = chain
        self.concourse = concourse
        self.github = github
        self.store = store
        self.coverage = CoverageResolver(ancestry or github, store)
        self.concourse_url = concourse_url.rstrip("/")
        self.team = team
        self.poll_seconds = poll_seconds
        self._usual: tuple[float, dict[str, UsualTime]] | None = None  # (worked out at, times)

    # -- the view ---------------------------------------------------------------------------

    def job_views(
        self, jobs: Iterable[tuple[str, str]], now: float, *, max_age: float | None = None
    ) -> dict[str, JobView]:
        """The view of each (pipeline, job), none older than `max_age` (default: one poll
        interval; never less)."""
        wanted = list(dict.fromkeys(jobs))
        names = [f"{p}/{j}" for p, j in wanted]
        records = {
            name: view
            for name, answer in self.store.shared_answers(VIEW_KIND, names).items()
            if (view := _parse_view(answer[1])) is not None
        }
        age = max(max_age or 0.0, self.poll_seconds)
        stale = [(p, j) for p, j in wanted if not self._fresh(records.get(f"{p}/{j}"), now, age)]
        if stale:
            windows = self.store.shared_answers("builds", [f"{p}/{j}" for p, j in stale])
            for pipeline, job in stale:
                name = f"{pipeline}/{job}"
                records[name] = self._refresh(
                    pipeline, job, records.get(name), windows.get(name), now
                )
        return records

    def usual_durations(self, now: float) -> dict[str, int | None]:
        """Each stage's usual duration (its slowest job's median), by stage id."""
        views = self.job_views(((s.pipeline, j) for s in self.chain.stages for j in s.jobs), now)
        return {s.id: stage_usual_duration(s, views) for s in self.chain.stages}

    def usual_times(self, now: float) -> dict[str, UsualTime]:
        """Each stage's usual time (seconds and sample size) for the monitors' ticks: worked out
        at most once per poll interval in this process, from records at most
        `USUAL_MAX_AGE_SECONDS` old (a median of 20 builds hardly moves in a few minutes), so
        a steady tick costs nothing more and a hundred monitors no more than one."""
        memo = self._usual
        if memo is not None and memo[0] <= now < memo[0] + self.poll_seconds:
            return memo[1]
        jobs = ((s.pipeline, j) for s in self.chain.stages for j in s.jobs)
        views = self.job_views(jobs, now, max_age=USUAL_MAX_AGE_SECONDS)
        usual = {
            s.id: known
            for s in self.chain.stages
            if (known := stage_usual_time(s, views)) is not None
        }
        self._usual = (now, usual)
        return usual

    def _fresh(self, view: JobView | None, now: float, max_age: float | None = None) -> bool:
        age = self.poll_seconds if max_age is None else max_age
        return view is not None and view.taken_at > now - age

    def _refresh(
        self,
        pipeline: str,
        job: str,
        previous: JobView | None,
        window_answer: tuple[float, str] | None,
        now: float,
    ) -> JobView:
        name = f"{pipeline}/{job}"
        with self.store.fill_lock(VIEW_KIND, name, FILL_LOCK_SECONDS) as ours:
            if not ours:
                deadline = time.monotonic() + FILL_WAIT_SECONDS
                while time.monotonic() < deadline:
                    time.sleep(FILL_POLL_SECONDS)
                    record = self._read(name)
                    if self._fresh(record, now):
                        assert record is not None
                        return record
            else:
                record = self._read(name)  # refreshed since we looked?
                if self._fresh(record, now):
                    assert record is not None
                    return record
                previous = record or previous
            view = self._carried_forward(pipeline, job, previous, window_answer, now)
            self.store.save_shared_answer(
                VIEW_KIND, name, view.taken_at, view.model_dump_json(), keys.VIEW_GC_SECONDS
            )
            return view

    def _carried_forward(
        self,
        pipeline: str,
        job: str,
        previous: JobView | None,
        window_answer: tuple[float, str] | None,
        now: float,
    ) -> JobView:
        """The record after this cycle's listing: the monitors' shared one if it will do,
        else one listing of our own."""
        floor = refresh_floor(previous)
        window = _parse_window(window_answer)
        if window is not None and self._fresh_window(window, previous, floor, now):
            listed = [self._view_build(b) for b in window.builds]
            return merge_listing(previous, pipeline, job, listed, window.floor, window.taken_at)
        if floor is None:
            builds = self.concourse.job_builds(pipeline, job, limit=VIEW_DEPTH)
            floor = 0 if len(builds) < VIEW_DEPTH else min(b.id for b in builds)
        else:
            builds = self.concourse.job_builds(pipeline, job, since_id=floor, limit=PAGE_LIMIT)
        listed = [self._view_build(b) for b in builds]
        return merge_listing(previous, pipeline, job, listed, floor, now)

    def _fresh_window(
        self, window: JobWindow, previous: JobView | None, floor: int | None, now: float
    ) -> bool:
        """Whether the monitors' listing is this cycle's and holds what the record needs: from
        its floor up, or (a first record) the whole history or at least `VIEW_DEPTH` builds."""
        if window.taken_at <= now - self.poll_seconds:
            return False
        if previous is not None and window.taken_at <= previous.taken_at:
            return False
        if floor is None:
            return window.floor == 0 or len(window.builds) >= VIEW_DEPTH
        return window.floor <= floor

    def _read(self, name: str) -> JobView | None:
        answer = self.store.shared_answers(VIEW_KIND, [name]).get(name)
        return None if answer is None else _parse_view(answer[1])

    def _view_build(self, build: Build) -> ViewBuild:
        return ViewBuild(
            id=build.id,
            name=build.name,
            status=build.status,
            start_time=build.start_time,
            end_time=build.end_time,
            rerun_of=build.rerun_of.id if build.rerun_of else None,
            url=self.build_url(build),
        )

    def build_url(self, build: Build) -> str:
        """The build's page in the Concourse web UI (as `Observer.build_url`)."""
        if build.pipeline_name and build.job_name:
            return (
                f"{self.concourse_url}/teams/{build.team_name or self.team}/pipelines/"
                f"{build.pipeline_name}/jobs/{build.job_name}/builds/{build.name}"
            )
        return f"{self.concourse_url}/builds/{build.id}"

    # -- what builds carried ----------------------------------------------------------------

    def input_refs(self, build_ids: list[int], input_name: str) -> dict[int, str | None]:
        """The ref each build's input `input_name` carried: from the cache observe fills, else
        Concourse (settled inputs are cached for everyone; a pending build has none yet)."""
        cached = self.store.cached_inputs_many(build_ids)
        refs: dict[int, str | None] = {b: cached[b].get(input_name) for b in cached}
        for build_id in build_ids:
            if build_id not in refs:
                refs[build_id] = self._ask_input_ref(build_id, input_name)
        return refs

    def _ask_input_ref(self, build_id: int, input_name: str) -> str | None:
        resources = self.concourse.build_resources(build_id)
        refs = {i.name: i.version["ref"] for i in resources.inputs if "ref" in i.version}
        if resources.inputs:
            self.store.cache_inputs(build_id, refs)
        return refs.get(input_name)

    # -- where --------------------------------------------------------------------------------

    def where(self, spec: TargetSpec, now: float) -> WhereAnswer:
        """Where the commit `spec` names is on its way to staging. Never merges, never starts
        a monitor: an open PR is answered "not merged yet" with its review state."""
        found = look_up_target(spec, self.github, read_commit=self._commit)
        if isinstance(found, OpenPullRequest):
            return self._not_merged(found, now)
        following = self.store.load(monitor_id_for(self.github.repository, found.sha))
        if following is not None and following.sha == found.sha and following.status != "stopped":
            views = self._views_for(following, now)
            return answer_from_monitor(following, self.chain, views, now, followed=True)
        judged = self.replayed(found, now)
        views = self._views_for(judged, now)  # fresh this cycle: no request
        return answer_from_monitor(judged, self.chain, views, now, followed=False)

    def replayed(self, target: ResolvedTarget, now: float) -> Monitor:
        """A monitor of `target` as if it had followed the commit all along (nothing is
        stored, nobody is told): the monitor's rules run on the chain view."""
        monitor, _ = new_monitor(
            chain=self.chain,
            repository=self.github.repository,
            sha=target.sha,
            headline=target.headline,
            committed_at=target.committed_at,
            files=list(target.files),
            now=now,
            pr_number=target.pr_number,
            pr_title=target.pr_title,
            pr_url=target.pr_url,
            on_failure="continue",
        )
        views = self._views_for(monitor, now)
        return replay(monitor, self._observation(monitor, views, now), self.chain)

    def _views_for(self, monitor: Monitor, now: float) -> dict[str, JobView]:
        return self.job_views(((j.pipeline, j.job) for s in monitor.stages for j in s.jobs), now)

    def _observation(self, monitor: Monitor, views: dict[str, JobView], now: float) -> Observation:
        """The view as one observation of the monitor's jobs: for input-matched stages, what
        the builds carried, asked in id order until the build the monitor would follow."""
        observation = Observation(now=now)
        for stage in monitor.stages:
            input_name = self.chain.stage(stage.id).match.input
            for track in stage.jobs:
                view = views[track.key]
                if input_name is None:
                    observation.builds[track.key] = [observed(b, None, None) for b in view.builds]
                    continue
                judged: dict[int, tuple[str | None, bool | None]] = {}
                order = judging_order(view.builds, monitor.committed_at)
                cached = self.store.cached_inputs_many([b.id for b in order])
                for build in order:
                    if build.id in cached:
                        ref = cached[build.id].get(input_name)
                    else:
                        ref = self._ask_input_ref(build.id, input_name)
                    covers = (
                        None
                        if ref is None
                        else self.coverage.covers(monitor.sha, monitor.committed_at, ref)
                    )
                    judged[build.id] = (ref, covers)
                    if ends_judging(build, covers):
                        break
                observation.builds[track.key] = [
                    observed(b, *judged.get(b.id, (None, None))) for b in view.builds
                ]
        return observation

    def _not_merged(self, pr: OpenPullRequest, now: float) -> WhereAnswer:
        head = self._commit(pr.head_sha)
        return not_merged_answer(
            sha=head.sha,
            headline=head.headline,
            committed_at=head.committed_at,
            repository=self.github.repository,
            pr_number=pr.number,
            pr_title=pr.title,
            pr_url=pr.url,
            approval=pr.approval,
            files=list(head.files),
            chain=self.chain,
            now=now,
        )

    def _commit(self, sha: str) -> Commit:
        """A commit from GitHub, kept in Redis by full SHA (a SHA never changes)."""
        full = len(sha) == 40
        if full:
            raw = self.store.cached_commit(sha.lower())
            if raw is not None:
                try:
                    return Commit.model_validate_json(raw)
                except ValidationError:
                    pass  # written by another release: read it again
        commit = self.github.commit(sha)
        self.store.cache_commit(commit.sha, commit.model_dump_json())
        return commit

    # -- status -------------------------------------------------------------------------------

    def status(self, now: float) -> StatusAnswer:
        """For each stage of the default path its newest build and the running ones; what
        staging runs and how far main is ahead of it."""
        stages = default_stages(self.chain)
        views = self.job_views(((s.pipeline, j) for s in stages for j in s.jobs), now)
        answers: list[StageStatus] = []
        for stage in stages:
            input_name = stage.match.input
            jobs = [views[f"{stage.pipeline}/{job}"] for job in stage.jobs]
            newest = max(
                ((v, b) for v in jobs if (b := v.newest) is not None),
                key=lambda vb: vb[1].id,
                default=None,
            )
            running = [(v, b) for v in jobs for b in v.running]
            shown = ([newest] if newest else []) + running
            refs = (
                self.input_refs(sorted({b.id for _, b in shown}), input_name) if input_name else {}
            )
            answers.append(
                StageStatus(
                    id=stage.id,
                    label=stage.label,
                    newest=summary(*newest, refs.get(newest[1].id)) if newest else None,
                    running=[summary(v, b, refs.get(b.id)) for v, b in running],
                    usual_duration=stage_usual_duration(stage, views),
                )
            )
        answer = StatusAnswer(repository=self.github.repository, stages=answers, answered_at=now)
        last = stages[-1]
        deployed = views[f"{last.pipeline}/{last.jobs[0]}"].newest_succeeded()
        if last.match.input is None or deployed is None:
            return answer
        answer.staging_sha = self.input_refs([deployed.id], last.match.input)[deployed.id]
        answer.deployed_at = deployed.end_time
        answer.main_sha = self.github.latest_commit_sha("main")
        if answer.staging_sha is not None:
            answer.behind = self.commit_range(answer.staging_sha, answer.main_sha)
        return answer

    def commit_range(self, base: str, head: str) -> CommitRange | None:
        """The commits of `head` that `base` lacks (None when GitHub cannot compare them)."""
        try:
            compared = self.github.compare_commits(base, head)
        except GitHubNotFound:
            return None
        oldest = compared.commits[0].committed_at if compared.commits else None
        return CommitRange(
            base=base,
            head=head,
            ahead_by=compared.ahead_by,
            oldest_committed_at=oldest or None,
            url=compared.html_url,
        )

    def moved_over(self, monitor: Monitor) -> CommitRange | None:
        """What a deploy moved staging over: from the commit the previous successful deploy
        carried to the one `monitor`'s deploy carried (for the journey's final report). None
        when not known (no earlier deploy in the view, GitHub cannot compare)."""
        last = monitor.stages[-1] if monitor.stages else None
        if last is None or last.state != "succeeded":
            return None
        input_name = self.chain.stage(last.id).match.input
        track = next((j for j in last.jobs if j.build is not None), None)
        if input_name is None or track is None or track.build is None:
            return None
        new_ref = track.build.input_ref or monitor.sha
        view = self.job_views([(track.pipeline, track.job)], monitor.updated_at)[track.key]
        before = view.newest_succeeded(below=track.build.id)
        if before is None:
            return None
        old_ref = self.input_refs([before.id], input_name)[before.id]
        if old_ref is None or old_ref == new_ref:
            return None
        try:
            return self.commit_range(old_ref, new_ref)
        except GitHubError:
            return None


def _parse_view(payload: str) -> JobView | None:
    try:
        return JobView.model_validate_json(payload)
    except ValidationError:
        return None  # written by another release: refreshed


def _parse_window(answer: tuple[float, str] | None) -> JobWindow | None:
    if answer is None:
        return None
    try:
        return JobWindow.model_validate_json(answer[1])
    except ValidationError:
        return None
