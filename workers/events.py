"""The events a monitor emits: what the front ends announce, and the words they share.

Each event carries what a renderer needs, nothing to look up. Events are emitted by the pure
`workers.monitor.transition`, stored in the monitor's event log (`seq` numbers them) and turned
into Slack blocks or terminal lines by the front ends. The status words of a Concourse build
live here too: the client parses them and the transition judges by them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

BuildStatus = Literal["pending", "started", "succeeded", "failed", "errored", "aborted"]
RUNNING_STATUSES: frozenset[str] = frozenset({"pending", "started"})
FAILURE_STATUSES: frozenset[str] = frozenset({"failed", "errored", "aborted"})
DecisionChoice = Literal["continue", "stop"]


class _Event(BaseModel):
    seq: int = 0  # position in the monitor's event log, set when emitted
    at: float = 0.0


class MonitorStarted(_Event):
    kind: Literal["started"] = "started"
    path: str
    path_description: str
    stages: list[str]


class StageStarted(_Event):
    kind: Literal["stage_started"] = "stage_started"
    stage: str
    label: str
    builds: list[str]  # "job #name"
    expected_at: float | None = None  # when the path should be done, as of this event


class StageSucceeded(_Event):
    kind: Literal["stage_succeeded"] = "stage_succeeded"
    stage: str
    label: str
    duration: int | None
    expected_at: float | None = None  # when the path should be done, as of this event


class StageFailed(_Event):
    kind: Literal["stage_failed"] = "stage_failed"
    stage: str
    label: str
    job: str
    build_name: str
    build_url: str
    status: BuildStatus
    log_tail: str
    prompt: int | None  # set when a decision is asked for
    rerun_due: bool = False  # the policy reruns it once (`--on-failure rerun`)


class StageSlow(_Event):
    kind: Literal["stage_slow"] = "stage_slow"
    stage: str
    label: str
    elapsed: int
    threshold: int
    usual: int | None = None  # its usual duration, when the usual-time rule applies


class NotPickedUp(_Event):
    kind: Literal["not_picked_up"] = "not_picked_up"
    waited: int


BlockReason = Literal["paused", "archived", "pinned", "inputs_unsatisfied", "max_in_flight"]


class Blocker(BaseModel):
    """Why a stage's next build will not come, as Concourse says it: a paused job (`where` is
    `pipeline/job`) or pipeline (`where` is the pipeline), an archived pipeline, a resource
    pinned to another version (`where` is `pipeline/resource`), or the job's pending build
    waiting for inputs or for a free slot (`max_in_flight`). `stage` is the first stage of the
    path it holds back."""

    reason: BlockReason
    where: str
    stage: str
    label: str
    by: str | None = None  # who paused
    since: int | None = None  # paused since (epoch seconds)
    comment: str | None = None  # the pin comment, or what the inputs wait for
    version: str | None = None  # the pinned version (a short sha for git)

    @property
    def key(self) -> tuple[str, str]:
        """One blocker per reason and place, however many stages it holds back."""
        return (self.reason, self.where)


class StageBlocked(_Event, Blocker):
    """A stage on the path is held back (said once; `StageUnblocked` when it clears)."""

    kind: Literal["stage_blocked"] = "stage_blocked"


class StageUnblocked(_Event):
    """A blocker said before has cleared (unpaused, unpinned, inputs satisfied)."""

    kind: Literal["stage_unblocked"] = "stage_unblocked"
    reason: BlockReason
    where: str
    stage: str
    label: str


class IgnoredFile(BaseModel):
    """A changed file and the git resource filter that keeps it from making a version."""

    file: str
    resource: str  # `pipeline/resource`
    rule: Literal["ignore_paths", "paths"]  # matched `ignore_paths`, or outside `paths`
    pattern: str | None = None  # the `ignore_paths` pattern it matched


class CommitIgnored(_Event):
    """No resource on the path watches any file the commit changes: it will never be a
    version by itself, and moves when a later commit that triggers the pipeline carries it."""

    kind: Literal["ignored"] = "ignored"
    files: list[IgnoredFile]  # one per changed file, as far as listed
    more: int = 0  # changed files left out of `files`


class CarriedByLater(_Event):
    kind: Literal["carried"] = "carried"
    stage: str
    label: str
    job: str
    carrier_sha: str


class RerunAsked(BaseModel):
    """A rerun of our failed build that someone (or the policy) had Concourse make."""

    job: str
    build_name: str  # the failed build: "57"
    rerun_name: str  # the new build: "57.1"


class DecisionTaken(_Event):
    kind: Literal["decision"] = "decision"
    choice: DecisionChoice
    by: str
    prompt: int | None
    rerun: RerunAsked | None = None  # "continue" with a rerun asked for: the rerun is ours


class RecoveredByRerun(_Event):
    kind: Literal["recovered"] = "recovered"
    stage: str
    label: str
    job: str
    build_name: str


class ConcourseUnreachable(_Event):
    kind: Literal["unreachable"] = "unreachable"
    detail: str


class ConcourseBack(_Event):
    kind: Literal["reachable"] = "reachable"


class TimelineEntry(BaseModel):
    label: str
    duration: int | None
    usual: int | None = None  # the stage's usual duration, when the chain view knew it


class Deployed(_Event):
    kind: Literal["deployed"] = "deployed"
    short_sha: str
    headline: str
    timeline: list[TimelineEntry]
    total: int | None


class PathCompleted(_Event):
    """A path that does not reach staging (frontend-only) finished."""

    kind: Literal["completed"] = "completed"
    short_sha: str
    headline: str
    timeline: list[TimelineEntry]
    total: int | None
    note: str | None


class Stopped(_Event):
    kind: Literal["stopped"] = "stopped"
    by: str
    reason: str
    timeline: list[TimelineEntry]


Event = Annotated[
    MonitorStarted
    | StageStarted
    | StageSucceeded
    | StageFailed
    | StageSlow
    | NotPickedUp
    | CommitIgnored
    | StageBlocked
    | StageUnblocked
    | CarriedByLater
    | DecisionTaken
    | RecoveredByRerun
    | ConcourseUnreachable
    | ConcourseBack
    | Deployed
    | PathCompleted
    | Stopped,
    Field(discriminator="kind"),
]
