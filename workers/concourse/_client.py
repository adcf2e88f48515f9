"""The Concourse API client: what the bot uses instead of `fly`.

Responses are parsed into pydantic models here, at the edge, so nothing downstream digs in
dicts. Facts about the API this module relies on (from the Concourse source, see
/work/shared/reference/concourse-api.md):

- Log in with the password grant of the public `fly` client (see `_auth`).
- Job build listings sort reruns next to their original (`COALESCE(rerun_of, id) DESC, id DESC`),
  and `from=`/`previous`-link paging can skip builds around reruns; see `job_builds`.
- The event stream is never closed by the server after `end`: the client closes it (`_logs`).
- The one write, `rerun_build`, needs the `pipeline-operator` role or above (`atc/api/accessor/
  roles.go`); a `viewer` gets 403, which the error says with the role needed.

Errors are the `ConcourseError` family of `workers.errors`. Messages name the route and the
status, never a password or a token.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import TypeVar

import httpx
import httpx_sse
from pydantic import BaseModel, TypeAdapter

from workers import metrics
from workers.concourse._auth import ConcourseAuth
from workers.concourse._logs import LogTail, StreamOutcome, consume
from workers.concourse._models import (
    BUILD,
    BUILD_RESOURCES,
    BUILDS,
    CONFIG,
    JOBS,
    PIPELINES,
    PREPARATION,
    RESOURCE,
    RESOURCES,
    USER,
    VERSIONS,
    Build,
    BuildPreparation,
    BuildResources,
    JobSummary,
    PipelineConfig,
    PipelineInfo,
    ResourceInfo,
    ResourceVersion,
    UserInfo,
)
from workers.concourse._responses import parse, raise_for_status
from workers.errors import ConcourseError, ConcourseUnavailable

# The roles that may rerun a build (`atc/api/accessor/roles.go`: RerunJobBuild is an operator
# action); `viewer` may not.
RERUN_ROLES = ("owner", "member", "pipeline-operator")
RERUN_ROLE_NEEDED = "pipeline-operator"

_Model = TypeVar("_Model", bound=BaseModel)
_T = TypeVar("_T")


class ConcourseClient:
    """A thread-safe, synchronous client for the Concourse API the bot needs: reads, and the
    rerun of a build.

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
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.team = team
        self._auth = ConcourseAuth(
            self.base_url,
            username=username,
            password=password,
            token=token,
            clock=clock,
            refresh_margin=refresh_margin,
            timeout=timeout,
        )
        self._shown_user = username or ("<token>" if token else "<anonymous>")
        self.timeout = timeout  # seconds, for each request (an event stream: to connect)
        self._http = httpx.Client(
            base_url=self.base_url,
            # Counts every request on the wire by route and status.
            transport=metrics.concourse_transport(self.base_url, transport),
            timeout=timeout,
            headers={"User-Agent": "deploy-monitor"},
            auth=self._auth,
            # Hooks see every request the auth flow sends, logins and retries included.
            event_hooks={"request": [self._count_request], "response": [self._note_version]},
        )
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._count_lock = threading.Lock()
        self.requests_made = 0
        self.server_version: str | None = None  # X-Concourse-Version of the last response

    def __repr__(self) -> str:
        return f"ConcourseClient({self.base_url!r}, team={self.team!r}, user={self._shown_user!r})"

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
            page = self._get_parsed(path, BUILDS, what, params={"limit": limit})
            return sorted(page, key=lambda b: b.id)
        found: dict[int, Build] = {}
        from_id, page_limit = since_id, limit
        while True:
            page = self._get_parsed(
                path, BUILDS, what, params={"from": from_id, "limit": page_limit}
            )
            found.update((b.id, b) for b in page if b.id >= since_id)
            if len(page) < page_limit:
                return sorted(found.values(), key=lambda b: b.id)  # the page held all the rest
            from_id, page_limit = _next_from_page(page, from_id, page_limit)

    def build(self, build_id: int) -> Build:
        """One build by its global id."""
        path = f"/api/v1/builds/{build_id}"
        response = self._request("GET", path, ("build", str(build_id)))
        return self._parse(response, BUILD)

    def build_resources(self, build_id: int) -> BuildResources:
        """The input and output versions of a build."""
        path = f"/api/v1/builds/{build_id}/resources"
        response = self._request("GET", path, ("build", str(build_id)))
        return self._parse(response, BUILD_RESOURCES)

    def versions(self, pipeline: str, resource: str, *, ref: str) -> list[ResourceVersion]:
        """The versions of `resource` whose `ref` is exactly `ref` (use the full 40-char SHA)."""
        path = f"/api/v1/teams/{self.team}/pipelines/{pipeline}/resources/{resource}/versions"
        what = ("pipeline/resource", f"{pipeline}/{resource}")
        return self._get_parsed(path, VERSIONS, what, params={"filter": f"ref:{ref}"})

    def input_to(self, pipeline: str, resource: str, version_id: int) -> list[Build]:
        """Builds of any job of `pipeline` that took this version as input, by id ascending."""
        path = (
            f"/api/v1/teams/{self.team}/pipelines/{pipeline}/resources/{resource}"
            f"/versions/{version_id}/input_to"
        )
        what = ("pipeline/resource/version", f"{pipeline}/{resource}/{version_id}")
        return sorted(self._get_parsed(path, BUILDS, what), key=lambda b: b.id)

    def pipelines(self) -> list[PipelineInfo]:
        """Every pipeline of the team the caller may see, with `paused*` and `archived`."""
        path = f"/api/v1/teams/{self.team}/pipelines"
        return self._get_parsed(path, PIPELINES, ("team", self.team))

    def jobs(self, pipeline: str) -> list[JobSummary]:
        """The pipeline's jobs as its dashboard shows them: paused or not, their inputs, the
        next and last finished build."""
        path = f"/api/v1/teams/{self.team}/pipelines/{pipeline}/jobs"
        return self._get_parsed(path, JOBS, ("pipeline", pipeline))

    def resources(self, pipeline: str) -> list[ResourceInfo]:
        """The pipeline's resources, with the version each is pinned to, if any."""
        path = f"/api/v1/teams/{self.team}/pipelines/{pipeline}/resources"
        return self._get_parsed(path, RESOURCES, ("pipeline", pipeline))

    def resource(self, pipeline: str, resource: str) -> ResourceInfo:
        """One resource, with the version it is pinned to, if any."""
        path = f"/api/v1/teams/{self.team}/pipelines/{pipeline}/resources/{resource}"
        response = self._request("GET", path, ("pipeline/resource", f"{pipeline}/{resource}"))
        return self._parse(response, RESOURCE)

    def build_preparation(self, build_id: int) -> BuildPreparation:
        """What a pending build waits for (a paused job or pipeline, max in flight, inputs)."""
        path = f"/api/v1/builds/{build_id}/preparation"
        response = self._request("GET", path, ("build", str(build_id)))
        return self._parse(response, PREPARATION)

    def rerun_build(self, pipeline: str, job: str, build_name: str) -> Build:
        """Rerun build `build_name` of `pipeline/job` with the same inputs (`fly rerun-build`);
        the answer is the new build (`57.1`; a rerun of `57.1` is `57.2`, of the original).

        A 403 is a ConcourseAuthError saying the role needed (pipeline-operator); 404 an unknown
        job or build; 409 a job with `disable_reruns` (or an archived pipeline). Not retried:
        a POST that timed out may have made the rerun, and the caller knows best.
        """
        name = urllib.parse.quote(build_name, safe="")
        path = f"/api/v1/teams/{self.team}/pipelines/{pipeline}/jobs/{job}/builds/{name}"
        what = ("pipeline/job/build", f"{pipeline}/{job}/{build_name}")
        who = self._who()
        forbidden = (
            f"{who} may not rerun builds in Concourse team {self.team}: that needs the "
            f"{RERUN_ROLE_NEEDED} role or above (member, owner)"
        )
        try:
            response = self._request("POST", path, what, forbidden=forbidden)
        except ConcourseError as exc:
            if exc.status == 409:
                raise ConcourseError(
                    f"Concourse refused to rerun {pipeline}/{job} #{build_name}: reruns are "
                    "disabled for the job, or its pipeline is archived (409)",
                    status=409,
                ) from None
            raise
        return self._parse(response, BUILD)

    def may_rerun(self) -> tuple[bool, list[str]]:
        """Whether these credentials may rerun builds in the team (a role of `RERUN_ROLES`,
        or a Concourse admin), and the roles they hold there."""
        info = self.user()
        roles = info.teams.get(self.team, [])
        return info.is_admin or any(role in RERUN_ROLES for role in roles), roles

    def user(self) -> UserInfo:
        """Who the credentials belong to; a cheap way to validate them."""
        response = self._request("GET", "/api/v1/user", ("user", "current user"))
        return self._parse(response, USER)

    def pipeline_config(self, pipeline: str) -> PipelineConfig:
        """The pipeline's config as set (`((vars))` unresolved) with its version number.

        Needs a role in the team even for a public pipeline (403 otherwise); an unknown or
        archived pipeline is ConcourseNotFound.
        """
        path = f"/api/v1/teams/{self.team}/pipelines/{pipeline}/config"
        response = self._request("GET", path, ("pipeline", pipeline))
        config = self._parse(response, CONFIG).config
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
        tail = LogTail(max_chars)
        read_timeout = self.timeout if read_timeout is None else read_timeout
        outcome = self._stream_events(path, build_id, tail, read_timeout)
        if outcome == "broken":  # resume once after the last event id we processed
            outcome = self._stream_events(path, build_id, tail, read_timeout)
        if outcome == "broken":
            raise ConcourseUnavailable(f"the event stream of build {build_id} broke twice")
        return tail.text()

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
        *,
        forbidden: str | None = None,
    ) -> httpx.Response:
        """Send (the auth flow logs in as needed) and raise for an error status; `forbidden`
        replaces what a 403 says (a write refused for want of a role, not of membership)."""
        request = self._http.build_request(method, path, params=params)
        # The auth flow sends a login within this slot: it never waits for a second one.
        with self._in_flight(f"{method} {path}"):
            response = self._http.send(request)
        self._raise_for_status(response, what, forbidden=forbidden)
        return response

    @contextmanager
    def _in_flight(self, where: str) -> Iterator[None]:
        """Hold one of the in-flight slots for a request (or an open event stream) and turn
        transport failures into this module's errors."""
        with self._slots:
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

    def _count_request(self, request: httpx.Request) -> None:
        with self._count_lock:
            self.requests_made += 1

    def _note_version(self, response: httpx.Response) -> None:
        version = response.headers.get("x-concourse-version")
        if version:
            self.server_version = version

    def _who(self) -> str:
        username = self._auth.username
        return f"user {username}" if username else "the configured token"

    def _raise_for_status(
        self, response: httpx.Response, what: tuple[str, str], *, forbidden: str | None = None
    ) -> None:
        # A 401 that reaches here got past the auth flow's one fresh login, if it can log in.
        unauthorized = (
            "even after a fresh login" if self._auth.can_login else "(no valid credentials)"
        )
        raise_for_status(
            response,
            what,
            unauthorized=unauthorized,
            forbidden=forbidden or f"{self._who()} has no role in Concourse team {self.team}",
        )

    def _parse(self, response: httpx.Response, adapter: TypeAdapter[_T]) -> _T:
        return parse(response, adapter)

    # -- events ---------------------------------------------------------------------------

    def _stream_events(
        self, path: str, build_id: int, tail: LogTail, read_timeout: float
    ) -> StreamOutcome:
        """Read one connection's worth of events into `tail`, resuming after its last id."""
        headers = {} if tail.last_event_id is None else {"Last-Event-ID": tail.last_event_id}
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        # An open stream holds its slot until it is closed.
        with (
            self._in_flight(f"GET {path}"),
            httpx_sse.connect_sse(
                self._http, "GET", path, headers=headers, timeout=timeout
            ) as source,
        ):
            response = source.response
            if response.status_code >= 400:
                response.read()
                self._raise_for_status(response, ("build", str(build_id)))
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                raise ConcourseError(f"GET {path} answered {content_type!r}, not an event stream")
            return consume(source, tail)


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
