"""The Concourse API client: what the bot uses instead of `fly`.

Responses are parsed into pydantic models here, at the edge, so nothing downstream digs in
dicts. Facts about the API this module relies on (from the Concourse source, see
/work/shared/reference/concourse-api.md):

- Log in with the password grant of the hard-coded public `fly` client and send the opaque
  `access_token` (never the `id_token`). There is no refresh token: log in again shortly before
  `expires_in` runs out, or once on a 401; never per request (each grant adds a DB row).
- Job build listings sort reruns next to their original (`COALESCE(rerun_of, id) DESC, id DESC`),
  and `from=`/`previous`-link paging can skip builds around reruns; see `job_builds`.
- The event stream is never closed by the server after `end`: the client closes it.

Errors are the `ConcourseError` family of `workers.errors`. Messages name the route and the
status, never a password or a token.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx
import httpx_sse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from workers import metrics
from workers.errors import (
    ConcourseAuthError,
    ConcourseError,
    ConcourseNotFound,
    ConcourseUnavailable,
)
from workers.events import FAILURE_STATUSES, RUNNING_STATUSES, BuildStatus

TOKEN_PATH = "/sky/issuer/token"
# Every Concourse hard-codes this public OAuth client for fly; it is not a secret.
FLY_CLIENT_AUTH = "Basic " + base64.b64encode(b"fly:Zmx5").decode()
# `federated:id` carries the connector id that team roles match on; `openid` is mandatory.
LOGIN_SCOPE = "openid profile email federated:id groups"

# CSI (colours, cursor moves), OSC (titles, hyperlinks) and two-byte escape sequences.
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

_Model = TypeVar("_Model", bound=BaseModel)
_T = TypeVar("_T")


class _ApiModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class BuildRef(_ApiModel):
    """The build a rerun reruns: always the original, never an intermediate rerun."""

    id: int
    name: str


class Build(_ApiModel):
    """One build (`atc.Build`); optional fields are absent in the JSON when empty."""

    id: int
    name: str
    status: BuildStatus
    team_name: str = ""
    api_url: str = ""
    job_name: str | None = None
    pipeline_name: str | None = None
    pipeline_id: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    reap_time: int | None = None
    rerun_number: int | None = None
    rerun_of: BuildRef | None = None
    created_by: str | None = None
    comment: str | None = None

    @property
    def is_running(self) -> bool:
        """Pending or started."""
        return self.status in RUNNING_STATUSES

    @property
    def is_terminal(self) -> bool:
        """Succeeded, failed, errored or aborted: the status will not change any more."""
        return not self.is_running

    @property
    def is_failure(self) -> bool:
        """Failed, errored or aborted."""
        return self.status in FAILURE_STATUSES


class MetadataField(_ApiModel):
    """One `{name, value}` metadata entry of a resource version."""

    name: str
    value: str


class ResourceVersion(_ApiModel):
    """A version of a resource; metadata exists only once some build fetched it."""

    id: int
    version: dict[str, str]
    enabled: bool = True
    metadata: list[MetadataField] = []

    @property
    def ref(self) -> str | None:
        """The git-resource `ref` (a commit SHA, or a tag with `tag_filter`)."""
        return self.version.get("ref")


class BuildInput(_ApiModel):
    """An input of a build; `name` is the get-step name, not necessarily the resource name."""

    name: str
    version: dict[str, str]
    pipeline_id: int | None = None
    first_occurrence: bool = False


class BuildOutput(_ApiModel):
    """A version a build's `put` produced."""

    name: str
    version: dict[str, str]


class BuildResources(_ApiModel):
    """`/builds/:id/resources`; a pending build may not have its inputs yet (`inputs: []`)."""

    inputs: list[BuildInput]
    outputs: list[BuildOutput]

    def input_ref(self, name: str) -> str | None:
        """The `ref` of the input called `name`, if that input exists and has one."""
        for build_input in self.inputs:
            if build_input.name == name:
                return build_input.version.get("ref")
        return None


class UserInfo(_ApiModel):
    """`/api/v1/user`: who the token belongs to and its roles per team."""

    user_name: str = ""
    teams: dict[str, list[str]] = {}
    is_admin: bool = False


# Step keys holding nested steps. Modifiers and hooks are merged into the step object itself,
# and `in_parallel` is always serialized as `{"steps": [...]}` (a bare list in YAML shorthand).
_NESTED_STEP_LISTS = ("do", "aggregate")
_NESTED_STEPS = ("try", "on_success", "on_failure", "on_error", "on_abort", "ensure")


def _plan_steps(step: Any) -> Iterator[dict[str, Any]]:
    """Every step object in `step` (a step or a list of them), nested ones included."""
    if isinstance(step, list):
        for item in step:
            yield from _plan_steps(item)
        return
    if not isinstance(step, dict):
        return
    yield step
    for key in _NESTED_STEP_LISTS:
        yield from _plan_steps(step.get(key))
    parallel = step.get("in_parallel")
    yield from _plan_steps(parallel.get("steps") if isinstance(parallel, dict) else parallel)
    for key in _NESTED_STEPS:
        yield from _plan_steps(step.get(key))


class GetStep(_ApiModel):
    """A `get` step of a job: `name` is what builds list as the input's name, `resource` the
    resource it fetches (the same unless the step says `resource:`)."""

    name: str
    resource: str
    passed: list[str] = []
    trigger: bool = False


class ResourceConfig(_ApiModel):
    """A resource as set in the pipeline config; `source` is free-form (`((vars))` kept)."""

    name: str
    type: str = ""
    source: dict[str, Any] = Field(default_factory=dict)

    def source_strings(self, key: str) -> list[str]:
        """A list-of-strings source field such as git's `paths`; a lone string counts as one."""
        value = self.source.get(key)
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []


class JobConfig(_ApiModel):
    """A job as set in the pipeline config; `plan` and hooks are kept as raw step objects."""

    name: str
    plan: list[dict[str, Any]] = []
    on_success: dict[str, Any] | None = None
    on_failure: dict[str, Any] | None = None
    on_error: dict[str, Any] | None = None
    on_abort: dict[str, Any] | None = None
    ensure: dict[str, Any] | None = None

    def get_steps(self) -> list[GetStep]:
        """Every `get` step of the plan and the job's hooks, however deeply nested."""
        roots: list[Any] = [
            self.plan,
            self.on_success,
            self.on_failure,
            self.on_error,
            self.on_abort,
            self.ensure,
        ]
        found: list[GetStep] = []
        for step in _plan_steps(roots):
            name = step.get("get")
            if isinstance(name, str) and name:
                found.append(
                    GetStep(
                        name=name,
                        resource=str(step.get("resource") or name),
                        passed=[str(p) for p in step.get("passed") or []],
                        trigger=bool(step.get("trigger")),
                    )
                )
        return found


class PipelineConfig(_ApiModel):
    """`GET …/pipelines/:p/config`: the config as set, and `X-Concourse-Config-Version`."""

    version: int | None = None
    resources: list[ResourceConfig] = []
    jobs: list[JobConfig] = []

    @field_validator("resources", "jobs", mode="before")
    @classmethod
    def _absent_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value  # omitempty in Go, but be lenient with null

    def job(self, name: str) -> JobConfig | None:
        """The job called `name`, if the pipeline has it."""
        return next((job for job in self.jobs if job.name == name), None)

    def resource(self, name: str) -> ResourceConfig | None:
        """The resource called `name`, if the pipeline has it."""
        return next((res for res in self.resources if res.name == name), None)


class _ConfigEnvelope(_ApiModel):
    config: PipelineConfig


class _TokenGrant(_ApiModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: float | None = None


class _EventEnvelope(_ApiModel):
    event: str
    data: dict[str, Any] = {}


_BUILDS = TypeAdapter(list[Build])
_VERSIONS = TypeAdapter(list[ResourceVersion])
_BUILD = TypeAdapter(Build)
_BUILD_RESOURCES = TypeAdapter(BuildResources)
_USER = TypeAdapter(UserInfo)
_TOKEN_GRANT = TypeAdapter(_TokenGrant)
_CONFIG = TypeAdapter(_ConfigEnvelope)

_StreamOutcome = Literal["end", "timeout", "broken"]


class ConcourseClient:
    """A thread-safe, synchronous client for the read-only Concourse API the bot needs.

    Authenticate with `token` (sent as is), or `username`/`password` (password grant, renewed
    shortly before expiry and once on a 401). With neither, requests are anonymous, which only
    public pipelines allow. At most `max_in_flight` requests run at once across all threads:
    the API shares a small database pool with the web UI.
    """

    def __init__(
        self,
        base_url: str,
        team: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        max_in_flight: int = 4,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = 300.0,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("username and password must be given together")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.team = team
        self._username = username
        self._password = password
        self._token = token
        self._token_expires_at: float | None = None  # None: unknown, e.g. a token handed to us
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._timeout = timeout
        self._http = metrics.concourse_client(  # counts requests by route and status
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": "deploy-monitor"},
        )
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._auth_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.requests_made = 0
        self.server_version: str | None = None  # X-Concourse-Version of the last response

    def __repr__(self) -> str:
        user = self._username or ("<token>" if self._token else "<anonymous>")
        return f"ConcourseClient({self.base_url!r}, team={self.team!r}, user={user!r})"

    def __enter__(self) -> ConcourseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- the API --------------------------------------------------------------------------

    def job_builds(
        self, pipeline: str, job: str, *, since_id: int | None = None, limit: int = 25
    ) -> list[Build]:
        """Builds of a job, sorted by id ascending.

        Without `since_id`: the newest `limit` builds in the server's order (one request), so a
        new rerun of an old build is not among them. With `since_id`: every build with
        `id >= since_id`, reruns included, paged with `from=` in chunks of `limit`.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")  # 0 would mean the server's 100
        path = f"/api/v1/teams/{self.team}/pipelines/{pipeline}/jobs/{job}/builds"
        what = ("pipeline/job", f"{pipeline}/{job}")
        if since_id is None:
            page = self._get_parsed(path, _BUILDS, what, params={"limit": limit})
            return sorted(page, key=lambda b: b.id)
        found: dict[int, Build] = {}
        from_id, page_limit = since_id, limit
        while True:
            page = self._get_parsed(
                path, _BUILDS, what, params={"from": from_id, "limit": page_limit}
            )
            found.update((b.id, b) for b in page if b.id >= since_id)
            if len(page) < page_limit:
                return sorted(found.values(), key=lambda b: b.id)  # the page held all the rest
            from_id, page_limit = _next_from_page(page, from_id, page_limit)

    def build(self, build_id: int) -> Build:
        """One build by its global id."""
        path = f"/api/v1/builds/{build_id}"
        response = self._request("GET", path, ("build", str(build_id)))
        return self._parse(response, _BUILD)

    def build_resources(self, build_id: int) -> BuildResources:
        """The input and output versions of a build."""
        path = f"/api/v1/builds/{build_id}/resources"
        response = self._request("GET", path, ("build", str(build_id)))
        return self._parse(response, _BUILD_RESOURCES)

    def versions(self, pipeline: str, resource: str, *, ref: str) -> list[ResourceVersion]:
        """The versions of `resource` whose `ref` is exactly `ref` (use the full 40-char SHA)."""
        path = f"/api/v1/teams/{self.team}/pipelines/{pipeline}/resources/{resource}/versions"
        what = ("pipeline/resource", f"{pipeline}/{resource}")
        return self._get_parsed(path, _VERSIONS, what, params={"filter": f"ref:{ref}"})

    def input_to(self, pipeline: str, resource: str, version_id: int) -> list[Build]:
        """Builds of any job of `pipeline` that took this version as input, by id ascending."""
        path = (
            f"/api/v1/teams/{self.team}/pipelines/{pipeline}/resources/{resource}"
            f"/versions/{version_id}/input_to"
        )
        what = ("pipeline/resource/version", f"{pipeline}/{resource}/{version_id}")
        return sorted(self._get_parsed(path, _BUILDS, what), key=lambda b: b.id)

    def user(self) -> UserInfo:
        """Who the credentials belong to; a cheap way to validate them."""
        response = self._request("GET", "/api/v1/user", ("user", "current user"))
        return self._parse(response, _USER)

    def pipeline_config(self, pipeline: str) -> PipelineConfig:
        """The pipeline's config as set (`((vars))` unresolved) with its version number.

        Needs a role in the team even for a public pipeline (403 otherwise); an unknown or
        archived pipeline is ConcourseNotFound.
        """
        path = f"/api/v1/teams/{self.team}/pipelines/{pipeline}/config"
        response = self._request("GET", path, ("pipeline", pipeline))
        config = self._parse(response, _CONFIG).config
        version = response.headers.get("x-concourse-config-version", "")
        return config.model_copy(update={"version": int(version) if version.isdigit() else None})

    def log_tail(
        self, build_id: int, *, max_chars: int = 4000, read_timeout: float | None = None
    ) -> str:
        """The last `max_chars` characters of a build's log, ANSI escapes stripped.

        Reads the event stream until `end` (then closes it: the server never does) or until
        nothing arrives for `read_timeout` seconds (a quiet running build: the tail so far).
        A stream that breaks is resumed once with `Last-Event-ID`; a second break raises
        ConcourseUnavailable. Reaped builds have no events and give "".
        """
        path = f"/api/v1/builds/{build_id}/events"
        tail = _LogTail(max_chars)
        read_timeout = self._timeout if read_timeout is None else read_timeout
        outcome = self._stream_events(path, build_id, tail, read_timeout)
        if outcome == "broken":  # resume once after the last event id we processed
            outcome = self._stream_events(path, build_id, tail, read_timeout)
        if outcome == "broken":
            raise ConcourseUnavailable(f"the event stream of build {build_id} broke twice")
        return tail.text()

    # -- authentication -------------------------------------------------------------------

    @property
    def _can_login(self) -> bool:
        return self._username is not None

    def _current_token(self) -> str | None:
        """The token to send, logging in first when there is none or it is about to expire."""
        with self._auth_lock:
            if self._can_login and (self._token is None or self._token_expiring()):
                self._login_locked()
            return self._token

    def _token_expiring(self) -> bool:
        return self._token_expires_at is not None and self._clock() > self._token_expires_at

    def _relogin(self, rejected: str | None) -> str | None:
        """Log in again after `rejected` got a 401, unless another thread already did."""
        with self._auth_lock:
            if self._token == rejected:
                self._login_locked()
            return self._token

    def _login_locked(self) -> None:
        obtained_at = self._clock()
        request = self._http.build_request(
            "POST",
            TOKEN_PATH,
            data={
                "grant_type": "password",
                "username": self._username or "",
                "password": self._password or "",
                "scope": LOGIN_SCOPE,
            },
            headers={"Authorization": FLY_CLIENT_AUTH},
        )
        response = self._send(request)
        if response.status_code == 401:
            raise ConcourseAuthError(
                f"Concourse login failed for user {self._username}: invalid username or password",
                status=401,
            )
        if response.status_code == 400:
            raise ConcourseAuthError(
                f"Concourse refused the password login for user {self._username} "
                f"({_oauth_error(response)}): is a local user or password connector configured?",
                status=400,
            )
        self._raise_for_status(response, ("token endpoint", TOKEN_PATH))
        grant = self._parse(response, _TOKEN_GRANT)
        self._token = grant.access_token
        if grant.expires_in is None:
            self._token_expires_at = None
        else:
            # Never renew more often than every half lifetime, even with a short-lived token.
            margin = min(self._refresh_margin, grant.expires_in / 2)
            self._token_expires_at = obtained_at + grant.expires_in - margin

    # -- HTTP -----------------------------------------------------------------------------

    def _get_parsed(
        self,
        path: str,
        adapter: TypeAdapter[list[_Model]],
        what: tuple[str, str],
        params: Mapping[str, str | int] | None = None,
    ) -> list[_Model]:
        return self._parse(self._request("GET", path, what, params=params), adapter)

    def _request(
        self,
        method: str,
        path: str,
        what: tuple[str, str],
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """Send with the current token; on a 401, log in again once and retry."""
        token = self._current_token()
        response = self._send(self._build(method, path, token, params))
        if response.status_code == 401 and self._can_login:
            token = self._relogin(token)
            response = self._send(self._build(method, path, token, params))
            if response.status_code == 401:
                raise ConcourseAuthError(
                    f"Concourse answered 401 not authorized on {method} {path} "
                    "even after a fresh login",
                    status=401,
                )
        self._raise_for_status(response, what)
        return response

    def _build(
        self,
        method: str,
        path: str,
        token: str | None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Request:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._http.build_request(method, path, params=params, headers=headers)

    def _send(self, request: httpx.Request) -> httpx.Response:
        # Bearer tokens are fetched before taking a slot, so a login never waits on a slot
        # held by a thread that waits for the login.
        with self._in_flight(f"{request.method} {request.url.path}"):
            response = self._http.send(request)
        self._note_version(response)
        return response

    @contextmanager
    def _in_flight(self, where: str) -> Iterator[None]:
        """Hold one of the in-flight slots for a request (or an open event stream), count it,
        and turn transport failures into this module's errors."""
        with self._slots:
            self._count_request()
            try:
                yield
            except httpx.TimeoutException as exc:
                raise ConcourseUnavailable(f"Concourse timed out on {where}") from exc
            except httpx.TransportError as exc:
                raise ConcourseUnavailable(
                    f"Concourse unreachable on {where}: {type(exc).__name__}"
                ) from exc
            except httpx.DecodingError as exc:
                raise ConcourseError(f"undecodable response to {where}") from exc

    def _count_request(self) -> None:
        with self._count_lock:
            self.requests_made += 1

    def _note_version(self, response: httpx.Response) -> None:
        version = response.headers.get("x-concourse-version")
        if version:
            self.server_version = version

    def _raise_for_status(self, response: httpx.Response, what: tuple[str, str]) -> None:
        status = response.status_code
        if status < 400:
            return
        where = f"{response.request.method} {response.request.url.path}"
        if status == 401:
            raise ConcourseAuthError(
                f"Concourse answered 401 not authorized on {where} (no valid credentials)",
                status=401,
            )
        if status == 403:
            who = f"user {self._username}" if self._username else "the configured token"
            raise ConcourseAuthError(
                f"{who} has no role in Concourse team {self.team} (403 on {where})", status=403
            )
        if status == 404:
            kind, name = what
            raise ConcourseNotFound(f"{kind} not found: {name}", status=404)
        if status >= 500:
            raise ConcourseUnavailable(f"Concourse unavailable: {status} on {where}", status=status)
        raise ConcourseError(
            f"Concourse answered {status} on {where}: {_short_body(response)}", status=status
        )

    def _parse(self, response: httpx.Response, adapter: TypeAdapter[_T]) -> _T:
        try:
            return adapter.validate_json(response.content)
        except ValidationError as exc:
            first = exc.errors()[0]
            location = ".".join(str(part) for part in first["loc"]) or "body"
            raise ConcourseError(
                f"unexpected response to {response.request.method} {response.request.url.path}: "
                f"{location}: {first['msg']}"
            ) from None

    # -- events ---------------------------------------------------------------------------

    def _stream_events(
        self, path: str, build_id: int, tail: _LogTail, read_timeout: float
    ) -> _StreamOutcome:
        """Read one connection's worth of events into `tail`, resuming after its last id."""
        token = self._current_token()
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            if tail.last_event_id is not None:
                headers["Last-Event-ID"] = tail.last_event_id
            timeout = httpx.Timeout(self._timeout, read=read_timeout)
            # An open stream holds its slot until it is closed.
            with (
                self._in_flight(f"GET {path}"),
                httpx_sse.connect_sse(
                    self._http, "GET", path, headers=headers, timeout=timeout
                ) as source,
            ):
                response = source.response
                self._note_version(response)
                if response.status_code != 401 or attempt > 0 or not self._can_login:
                    if response.status_code >= 400:
                        response.read()
                        self._raise_for_status(response, ("build", str(build_id)))
                    content_type = response.headers.get("content-type", "")
                    if not content_type.startswith("text/event-stream"):
                        raise ConcourseError(
                            f"GET {path} answered {content_type!r}, not an event stream"
                        )
                    return _consume(source, tail)
            token = self._relogin(token)  # after giving the slot back
        raise ConcourseAuthError(
            f"Concourse answered 401 not authorized on GET {path} even after a fresh login",
            status=401,
        )


def _consume(source: httpx_sse.EventSource, tail: _LogTail) -> _StreamOutcome:
    """Feed events to `tail` until `end`; errors while reading mean the stream broke."""
    try:
        for sse in source.iter_sse():
            if sse.id:
                tail.last_event_id = sse.id
            if sse.event == "end":
                return "end"
            if sse.event == "event":
                tail.add_event(sse.data)
    except httpx.ReadTimeout:
        return "timeout"
    except (httpx.TransportError, httpx.DecodingError):
        return "broken"
    return "broken"  # closed without `end`: a proxy or load balancer cut it


def _next_from_page(page: list[Build], from_id: int, limit: int) -> tuple[int, int]:
    """The next `from=` (and page size) after a full page of a `from=` listing.

    A `from=F&limit=L` page holds the L builds with id >= F that come first in
    `COALESCE(rerun_of, id), id` order. Every build it left out sorts after the last one in
    that order, so its id is above that build's group id: asking from there misses nothing.
    (The server's `previous` link asks from the *id* of the next build in that order, which
    skips builds when that build is a rerun of an older one.) When the page holds only reruns
    of builds older than F, the group id gives no progress: ask for a bigger page instead.
    """
    last = max(page, key=lambda b: (b.rerun_of.id if b.rerun_of else b.id, b.id))
    group = last.rerun_of.id if last.rerun_of else last.id
    if group + 1 > from_id:
        return group + 1, limit
    return from_id, limit * 2


class _LogTail:
    """Collects log chunks and error messages, keeping only what the tail can need."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.last_event_id: str | None = None
        self._text = ""

    def add_event(self, data: str) -> None:
        try:
            envelope = _EventEnvelope.model_validate_json(data)
        except ValidationError:
            return  # an unparseable event does not spoil a best-effort tail
        if envelope.event == "log":
            self._append(str(envelope.data.get("payload", "")))
        elif envelope.event == "error":
            message = str(envelope.data.get("message", ""))
            if self._text and not self._text.endswith("\n"):
                message = "\n" + message
            self._append(message if message.endswith("\n") else message + "\n")

    def _append(self, chunk: str) -> None:
        self._text += chunk
        # Keep a generous raw margin: escape sequences and overwritten lines shrink the text.
        keep = 2 * self.max_chars + 4096
        if len(self._text) > 2 * keep:
            self._text = self._text[-keep:]

    def text(self) -> str:
        """The tail as a terminal would show it: no escapes, `\\r\\n` → `\\n`, `\\r` overwrites."""
        text = _ANSI_ESCAPE.sub("", self._text.replace("\r\n", "\n"))
        if "\r" in text:
            text = "\n".join(_last_overwrite(line) for line in text.split("\n"))
        return text[-self.max_chars :] if self.max_chars > 0 else ""


def _last_overwrite(line: str) -> str:
    """What is left visible of a line that redraws itself with carriage returns."""
    parts = [part for part in line.split("\r") if part]
    return parts[-1] if parts else ""


def _oauth_error(response: httpx.Response) -> str:
    try:
        payload = json.loads(response.content)
    except ValueError:
        return f"{response.status_code}"
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return f"{response.status_code} {payload['error']}"
    return f"{response.status_code}"


def _short_body(response: httpx.Response) -> str:
    text = response.text.strip()
    return text[:200] if text else "(empty body)"
