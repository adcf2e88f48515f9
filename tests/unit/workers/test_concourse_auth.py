"""The Concourse login flow (`workers.concourse.ConcourseAuth`), on its own and under the
client's plain requests and event streams, against `httpx.MockTransport`."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.unit.workers.test_concourse_client import (
    BASE,
    END,
    PASSWORD,
    SSE_HEADERS,
    FakeConcourse,
    ScriptedStream,
    build_json,
    log_frame,
)
from workers.concourse import ConcourseAuth, ConcourseClient
from workers.errors import ConcourseAuthError


def http_client(fake: FakeConcourse, auth: ConcourseAuth) -> httpx.Client:
    return httpx.Client(base_url=BASE, auth=auth, transport=httpx.MockTransport(fake))


def password_auth(base_url: str = BASE) -> ConcourseAuth:
    return ConcourseAuth(base_url, username="bot", password=PASSWORD, clock=lambda: 0.0)


def test_the_flow_logs_in_then_sends_the_bearer_token() -> None:
    fake = FakeConcourse()
    with http_client(fake, password_auth()) as client:
        assert client.get("/api/v1/builds/1").status_code == 200
    assert len(fake.logins) == 1
    assert fake.api_requests[0].headers["authorization"] == "Bearer access-1"


def test_the_token_endpoint_keeps_the_base_url_path() -> None:
    fake = FakeConcourse()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        request.url = request.url.copy_with(path=request.url.path.removeprefix("/concourse"))
        return fake(request)

    auth = password_auth(f"{BASE}/concourse/")
    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as client:
        client.get(f"{BASE}/concourse/api/v1/builds/1")
    assert seen == ["/concourse/sky/issuer/token", "/concourse/api/v1/builds/1"]


def test_a_static_token_that_gets_401_attempts_no_login() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(401, text="not authorized"))
    auth = ConcourseAuth(BASE, token="tok-123", clock=lambda: 0.0)
    with http_client(fake, auth) as client:
        assert client.get("/api/v1/builds/1").status_code == 401  # the caller reports it
    assert fake.logins == []
    assert [r.headers["authorization"] for r in fake.api_requests] == ["Bearer tok-123"]


def test_a_static_token_that_gets_401_on_the_event_stream_attempts_no_login() -> None:
    fake = FakeConcourse(lambda request: httpx.Response(401, text="not authorized"))
    client = ConcourseClient(BASE, "dev", token="tok-123", transport=httpx.MockTransport(fake))
    with pytest.raises(ConcourseAuthError, match="no valid credentials") as caught:
        client.log_tail(3)
    assert caught.value.status == 401
    assert fake.logins == []
    assert len(fake.api_requests) == 1


def test_anonymous_requests_carry_no_authorization() -> None:
    fake = FakeConcourse()
    with http_client(fake, ConcourseAuth(BASE, clock=lambda: 0.0)) as client:
        client.get("/api/v1/builds/1")
    assert fake.logins == []
    assert "authorization" not in fake.api_requests[0].headers


def test_the_flow_leaves_a_streamed_body_unread() -> None:
    stream = ScriptedStream([log_frame(0, "hi\n"), END])
    fake = FakeConcourse(lambda request: httpx.Response(200, headers=SSE_HEADERS, stream=stream))
    with (
        http_client(fake, password_auth()) as client,
        client.stream("GET", "/api/v1/builds/3/events") as response,
    ):
        assert not response.is_stream_consumed  # the event stream is read by its consumer
        assert not stream.read_past_end
        assert b"hi" in response.read()


def test_token_expiry_mid_stream_logs_in_again_and_resumes_after_the_last_event() -> None:
    """The stream breaks; by then the server no longer takes the first token, so the resumed
    connection gets a 401, logs in and resumes with the same Last-Event-ID."""
    expired = threading.Event()

    def api(request: httpx.Request) -> httpx.Response:
        if expired.is_set() and request.headers["authorization"] == "Bearer access-1":
            return httpx.Response(401, text="not authorized")
        if "last-event-id" not in request.headers:
            expired.set()  # the token runs out while the first connection streams
            chunks = [log_frame(0, "one\n"), log_frame(1, "two\n")]
            return httpx.Response(
                200, headers=SSE_HEADERS, stream=ScriptedStream(chunks, httpx.ReadError("cut"))
            )
        return httpx.Response(
            200, headers=SSE_HEADERS, stream=ScriptedStream([log_frame(2, "three\n"), END])
        )

    fake = FakeConcourse(api)
    assert fake.client().log_tail(3) == "one\ntwo\nthree\n"
    assert len(fake.logins) == 2
    sent = [(r.headers["authorization"], r.headers.get("last-event-id")) for r in fake.api_requests]
    assert sent == [("Bearer access-1", None), ("Bearer access-1", "1"), ("Bearer access-2", "1")]


def test_two_requests_refused_at_once_log_in_again_once() -> None:
    both_refused = threading.Barrier(2, timeout=5)

    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer access-1":
            both_refused.wait()  # both hold the old token when the server rejects it
            return httpx.Response(401, text="not authorized")
        return httpx.Response(200, json=build_json(1))

    fake = FakeConcourse(api)
    client = fake.client()
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            client.build(1)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake.logins) == 2  # the first login, and one after the 401s
    tokens = sorted(r.headers["authorization"] for r in fake.api_requests)
    assert tokens == ["Bearer access-1"] * 2 + ["Bearer access-2"] * 2
