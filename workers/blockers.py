"""Why is it not moving: what Concourse says holds a stage back, judged without I/O.

A tick observes, per pipeline on the monitor's remaining path, the facts Concourse keeps about
holding builds back (`Holds`): whether the pipeline is paused or archived, which jobs are
paused, their inputs and pending next build (and that build's `preparation`), and which
resources are pinned to a version. `find_blockers` turns them into the `Blocker`s of the
jobs a monitor waits on now (`WaitingJob`, from `workers.monitor.waiting_jobs`: the jobs of the
first stage not passed yet with no build of ours started); a blocker holding several jobs back
(a paused pipeline) is named once.

Rules, from what Concourse does (atc's scheduler skips paused jobs and pipelines; a pinned
resource gives its jobs the pinned version only):
- an archived pipeline, else a paused pipeline, blocks every stage of it; nothing finer is said
  then (its jobs' pauses and pins show once it is unpaused);
- a paused job blocks its stage;
- a resource pinned to a version other than our commit blocks a job taking it as a
  triggering input, or as the input the stage matches our commit by;
- a pending next build whose preparation says inputs are not satisfied (other than "still
  checking", which clears by itself) or that `max_in_flight` is reached blocks its job.

The plan asks for a pending build's preparation only where that can be said
(`preparation_wanted`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from workers.events import Blocker, BlockReason

# atc's reason for an input of a manually triggered build while its resource is being
# checked: it clears by itself within a check interval, so it is not worth a message.
STILL_CHECKING = "checking for latest available versions"


class PipelineHold(BaseModel):
    """A pipeline's `paused*` and `archived`."""

    paused: bool = False
    paused_by: str | None = None
    paused_at: int | None = None
    archived: bool = False


class JobInputFact(BaseModel):
    name: str
    resource: str
    trigger: bool = False


class Preparation(BaseModel):
    """What a pending build's preparation blocks on (inputs: input name → reason)."""

    build_id: int
    missing_inputs: dict[str, str] = Field(default_factory=dict)
    max_in_flight: bool = False


class JobHold(BaseModel):
    """A job's `paused*`, its inputs, its pending next build and that build's preparation."""

    paused: bool = False
    paused_by: str | None = None
    paused_at: int | None = None
    inputs: list[JobInputFact] = Field(default_factory=list)
    pending_build: int | None = None
    preparation: Preparation | None = None


class Pin(BaseModel):
    version: dict[str, str]
    comment: str | None = None


class Holds(BaseModel):
    """What holds builds back on the pipelines a tick looked at. Keys: pipeline name,
    `pipeline/job`, `pipeline/resource` (only pinned resources are in `pins`)."""

    pipelines: dict[str, PipelineHold] = Field(default_factory=dict)
    jobs: dict[str, JobHold] = Field(default_factory=dict)
    pins: dict[str, Pin] = Field(default_factory=dict)


@dataclass(frozen=True)
class WaitingJob:
    """A job the commit waits on: of the first stage not passed yet, with no build of ours
    started (none yet, one pending, or one failed that waits for a rerun)."""

    stage: str
    label: str
    pipeline: str
    job_key: str  # `pipeline/job`
    match_resource: str | None  # the resource the stage matches our commit by


def pipelines_to_watch(waiting: Sequence[WaitingJob]) -> list[str]:
    """The pipelines whose holds can say something about these jobs, in path order."""
    return list(dict.fromkeys(w.pipeline for w in waiting))


def preparation_wanted(waiting: Sequence[WaitingJob], holds: Holds) -> list[int]:
    """The pending builds whose preparation can name a blocker: the next build of a waiting
    job that is neither paused nor in a paused or archived pipeline (those say it already)."""
    wanted: list[int] = []
    for job_waiting in waiting:
        pipeline = holds.pipelines.get(job_waiting.pipeline)
        job = holds.jobs.get(job_waiting.job_key)
        if job is None or job.paused or job.pending_build is None:
            continue
        if pipeline is not None and (pipeline.paused or pipeline.archived):
            continue
        if job.pending_build not in wanted:
            wanted.append(job.pending_build)
    return wanted


def resources_to_watch(waiting: Sequence[WaitingJob], holds: Holds) -> list[str]:
    """The resources (`pipeline/resource`) whose pin can hold these jobs back: a job's
    triggering inputs and the input its stage matches our commit by. Not for jobs whose
    pipeline is paused or archived, or that are paused (nothing finer is said then)."""
    wanted: list[str] = []
    for job_waiting in waiting:
        pipeline = holds.pipelines.get(job_waiting.pipeline)
        job = holds.jobs.get(job_waiting.job_key)
        if job is None or job.paused:
            continue
        if pipeline is not None and (pipeline.paused or pipeline.archived):
            continue
        for job_input in job.inputs:
            if _may_pin(job_waiting, job_input):
                wanted.append(f"{job_waiting.pipeline}/{job_input.resource}")
    return list(dict.fromkeys(wanted))


def _may_pin(waiting: WaitingJob, job_input: JobInputFact) -> bool:
    """Whether a pin of this input's resource keeps our commit from the job."""
    return job_input.trigger or job_input.resource == waiting.match_resource


def find_blockers(waiting_jobs: Sequence[WaitingJob], holds: Holds, sha: str) -> list[Blocker]:
    """What holds these jobs (waited on by the commit `sha`) back: one blocker per reason and
    place."""
    found: dict[tuple[str, str], Blocker] = {}

    def add(
        waiting: WaitingJob, reason: BlockReason, where: str, **details: str | int | None
    ) -> None:
        blocker = Blocker(
            reason=reason, where=where, stage=waiting.stage, label=waiting.label, **details
        )
        found.setdefault(blocker.key, blocker)

    for waiting in waiting_jobs:
        pipeline = holds.pipelines.get(waiting.pipeline)
        if pipeline is not None and (pipeline.archived or pipeline.paused):
            reason: BlockReason = "archived" if pipeline.archived else "paused"
            add(waiting, reason, waiting.pipeline, by=pipeline.paused_by, since=pipeline.paused_at)
            continue
        job = holds.jobs.get(waiting.job_key)
        if job is None:
            continue
        if job.paused:
            add(waiting, "paused", waiting.job_key, by=job.paused_by, since=job.paused_at)
            continue
        for job_input in job.inputs:
            if not _may_pin(waiting, job_input):
                continue
            where = f"{waiting.pipeline}/{job_input.resource}"
            pin = holds.pins.get(where)
            if pin is None or pin.version.get("ref") == sha:
                continue
            add(waiting, "pinned", where, comment=pin.comment, version=_version_words(pin))
        preparation = job.preparation
        if preparation is None or preparation.build_id != job.pending_build:
            continue
        missing = {k: v for k, v in preparation.missing_inputs.items() if v != STILL_CHECKING}
        if missing:
            reasons = "; ".join(f"{name}: {why}" for name, why in sorted(missing.items()))
            add(waiting, "inputs_unsatisfied", waiting.job_key, comment=reasons)
        if preparation.max_in_flight:
            add(waiting, "max_in_flight", waiting.job_key)
    return list(found.values())


def still_holds(blocker: Blocker, holds: Holds, sha: str) -> bool | None:
    """Whether what a blocker said is still so, by the facts alone (its jobs may not wait any
    more: our build started, or the stage passed); None when the facts were not looked at or
    cannot tell (a pending build's preparation is only asked while its job waits)."""
    pipeline_name = blocker.where.partition("/")[0]
    pipeline = holds.pipelines.get(pipeline_name)
    match blocker.reason:
        case "archived":
            return None if pipeline is None else pipeline.archived
        case "paused" if "/" not in blocker.where:
            return None if pipeline is None else pipeline.paused
        case "paused":
            job = holds.jobs.get(blocker.where)
            return None if job is None else job.paused
        case "pinned":
            if pipeline_name not in holds.pipelines:
                return None
            pin = holds.pins.get(blocker.where)
            return pin is not None and pin.version.get("ref") != sha
        case _:
            job = holds.jobs.get(blocker.where)
            if job is None:
                return None
            return None if job.pending_build is not None else False


def _version_words(pin: Pin) -> str:
    """A pinned version in few words: a git ref's short sha, else `key:value` pairs."""
    ref = pin.version.get("ref")
    if ref is not None:
        return ref[:7] if len(ref) == 40 else ref
    return ", ".join(f"{k}:{v}" for k, v in sorted(pin.version.items()))
