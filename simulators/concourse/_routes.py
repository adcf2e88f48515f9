"""The read-only API routes: pipelines, jobs, builds, resource versions, configs."""

from __future__ import annotations

from urllib.parse import unquote

from simulators._http import Request, Response, link_header
from simulators.concourse._auth import Auth
from simulators.concourse._model import version_json
from simulators.concourse._paging import page_params, paginate_builds, paginate_versions


class Routes(Auth):
    """Handlers for the pipeline-, job-, build- and resource-scoped reads."""

    # -- routes: pipelines and jobs -------------------------------------------------------

    def _list_pipelines(self, request: Request) -> Response:
        with self.lock:
            if (error := self._check_anonymous_ok(request)) is not None:
                return error
            if request.params["team"] != self.team:
                return Response.json([])
            member = self._is_member(self._caller(request))
            visible = [p for p in self._pipelines.values() if member or p.public]
            return Response.json([self._pipeline_json(p) for p in visible])

    def _get_job(self, request: Request) -> Response:
        with self.lock:
            found = self._find_job(request)
            if isinstance(found, Response):
                return found
            pipeline, job, _ = found
            return Response.json(self._job_json(pipeline, job, summary=False))

    def _job_builds(self, request: Request) -> Response:
        with self.lock:
            found = self._find_job(request)
            if isinstance(found, Response):
                return found
            _, job, _ = found
            if request.arg("timestamps"):
                return Response.text("timestamps paging is not simulated", 400)
            from_id, to_id, limit = page_params(request)
            if from_id is not None and to_id is not None and from_id > to_id:
                return Response(status=404)  # a DB error that this route reports as not found
            builds = [b for b in self._builds.values() if b.job is job]
            chosen, older, newer = paginate_builds(builds, from_id, to_id, limit)
            base = f"{self.url}{request.path}"
            headers: list[tuple[str, str]] = []
            if older is not None:
                headers.append(link_header(f"{base}?to={older}&limit={limit}", "next"))
            if newer is not None:
                headers.append(link_header(f"{base}?from={newer}&limit={limit}", "previous"))
            return Response.json([self._build_json(b) for b in chosen], headers=headers)

    def _job_build(self, request: Request) -> Response:
        with self.lock:
            found = self._find_job(request)
            if isinstance(found, Response):
                return found
            _, job, _ = found
            builds = [b for b in self._builds.values() if b.job is job]
            name = unquote(request.params["name"])
            if name == "latest":
                build = max(builds, key=lambda b: b.id, default=None)
            else:
                build = next((b for b in builds if b.name == name), None)
            if build is None:
                return Response(status=404)
            return Response.json(self._build_json(build))

    def _get_config(self, request: Request) -> Response:
        """The config route checks membership before anything else: 401 without a valid
        token, 403 for a non-member even on a public pipeline or an unknown team, and only
        then 404 for an unknown pipeline."""
        with self.lock:
            caller = self._caller(request)
            if caller.kind != "user":
                return Response.text("not authorized", 401)
            if unquote(request.params["team"]) != self.team or not self._is_member(caller):
                return Response.text("forbidden", 403)
            pipeline = self._pipelines.get(unquote(request.params["pipeline"]))
            if pipeline is None or pipeline.archived:
                return Response(status=404)  # archiving clears the config
            version, config = self._config_of(pipeline)
            return Response.json(
                {"config": config}, headers=[("X-Concourse-Config-Version", str(version))]
            )

    # -- routes: builds -------------------------------------------------------------------

    def _get_build(self, request: Request) -> Response:
        with self.lock:
            build = self._find_build(request)
            if isinstance(build, Response):
                return build
            error, _ = self._check_read(request, build.pipeline.public)
            return error or Response.json(self._build_json(build))

    def _build_resources(self, request: Request) -> Response:
        with self.lock:
            build = self._find_build(request)
            if isinstance(build, Response):
                return build
            error, _ = self._check_read(request, build.pipeline.public)
            if error is not None:
                return error
            inputs = [
                {
                    "name": i.name,
                    "version": i.version,
                    "pipeline_id": build.pipeline.id,
                    "first_occurrence": i.first_occurrence,
                }
                for i in build.inputs or []
            ]
            return Response.json({"inputs": inputs, "outputs": []})

    # -- routes: resources ----------------------------------------------------------------

    def _list_versions(self, request: Request) -> Response:
        with self.lock:
            found = self._find_resource(request)
            if isinstance(found, Response):
                return found
            _, resource, member = found
            wanted: dict[str, str] = {}
            for item in request.query.get("filter", []):
                key, sep, value = item.partition(":")
                if not sep:
                    return Response.text(f"invalid filter {item!r}", 400)
                wanted[key] = value
            from_id, to_id, limit = page_params(request)
            chosen, older, newer = paginate_versions(
                resource.versions, wanted, from_id, to_id, limit
            )
            base = f"{self.url}{request.path}"
            headers: list[tuple[str, str]] = []
            if older is not None:
                headers.append(link_header(f"{base}?to={older}&limit={limit}", "next"))
            if newer is not None:
                headers.append(link_header(f"{base}?from={newer}&limit={limit}", "previous"))
            body = [version_json(v, show_metadata=member) for v in chosen]
            return Response.json(body, headers=headers)

    def _input_to(self, request: Request) -> Response:
        with self.lock:
            found = self._find_resource(request)
            if isinstance(found, Response):
                return found
            pipeline, resource, _ = found
            try:
                version_id = int(request.params["vid"])
            except ValueError:
                return Response.text("malformed version id", 400)
            version = next((v for v in resource.versions if v.id == version_id), None)
            users = [
                b
                for b in self._builds.values()
                if b.pipeline is pipeline
                and version is not None
                and any(version is v for v in self._input_versions(b))
            ]
            users.sort(key=lambda b: b.id, reverse=True)
            return Response.json([self._build_json(b) for b in users])
