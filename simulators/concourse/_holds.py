"""What holds builds back: paused jobs and pipelines, archived pipelines, pinned resource
versions, a job at its `max_in_flight`, inputs the scheduler cannot resolve; and the reads that
show them (`paused*` on the pipeline and its jobs, the pin on the resource, a pending build's
`preparation`).

As atc does (`atc/api/jobserver/pause_job.go`, `pipelineserver/{pause,unpause,archive}.go`,
`resourceserver/{unpin,set_pin_comment}.go`, `versionserver/pin_version.go`,
`atc/db/build.go` `Preparation`): a pause records the caller's display id and the time;
archiving pauses the pipeline as `automatic-pipeline-archiver` and makes the config GET 404;
writes on an archived pipeline (pause, unpause, pin, unpin, pin comment) answer 409, but pausing
a job does not (it is not behind the archived wrapper). Writes need a role in the team (401
without a valid token, 403 without a role).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from simulators._http import Request, Response
from simulators.concourse._auth import Auth
from simulators.concourse._model import (
    ARCHIVER,
    BLOCKING,
    MISSING_BUILD_INPUT,
    NOT_BLOCKING,
    Job,
    Pause,
    Pin,
    Pipeline,
    Resource,
)

_ARCHIVED = "action not allowed for an archived pipeline"


class Holds(Auth):
    """Scripting and routes for pauses, archives, pins and build preparation."""

    # -- scripting ----------------------------------------------------------------------------

    def pause_job(self, pipeline: str, job: str, by: str = "admin") -> None:
        """`fly pause-job`: new builds of the job stay pending."""
        with self._changed:
            target = self._pipelines[pipeline].jobs[job]
            if target.pause is None:
                target.pause = Pause(by=by, at=int(self.clock()))
            self._changed.notify_all()

    def unpause_job(self, pipeline: str, job: str) -> None:
        with self._changed:
            self._pipelines[pipeline].jobs[job].pause = None
            self._changed.notify_all()

    def pause_pipeline(self, pipeline: str, by: str = "admin") -> None:
        """`fly pause-pipeline`: no job of it starts a build."""
        with self._changed:
            target = self._pipelines[pipeline]
            if target.archived:
                raise ValueError(f"{pipeline} is archived")
            if target.pause is None:
                target.pause = Pause(by=by, at=int(self.clock()))
            self._changed.notify_all()

    def unpause_pipeline(self, pipeline: str) -> None:
        with self._changed:
            target = self._pipelines[pipeline]
            if target.archived:
                raise ValueError(f"{pipeline} is archived")
            target.pause = None
            self._changed.notify_all()

    def archive_pipeline(self, pipeline: str) -> None:
        """`fly archive-pipeline`: paused for good, its config gone."""
        with self._changed:
            self._archive(self._pipelines[pipeline])

    def pin_version(self, pipeline: str, resource: str, version_id: int, comment: str = "") -> None:
        """Pin `resource` to one of its versions (the UI's pin button, then its comment)."""
        with self._changed:
            target = self._pipelines[pipeline].resources[resource]
            version = next(v for v in target.versions if v.id == version_id)
            target.pin = Pin(version=dict(version.version), comment=comment)
            self._changed.notify_all()

    def unpin(self, pipeline: str, resource: str) -> None:
        with self._changed:
            self._pipelines[pipeline].resources[resource].pin = None
            self._changed.notify_all()

    def set_max_in_flight_reached(self, pipeline: str, job: str, reached: bool = True) -> None:
        """The job runs as many builds as `serial`/`max_in_flight` allows: the next waits."""
        with self._changed:
            self._pipelines[pipeline].jobs[job].max_in_flight_reached = reached
            self._changed.notify_all()

    def set_resolve_error(self, build_id: int, input_name: str, reason: str) -> None:
        """The scheduler cannot resolve one input of a pending build (e.g. "no versions
        satisfy passed constraints"); `set_inputs` settles them."""
        with self._changed:
            self._builds[build_id].resolve_errors[input_name] = reason
            self._changed.notify_all()

    def runnable(self, pipeline: str, job: str, inputs: Sequence[str] = ()) -> bool:
        """Whether Concourse would start a build of `job` now: neither it nor its pipeline is
        paused (archived pipelines are), and none of `inputs` (resource names) is pinned."""
        with self.lock:
            target = self._pipelines[pipeline]
            pinned = any(
                target.resources[r].pin is not None for r in inputs if r in target.resources
            )
            return target.pause is None and target.jobs[job].pause is None and not pinned

    def wait_until_runnable(
        self, pipeline: str, job: str, inputs: Sequence[str] = (), timeout: float = 60.0
    ) -> bool:
        """Block until `runnable` (the scheduler starting the build once unpaused or unpinned);
        False after `timeout`."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._stopping or self.runnable(pipeline, job, inputs), timeout=timeout
            )

    def _archive(self, pipeline: Pipeline) -> None:
        pipeline.archived = True
        pipeline.pause = Pause(by=ARCHIVER, at=int(self.clock()))
        self._changed.notify_all()

    # -- routes: reads ------------------------------------------------------------------------

    def _get_pipeline(self, request: Request) -> Response:
        with self.lock:
            found = self._read_pipeline(request)
            if isinstance(found, Response):
                return found
            return Response.json(self._pipeline_json(found[0]))

    def _list_jobs(self, request: Request) -> Response:
        """`GET …/jobs`: the pipeline's dashboard, job summaries by job id."""
        with self.lock:
            found = self._read_pipeline(request)
            if isinstance(found, Response):
                return found
            pipeline = found[0]
            jobs = sorted(pipeline.jobs.values(), key=lambda j: j.id)
            return Response.json([self._job_json(pipeline, j, summary=True) for j in jobs])

    def _list_resources(self, request: Request) -> Response:
        with self.lock:
            found = self._read_pipeline(request)
            if isinstance(found, Response):
                return found
            pipeline = found[0]
            resources = sorted(pipeline.resources.values(), key=lambda r: r.id)
            return Response.json([self._resource_json(pipeline, r) for r in resources])

    def _get_resource(self, request: Request) -> Response:
        with self.lock:
            found = self._find_resource(request)
            if isinstance(found, Response):
                return found
            pipeline, resource, _ = found
            return Response.json(self._resource_json(pipeline, resource))

    def _build_preparation(self, request: Request) -> Response:
        """Why a pending build has not started; a build that is not pending blocks on
        nothing (`atc/db/build.go` `Preparation`)."""
        with self.lock:
            build = self._find_build(request)
            if isinstance(build, Response):
                return build
            # Like events, preparation needs the job to be public too; simulated jobs never are.
            error, _ = self._check_read(request, public=False)
            if error is not None:
                return error
            body: dict[str, Any] = {
                "build_id": build.id,
                "paused_pipeline": NOT_BLOCKING,
                "paused_job": NOT_BLOCKING,
                "max_running_builds": NOT_BLOCKING,
                "inputs": {},
                "inputs_satisfied": NOT_BLOCKING,
                "missing_input_reasons": {},
            }
            if build.status != "pending":
                return Response.json(body)
            pipeline, job = build.pipeline, build.job
            body["paused_pipeline"] = _blocking(pipeline.pause is not None)
            body["paused_job"] = _blocking(job.pause is not None)
            body["max_running_builds"] = _blocking(job.max_in_flight_reached)
            inputs, reasons = self._input_statuses(pipeline, job, build.id)
            body["inputs"] = inputs
            body["missing_input_reasons"] = reasons
            body["inputs_satisfied"] = _blocking(bool(reasons))
            return Response.json(body)

    def _input_statuses(
        self, pipeline: Pipeline, job: Job, build_id: int
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Each config input's status and the reasons of the blocking ones: a resolve error
        blocks its input; when nothing failed to resolve, an input the build does not have
        yet is "not included in resolved candidates"."""
        build = self._builds[build_id]
        settled = {i.name for i in build.inputs or []}
        resolved = not build.resolve_errors
        statuses: dict[str, str] = {}
        reasons: dict[str, str] = {}
        for job_input in self._job_inputs(pipeline, job):
            name = job_input.name
            if name in build.resolve_errors:
                statuses[name], reasons[name] = BLOCKING, build.resolve_errors[name]
            elif name in settled:
                statuses[name] = NOT_BLOCKING
            elif resolved:
                statuses[name], reasons[name] = BLOCKING, MISSING_BUILD_INPUT
        return statuses, reasons

    # -- routes: writes -----------------------------------------------------------------------

    def _write_target(self, request: Request, *, reject_archived: bool) -> Pipeline | Response:
        """The pipeline a write acts on, or its refusal: 401 without a valid token, 403
        without a role that may act (a viewer may not: pipeline-operator or above), 404 for an
        unknown pipeline, 409 when archived (for the writes behind atc's archived wrapper)."""
        caller = self._caller(request)
        if caller.kind != "user":
            return Response.text("not authorized", 401)
        if unquote(request.params["team"]) != self.team or not self._may_operate(caller):
            return Response.text("forbidden", 403)
        pipeline = self._pipelines.get(unquote(request.params["pipeline"]))
        if pipeline is None:
            return Response(status=404)
        if reject_archived and pipeline.archived:
            return Response.text(_ARCHIVED + "\n", 409)
        return pipeline

    def _put_job_pause(self, request: Request) -> Response:
        with self._changed:
            target = self._write_target(request, reject_archived=False)
            if isinstance(target, Response):
                return target
            job = target.jobs.get(unquote(request.params["job"]))
            if job is None:
                return Response(status=404)
            if request.path.endswith("/unpause"):
                job.pause = None
            elif job.pause is None:
                job.pause = Pause(by=self._caller(request).username, at=int(self.clock()))
            self._changed.notify_all()
            return Response(status=200)

    def _put_pipeline_state(self, request: Request) -> Response:
        action = request.path.rsplit("/", 1)[-1]
        with self._changed:
            target = self._write_target(request, reject_archived=action != "archive")
            if isinstance(target, Response):
                return target
            if action == "archive":
                self._archive(target)
            elif action == "unpause":
                target.pause = None
            elif target.pause is None:
                target.pause = Pause(by=self._caller(request).username, at=int(self.clock()))
            self._changed.notify_all()
            return Response(status=200)

    def _pin_target(self, request: Request) -> Resource | Response:
        """The resource a pin write acts on, or the refusal of `_write_target`, or 404."""
        target = self._write_target(request, reject_archived=True)
        if isinstance(target, Response):
            return target
        resource = target.resources.get(unquote(request.params["resource"]))
        return Response(status=404) if resource is None else resource

    def _put_pin(self, request: Request) -> Response:
        with self._changed:
            resource = self._pin_target(request)
            if isinstance(resource, Response):
                return resource
            try:
                version_id = int(request.params["vid"])
            except ValueError:
                return Response(status=400)
            version = next((v for v in resource.versions if v.id == version_id), None)
            if version is None:
                return Response(status=404)
            comment = resource.pin.comment if resource.pin is not None else ""
            resource.pin = Pin(version=dict(version.version), comment=comment)
            self._changed.notify_all()
            return Response(status=200)

    def _put_unpin(self, request: Request) -> Response:
        with self._changed:
            resource = self._pin_target(request)
            if isinstance(resource, Response):
                return resource
            if resource.pin is None:
                return Response(status=500)  # `NonOneRowAffectedError`: nothing was pinned
            resource.pin = None
            self._changed.notify_all()
            return Response(status=200)

    def _put_pin_comment(self, request: Request) -> Response:
        with self._changed:
            resource = self._pin_target(request)
            if isinstance(resource, Response):
                return resource
            try:
                body = request.json()
                comment = body.get("pin_comment", "") if isinstance(body, dict) else None
            except ValueError:
                comment = None
            if not isinstance(comment, str):
                return Response(status=400)
            if resource.pin is not None:  # an UPDATE of the pin row: no pin, nothing changes
                resource.pin.comment = comment
            return Response(status=200)


def _blocking(blocks: bool) -> str:
    return BLOCKING if blocks else NOT_BLOCKING
