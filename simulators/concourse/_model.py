"""What the simulated Concourse holds: pipelines, jobs, resources, versions, builds, tokens;
and the rules for which builds a job shows as finished and next."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

CONCOURSE_VERSION = "7.11.2"
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "errored", "aborted"})
FLY_CLIENT = ("fly", "Zmx5")  # the public client every Concourse hard-codes for fly
DEFAULT_LIMIT = 100  # the API's page size when `limit` is missing or 0


@dataclass
class Token:
    username: str
    expires_at: float
    federated: bool  # issued with the `federated:id` scope, so team roles can match


@dataclass(frozen=True)
class Caller:
    kind: Literal["anonymous", "invalid", "user"]
    username: str = ""
    federated: bool = False


@dataclass
class Version:
    id: int
    check_order: int
    version: dict[str, str]
    metadata: list[dict[str, str]]
    fetched: bool = False  # metadata is only written once a build fetches the version


@dataclass
class Pause:
    """Who paused a job or a pipeline, and when (`paused_by`, `paused_at`)."""

    by: str
    at: int


@dataclass
class Pin:
    """A resource pinned to one of its versions through the API (`resource_pins`)."""

    version: dict[str, str]
    comment: str = ""


@dataclass
class Resource:
    id: int
    name: str
    versions: list[Version] = field(default_factory=list)
    pin: Pin | None = None


@dataclass(frozen=True)
class JobInput:
    """A `get` step of a job's config, as `atc.JobInput` presents it."""

    name: str
    resource: str
    trigger: bool
    passed: tuple[str, ...] = ()


@dataclass
class Job:
    id: int
    name: str
    next_number: int = 1
    pause: Pause | None = None
    max_in_flight_reached: bool = False  # `serial`/`max_in_flight` holds the next build back
    inputs: list[JobInput] = field(default_factory=list)  # its `get` steps (atc's `job_inputs`)


@dataclass
class Pipeline:
    id: int
    name: str
    public: bool
    jobs: dict[str, Job]
    resources: dict[str, Resource]
    pause: Pause | None = None
    archived: bool = False


@dataclass
class Input:
    name: str
    version: dict[str, str]
    first_occurrence: bool


@dataclass
class Build:
    id: int
    name: str
    pipeline: Pipeline
    job: Job
    status: str = "pending"
    start_time: int | None = None
    end_time: int | None = None
    reap_time: int | None = None
    rerun_of: Build | None = None
    rerun_number: int | None = None
    created_by: str | None = None
    inputs: list[Input] | None = None  # None: the scheduler has not settled them yet
    # Why the scheduler cannot settle an input (input name → reason), as `preparation` says.
    resolve_errors: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sort_key(self) -> tuple[int, int]:
        """`COALESCE(rerun_of, id), id`: reruns sort next to their original."""
        return (self.rerun_of.id if self.rerun_of else self.id, self.id)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


def version_json(version: Version, *, show_metadata: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": version.id, "version": version.version, "enabled": True}
    if show_metadata and version.fetched and version.metadata:
        body["metadata"] = version.metadata
    return body


def finished_build(builds: list[Build]) -> Build | None:
    """The latest finished non-rerun build, or the latest finished rerun of that build."""
    originals = [b for b in builds if b.finished and b.rerun_of is None]
    if not originals:
        return None
    latest = max(originals, key=lambda b: b.id)
    reruns = [b for b in builds if b.finished and b.rerun_of is latest]
    return max([latest, *reruns], key=lambda b: b.id)


def next_build(builds: list[Build]) -> Build | None:
    """The oldest running non-rerun build, or a running rerun of the latest build."""
    latest = max((b for b in builds if b.rerun_of is None), key=lambda b: b.id, default=None)
    running = [
        b
        for b in builds
        if not b.finished and (b.rerun_of is None or (latest and b.rerun_of is latest))
    ]
    return min(running, key=lambda b: b.id, default=None)


# Top-level config keys atc marshals with `omitempty`: absent when empty (atc/config.go).
_CONFIG_OMITEMPTY = ("groups", "var_sources", "resources", "resource_types", "jobs", "display")


def served_config(config: dict[str, Any]) -> dict[str, Any]:
    """A pipeline config as `GET …/config` serves it, i.e. as atc's Go structs marshal it.

    A resource's or resource type's `name`, `type` and `source`, and a job's `name` and
    `plan`, have no `omitempty`: a resource set without `source` comes back `"source": null`,
    a job without `plan` `"plan": null`. The top-level lists are left out when empty.
    """
    served: dict[str, Any] = json.loads(json.dumps(config))
    for resource in [*(served.get("resources") or []), *(served.get("resource_types") or [])]:
        if isinstance(resource, dict):
            for key in ("name", "type"):
                resource.setdefault(key, "")
            resource.setdefault("source", None)
    for job in served.get("jobs") or []:
        if isinstance(job, dict):
            job.setdefault("name", "")
            job.setdefault("plan", None)
    return {k: v for k, v in served.items() if v or k not in _CONFIG_OMITEMPTY}


# Step keys holding nested steps (`atc/steps.go`); `in_parallel` is `{"steps": [...]}` or a list.
_NESTED_STEP_LISTS = ("do", "aggregate")
_NESTED_STEPS = ("try", "on_success", "on_failure", "on_error", "on_abort", "ensure")


def _steps(step: Any) -> list[dict[str, Any]]:
    if isinstance(step, list):
        return [s for item in step for s in _steps(item)]
    if not isinstance(step, dict):
        return []
    found = [step]
    for key in _NESTED_STEP_LISTS:
        found += _steps(step.get(key))
    parallel = step.get("in_parallel")
    found += _steps(parallel.get("steps") if isinstance(parallel, dict) else parallel)
    for key in _NESTED_STEPS:
        found += _steps(step.get(key))
    return found


def input_step(job_input: JobInput) -> dict[str, Any]:
    """The `get` step a job input comes from, as a config shows it."""
    step: dict[str, Any] = {"get": job_input.name}
    if job_input.resource != job_input.name:
        step["resource"] = job_input.resource
    if job_input.passed:
        step["passed"] = list(job_input.passed)
    if job_input.trigger:
        step["trigger"] = True
    return step


def config_inputs(config: dict[str, Any], job: str) -> list[JobInput]:
    """The inputs of `job` in a pipeline config: its `get` steps, hooks included (atc's
    `JobConfig.Inputs`), each input name once."""
    jobs = [j for j in config.get("jobs") or [] if isinstance(j, dict) and j.get("name") == job]
    if not jobs:
        return []
    roots = [jobs[0].get(k) for k in ("plan", *_NESTED_STEPS)]
    inputs: dict[str, JobInput] = {}
    for step in _steps(roots):
        name = step.get("get")
        if isinstance(name, str) and name and name not in inputs:
            inputs[name] = JobInput(
                name=name,
                resource=str(step.get("resource") or name),
                trigger=bool(step.get("trigger")),
                passed=tuple(str(p) for p in step.get("passed") or []),
            )
    return list(inputs.values())


# What `/builds/:id/preparation` says of each blocker (`atc.BuildPreparationStatus`).
BLOCKING = "blocking"
NOT_BLOCKING = "not_blocking"
# `atc/db/build_preparation.go`: an input the scheduler did not resolve, and why.
MISSING_BUILD_INPUT = "input is not included in resolved candidates"
NO_VERSIONS_SATISFY_PASSED = "no versions satisfy passed constraints"
# Who `archive` records as having paused the pipeline (`atc/db/pipeline.go`).
ARCHIVER = "automatic-pipeline-archiver"
