"""The real client against the Concourse simulator over loopback, plus raw checks of the wire."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.concourse import ConcourseSimulator
from workers.concourse import ConcourseClient
from workers.errors import ConcourseAuthError, ConcourseNotFound, ConcourseUnavailable

SHA_A = "a" * 40
SHA_B = "b" * 40
JOBS = "/api/v1/teams/dev/pipelines/app/jobs"


# Plain httpx for checks on the wire; one client, as building one per call is slow.
HTTP = httpx.Client(timeout=5.0)


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture
def sim() -> Iterator[ConcourseSimulator]:
    simulator = ConcourseSimulator(team="dev", users={"bot": "secret", "eve": "pw"})
    simulator.start()
    simulator.add_pipeline("app", ["unit", "deploy"], ["repo"])
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim: ConcourseSimulator) -> Iterator[ConcourseClient]:
    with ConcourseClient(sim.url, "dev", username="bot", password="secret") as concourse:
        yield concourse


def login(
    sim: ConcourseSimulator, scope: str = "openid profile email federated:id groups"
) -> httpx.Response:
    response = HTTP.post(
        f"{sim.url}/sky/issuer/token",
        data={"grant_type": "password", "username": "bot", "password": "secret", "scope": scope},
        auth=("fly", "Zmx5"),
    )
    return response


def bearer(sim: ConcourseSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {login(sim).json()['access_token']}"}


def finished_builds(sim: ConcourseSimulator, job: str, n: int) -> list[int]:
    ids = []
    for _ in range(n):
        build_id = sim.create_build("app", job, inputs={"repo": {"ref": SHA_A}})
        sim.start_build(build_id)
        sim.finish_build(build_id, "succeeded")
        ids.append(build_id)
    return ids


# -- listings -----------------------------------------------------------------------------------


def test_a_rerun_of_an_old_build_is_not_newest_but_is_found_since_an_id(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    ids = finished_builds(sim, "unit", 8)
    rerun_id = sim.rerun(ids[1])

    raw = HTTP.get(f"{sim.url}{JOBS}/unit/builds", headers=bearer(sim)).json()
    assert [b["id"] for b in raw] == [8, 7, 6, 5, 4, 3, rerun_id, 2, 1]  # next to its original
    assert raw[6]["name"] == "2.1" and raw[6]["rerun_of"] == {"id": 2, "name": "2"}

    newest = client.job_builds("app", "unit", limit=5)
    assert rerun_id not in [b.id for b in newest]
    since = client.job_builds("app", "unit", since_id=6, limit=2)
    assert [b.id for b in since] == [6, 7, 8, rerun_id]
    assert since[-1].rerun_of is not None and since[-1].rerun_of.id == 2


def test_a_rerun_of_a_rerun_points_at_the_original(sim: ConcourseSimulator) -> None:
    (first,) = finished_builds(sim, "unit", 1)
    second = sim.rerun(sim.rerun(first))
    build = sim.get_build(second)
    assert build["name"] == "1.2" and build["rerun_number"] == 2
    assert build["rerun_of"] == {"id": first, "name": "1"}
    assert build["created_by"] == "admin" and build["status"] == "pending"


def test_from_and_to_paging_and_link_headers(sim: ConcourseSimulator) -> None:
    finished_builds(sim, "unit", 6)
    headers = bearer(sim)

    only_from = HTTP.get(f"{sim.url}{JOBS}/unit/builds?from=2&limit=3", headers=headers)
    assert [b["id"] for b in only_from.json()] == [4, 3, 2]  # closest above, newest first
    links = only_from.headers.get_list("link")
    assert links == [
        f'<{sim.url}{JOBS}/unit/builds?to=1&limit=3>; rel="next"',
        f'<{sim.url}{JOBS}/unit/builds?from=5&limit=3>; rel="previous"',
    ]

    both = HTTP.get(f"{sim.url}{JOBS}/unit/builds?from=2&to=5", headers=headers)
    assert [b["id"] for b in both.json()] == [2, 3, 4, 5]  # ascending

    only_to = HTTP.get(f"{sim.url}{JOBS}/unit/builds?to=3&limit=2", headers=headers)
    assert [b["id"] for b in only_to.json()] == [3, 2]

    backwards = HTTP.get(f"{sim.url}{JOBS}/unit/builds?from=5&to=2", headers=headers)
    assert backwards.status_code == 404


def test_build_ids_are_global_and_names_per_job(sim: ConcourseSimulator) -> None:
    unit = sim.create_build("app", "unit")
    deploy = sim.create_build("app", "deploy")
    assert (unit, deploy) == (1, 2)
    assert sim.get_build(deploy)["name"] == "1"
    latest = HTTP.get(f"{sim.url}{JOBS}/deploy/builds/latest", headers=bearer(sim)).json()
    assert latest["id"] == deploy


def test_optional_fields_are_absent_not_null(sim: ConcourseSimulator) -> None:
    headers = bearer(sim)
    job = HTTP.get(f"{sim.url}{JOBS}/deploy", headers=headers).json()
    assert job["next_build"] is None and job["finished_build"] is None  # explicit nulls

    pending = sim.create_build("app", "unit")
    raw = HTTP.get(f"{sim.url}/api/v1/builds/{pending}", headers=headers).json()
    assert set(raw) == {
        "id",
        "team_name",
        "name",
        "status",
        "api_url",
        "job_name",
        "pipeline_id",
        "pipeline_name",
    }
    assert raw["api_url"] == f"/api/v1/builds/{pending}"
    job = HTTP.get(f"{sim.url}{JOBS}/unit", headers=headers).json()
    assert job["next_build"]["id"] == pending and job["finished_build"] is None


def test_filter_ref_and_input_to(sim: ConcourseSimulator, client: ConcourseClient) -> None:
    version_a = sim.add_version("app", "repo", {"ref": SHA_A}, metadata={"author": "Alice"})
    version_b = sim.add_version("app", "repo", {"ref": SHA_B})
    unit = sim.create_build("app", "unit", inputs={"repo": {"ref": SHA_A}})
    deploy = sim.create_build("app", "deploy", inputs={"repo": {"ref": SHA_A}})
    sim.create_build("app", "unit", inputs={"repo": {"ref": SHA_B}})

    (found,) = client.versions("app", "repo", ref=SHA_A)
    assert found.id == version_a and found.metadata == []  # nothing fetched it yet
    assert client.versions("app", "repo", ref=SHA_A[:7]) == []  # exact values only

    listing = HTTP.get(
        f"{sim.url}/api/v1/teams/dev/pipelines/app/resources/repo/versions", headers=bearer(sim)
    ).json()
    assert [v["id"] for v in listing] == [version_b, version_a]  # newest check first
    assert "metadata" not in listing[1]

    sim.start_build(unit)
    (found,) = client.versions("app", "repo", ref=SHA_A)
    assert [(m.name, m.value) for m in found.metadata] == [("author", "Alice")]

    rerun = sim.rerun(unit)
    users = client.input_to("app", "repo", version_a)
    assert [(b.id, b.job_name) for b in users] == [
        (unit, "unit"),
        (deploy, "deploy"),
        (rerun, "unit"),
    ]
    assert client.build_resources(rerun).inputs[0].first_occurrence is False
    assert client.build_resources(unit).inputs[0].first_occurrence is True


def test_a_pending_build_may_have_no_inputs_yet(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    build_id = sim.create_build("app", "unit")
    raw = HTTP.get(f"{sim.url}/api/v1/builds/{build_id}/resources", headers=bearer(sim))
    assert raw.json() == {"inputs": [], "outputs": []}
    assert client.build_resources(build_id).input_ref("repo") is None

    sim.set_inputs(build_id, {"repo": {"ref": SHA_B}})
    assert client.build_resources(build_id).input_ref("repo") == SHA_B


# -- event streams --------------------------------------------------------------------------------


def wait_until(condition: Any, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_log_tail_of_a_finished_build_returns_at_end_although_the_stream_stays_open(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    build_id = sim.create_build("app", "unit")
    sim.start_build(build_id)
    for i in range(300):
        sim.log(build_id, f"\x1b[32mstep {i}\x1b[0m\r\n")
    sim.error(build_id, "worker went away")
    sim.finish_build(build_id, "errored")

    started = time.monotonic()
    tail = client.log_tail(build_id, max_chars=40, read_timeout=5.0)
    assert time.monotonic() - started < 2.0  # it did not wait for the 5 s read timeout
    assert tail == "step 297\nstep 298\nstep 299\nworker went away\n"[-40:]
    assert wait_until(lambda: sim.open_streams == 0)  # the client hung up

    # The server really does keep the stream open after `end`: a reader that waits for EOF
    # times out.
    events_url = f"{sim.url}/api/v1/builds/{build_id}/events"
    quick = httpx.Timeout(5.0, read=0.3)
    with (
        pytest.raises(httpx.ReadTimeout),
        HTTP.stream("GET", events_url, headers=bearer(sim), timeout=quick) as response,
    ):
        for _ in response.iter_bytes():
            pass


def test_log_tail_follows_a_running_build_until_it_finishes(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    build_id = sim.create_build("app", "unit")
    sim.start_build(build_id)
    sim.log(build_id, "compiling\n")

    def script() -> None:
        time.sleep(0.2)
        sim.log(build_id, "tests failed\n")
        sim.finish_build(build_id, "failed")

    thread = threading.Thread(target=script)
    thread.start()
    started = time.monotonic()
    tail = client.log_tail(build_id, read_timeout=5.0)
    thread.join()
    assert tail == "compiling\ntests failed\n"
    assert 0.15 < time.monotonic() - started < 2.0


def test_a_reaped_build_has_an_empty_tail(sim: ConcourseSimulator, client: ConcourseClient) -> None:
    build_id = sim.create_build("app", "unit")
    sim.start_build(build_id)
    sim.log(build_id, "gone soon\n")
    sim.finish_build(build_id, "failed")
    assert client.log_tail(build_id) == "gone soon\n"
    sim.reap(build_id)
    assert client.log_tail(build_id, read_timeout=5.0) == ""
    assert "reap_time" in sim.get_build(build_id)


def test_events_resume_after_last_event_id(sim: ConcourseSimulator) -> None:
    build_id = sim.create_build("app", "unit")
    sim.start_build(build_id)
    sim.log(build_id, "one\n")
    sim.log(build_id, "two\n")
    sim.finish_build(build_id, "succeeded")
    headers = {**bearer(sim), "Last-Event-ID": "1"}
    with HTTP.stream(
        "GET", f"{sim.url}/api/v1/builds/{build_id}/events", headers=headers
    ) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["content-encoding"] == "gzip"  # events are always compressed
        received = ""
        for text in response.iter_text():
            received += text
            if "event: end" in text:
                break
    assert received.startswith("id: 2\nevent: event\ndata: {")
    assert '"payload": "two\\n"' in received
    assert received.endswith("id: 4\nevent: end\ndata\n\n")


# -- auth ---------------------------------------------------------------------------------------


def test_token_expiry_mid_use_is_a_transparent_relogin(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    build_id = sim.create_build("app", "unit")
    client.build(build_id)
    assert sim.logins == 1
    sim.expire_tokens()
    assert client.build(build_id).id == build_id
    assert sim.logins == 2
    client.build(build_id)
    assert sim.logins == 2


def test_tokens_die_after_their_lifetime() -> None:
    now = [1_000_000.0]
    with ConcourseSimulator(token_ttl=3600, clock=lambda: now[0]) as sim:
        sim.add_pipeline("app", ["unit"], [])
        headers = bearer(sim)
        assert HTTP.get(f"{sim.url}/api/v1/user", headers=headers).status_code == 200
        now[0] += 3600
        assert HTTP.get(f"{sim.url}/api/v1/user", headers=headers).status_code == 401

        with ConcourseClient(
            sim.url, "dev", username="bot", password="secret", clock=lambda: now[0]
        ) as client:
            client.job_builds("app", "unit")
            now[0] += 3600 - 299  # inside the 300 s margin: renewed before it can fail
            client.job_builds("app", "unit")
        assert sim.logins == 3
        assert [s for _, path, s in sim.requests if path.startswith("/api/v1/teams")] == [200, 200]


def test_the_id_token_is_not_an_api_token(sim: ConcourseSimulator) -> None:
    grant = login(sim).json()
    assert set(grant) == {"access_token", "token_type", "expires_in", "id_token"}
    assert len(grant["access_token"]) == 38 and grant["token_type"] == "bearer"
    assert 86390 <= grant["expires_in"] <= 86400
    id_token = HTTP.get(
        f"{sim.url}/api/v1/user", headers={"Authorization": f"Bearer {grant['id_token']}"}
    )
    assert (id_token.status_code, id_token.text) == (401, "not authorized")
    access = HTTP.get(
        f"{sim.url}/api/v1/user", headers={"Authorization": f"bearer {grant['access_token']}"}
    )
    assert access.json()["teams"] == {"dev": ["member"]}


def test_login_errors_are_dex_json(sim: ConcourseSimulator) -> None:
    no_openid = login(sim, scope="profile federated:id")
    assert no_openid.status_code == 400 and no_openid.json()["error"] == "invalid_request"
    wrong = HTTP.post(
        f"{sim.url}/sky/issuer/token",
        data={"grant_type": "password", "username": "bot", "password": "nope", "scope": "openid"},
        auth=("fly", "Zmx5"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "access_denied"
    assert sim.logins == 0

    with pytest.raises(ConcourseAuthError, match="login failed for user bot") as caught:
        ConcourseClient(sim.url, "dev", username="bot", password="nope").build(1)
    assert "nope" not in str(caught.value)


def test_without_federated_id_the_token_has_no_team_role(sim: ConcourseSimulator) -> None:
    token = login(sim, scope="openid profile email groups").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert HTTP.get(f"{sim.url}/api/v1/user", headers=headers).json()["teams"] == {}
    listing = HTTP.get(f"{sim.url}{JOBS}/unit/builds", headers=headers)
    assert (listing.status_code, listing.text) == (403, "forbidden")


def test_losing_the_team_role_is_an_auth_error_without_relogin(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    client.job_builds("app", "unit")
    sim.remove_user_from_team("bot")
    with pytest.raises(ConcourseAuthError, match="no role in Concourse team dev"):
        client.job_builds("app", "unit")
    assert sim.logins == 1
    sim.add_user_to_team("bot")
    assert client.job_builds("app", "unit") == []


def test_unknown_pipeline_is_404_before_auth(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    unknown_pipeline = HTTP.get(f"{sim.url}/api/v1/teams/dev/pipelines/nope/jobs/unit/builds")
    assert unknown_pipeline.status_code == 404
    assert HTTP.get(f"{sim.url}/api/v1/teams/ops/pipelines/app/jobs/unit").status_code == 404
    known = HTTP.get(f"{sim.url}{JOBS}/unit/builds")
    assert (known.status_code, known.text) == (401, "not authorized")
    # The job is looked up after the pipeline-scoped auth check, as upstream does.
    assert HTTP.get(f"{sim.url}{JOBS}/nope/builds").status_code == 401
    assert HTTP.get(f"{sim.url}/api/v1/info").status_code == 200  # anonymous is fine…
    bad = HTTP.get(f"{sim.url}/api/v1/info", headers={"Authorization": "Bearer stale"})
    assert bad.status_code == 401  # …but a bad token is not
    with pytest.raises(ConcourseNotFound, match="pipeline/job not found: app/nope"):
        client.job_builds("app", "nope")
    with pytest.raises(ConcourseNotFound, match="pipeline/resource not found: app/nope"):
        client.versions("app", "nope", ref=SHA_A)
    with pytest.raises(ConcourseNotFound, match="build not found: 999"):
        client.build(999)


def test_public_pipelines_serve_the_anonymous_view_even_with_a_bad_token() -> None:
    with ConcourseSimulator(public_pipelines=frozenset({"app"})) as sim:
        sim.add_pipeline("app", ["unit"], ["repo"])
        version = sim.add_version("app", "repo", {"ref": SHA_A}, metadata={"author": "Alice"})
        build_id = sim.create_build("app", "unit", inputs={"repo": {"ref": SHA_A}})
        sim.start_build(build_id)
        stale = {"Authorization": "Bearer expired"}
        url = f"{sim.url}/api/v1/teams/dev/pipelines/app/resources/repo/versions"
        anonymous = HTTP.get(url, headers=stale)
        assert anonymous.status_code == 200 and "metadata" not in anonymous.json()[0]
        assert HTTP.get(url, headers=bearer(sim)).json()[0]["metadata"] == [
            {"name": "author", "value": "Alice"}
        ]
        assert version == anonymous.json()[0]["id"]
        events = HTTP.get(f"{sim.url}/api/v1/builds/{build_id}/events", headers=stale)
        assert events.status_code == 401  # events also need the job to be public


# -- the wire -----------------------------------------------------------------------------------


def test_big_bodies_are_gzipped_and_every_response_names_the_version(
    sim: ConcourseSimulator,
) -> None:
    finished_builds(sim, "unit", 30)
    headers = {**bearer(sim), "Accept-Encoding": "gzip"}
    big = HTTP.get(f"{sim.url}{JOBS}/unit/builds", headers=headers)
    assert big.headers["content-encoding"] == "gzip"
    assert len(big.json()) == 30
    small = HTTP.get(f"{sim.url}{JOBS}/unit/builds?limit=1", headers=headers)
    assert "content-encoding" not in small.headers
    for response in (big, small, HTTP.get(f"{sim.url}/api/v1/nope"), login(sim)):
        assert response.headers["x-concourse-version"] == "7.11.2"


def test_an_outage_is_unavailable_and_passes(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    build_id = sim.create_build("app", "unit")
    sim.fail_next(1, 503)
    with pytest.raises(ConcourseUnavailable) as caught:
        client.build(build_id)
    assert caught.value.status == 503
    assert client.build(build_id).status == "pending"
    assert client.server_version == "7.11.2"


def test_config_is_served_as_atc_marshals_it(sim: ConcourseSimulator) -> None:
    # `fly set-pipeline` with a resource that has no `source` and a job with no `plan`.
    version = sim.set_config(
        "app",
        {
            "groups": [],
            "resources": [{"name": "every-hour", "type": "time"}, {"name": "repo", "type": "git"}],
            "jobs": [{"name": "unit", "plan": [{"get": "repo"}]}, {"name": "deploy"}],
        },
    )
    response = HTTP.get(f"{sim.url}/api/v1/teams/dev/pipelines/app/config", headers=bearer(sim))
    assert response.status_code == 200
    assert response.headers["X-Concourse-Config-Version"] == str(version)
    # No omitempty on a resource's source or a job's plan: null, not absent; empty groups: absent.
    assert response.json() == {
        "config": {
            "resources": [
                {"name": "every-hour", "type": "time", "source": None},
                {"name": "repo", "type": "git", "source": None},
            ],
            "jobs": [{"name": "unit", "plan": [{"get": "repo"}]}, {"name": "deploy", "plan": None}],
        }
    }


# -- reruns over the API --------------------------------------------------------------------------


def test_a_rerun_over_the_api_is_numbered_after_the_original_and_created_by_the_caller(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    build = sim.create_build("app", "unit", inputs={"repo": {"ref": SHA_A}})
    sim.start_build(build)
    sim.finish_build(build, "failed")
    first = client.rerun_build("app", "unit", "1")
    assert (first.name, first.status, first.created_by) == ("1.1", "pending", "bot")
    assert first.rerun_of is not None and first.rerun_of.id == build
    second = client.rerun_build("app", "unit", "1.1")  # a rerun of a rerun reruns the original
    assert second.name == "1.2" and second.rerun_of is not None and second.rerun_of.id == build
    assert sim.wait_for_rerun(build, timeout=0) == first.id
    assert sim.wait_for_rerun(first.id, timeout=0) == second.id
    assert sim.wait_for_rerun(second.id, timeout=0) is None
    inputs = client.build_resources(second.id).inputs
    assert [(i.name, i.version) for i in inputs] == [("repo", {"ref": SHA_A})]


def test_a_rerun_needs_pipeline_operator_or_above(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    build = sim.create_build("app", "unit", inputs={"repo": {"ref": SHA_A}})
    path = f"{sim.url}{JOBS}/unit/builds/1"
    assert HTTP.post(path).status_code == 401
    sim.set_role("bot", "viewer")
    assert client.user().teams == {"dev": ["viewer"]}
    assert client.job_builds("app", "unit")  # a viewer still reads
    with pytest.raises(ConcourseAuthError, match="pipeline-operator"):
        client.rerun_build("app", "unit", "1")
    sim.set_role("bot", "pipeline-operator")
    assert client.rerun_build("app", "unit", "1").name == "1.1"
    assert sim.wait_for_rerun(build, timeout=0) is not None
    assert sim.rerun_requests == [f"{JOBS}/unit/builds/1"] * 3


def test_a_rerun_of_an_unknown_job_or_build_is_404_and_of_unsettled_inputs_500(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    with pytest.raises(ConcourseNotFound):
        client.rerun_build("app", "unit", "7")
    with pytest.raises(ConcourseNotFound):
        client.rerun_build("app", "nope", "1")
    sim.create_build("app", "unit")  # pending, its inputs not determined yet
    response = HTTP.post(f"{sim.url}{JOBS}/unit/builds/1", headers=bearer(sim))
    assert response.status_code == 500


def test_wait_for_rerun_wakes_up_when_someone_reruns(
    sim: ConcourseSimulator, client: ConcourseClient
) -> None:
    build = sim.create_build("app", "unit", inputs={"repo": {"ref": SHA_A}})
    sim.start_build(build)
    sim.finish_build(build, "failed")
    found: list[int | None] = []
    waiter = threading.Thread(target=lambda: found.append(sim.wait_for_rerun(build, 5.0)))
    waiter.start()
    rerun = client.rerun_build("app", "unit", "1")
    waiter.join(5.0)
    assert found == [rerun.id]
