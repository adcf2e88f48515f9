"""The simulator's state and the helpers every concern uses (lock held), and the JSON shapes
of builds and pipelines."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from simulators._http import SimulatorServer
from simulators.concourse._model import (
    Build,
    Input,
    Job,
    JobInput,
    Pause,
    Pipeline,
    Resource,
    Token,
    Version,
    config_inputs,
    finished_build,
    input_step,
    next_build,
)


class ConcourseState(SimulatorServer):
    """A fake Concourse with one team: its pipelines, builds, accounts and scripted faults."""

    def __init__(
        self,
        team: str = "dev",
        users: Mapping[str, str] | None = None,
        public_pipelines: frozenset[str] = frozenset(),
        token_ttl: int = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.team = team
        self._users = dict(users) if users is not None else {"bot": "secret"}
        # Local users' role in the team (`owner`, `member`, `pipeline-operator`, `viewer`).
        self._roles = dict.fromkeys(self._users, "member")
        self._public = set(public_pipelines)
        self.token_ttl = token_ttl
        self.clock = clock
        self.logins = 0  # successful password grants
        self.rerun_requests: list[str] = []  # the path of every rerun POST, whatever its answer
        self.open_streams = 0  # event streams currently being served
        self._changed = threading.Condition(self.lock)
        self._stopping = False
        self._tokens: dict[str, Token] = {}
        self._pipelines: dict[str, Pipeline] = {}
        self._builds: dict[int, Build] = {}
        self._versions: dict[int, tuple[Pipeline, Resource, Version]] = {}
        self._ids: dict[str, int] = {}
        self._fail_next = 0
        self._fail_status = 502
        self._hang_next = 0
        self._hang_seconds = 0.0
        self._late_next = 0
        self._late_seconds = 0.0
        self._configs: dict[str, tuple[int, dict[str, Any]]] = {}  # pipeline → (version, config)

    def stop(self) -> None:
        """Stop serving; waiting event streams end at once."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        super().stop()

    # -- scripting helpers (lock held) ----------------------------------------------------

    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _live_build(self, build_id: int) -> Build:
        build = self._builds[build_id]
        if build.finished:
            raise ValueError(f"build {build_id} already {build.status}")
        return build

    def _emit(self, build: Build, event: str, version: str, data: dict[str, Any]) -> None:
        envelope = {
            "data": data,
            "event": event,
            "version": version,
            "event_id": str(self._next_id("event")),
        }
        build.events.append(envelope)
        self._changed.notify_all()

    def _settle_inputs(self, build: Build, inputs: dict[str, dict[str, str]]) -> None:
        earlier = [
            b
            for b in self._builds.values()
            if b.job is build.job and b.id < build.id and b.inputs is not None
        ]

        def seen_before(name: str, version: dict[str, str]) -> bool:
            return any(
                i.name == name and i.version == version for b in earlier for i in b.inputs or []
            )

        build.inputs = [
            Input(
                name=name,
                version=dict(version),
                first_occurrence=build.rerun_of is None and not seen_before(name, version),
            )
            for name, version in inputs.items()
        ]

    def _input_versions(self, build: Build) -> Iterator[Version]:
        """The versions a build's inputs refer to (input name = resource name here)."""
        for build_input in build.inputs or []:
            resource = build.pipeline.resources.get(build_input.name)
            for version in resource.versions if resource else []:
                if version.version == build_input.version:
                    yield version

    # -- presentation ---------------------------------------------------------------------

    def _build_json(self, build: Build) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": build.id,
            "team_name": self.team,
            "name": build.name,
            "status": build.status,
            "api_url": f"/api/v1/builds/{build.id}",
            "job_name": build.job.name,
            "pipeline_id": build.pipeline.id,
            "pipeline_name": build.pipeline.name,
        }
        optional = {
            "start_time": build.start_time,
            "end_time": build.end_time,
            "reap_time": build.reap_time,
            "rerun_number": build.rerun_number,
            "rerun_of": (
                {"id": build.rerun_of.id, "name": build.rerun_of.name} if build.rerun_of else None
            ),
            "created_by": build.created_by,
        }
        body.update({k: v for k, v in optional.items() if v})  # omitempty: absent, never null
        return body

    def _pipeline_json(self, pipeline: Pipeline) -> dict[str, Any]:
        """`atc.Pipeline`: `paused`, `public` and `archived` are always there (no omitempty),
        `paused_by` and `paused_at` only while paused."""
        body: dict[str, Any] = {
            "id": pipeline.id,
            "name": pipeline.name,
            "paused": pipeline.pause is not None,
            "public": pipeline.public,
            "archived": pipeline.archived,
            "team_name": self.team,
            "last_updated": int(self.clock()),
        }
        body.update(_pause_fields(pipeline.pause))
        return body

    def _config_of(self, pipeline: Pipeline) -> tuple[int, dict[str, Any]]:
        """The pipeline's config version and config (kept when archived: atc keeps a job's
        inputs in `job_inputs`, which archiving does not clear; the config GET refuses)."""
        return self._configs.get(pipeline.name, (1, self._default_config(pipeline)))

    @staticmethod
    def _default_config(pipeline: Pipeline) -> dict[str, Any]:
        """Without `set_config`: the pipeline's jobs (their scripted `get` steps only) and
        untyped resources."""
        return {
            "resources": [{"name": r, "type": "git", "source": {}} for r in pipeline.resources],
            "jobs": [
                {"name": j.name, "plan": [input_step(i) for i in j.inputs]}
                for j in pipeline.jobs.values()
            ],
        }

    def _job_inputs(self, pipeline: Pipeline, job: Job) -> list[JobInput]:
        """The job's inputs: from the config set last, else as scripted by `add_pipeline`."""
        if pipeline.name in self._configs:
            return config_inputs(self._configs[pipeline.name][1], job.name)
        return list(job.inputs)

    def _job_json(self, pipeline: Pipeline, job: Job, *, summary: bool) -> dict[str, Any]:
        """`atc.Job` (`GET …/jobs/:job`) or, with `summary`, `atc.JobSummary` (an entry of
        `GET …/jobs`), as the real server presents them."""
        builds = [b for b in self._builds.values() if b.job is job]
        finished, upcoming = finished_build(builds), next_build(builds)
        body: dict[str, Any] = {
            "id": job.id,
            "name": job.name,
            "team_name": self.team,
            "pipeline_id": pipeline.id,
            "pipeline_name": pipeline.name,
        }
        body.update(_pause_fields(job.pause))
        inputs = self._job_inputs(pipeline, job)
        if summary:
            # BuildSummary objects, omitted when there is none; their times come from
            # `sql.NullTime.Time.Unix()`, so a build that has not started has year 1's epoch.
            for key, build in (("finished_build", finished), ("next_build", upcoming)):
                if build is not None:
                    body[key] = self._build_summary_json(build)
            listed = [_input_json(i, summary=True) for i in inputs]
            if listed:
                body["inputs"] = listed
            return body
        body["next_build"] = self._build_json(upcoming) if upcoming else None
        body["finished_build"] = self._build_json(finished) if finished else None
        body["inputs"] = [_input_json(i, summary=False) for i in inputs]
        body["outputs"] = []
        return body

    def _build_summary_json(self, build: Build) -> dict[str, Any]:
        return {
            "id": build.id,
            "name": build.name,
            "status": build.status,
            "start_time": build.start_time or _GO_ZERO_TIME_UNIX,
            "end_time": build.end_time or _GO_ZERO_TIME_UNIX,
            "team_name": self.team,
            "pipeline_id": build.pipeline.id,
            "pipeline_name": build.pipeline.name,
            "job_name": build.job.name,
        }

    def _resource_json(self, pipeline: Pipeline, resource: Resource) -> dict[str, Any]:
        """`atc.Resource`: the pin fields only while pinned (omitempty)."""
        _, config = self._config_of(pipeline)
        kinds = {
            r.get("name"): r.get("type", "")
            for r in config.get("resources") or []
            if isinstance(r, dict)
        }
        body: dict[str, Any] = {
            "name": resource.name,
            "pipeline_id": pipeline.id,
            "pipeline_name": pipeline.name,
            "team_name": self.team,
            "type": kinds.get(resource.name, "git"),
        }
        if resource.versions:
            body["last_checked"] = int(self.clock())
        if resource.pin is not None:
            body["pinned_version"] = resource.pin.version
            if resource.pin.comment:
                body["pin_comment"] = resource.pin.comment
        return body


# `time.Time{}.Unix()` in Go: what atc's job summaries show for a build that has no start
# or end time yet (the field is omitempty, but this is not zero).
_GO_ZERO_TIME_UNIX = -62135596800


def _pause_fields(pause: Pause | None) -> dict[str, Any]:
    """`paused`, `paused_by`, `paused_at` of a job: omitempty, so absent when not paused."""
    if pause is None:
        return {}
    return {"paused": True, "paused_by": pause.by, "paused_at": pause.at}


def _input_json(job_input: JobInput, *, summary: bool) -> dict[str, Any]:
    """`atc.JobInput` (trigger always there) or `atc.JobInputSummary` (trigger omitempty)."""
    body: dict[str, Any] = {"name": job_input.name, "resource": job_input.resource}
    if job_input.passed:
        body["passed"] = list(job_input.passed)
    if job_input.trigger or not summary:
        body["trigger"] = job_input.trigger
    return body
