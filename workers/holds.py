"""What holds builds back, read from Concourse and shared: the I/O half of "why is it not
moving" (the judgement is `workers/blockers.py`, pure).

Per poll cycle and for every monitor and worker together, only for the pipelines where some
monitor's commit waits (`TickPlan.hold_pipelines`): the team's pipeline list (one request:
`paused*`, `archived` of every pipeline), each such pipeline's job list (`GET …/jobs`:
`paused*`, inputs, the pending next build), the resources whose pin can hold a waiting job
back (`GET …/resources/:r`: `pinned_version`, `pin_comment`), and a pending build's
`preparation` where the plan says it can name a blocker: each once per cycle. Each answer is
stored in Redis with the time it was taken, like the job-build listings (`workers/observe.py`),
and serves a monitor when it was taken after that monitor's previous look began (`fresh`). A
worker keeps what it parsed, so a steady tick only reads the stamps, in the tick's first round
trip.

One worker refreshes an answer at a time (the fill lock); another that finds the lock taken
uses the answer it has, at most a cycle old, rather than wait: these facts only feed what the
thread says about a wait, never which build is ours.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypeVar

from pydantic import TypeAdapter

from workers.blockers import Holds, JobHold, JobInputFact, Pin, PipelineHold, Preparation
from workers.concourse import (
    BuildPreparation,
    ConcourseClient,
    JobSummary,
    PipelineInfo,
    ResourceInfo,
)
from workers.monitor import Monitor
from workers.plan import TickPlan
from workers.store import MonitorStore

_T = TypeVar("_T")

# Redis drops shared answers nobody refreshed for this long (garbage collection only).
SHARED_GC_SECONDS = 15 * 60
# Held while one worker refreshes an answer; outlives a slow request (the timeout is 10 s).
FILL_LOCK_SECONDS = 15.0

_PIPELINES = TypeAdapter(list[PipelineInfo])
_JOBS = TypeAdapter(list[JobSummary])
_RESOURCE = TypeAdapter(ResourceInfo)
_PREPARATION = TypeAdapter(BuildPreparation)


class HoldsReader:
    """Reads and shares what holds builds back; one per worker process."""

    def __init__(
        self,
        *,
        concourse: ConcourseClient,
        store: MonitorStore,
        team: str,
        fresh: Callable[[float, Monitor], bool],
    ) -> None:
        self.concourse = concourse
        self.store = store
        self.team = team
        self.fresh = fresh
        # The last answer parsed per (kind, name): its stamp and value.
        self._parsed: dict[tuple[str, str], tuple[float, object]] = {}

    def questions(self, plan: TickPlan) -> list[tuple[str, str]]:
        """The shared answers (kind, name) the tick needs, whose stamps its first Redis round
        trip reads: the team's pipelines, the job lists, and the resources and pending builds
        the job lists this worker parsed last point at (others are read when they show)."""
        pipelines = plan.hold_pipelines
        if not pipelines:
            return []
        asked = [("pipelines", self.team)] + [("jobs", p) for p in pipelines]
        known = self._known_holds(pipelines)
        if known is not None:
            asked += [("resource", r) for r in plan.pin_resources(known)]
            asked += [("preparation", str(b)) for b in plan.preparations(known)]
        return asked

    def read(
        self,
        monitor: Monitor,
        plan: TickPlan,
        stamps: dict[tuple[str, str], float],
        now: float,
    ) -> Holds:
        """The holds on the plan's pipelines, from fresh shared answers or Concourse."""
        pipelines = plan.hold_pipelines
        holds = Holds()
        if not pipelines:
            return holds  # nothing waits: nothing to hold back
        listed = self._answer(
            ("pipelines", self.team), stamps, monitor, now, self.concourse.pipelines, _PIPELINES
        )
        for pipeline in pipelines:
            jobs = self._answer(
                ("jobs", pipeline),
                stamps,
                monitor,
                now,
                partial(self.concourse.jobs, pipeline),
                _JOBS,
            )
            holds.jobs.update((f"{pipeline}/{job.name}", _job_hold(job)) for job in jobs)
        holds.pipelines.update(
            (info.name, _pipeline_hold(info)) for info in listed if info.name in pipelines
        )
        self._add_pins(monitor, plan, holds, stamps, now)
        self._add_preparations(monitor, plan, holds, stamps, now)
        return holds

    def _known_holds(self, pipelines: list[str]) -> Holds | None:
        """The holds as this worker parsed them last (jobs only), to foresee the questions."""
        holds = Holds()
        for pipeline in pipelines:
            kept = self._parsed.get(("jobs", pipeline))
            if kept is None:
                return None
            jobs: list[JobSummary] = kept[1]  # type: ignore[assignment]
            holds.jobs.update((f"{pipeline}/{job.name}", _job_hold(job)) for job in jobs)
        listed = self._parsed.get(("pipelines", self.team))
        if listed is not None:
            infos: list[PipelineInfo] = listed[1]  # type: ignore[assignment]
            holds.pipelines.update(
                (i.name, _pipeline_hold(i)) for i in infos if i.name in pipelines
            )
        return holds

    def _unforeseen(
        self, questions: list[tuple[str, str]], stamps: dict[tuple[str, str], float]
    ) -> dict[tuple[str, str], tuple[float, str]]:
        """The shared answers to questions the first round trip did not foresee (one more)."""
        missing = [q for q in questions if q not in stamps]
        by_kind: dict[str, list[str]] = {}
        for kind, name in missing:
            by_kind.setdefault(kind, []).append(name)
        return {
            (kind, name): answer
            for kind, names in by_kind.items()
            for name, answer in self.store.shared_answers(kind, names).items()
        }

    def _add_pins(
        self,
        monitor: Monitor,
        plan: TickPlan,
        holds: Holds,
        stamps: dict[tuple[str, str], float],
        now: float,
    ) -> None:
        questions = [("resource", r) for r in plan.pin_resources(holds)]
        stored = self._unforeseen(questions, stamps)
        stamps = {**stamps, **{q: answer[0] for q, answer in stored.items()}}
        for question in questions:
            pipeline, _, name = question[1].partition("/")
            resource = self._answer(
                question,
                stamps,
                monitor,
                now,
                partial(self.concourse.resource, pipeline, name),
                _RESOURCE,
                stored=stored,
            )
            if resource.pinned_version is not None:
                holds.pins[question[1]] = Pin(
                    version=resource.pinned_version, comment=resource.pin_comment or None
                )

    def _add_preparations(
        self,
        monitor: Monitor,
        plan: TickPlan,
        holds: Holds,
        stamps: dict[tuple[str, str], float],
        now: float,
    ) -> None:
        wanted = plan.preparations(holds)
        questions = [("preparation", str(build_id)) for build_id in wanted]
        stored = self._unforeseen(questions, stamps)
        stamps = {**stamps, **{q: answer[0] for q, answer in stored.items()}}
        found: dict[int, Preparation] = {}
        for build_id, question in zip(wanted, questions, strict=True):
            answer = self._answer(
                question,
                stamps,
                monitor,
                now,
                partial(self.concourse.build_preparation, build_id),
                _PREPARATION,
                stored=stored,
            )
            blocking = answer.inputs_satisfied == "blocking"
            found[build_id] = Preparation(
                build_id=build_id,
                missing_inputs=dict(answer.missing_input_reasons) if blocking else {},
                max_in_flight=answer.max_running_builds == "blocking",
            )
        for job in holds.jobs.values():
            if job.pending_build in found:
                job.preparation = found[job.pending_build]

    def _answer(
        self,
        question: tuple[str, str],
        stamps: dict[tuple[str, str], float],
        monitor: Monitor,
        now: float,
        ask: Callable[[], _T],
        adapter: TypeAdapter[_T],
        stored: dict[tuple[str, str], tuple[float, str]] | None = None,
    ) -> _T:
        """A shared answer fresh for `monitor`: the one parsed here, the one in Redis (read
        already: `stored`), or a new one from Concourse (shared for the others)."""
        kind, name = question
        stamp = stamps.get(question)
        if stamp is not None and self.fresh(stamp, monitor):
            kept = self._parsed.get(question)
            if kept is not None and kept[0] == stamp:
                return kept[1]  # type: ignore[return-value]
            answer = (
                stored.get(question)
                if stored is not None
                else self.store.shared_answers(kind, [name]).get(name)
            )
            if answer is not None and self.fresh(answer[0], monitor):
                return self._keep(question, answer[0], adapter.validate_json(answer[1]))
        with self.store.fill_lock(kind, name, FILL_LOCK_SECONDS) as ours:
            kept = self._parsed.get(question)
            if not ours and kept is not None:
                return kept[1]  # type: ignore[return-value]
            value = ask()
            payload = adapter.dump_json(value, exclude_none=True).decode()
            self.store.save_shared_answer(kind, name, now, payload, SHARED_GC_SECONDS)
            return self._keep(question, now, value)

    def _keep(self, question: tuple[str, str], stamp: float, value: _T) -> _T:
        self._parsed[question] = (stamp, value)
        return value


def _pipeline_hold(info: PipelineInfo) -> PipelineHold:
    return PipelineHold(
        paused=info.paused,
        paused_by=info.paused_by,
        paused_at=info.paused_at,
        archived=info.archived,
    )


def _job_hold(job: JobSummary) -> JobHold:
    pending = job.next_build if job.next_build and job.next_build.status == "pending" else None
    return JobHold(
        paused=job.paused,
        paused_by=job.paused_by,
        paused_at=job.paused_at,
        inputs=[
            JobInputFact(name=i.name, resource=i.resource, trigger=i.trigger) for i in job.inputs
        ],
        pending_build=pending.id if pending else None,
    )
