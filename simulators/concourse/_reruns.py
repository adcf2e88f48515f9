"""Reruns asked for over the API (`fly rerun-build`), as `atc/api/jobserver/rerun_build.go`
answers them, and what a script needs to play the CI that runs them."""

from __future__ import annotations

import time
from urllib.parse import unquote

from simulators._http import Request, Response
from simulators.concourse._holds import Holds
from simulators.concourse._script import Scripting


class Reruns(Holds, Scripting):
    """`POST …/jobs/:job/builds/:build_name` and `wait_for_rerun`."""

    def _rerun_build(self, request: Request) -> Response:
        """401 without a valid token, 403 without pipeline-operator or above, 404 for an
        unknown pipeline, job or build, 409 on an archived pipeline, 500 when the build's
        inputs were never determined; else the new build (`57.1`), `created_by` the caller."""
        with self._changed:
            self.rerun_requests.append(request.path)
            target = self._write_target(request, reject_archived=True)
            if isinstance(target, Response):
                return target
            job = target.jobs.get(unquote(request.params["job"]))
            if job is None:
                return Response(status=404)
            name = unquote(request.params["name"])
            build = next(
                (b for b in self._builds.values() if b.job is job and b.name == name), None
            )
            if build is None:
                return Response(status=404)
            if (build.rerun_of or build).inputs is None:
                return Response(status=500)  # `AdoptRerunInputsAndPipes` has nothing to adopt
            rerun_id = self.rerun(build.id, created_by=self._caller(request).username)
            return Response.json(self._build_json(self._builds[rerun_id]))

    def wait_for_rerun(self, build_id: int, timeout: float) -> int | None:
        """The id of a rerun of `build_id` (of its original) created after it, once one
        exists, or None after `timeout` seconds: how a script learns that someone reran."""
        deadline = time.monotonic() + timeout
        with self._changed:
            build = self._builds[build_id]
            original = build.rerun_of or build
            while True:
                found = [
                    b.id
                    for b in self._builds.values()
                    if b.rerun_of is original and b.id > build_id
                ]
                if found:
                    return min(found)
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    return None
                self._changed.wait(left)
