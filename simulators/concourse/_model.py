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
class Resource:
    id: int
    name: str
    versions: list[Version] = field(default_factory=list)


@dataclass
class Job:
    id: int
    name: str
    next_number: int = 1


@dataclass
class Pipeline:
    id: int
    name: str
    public: bool
    jobs: dict[str, Job]
    resources: dict[str, Resource]


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
