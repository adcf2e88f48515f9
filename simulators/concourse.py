"""A scriptable, in-process fake of the Concourse API (7.11), for tests and the demo.

It mimics what a commit-following bot sees of a real Concourse (see
/work/shared/reference/concourse-api.md): the Dex password grant at `/sky/issuer/token` with
opaque access tokens, 401/403/404 in the order the real wrappers produce them, build listings
sorted `COALESCE(rerun_of, id) DESC, id DESC` with the real `from`/`to`/`limit` and `Link`
behaviour, omitempty fields left out, `filter=` containment on versions, `input_to`, and build
event streams that replay history, go live, end with `end` and then stay open until the client
hangs up.

A test or the demo drives it from its own thread (`create_build`, `start_build`, `log`,
`finish_build`, `rerun`, …) while clients poll it over HTTP. Every scripting method is
thread-safe; build event streams wake up as soon as the script adds an event.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import unquote

from simulators._http import Request, Response, SimulatorServer, link_header

_T = TypeVar("_T")

CONCOURSE_VERSION = "7.11.2"
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "errored", "aborted"})
FLY_CLIENT = ("fly", "Zmx5")  # the public client every Concourse hard-codes for fly
DEFAULT_LIMIT = 100  # the API's page size when `limit` is missing or 0
# After `end` the real server waits for the client to hang up; cap it so threads don't leak.
STREAM_LINGER_SECONDS = 30.0
_WAKE_SECONDS = 0.05  # how often a waiting stream checks whether its client has gone

_NAME = r"[^/]+"
_PIPELINE_PATH = rf"/api/v1/teams/(?P<team>{_NAME})/pipelines/(?P<pipeline>{_NAME})"


@dataclass
class _Token:
    username: str
    expires_at: float
    federated: bool  # issued with the `federated:id` scope, so team roles can match


@dataclass(frozen=True)
class _Caller:
    kind: Literal["anonymous", "invalid", "user"]
    username: str = ""
    federated: bool = False


@dataclass
class _Version:
    id: int
    check_order: int
    version: dict[str, str]
    metadata: list[dict[str, str]]
    fetched: bool = False  # metadata is only written once a build fetches the version


@dataclass
class _Resource:
    id: int
    name: str
    versions: list[_Version] = field(default_factory=list)


@dataclass
class _Job:
    id: int
    name: str
    next_number: int = 1


@dataclass
class _Pipeline:
    id: int
    name: str
    public: bool
    jobs: dict[str, _Job]
    resources: dict[str, _Resource]


@dataclass
class _Input:
    name: str
    version: dict[str, str]
    first_occurrence: bool


@dataclass
class _Build:
    id: int
    name: str
    pipeline: _Pipeline
    job: _Job
    status: str = "pending"
    start_time: int | None = None
    end_time: int | None = None
    reap_time: int | None = None
    rerun_of: _Build | None = None
    rerun_number: int | None = None
    created_by: str | None = None
    inputs: list[_Input] | None = None  # None: the scheduler has not settled them yet
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sort_key(self) -> tuple[int, int]:
        """`COALESCE(rerun_of, id), id`: reruns sort next to their original."""
        return (self.rerun_of.id if self.rerun_of else self.id, self.id)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


class ConcourseSimulator(SimulatorServer):
    """A fake Concourse with one team; see the module docstring."""

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
        self._members = set(self._users)  # local users with a role in the team
        self._public = set(public_pipelines)
        self.token_ttl = token_ttl
        self.clock = clock
        self.logins = 0  # successful password grants
        self.open_streams = 0  # event streams currently being served
        self._changed = threading.Condition(self.lock)
        self._stopping = False
        self._tokens: dict[str, _Token] = {}
        self._pipelines: dict[str, _Pipeline] = {}
        self._builds: dict[int, _Build] = {}
        self._versions: dict[int, tuple[_Pipeline, _Resource, _Version]] = {}
        self._ids: dict[str, int] = {}
        self._fail_next = 0
        self._fail_status = 502
        self._hang_next = 0
        self._hang_seconds = 0.0
        self._configs: dict[str, tuple[int, dict[str, Any]]] = {}  # pipeline → (version, config)
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
        self.route("GET", r"/api/v1/builds/(?P<id>[^/]+)", self._get_build)
        self.route("GET", r"/api/v1/builds/(?P<id>[^/]+)/resources", self._build_resources)
        self.route("GET", r"/api/v1/builds/(?P<id>[^/]+)/events", self._build_events)
        self.route("GET", rf"{resource}/versions", self._list_versions)
        self.route("GET", rf"{resource}/versions/(?P<vid>[^/]+)/input_to", self._input_to)
        self.route("GET", rf"{_PIPELINE_PATH}/config", self._get_config)

    def stop(self) -> None:
        """Stop serving; waiting event streams end at once."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        super().stop()

    # -- scripting ------------------------------------------------------------------------

    def add_pipeline(self, name: str, jobs: list[str], resources: list[str]) -> None:
        """Add a pipeline with these jobs and resources (public if named in `public_pipelines`)."""
        with self.lock:
            self._pipelines[name] = _Pipeline(
                id=self._next_id("pipeline"),
                name=name,
                public=name in self._public,
                jobs={j: _Job(id=self._next_id("job"), name=j) for j in jobs},
                resources={r: _Resource(id=self._next_id("resource"), name=r) for r in resources},
            )

    def set_config(self, pipeline: str, config: dict[str, Any]) -> int:
        """`fly set-pipeline`: replace the pipeline's config (as JSON: `resources`, `jobs`, …);
        returns the new `X-Concourse-Config-Version`. Jobs and resources used by builds are
        scripted separately (`add_pipeline`), as a config alone does not run anything."""
        with self.lock:
            if pipeline not in self._pipelines:
                raise KeyError(f"no pipeline {pipeline!r}: add_pipeline first")
            version = self._configs.get(pipeline, (0, {}))[0] + 1
            self._configs[pipeline] = (version, json.loads(json.dumps(config)))
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
            found = _Version(
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
            build = _Build(
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
            self._settle_inputs(self._builds[build_id], inputs)
            self._changed.notify_all()

    def start_build(self, build_id: int) -> None:
        """pending → started; emits the `status` event and lets the inputs' metadata show."""
        with self._changed:
            build = self._builds[build_id]
            if build.status != "pending":
                raise ValueError(f"build {build_id} is {build.status}, not pending")
            now = int(self.clock())
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

    def finish_build(self, build_id: int, status: str) -> None:
        """The build ends with `status`; emits the final `status` event, then streams end."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"not a terminal status: {status}")
        with self._changed:
            build = self._live_build(build_id)
            now = int(self.clock())
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
            rerun = _Build(
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
                    _Input(name=i.name, version=dict(i.version), first_occurrence=False)
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

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (401), as after `--auth-duration`."""
        with self.lock:
            self._tokens.clear()

    def remove_user_from_team(self, username: str) -> None:
        """The user keeps a valid token but loses their role in the team (403)."""
        with self.lock:
            self._members.discard(username)

    def add_user_to_team(self, username: str) -> None:
        """Give the user a role in the team again; roles are re-read on every request."""
        with self.lock:
            self._members.add(username)

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

    def password(self, username: str) -> str:
        """A local user's password (to give deploy-monitor the account it logs in with)."""
        with self.lock:
            return self._users[username]

    def set_password(self, username: str, password: str) -> None:
        """Change a local user's password (tokens already issued keep working until they
        expire, as in Concourse)."""
        with self.lock:
            self._users[username] = password

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

    # -- scripting helpers (lock held) ----------------------------------------------------

    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _live_build(self, build_id: int) -> _Build:
        build = self._builds[build_id]
        if build.finished:
            raise ValueError(f"build {build_id} already {build.status}")
        return build

    def _emit(self, build: _Build, event: str, version: str, data: dict[str, Any]) -> None:
        envelope = {
            "data": data,
            "event": event,
            "version": version,
            "event_id": str(self._next_id("event")),
        }
        build.events.append(envelope)
        self._changed.notify_all()

    def _settle_inputs(self, build: _Build, inputs: dict[str, dict[str, str]]) -> None:
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
            _Input(
                name=name,
                version=dict(version),
                first_occurrence=build.rerun_of is None and not seen_before(name, version),
            )
            for name, version in inputs.items()
        ]

    def _input_versions(self, build: _Build) -> Iterator[_Version]:
        """The versions a build's inputs refer to (input name = resource name here)."""
        for build_input in build.inputs or []:
            resource = build.pipeline.resources.get(build_input.name)
            for version in resource.versions if resource else []:
                if version.version == build_input.version:
                    yield version

    # -- auth -----------------------------------------------------------------------------

    def _caller(self, request: Request) -> _Caller:
        header = request.header("authorization")
        if not header:
            return _Caller("anonymous")
        scheme, _, value = header.partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or self.clock() >= token.expires_at:
            return _Caller("invalid")
        return _Caller("user", token.username, token.federated)

    def _is_member(self, caller: _Caller) -> bool:
        return caller.kind == "user" and caller.federated and caller.username in self._members

    def _check_read(self, request: Request, public: bool) -> tuple[Response | None, bool]:
        """(error response or None, caller is a team member) for a team-scoped read.

        Anything visible publicly is served as the anonymous view even with a bad token.
        """
        caller = self._caller(request)
        if self._is_member(caller):
            return None, True
        if public:
            return None, False
        if caller.kind == "user":
            return Response.text("forbidden", 403), False
        return Response.text("not authorized", 401), False

    def _check_anonymous_ok(self, request: Request) -> Response | None:
        """Endpoints open to everyone still reject a token that is present but invalid."""
        if self._caller(request).kind == "invalid":
            return Response.text("not authorized", 401)
        return None

    # -- routes: auth ---------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        form = request.form()
        client = _basic_credentials(request.header("authorization")) or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        if client != FLY_CLIENT:
            return _oauth_error("invalid_client", "Invalid client credentials.", 401)
        if form.get("grant_type") != "password":
            return _oauth_error("unsupported_grant_type", "", 400)
        scopes = form.get("scope", "").split()
        if "openid" not in scopes:
            return _oauth_error("invalid_request", 'Missing required scope(s) ["openid"].', 400)
        username, password = form.get("username", ""), form.get("password", "")
        with self.lock:
            if self._users.get(username) != password or not password:
                return _oauth_error("access_denied", "Invalid username or password", 401)
            expires_at = self.clock() + self.token_ttl
            # Concourse's opaque token: 20 random bytes + 8-byte little-endian expiry, base64.
            raw = os.urandom(20) + struct.pack("<q", int(expires_at))
            access_token = base64.b64encode(raw).decode().rstrip("=")
            self._tokens[access_token] = _Token(username, expires_at, "federated:id" in scopes)
            self.logins += 1
        body = {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": int(expires_at - self.clock()),
            "id_token": _fake_jwt(username, int(expires_at)),
        }
        response = Response.json(body)
        response.headers.append(("Cache-Control", "no-store"))
        return response

    def _info(self, request: Request) -> Response:
        with self.lock:
            if (error := self._check_anonymous_ok(request)) is not None:
                return error
        return Response.json(
            {
                "version": CONCOURSE_VERSION,
                "worker_version": "2.5",
                "external_url": self.url,
                "cluster_name": "simulator",
                "feature_flags": {"build_rerun": False, "resource_causality": False},
            }
        )

    def _user(self, request: Request) -> Response:
        with self.lock:
            caller = self._caller(request)
            if caller.kind != "user":
                return Response.text("not authorized", 401)
            teams = {self.team: ["member"]} if self._is_member(caller) else {}
        name = caller.username
        return Response.json(
            {
                "sub": base64.b64encode(f"local:{name}".encode()).decode(),
                "name": name,
                "user_id": name,
                "user_name": name,
                "email": name,
                "is_admin": False,
                "is_system": False,
                "teams": teams,
                "connector": "local",
                "display_user_id": name,
            }
        )

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
            builds = [b for b in self._builds.values() if b.job is job]
            finished, upcoming = _finished_build(builds), _next_build(builds)
            return Response.json(
                {
                    "id": job.id,
                    "name": job.name,
                    "team_name": self.team,
                    "pipeline_id": pipeline.id,
                    "pipeline_name": pipeline.name,
                    "next_build": self._build_json(upcoming) if upcoming else None,
                    "finished_build": self._build_json(finished) if finished else None,
                    "inputs": [],
                    "outputs": [],
                }
            )

    def _job_builds(self, request: Request) -> Response:
        with self.lock:
            found = self._find_job(request)
            if isinstance(found, Response):
                return found
            _, job, _ = found
            if request.arg("timestamps"):
                return Response.text("timestamps paging is not simulated", 400)
            from_id, to_id, limit = _page_params(request)
            if from_id is not None and to_id is not None and from_id > to_id:
                return Response(status=404)  # a DB error that this route reports as not found
            builds = [b for b in self._builds.values() if b.job is job]
            chosen, older, newer = _paginate_builds(builds, from_id, to_id, limit)
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

    def _find_job(self, request: Request) -> tuple[_Pipeline, _Job, bool] | Response:
        """(pipeline, job, caller is a member), or the 404/401/403 to answer."""
        return self._find_in_pipeline(request, "job", lambda pipeline: pipeline.jobs)

    def _find_in_pipeline(
        self, request: Request, param: str, table: Callable[[_Pipeline], Mapping[str, _T]]
    ) -> tuple[_Pipeline, _T, bool] | Response:
        """The pipeline, the thing its `table` holds under the URL's `param`, and whether the
        caller is a member; or the 404/401/403 to answer."""
        found = self._read_pipeline(request)
        if isinstance(found, Response):
            return found
        pipeline, member = found
        item = table(pipeline).get(unquote(request.params[param]))
        return (pipeline, item, member) if item is not None else Response(status=404)

    def _read_pipeline(self, request: Request) -> tuple[_Pipeline, bool] | Response:
        """The pipeline of a pipeline-scoped read and whether the caller is a team member.

        As the real wrappers do: an unknown team or pipeline is a 404 before any auth check;
        the job, resource or build named after it is looked up only once access is granted.
        """
        if unquote(request.params["team"]) != self.team:
            return Response(status=404)
        pipeline = self._pipelines.get(unquote(request.params["pipeline"]))
        if pipeline is None:
            return Response(status=404)
        error, member = self._check_read(request, pipeline.public)
        return error if error is not None else (pipeline, member)

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
            if pipeline is None:
                return Response(status=404)
            version, config = self._configs.get(pipeline.name, (1, self._default_config(pipeline)))
            return Response.json(
                {"config": config}, headers=[("X-Concourse-Config-Version", str(version))]
            )

    @staticmethod
    def _default_config(pipeline: _Pipeline) -> dict[str, Any]:
        """Without `set_config`: the pipeline's jobs (empty plans) and untyped resources."""
        return {
            "resources": [{"name": r, "type": "git", "source": {}} for r in pipeline.resources],
            "jobs": [{"name": j, "plan": []} for j in pipeline.jobs],
        }

    # -- routes: builds -------------------------------------------------------------------

    def _find_build(self, request: Request) -> _Build | Response:
        try:
            build_id = int(request.params["id"])
        except ValueError:
            return Response.text("malformed build id", 400)
        build = self._builds.get(build_id)
        return build if build is not None else Response(status=404)

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

    def _build_events(self, request: Request) -> Response:
        with self.lock:
            build = self._find_build(request)
            if isinstance(build, Response):
                return build
            # Events need the job to be public too; simulated jobs never are.
            error, _ = self._check_read(request, public=False)
            if error is not None:
                return error
        last_event_id = request.header("last-event-id")
        start = 0
        if last_event_id is not None:
            try:
                start = int(last_event_id) + 1
            except ValueError:
                return Response.text("malformed Last-Event-ID", 400)
        return Response(
            headers=[
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-cache, no-store, must-revalidate"),
                ("X-Accel-Buffering", "no"),
                ("X-ATC-Stream-Version", "2.0"),
            ],
            stream=self._event_stream(build, start, request),
        )

    def _event_stream(self, build: _Build, position: int, request: Request) -> Iterator[bytes]:
        """Replay from `position`, then follow live events until the build finishes."""
        with self.lock:
            self.open_streams += 1
        try:
            while True:
                with self._changed:
                    if self._stopping:
                        return
                    if position >= len(build.events) and not build.finished:
                        self._changed.wait(timeout=_WAKE_SECONDS)
                    pending = build.events[position:]
                    finished = build.finished  # the final status event is already in `pending`
                if pending:
                    for envelope in pending:
                        yield _frame(position, "event", json.dumps(envelope))
                        position += 1
                elif request.client_gone():
                    return
                if finished and position >= len(build.events):
                    break
            yield _frame(position, "end", None)
            # Like Concourse (concourse/concourse#4466): keep the stream open after `end`.
            deadline = time.monotonic() + STREAM_LINGER_SECONDS
            while time.monotonic() < deadline and not request.client_gone():
                with self._changed:
                    if self._stopping:
                        return
                    self._changed.wait(timeout=_WAKE_SECONDS)
        finally:
            with self.lock:
                self.open_streams -= 1

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
            from_id, to_id, limit = _page_params(request)
            chosen, older, newer = _paginate_versions(
                resource.versions, wanted, from_id, to_id, limit
            )
            base = f"{self.url}{request.path}"
            headers: list[tuple[str, str]] = []
            if older is not None:
                headers.append(link_header(f"{base}?to={older}&limit={limit}", "next"))
            if newer is not None:
                headers.append(link_header(f"{base}?from={newer}&limit={limit}", "previous"))
            body = [_version_json(v, show_metadata=member) for v in chosen]
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

    def _find_resource(self, request: Request) -> tuple[_Pipeline, _Resource, bool] | Response:
        """(pipeline, resource, caller is a member), or the 404/401/403 to answer."""
        return self._find_in_pipeline(request, "resource", lambda pipeline: pipeline.resources)

    # -- presentation ---------------------------------------------------------------------

    def _build_json(self, build: _Build) -> dict[str, Any]:
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

    def _pipeline_json(self, pipeline: _Pipeline) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": pipeline.id,
            "name": pipeline.name,
            "team_name": self.team,
            "last_updated": int(self.clock()),
        }
        if pipeline.public:
            body["public"] = True
        return body

    # -- every response -------------------------------------------------------------------

    def _respond(self, request: Request) -> Response:
        with self.lock:
            hanging = self._hang_next > 0 and request.path.startswith("/api/")
            failing = not hanging and self._fail_next > 0 and request.path.startswith("/api/")
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
        response.headers.append(("X-Concourse-Version", CONCOURSE_VERSION))
        has_cache_control = any(k.lower() == "cache-control" for k, _ in response.headers)
        if request.path.startswith("/api/") and not has_cache_control:
            response.headers.append(("Cache-Control", "no-store, private"))
        return response


def _page_params(request: Request) -> tuple[int | None, int | None, int]:
    """(from, to, limit) of a paged listing; limit 0 or missing means the default 100.

    Like the server's `strconv.Atoi` with its error ignored, a malformed value counts as 0.
    """

    def number(name: str) -> int:
        try:
            return int(request.arg(name) or 0)
        except ValueError:
            return 0

    limit = number("limit")
    return number("from") or None, number("to") or None, limit if limit > 0 else DEFAULT_LIMIT


def _paginate_builds(
    builds: Iterable[_Build], from_id: int | None, to_id: int | None, limit: int
) -> tuple[list[_Build], int | None, int | None]:
    """Concourse's `getBuildsWithPagination`: (page, `to` of the older page, `from` of newer)."""
    descending = sorted(builds, key=lambda b: b.sort_key, reverse=True)
    ascending = descending[::-1]
    if from_id is None and to_id is None:
        page = descending[:limit]
    elif to_id is None:
        # Only `from`: the `limit` builds closest above it, then returned newest first.
        page = [b for b in ascending if from_id is not None and b.id >= from_id][:limit][::-1]
    elif from_id is None:
        page = [b for b in descending if b.id <= to_id][:limit]
    else:
        # Both: ascending, and (as upstream) not reversed.
        page = [b for b in ascending if from_id <= b.id <= to_id][:limit]
    if not page:
        return [], None, None
    newest, oldest = page[0], page[-1]
    older = next((b.id for b in descending if b.id < oldest.id), None)
    newer = next((b.id for b in ascending if b.id > newest.id), None)
    return page, older, newer


def _paginate_versions(
    versions: list[_Version],
    wanted: dict[str, str],
    from_id: int | None,
    to_id: int | None,
    limit: int,
) -> tuple[list[_Version], int | None, int | None]:
    """Concourse's `resource.Versions`: newest check first; `from` wins over `to`."""
    by_id = {v.id: v for v in versions}
    descending = sorted(versions, key=lambda v: v.check_order, reverse=True)
    matching = [v for v in descending if all(v.version.get(k) == x for k, x in wanted.items())]
    if from_id is not None:
        anchor = by_id.get(from_id)
        above = [v for v in matching[::-1] if anchor and v.check_order >= anchor.check_order]
        page = above[:limit][::-1]
    elif to_id is not None:
        anchor = by_id.get(to_id)
        page = [v for v in matching if anchor and v.check_order <= anchor.check_order][:limit]
    else:
        page = matching[:limit]
    if not page:
        return [], None, None
    # The neighbour queries upstream ignore the filter; so do these.
    older = next((v.id for v in descending if v.check_order < page[-1].check_order), None)
    newer = next((v.id for v in descending[::-1] if v.check_order > page[0].check_order), None)
    return page, older, newer


def _version_json(version: _Version, *, show_metadata: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": version.id, "version": version.version, "enabled": True}
    if show_metadata and version.fetched and version.metadata:
        body["metadata"] = version.metadata
    return body


def _finished_build(builds: list[_Build]) -> _Build | None:
    """The latest finished non-rerun build, or the latest finished rerun of that build."""
    originals = [b for b in builds if b.finished and b.rerun_of is None]
    if not originals:
        return None
    latest = max(originals, key=lambda b: b.id)
    reruns = [b for b in builds if b.finished and b.rerun_of is latest]
    return max([latest, *reruns], key=lambda b: b.id)


def _next_build(builds: list[_Build]) -> _Build | None:
    """The oldest running non-rerun build, or a running rerun of the latest build."""
    latest = max((b for b in builds if b.rerun_of is None), key=lambda b: b.id, default=None)
    running = [
        b
        for b in builds
        if not b.finished and (b.rerun_of is None or (latest and b.rerun_of is latest))
    ]
    return min(running, key=lambda b: b.id, default=None)


def _frame(position: int, event: str, data: str | None) -> bytes:
    """One SSE frame; `end` has a bare `data` line, as Concourse sends it."""
    data_line = "data" if data is None else f"data: {data}"
    return f"id: {position}\nevent: {event}\n{data_line}\n\n".encode()


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except ValueError:
        return None
    user, _, password = decoded.partition(":")
    return user, password


def _oauth_error(error: str, description: str, status: int) -> Response:
    return Response.json({"error": error, "error_description": description}, status=status)


def _fake_jwt(username: str, expires_at: int) -> str:
    """A JWT-shaped id_token; the API must not accept it (it only knows access tokens)."""

    def part(payload: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    header = part({"alg": "RS256", "kid": "simulator"})
    claims = part({"sub": username, "exp": expires_at, "iss": "/sky/issuer"})
    signature = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    return f"{header}.{claims}.{signature}"
