"""Unit tests of `workers.concourse.ConcourseClient` against `httpx.MockTransport` handlers."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from workers.concourse import Build, BuildResources, ConcourseClient, ResourceVersion
from workers.errors import (
    ConcourseAuthError,
    ConcourseError,
    ConcourseNotFound,
    ConcourseUnavailable,
)

BASE = "https://ci.example.com"
PASSWORD = "hunter2-very-secret"
SCOPE = "openid profile email federated:id groups"


def build_json(build_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": build_id, "name": str(build_id), "status": "succeeded", **extra}


class FakeConcourse:
    """A tiny programmable Concourse: a token endpoint plus one handler for API paths."""

    def __init__(self, api: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.api = api or (lambda request: httpx.Response(200, json=build_json(1)))
        self.logins: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []
        self.expires_in = 86400
        self.login_status = 200
        self.lock = threading.Lock()

    def token(self, n: int) -> str:
        return f"access-{n}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sky/issuer/token":
            with self.lock:
                self.logins.append(request)
                n = len(self.logins)
            if self.login_status != 200:
                body = {"error": "access_denied", "error_description": "Invalid username"}
                return httpx.Response(self.login_status, json=body)
            return httpx.Response(
                200,
                json={
                    "access_token": self.token(n),
                    "token_type": "bearer",
                    "expires_in": self.expires_in,
                    "id_token": "eyJhbGciOiJSUzI1NiJ9.not-for-the-api.sig",
                },
            )
        with self.lock:
            self.api_requests.append(request)
        return self.api(request)

    def client(self, **kwargs: Any) -> ConcourseClient:
        options: dict[str, Any] = {"username": "bot", "password": PASSWORD}
        options.update(kwargs)
        return ConcourseClient(BASE, "dev", transport=httpx.MockTransport(self), **options)


# -- authentication -------------------------------------------------------------------------


def test_login_is_a_password_grant_of_the_fly_client_and_sends_the_access_token() -> None:
    fake = FakeConcourse()
    with fake.client() as client:
        client.build(1)

    (login,) = fake.logins
    assert login.method == "POST"
    assert login.headers["authorization"] == "Basic " + base64.b64encode(b"fly:Zmx5").decode()
    form = {k: v[0] for k, v in parse_qs(login.content.decode()).items()}
    assert form == {
        "grant_type": "password",
        "username": "bot",
        "password": PASSWORD,
        "scope": SCOPE,
    }
    (api,) = fake.api_requests
    assert api.url.path == "/api/v1/builds/1"
    assert api.headers["authorization"] == "Bearer access-1"  # never the id_token


def test_logs_in_lazily_once_and_reuses_the_token() -> None:
    fake = FakeConcourse()
    client = fake.client()
    assert fake.logins == []  # nothing happens before the first request
    for _ in range(5):
        client.build(1)
    assert len(fake.logins) == 1
    assert client.requests_made == 6
    assert {r.headers["authorization"] for r in fake.api_requests} == {"Bearer access-1"}


def test_a_401_logs_in_again_once_and_retries() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer access-1":
            return httpx.Response(401, text="not authorized")  # expired server-side
        return httpx.Response(200, json=build_json(7))

    fake = FakeConcourse(api)
    client = fake.client()
    assert client.build(7).id == 7
    assert len(fake.logins) == 2
    assert [r.headers["authorization"] for r in fake.api_requests] == [
        "Bearer access-1",
        "Bearer access-2",
    ]
    client.build(7)
    assert len(fake.logins) == 2


def test_a_401_after_a_fresh_login_is_an_auth_error_not_a_loop() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(401, text="not authorized"))
    with pytest.raises(ConcourseAuthError) as caught:
        fake.client().build(1)
    assert caught.value.status == 401
    assert len(fake.logins) == 2
    assert len(fake.api_requests) == 2


def test_logs_in_again_shortly_before_the_token_expires() -> None:
    now = [1000.0]
    fake = FakeConcourse()
    fake.expires_in = 3600
    client = fake.client(clock=lambda: now[0], refresh_margin=300)
    client.build(1)
    now[0] = 1000 + 3600 - 301
    client.build(1)
    assert len(fake.logins) == 1
    now[0] = 1000 + 3600 - 299
    client.build(1)
    assert len(fake.logins) == 2
    assert fake.api_requests[-1].headers["authorization"] == "Bearer access-2"


def test_a_short_lived_token_is_not_renewed_on_every_request() -> None:
    now = [0.0]
    fake = FakeConcourse()
    fake.expires_in = 60  # shorter than the 300 s margin
    client = fake.client(clock=lambda: now[0])
    client.build(1)
    now[0] = 20
    client.build(1)
    assert len(fake.logins) == 1
    now[0] = 31  # past half its lifetime
    client.build(1)
    assert len(fake.logins) == 2


def test_a_given_token_is_sent_as_is_and_never_triggers_a_login() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(401, text="not authorized"))
    client = ConcourseClient(BASE, "dev", token="tok-123", transport=httpx.MockTransport(fake))
    with pytest.raises(ConcourseAuthError) as caught:
        client.build(1)
    assert fake.logins == []
    assert fake.api_requests[0].headers["authorization"] == "Bearer tok-123"
    assert "tok-123" not in str(caught.value)
    assert "tok-123" not in repr(client)


def test_refused_login_names_the_user_and_never_the_password() -> None:
    fake = FakeConcourse()
    fake.login_status = 401
    client = fake.client()
    with pytest.raises(ConcourseAuthError) as caught:
        client.build(1)
    assert str(caught.value) == (
        "Concourse login failed for user bot: invalid username or password"
    )
    for text in (str(caught.value), repr(caught.value), repr(client)):
        assert PASSWORD not in text
    assert fake.api_requests == []


def test_login_400_is_an_auth_error() -> None:
    fake = FakeConcourse()
    fake.login_status = 400
    with pytest.raises(ConcourseAuthError, match="400"):
        fake.client().build(1)


def test_403_says_which_team_and_does_not_log_in_again() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(403, text="forbidden"))
    with pytest.raises(ConcourseAuthError, match="no role in Concourse team dev") as caught:
        fake.client().job_builds("lana-bank", "build-rc")
    assert caught.value.status == 403
    assert len(fake.logins) == 1
    assert "access-1" not in str(caught.value)


def test_concurrent_first_requests_log_in_once() -> None:
    fake = FakeConcourse()
    client = fake.client()
    threads = [threading.Thread(target=client.build, args=(1,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake.logins) == 1
    assert len(fake.api_requests) == 8


# -- errors -----------------------------------------------------------------------------------


def test_404_names_the_route() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(404))
    with pytest.raises(ConcourseNotFound) as caught:
        fake.client().job_builds("lana-bank", "build-rc")
    assert str(caught.value) == "pipeline/job not found: lana-bank/build-rc"
    with pytest.raises(ConcourseNotFound, match="build not found: 42"):
        fake.client().build(42)


def raise_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def raise_connect_error(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    "api",
    [
        lambda request: httpx.Response(503, text="upstream gone"),
        lambda request: httpx.Response(502),
        raise_timeout,
        raise_connect_error,
    ],
    ids=["503", "502", "timeout", "connect-error"],
)
def test_outages_are_unavailable(api: Callable[[httpx.Request], httpx.Response]) -> None:
    with pytest.raises(ConcourseUnavailable) as caught:
        FakeConcourse(api).client().build(1)
    assert "/api/v1/builds/1" in str(caught.value)


def test_other_client_errors_are_plain_concourse_errors() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(400, text="malformed build id"))
    with pytest.raises(ConcourseError) as caught:
        fake.client().build(1)
    assert type(caught.value) is ConcourseError
    assert caught.value.status == 400
    assert "malformed build id" in str(caught.value)


def test_an_unexpected_body_is_a_concourse_error() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(200, json={"id": 1, "status": "queued"}))
    with pytest.raises(ConcourseError, match="unexpected response"):
        fake.client().build(1)


# -- parsing ----------------------------------------------------------------------------------


def test_absent_optional_fields_parse_and_unknown_fields_are_ignored() -> None:
    pending = {"id": 5, "name": "3", "status": "pending", "team_name": "dev", "new_in_9": 1}
    build = Build.model_validate(pending)
    assert build.start_time is None and build.end_time is None and build.rerun_of is None
    assert build.created_by is None and build.job_name is None
    assert build.is_running and not build.is_terminal and not build.is_failure

    rerun = Build.model_validate(
        {"id": 9, "name": "3.1", "status": "errored", "rerun_of": {"id": 5, "name": "3"}}
    )
    assert rerun.rerun_of is not None and rerun.rerun_of.id == 5
    assert rerun.is_terminal and rerun.is_failure

    version = ResourceVersion.model_validate({"id": 3, "version": {"ref": "abc"}})
    assert version.metadata == [] and version.enabled and version.ref == "abc"

    resources = BuildResources.model_validate(
        {
            "inputs": [{"name": "repo", "version": {"ref": "abc"}, "first_occurrence": True}],
            "outputs": [],
        }
    )
    assert resources.input_ref("repo") == "abc"
    assert resources.input_ref("other") is None


def test_a_pipeline_config_with_null_source_and_null_plan_parses_as_empty() -> None:
    """Concourse serializes `source` and `plan` without omitempty: empty ones are null."""
    body = {
        "config": {
            "resources": [{"name": "timer", "type": "time", "source": None}],
            "jobs": [{"name": "noop", "plan": None, "on_failure": None}],
        }
    }
    fake = FakeConcourse(lambda request: httpx.Response(200, json=body))
    config = fake.client().pipeline_config("app")
    timer = config.resource("timer")
    assert timer is not None and timer.source == {} and timer.source_strings("paths") == []
    noop = config.job("noop")
    assert noop is not None and noop.plan == [] and noop.get_steps() == []


def test_user_parses_team_roles() -> None:
    body = {"user_name": "bot", "teams": {"dev": ["member"]}, "is_admin": False, "sub": "x"}
    fake = FakeConcourse(lambda request: httpx.Response(200, json=body))
    user = fake.client().user()
    assert user.user_name == "bot" and user.teams == {"dev": ["member"]}


# -- job builds ---------------------------------------------------------------------------------


def paged_builds(builds: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    """Concourse's `from=`-only listing: the `limit` builds closest above `from` in
    `COALESCE(rerun_of, id), id` order, newest first, with a `previous` link."""

    def key(b: dict[str, Any]) -> tuple[int, int]:
        return (b["rerun_of"]["id"] if "rerun_of" in b else b["id"], b["id"])

    ascending = sorted(builds, key=key)

    def api(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        if "from" not in request.url.params:
            return httpx.Response(200, json=ascending[::-1][:limit])
        start = int(request.url.params["from"])
        page = [b for b in ascending if b["id"] >= start][:limit][::-1]
        headers = {}
        newer = [b for b in ascending if page and b["id"] > page[0]["id"]]
        if newer:
            url = f"{BASE}{request.url.path}?from={newer[0]['id']}&limit={limit}"
            headers["Link"] = f'<{url}>; rel="previous"'
        return httpx.Response(200, json=page, headers=headers)

    return api


def test_job_builds_without_since_id_is_one_request_sorted_by_id() -> None:
    builds = [build_json(i) for i in range(1, 8)]
    builds.append(build_json(8, name="2.1", rerun_of={"id": 2, "name": "2"}))
    fake = FakeConcourse(paged_builds(builds))
    result = fake.client().job_builds("app", "unit", limit=3)
    assert [b.id for b in result] == [5, 6, 7]  # the rerun sorts next to build 2, not first
    assert len(fake.api_requests) == 1
    assert fake.api_requests[0].url.params["limit"] == "3"


def test_job_builds_since_id_pages_through_everything_reruns_included() -> None:
    builds = [build_json(i) for i in range(1, 11)]
    builds.append(build_json(11, name="2.1", rerun_of={"id": 2, "name": "2"}))
    builds.append(build_json(12, name="6.1", rerun_of={"id": 6, "name": "6"}))
    fake = FakeConcourse(paged_builds(builds))
    result = fake.client().job_builds("app", "unit", since_id=5, limit=3)
    assert [b.id for b in result] == [5, 6, 7, 8, 9, 10, 11, 12]
    assert len({b.id for b in result}) == len(result)
    froms = [int(r.url.params["from"]) for r in fake.api_requests]
    assert froms[0] == 5 and froms == sorted(froms)


def test_following_previous_links_alone_would_skip_builds() -> None:
    """Why job_builds computes its next `from`: the link can jump over builds."""
    builds = [build_json(i) for i in range(1, 11)]
    builds.append(build_json(11, name="2.1", rerun_of={"id": 2, "name": "2"}))
    api = paged_builds(builds)
    seen: set[int] = set()
    url: str | None = f"{BASE}/api/v1/teams/dev/pipelines/app/jobs/unit/builds?from=5&limit=3"
    while url is not None:
        response = api(httpx.Request("GET", url))
        seen.update(b["id"] for b in response.json())
        url = response.links.get("previous", {}).get("url")
    assert not {7, 8, 9, 10} & seen  # skipped

    result = FakeConcourse(api).client().job_builds("app", "unit", since_id=5, limit=3)
    assert [b.id for b in result] == [5, 6, 7, 8, 9, 10, 11]


def test_job_builds_since_id_survives_a_page_full_of_old_reruns() -> None:
    builds = [build_json(i) for i in range(1, 6)]
    builds += [
        build_json(6 + i, name=f"1.{i + 1}", rerun_of={"id": 1, "name": "1"}) for i in range(4)
    ]
    builds.append(build_json(10))
    fake = FakeConcourse(paged_builds(builds))
    result = fake.client().job_builds("app", "unit", since_id=6, limit=2)
    assert [b.id for b in result] == [6, 7, 8, 9, 10]


# -- concurrency --------------------------------------------------------------------------------


def test_at_most_max_in_flight_requests_at_once() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def api(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.03)
        with lock:
            active -= 1
        return httpx.Response(200, json=build_json(1))

    client = FakeConcourse(api).client(max_in_flight=2)
    threads = [threading.Thread(target=client.build, args=(1,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2
    assert client.requests_made == 9


# -- log tail -----------------------------------------------------------------------------------


def frame(position: int, event: str, data: dict[str, Any]) -> bytes:
    envelope = {"data": data, "event": event, "version": "5.1", "event_id": str(position)}
    return f"id: {position}\nevent: event\ndata: {json.dumps(envelope)}\n\n".encode()


def log_frame(position: int, text: str) -> bytes:
    return frame(position, "log", {"time": 1, "origin": {"id": "a1"}, "payload": text})


END = b"id: 99\nevent: end\ndata\n\n"
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8"}


class ScriptedStream(httpx.SyncByteStream):
    """Yields the given chunks, then `after` (an exception to raise) if read further."""

    def __init__(self, chunks: list[bytes], after: Exception | None = None) -> None:
        self.chunks = chunks
        self.after = after
        self.read_past_end = False
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        self.read_past_end = True
        if self.after is not None:
            raise self.after

    def close(self) -> None:
        self.closed = True


def test_log_tail_stops_on_end_closes_the_stream_and_cleans_the_text() -> None:
    stream = ScriptedStream(
        [
            frame(0, "status", {"status": "started", "time": 1}),
            log_frame(1, "\x1b[1mrunning\x1b[0m tests\r\n"),
            log_frame(2, "ok 1\nok 2 "),  # chunks, not lines
            log_frame(3, "and more\r\nDownloading 10%\rDownloading 100%\n"),
            frame(4, "error", {"message": "task timed out", "origin": {}, "time": 2}),
            frame(5, "status", {"status": "errored", "time": 3}),
            END,
        ],
        after=AssertionError("the client read past `end`"),
    )
    fake = FakeConcourse(lambda request: httpx.Response(200, headers=SSE_HEADERS, stream=stream))
    text = fake.client().log_tail(3)
    assert text == "running tests\nok 1\nok 2 and more\nDownloading 100%\ntask timed out\n"
    assert not stream.read_past_end
    assert stream.closed
    assert fake.api_requests[0].url.path == "/api/v1/builds/3/events"


def test_log_tail_keeps_only_the_last_characters() -> None:
    chunks = [log_frame(i, f"line {i}\n") for i in range(500)] + [END]
    fake = FakeConcourse(
        lambda request: httpx.Response(200, headers=SSE_HEADERS, stream=ScriptedStream(chunks))
    )
    text = fake.client().log_tail(3, max_chars=30)
    assert len(text) == 30
    assert text.endswith("line 498\nline 499\n")


def test_log_tail_resumes_once_after_a_broken_stream() -> None:
    streams = [
        ScriptedStream([log_frame(0, "one\n"), log_frame(1, "two\n")], httpx.ReadError("reset")),
        ScriptedStream([log_frame(2, "three\n"), END]),
    ]

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE_HEADERS, stream=streams.pop(0))

    fake = FakeConcourse(api)
    assert fake.client().log_tail(3) == "one\ntwo\nthree\n"
    assert "last-event-id" not in fake.api_requests[0].headers
    assert fake.api_requests[1].headers["last-event-id"] == "1"


def test_log_tail_gives_up_after_the_second_break() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        stream = ScriptedStream([log_frame(0, "x\n")], httpx.RemoteProtocolError("cut"))
        return httpx.Response(200, headers=SSE_HEADERS, stream=stream)

    fake = FakeConcourse(api)
    with pytest.raises(ConcourseUnavailable, match="broke twice"):
        fake.client().log_tail(3)
    assert len(fake.api_requests) == 2


def test_log_tail_returns_the_tail_so_far_on_a_read_timeout() -> None:
    stream = ScriptedStream([log_frame(0, "still running\n")], httpx.ReadTimeout("quiet"))
    fake = FakeConcourse(lambda request: httpx.Response(200, headers=SSE_HEADERS, stream=stream))
    assert fake.client().log_tail(3, read_timeout=0.1) == "still running\n"


def test_log_tail_of_a_reaped_build_is_empty() -> None:
    fake = FakeConcourse(
        lambda request: httpx.Response(200, headers=SSE_HEADERS, stream=ScriptedStream([END]))
    )
    assert fake.client().log_tail(3) == ""


def test_log_tail_logs_in_again_on_401() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer access-1":
            return httpx.Response(401, text="not authorized")
        stream = ScriptedStream([log_frame(0, "hi\n"), END])
        return httpx.Response(200, headers=SSE_HEADERS, stream=stream)

    fake = FakeConcourse(api)
    assert fake.client().log_tail(3) == "hi\n"
    assert len(fake.logins) == 2


def test_log_tail_of_an_unknown_build_is_not_found() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(404))
    with pytest.raises(ConcourseNotFound, match="build not found: 3"):
        fake.client().log_tail(3)


# -- reruns -------------------------------------------------------------------------------------


def test_rerun_build_posts_to_the_build_by_name_and_answers_the_new_build() -> None:
    original = {"id": 4820, "name": "57"}
    rerun = build_json(4829, name="57.1", status="pending", rerun_number=1, rerun_of=original)
    fake = FakeConcourse(lambda request: httpx.Response(200, json=rerun))
    build = fake.client().rerun_build("lana-bank", "test-bats", "57")
    assert build.name == "57.1" and build.rerun_of is not None and build.rerun_of.id == 4820
    (request,) = fake.api_requests
    assert request.method == "POST"
    assert request.url.path == "/api/v1/teams/dev/pipelines/lana-bank/jobs/test-bats/builds/57"
    assert request.headers["authorization"] == "Bearer access-1"


def test_a_rerun_refused_with_403_says_the_role_needed() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(403, text="forbidden"))
    with pytest.raises(ConcourseAuthError, match="needs the pipeline-operator role") as caught:
        fake.client().rerun_build("lana-bank", "test-bats", "57")
    assert caught.value.status == 403 and "user bot" in str(caught.value)
    assert len(fake.api_requests) == 1  # a write is never retried


def test_a_rerun_of_an_unknown_build_is_not_found_and_409_says_reruns_are_disabled() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(404))
    with pytest.raises(ConcourseNotFound, match="lana-bank/test-bats/99"):
        fake.client().rerun_build("lana-bank", "test-bats", "99")
    fake = FakeConcourse(lambda request: httpx.Response(409, text="conflict"))
    with pytest.raises(ConcourseError, match="disabled") as caught:
        fake.client().rerun_build("lana-bank", "test-bats", "57")
    assert caught.value.status == 409


@pytest.mark.parametrize(
    ("roles", "admin", "allowed"),
    [
        (["owner"], False, True),
        (["member"], False, True),
        (["pipeline-operator"], False, True),
        (["viewer"], False, False),
        ([], False, False),
        ([], True, True),
    ],
)
def test_may_rerun_reads_the_role_in_the_team(roles: list[str], admin: bool, allowed: bool) -> None:
    body = {"user_name": "bot", "teams": {"dev": roles, "other": ["owner"]}, "is_admin": admin}
    fake = FakeConcourse(lambda request: httpx.Response(200, json=body))
    assert fake.client().may_rerun() == (allowed, roles)
