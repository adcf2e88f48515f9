"""The Concourse simulator: the concerns put together, the routes, and the scripted faults
every response passes through."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from simulators._http import Request, Response
from simulators.concourse._events import EventStreams
from simulators.concourse._holds import Holds
from simulators.concourse._model import CONCOURSE_VERSION
from simulators.concourse._reruns import Reruns
from simulators.concourse._routes import Routes
from simulators.concourse._script import Scripting

_NAME = r"[^/]+"
_PIPELINE_PATH = rf"/api/v1/teams/(?P<team>{_NAME})/pipelines/(?P<pipeline>{_NAME})"


class ConcourseSimulator(Routes, EventStreams, Reruns, Holds, Scripting):
    """A fake Concourse with one team; see the package docstring."""

    def __init__(
        self,
        team: str = "dev",
        users: Mapping[str, str] | None = None,
        public_pipelines: frozenset[str] = frozenset(),
        token_ttl: int = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            team=team,
            users=users,
            public_pipelines=public_pipelines,
            token_ttl=token_ttl,
            clock=clock,
        )
        self._register_routes()

    def _register_routes(self) -> None:
        job = rf"{_PIPELINE_PATH}/jobs/(?P<job>{_NAME})"
        resource = rf"{_PIPELINE_PATH}/resources/(?P<resource>{_NAME})"
        self.route("POST", "/sky/issuer/token", self._token)
        self.route("GET", "/api/v1/info", self._info)
        self.route("GET", "/api/v1/user", self._user)
        self.route("GET", rf"/api/v1/teams/(?P<team>{_NAME})/pipelines", self._list_pipelines)
        self.route("GET", job, self._get_job)
        self.route("GET", rf"{job}/builds", self._job_builds)
        self.route("GET", rf"{job}/builds/(?P<name>{_NAME})", self._job_build)
        self.route("POST", rf"{job}/builds/(?P<name>{_NAME})", self._rerun_build)
        self.route("GET", r"/api/v1/builds/(?P<id>[^/]+)", self._get_build)
        self.route("GET", r"/api/v1/builds/(?P<id>[^/]+)/resources", self._build_resources)
        self.route("GET", r"/api/v1/builds/(?P<id>[^/]+)/events", self._build_events)
        self.route("GET", rf"{resource}/versions", self._list_versions)
        self.route("GET", rf"{resource}/versions/(?P<vid>[^/]+)/input_to", self._input_to)
        self.route("GET", rf"{_PIPELINE_PATH}/config", self._get_config)
        # What holds builds back (`_holds`): pauses, archives, pins, preparation.
        self.route("GET", _PIPELINE_PATH, self._get_pipeline)
        self.route("GET", rf"{_PIPELINE_PATH}/jobs", self._list_jobs)
        self.route("GET", rf"{_PIPELINE_PATH}/resources", self._list_resources)
        self.route("GET", resource, self._get_resource)
        self.route("GET", r"/api/v1/builds/(?P<id>[^/]+)/preparation", self._build_preparation)
        self.route("PUT", rf"{job}/(?:pause|unpause)", self._put_job_pause)
        self.route("PUT", rf"{_PIPELINE_PATH}/(?:pause|unpause|archive)", self._put_pipeline_state)
        self.route("PUT", rf"{resource}/versions/(?P<vid>[^/]+)/pin", self._put_pin)
        self.route("PUT", rf"{resource}/unpin", self._put_unpin)
        self.route("PUT", rf"{resource}/pin_comment", self._put_pin_comment)

    def fail_next(self, n: int, status: int = 502) -> None:
        """The next `n` requests to `/api/` answer `status` (an outage or a bad proxy)."""
        with self.lock:
            self._fail_next = n
            self._fail_status = status

    def hang_next(self, n: int, seconds: float) -> None:
        """The next `n` requests to `/api/` get no answer for `seconds` (an overloaded web
        node: longer than the client's timeout, they time out), then a 504. Checked before
        `fail_next`, so a hang can be armed while an outage is still on."""
        with self.lock:
            self._hang_next = n
            self._hang_seconds = seconds

    def answer_late_next(self, n: int, seconds: float) -> None:
        """The next `n` requests to `/api/` are carried out, then answered only after
        `seconds` (a web node that did the work, then stalled: longer than the client's
        timeout, the client never learns what was done)."""
        with self.lock:
            self._late_next = n
            self._late_seconds = seconds

    # -- every response -------------------------------------------------------------------

    def _respond(self, request: Request) -> Response:
        with self.lock:
            hanging = self._hang_next > 0 and request.path.startswith("/api/")
            failing = not hanging and self._fail_next > 0 and request.path.startswith("/api/")
            late = (
                not hanging
                and not failing
                and self._late_next > 0
                and request.path.startswith("/api/")
            )
            if late:
                self._late_next -= 1
            if hanging:
                self._hang_next -= 1
            if failing:
                self._fail_next -= 1
            status, hang = self._fail_status, self._hang_seconds
        if hanging:
            with self._changed:  # a stop() ends the wait early
                self._changed.wait_for(lambda: self._stopping, timeout=hang)
            response = Response.text("simulated gateway timeout", 504)
        elif failing:
            response = Response.text(f"simulated outage ({status})", status)
        else:
            response = super()._respond(request)
            if late:
                with self._changed:
                    self._changed.wait_for(lambda: self._stopping, timeout=self._late_seconds)
        response.headers.append(("X-Concourse-Version", CONCOURSE_VERSION))
        has_cache_control = any(k.lower() == "cache-control" for k, _ in response.headers)
        if request.path.startswith("/api/") and not has_cache_control:
            response.headers.append(("Cache-Control", "no-store, private"))
        return response
