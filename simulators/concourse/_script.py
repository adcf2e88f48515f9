"""What a test or the demo does to the simulated Concourse: pipelines, versions, builds and
their events, reruns, log retention."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simulators.concourse._model import (
    TERMINAL_STATUSES,
    Build,
    Input,
    Job,
    JobInput,
    Pipeline,
    Resource,
    Version,
    served_config,
)
from simulators.concourse._state import ConcourseState


class Scripting(ConcourseState):
    """The scripting side: every method is thread-safe and wakes waiting event streams."""

    def add_pipeline(
        self,
        name: str,
        jobs: list[str],
        resources: list[str],
        inputs: Mapping[str, list[JobInput]] | None = None,
    ) -> None:
        """Add a pipeline with these jobs and resources (public if named in `public_pipelines`);
        `inputs` are the jobs' `get` steps (until `set_config` says otherwise)."""
        given = inputs or {}
        with self.lock:
            self._pipelines[name] = Pipeline(
                id=self._next_id("pipeline"),
                name=name,
                public=name in self._public,
                jobs={
                    j: Job(id=self._next_id("job"), name=j, inputs=list(given.get(j, [])))
                    for j in jobs
                },
                resources={r: Resource(id=self._next_id("resource"), name=r) for r in resources},
            )

    def set_config(self, pipeline: str, config: dict[str, Any]) -> int:
        """`fly set-pipeline`: replace the pipeline's config (as JSON: `resources`, `jobs`, …);
        returns the new `X-Concourse-Config-Version`. It is served as atc stores it: a resource
        without `source` comes back with `"source": null`, a job without `plan` with
        `"plan": null`. Jobs and resources used by builds are scripted separately
        (`add_pipeline`), as a config alone does not run anything."""
        with self.lock:
            if pipeline not in self._pipelines:
                raise KeyError(f"no pipeline {pipeline!r}: add_pipeline first")
            version = self._configs.get(pipeline, (0, {}))[0] + 1
            self._configs[pipeline] = (version, served_config(config))
            return version

    def add_version(
        self,
        pipeline: str,
        resource: str,
        version: dict[str, str],
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        """A check found `version`; returns its id. Newer checks list first.

        `metadata` is shown only after some build with this version as input has started,
        as on a real Concourse (the `get` step writes it).
        """
        with self.lock:
            target_pipeline = self._pipelines[pipeline]
            target = target_pipeline.resources[resource]
            order = self._next_id("check_order")
            found = Version(
                id=self._next_id("version"),
                check_order=order,
                version=dict(version),
                metadata=[{"name": k, "value": v} for k, v in (metadata or {}).items()],
            )
            target.versions.append(found)
            self._versions[found.id] = (target_pipeline, target, found)
            return found.id

    def create_build(
        self,
        pipeline: str,
        job: str,
        inputs: dict[str, dict[str, str]] | None = None,
        created_by: str | None = None,
    ) -> int:
        """A new pending build of `job`; returns its (global) id.

        `created_by` is for manual triggers (scheduler builds have none). Without `inputs` the
        build shows `inputs: []` until `set_inputs`.
        """
        with self._changed:
            target_pipeline = self._pipelines[pipeline]
            target_job = target_pipeline.jobs[job]
            build = Build(
                id=self._next_id("build"),
                name=str(target_job.next_number),
                pipeline=target_pipeline,
                job=target_job,
                created_by=created_by,
            )
            target_job.next_number += 1
            self._builds[build.id] = build
            if inputs is not None:
                self._settle_inputs(build, inputs)
            self._changed.notify_all()
            return build.id

    def set_inputs(self, build_id: int, inputs: dict[str, dict[str, str]]) -> None:
        """The scheduler settled the build's inputs (input name → version)."""
        with self._changed:
            self._builds[build_id].resolve_errors.clear()
            self._settle_inputs(self._builds[build_id], inputs)
            self._changed.notify_all()

    def start_build(self, build_id: int, at: float | None = None) -> None:
        """pending → started (`at`: when, for a history of past builds; default now); emits
        the `status` event and lets the inputs' metadata show."""
        with self._changed:
            build = self._builds[build_id]
            if build.status != "pending":
                raise ValueError(f"build {build_id} is {build.status}, not pending")
            if build.job.pause is not None or build.pipeline.pause is not None:
                # Concourse never starts a build of a paused job or pipeline: it stays pending.
                raise ValueError(f"build {build_id}: {build.job.name} or its pipeline is paused")
            now = int(self.clock() if at is None else at)
            build.status = "started"
            build.start_time = now
            for version in self._input_versions(build):
                version.fetched = True
            self._emit(build, "status", "1.0", {"status": "started", "time": now})

    def log(self, build_id: int, text: str, source: str = "stdout") -> None:
        """A chunk of task output (not necessarily whole lines)."""
        with self._changed:
            build = self._live_build(build_id)
            origin = {"id": f"{build.id:08x}", "source": source}
            payload = {"time": int(self.clock()), "origin": origin, "payload": text}
            self._emit(build, "log", "5.1", payload)

    def error(self, build_id: int, message: str) -> None:
        """An `error` event, as an errored step sends before `status: errored`."""
        with self._changed:
            build = self._live_build(build_id)
            payload = {"message": message, "origin": {}, "time": int(self.clock())}
            self._emit(build, "error", "4.1", payload)

    def finish_build(self, build_id: int, status: str, at: float | None = None) -> None:
        """The build ends with `status` (`at`: when; default now); emits the final `status`
        event, then streams end."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"not a terminal status: {status}")
        with self._changed:
            build = self._live_build(build_id)
            now = int(self.clock() if at is None else at)
            build.status = status
            build.end_time = now
            self._emit(build, "status", "1.0", {"status": status, "time": now})

    def rerun(self, build_id: int, created_by: str = "admin") -> int:
        """Rerun a build: `<original>.<n>`, pending, with the original's inputs."""
        with self._changed:
            build = self._builds[build_id]
            original = build.rerun_of or build  # a rerun of a rerun reruns the original
            number = 1 + max(
                (b.rerun_number or 0 for b in self._builds.values() if b.rerun_of is original),
                default=0,
            )
            rerun = Build(
                id=self._next_id("build"),
                name=f"{original.name}.{number}",
                pipeline=original.pipeline,
                job=original.job,
                rerun_of=original,
                rerun_number=number,
                created_by=created_by,
            )
            if original.inputs is not None:
                rerun.inputs = [
                    Input(name=i.name, version=dict(i.version), first_occurrence=False)
                    for i in original.inputs
                ]
            self._builds[rerun.id] = rerun
            self._changed.notify_all()
            return rerun.id

    def reap(self, build_id: int) -> None:
        """Log retention deleted the build's events: its stream now yields only `end`."""
        with self._changed:
            build = self._builds[build_id]
            if not build.finished:
                raise ValueError(f"build {build_id} is still {build.status}")
            build.reap_time = int(self.clock())
            build.events.clear()
            self._changed.notify_all()

    def oldest_build(self, pipeline: str, job: str) -> int | None:
        """The id of the job's first build still on record, if any."""
        with self.lock:
            target = self._pipelines[pipeline].jobs[job]
            ids = [b.id for b in self._builds.values() if b.job is target]
            return min(ids, default=None)

    def get_build(self, build_id: int) -> dict[str, Any]:
        """The JSON `GET /api/v1/builds/<id>` would return."""
        with self.lock:
            return self._build_json(self._builds[build_id])
