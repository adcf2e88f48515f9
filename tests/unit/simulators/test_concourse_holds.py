"""The Concourse simulator's pauses, archives, pins and build preparation, on the wire, as
atc presents them (`atc/api/present/{job,pipeline,resource,build_preparation}.go`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.concourse import ConcourseSimulator
from workers.concourse import ConcourseClient

SHA_A = "a" * 40
SHA_B = "b" * 40
PIPELINE = "/api/v1/teams/dev/pipelines/app"
GO_ZERO_TIME = -62135596800  # `time.Time{}.Unix()`: a job summary's build that never started

HTTP = httpx.Client(timeout=5.0)

CONFIG: dict[str, Any] = {
    "resources": [
        {"name": "repo", "type": "git", "source": {"uri": "x"}},
        {"name": "tools", "type": "git", "source": {"uri": "y"}},
    ],
    "jobs": [
        {"name": "unit", "plan": [{"get": "repo", "trigger": True}, {"get": "tools"}]},
        {
            "name": "deploy",
            "plan": [
                {"in_parallel": {"steps": [{"get": "repo", "trigger": True, "passed": ["unit"]}]}}
            ],
        },
    ],
}


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture
def sim() -> Iterator[ConcourseSimulator]:
    simulator = ConcourseSimulator(team="dev", users={"bot": "secret", "eve": "pw"})
    simulator.start()
    simulator.add_pipeline("app", ["unit", "deploy"], ["repo", "tools"])
    simulator.set_config("app", CONFIG)
    yield simulator
    simulator.stop()


def bearer(sim: ConcourseSimulator, user: str = "bot", password: str = "secret") -> dict[str, str]:
    token = HTTP.post(
        f"{sim.url}/sky/issuer/token",
        data={
            "grant_type": "password",
            "username": user,
            "password": password,
            "scope": "openid profile email federated:id groups",
        },
        auth=("fly", "Zmx5"),
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def get(sim: ConcourseSimulator, path: str) -> Any:
    response = HTTP.get(f"{sim.url}{path}", headers=bearer(sim))
    assert response.status_code == 200, response.text
    return response.json()


def put(sim: ConcourseSimulator, path: str, **kwargs: Any) -> httpx.Response:
    return HTTP.put(f"{sim.url}{path}", headers=bearer(sim), **kwargs)


def summary(sim: ConcourseSimulator, job: str) -> dict[str, Any]:
    return next(j for j in get(sim, f"{PIPELINE}/jobs") if j["name"] == job)


# -- pausing ------------------------------------------------------------------------------------


def test_a_paused_job_shows_who_paused_it_and_when_until_unpaused(sim: ConcourseSimulator) -> None:
    assert "paused" not in summary(sim, "deploy")  # omitempty: absent, not false
    assert put(sim, f"{PIPELINE}/jobs/deploy/pause").status_code == 200
    paused = summary(sim, "deploy")
    assert paused["paused"] is True and paused["paused_by"] == "bot"
    assert isinstance(paused["paused_at"], int)
    job = get(sim, f"{PIPELINE}/jobs/deploy")
    assert (job["paused"], job["paused_by"]) == (True, "bot")
    assert put(sim, f"{PIPELINE}/jobs/deploy/unpause").status_code == 200
    assert {"paused", "paused_by", "paused_at"}.isdisjoint(summary(sim, "deploy"))


def test_a_paused_pipeline_always_says_paused_public_and_archived(sim: ConcourseSimulator) -> None:
    body = get(sim, PIPELINE)
    assert (body["paused"], body["public"], body["archived"]) == (False, False, False)
    assert "paused_by" not in body
    sim.pause_pipeline("app", by="alice")
    body = get(sim, PIPELINE)
    assert (body["paused"], body["paused_by"]) == (True, "alice")
    listed = get(sim, "/api/v1/teams/dev/pipelines")[0]
    assert listed["paused_by"] == "alice"
    assert put(sim, f"{PIPELINE}/unpause").status_code == 200
    assert get(sim, PIPELINE)["paused"] is False


def test_a_paused_job_never_starts_a_build(sim: ConcourseSimulator) -> None:
    sim.pause_job("app", "unit", by="alice")
    build = sim.create_build("app", "unit", inputs={"repo": {"ref": SHA_A}})
    with pytest.raises(ValueError, match="paused"):
        sim.start_build(build)
    assert not sim.runnable("app", "unit")
    sim.unpause_job("app", "unit")
    assert sim.wait_until_runnable("app", "unit", timeout=1)
    sim.start_build(build)


def test_writes_need_a_role_in_the_team(sim: ConcourseSimulator) -> None:
    sim.remove_user_from_team("eve")
    assert HTTP.put(f"{sim.url}{PIPELINE}/pause").status_code == 401
    response = HTTP.put(f"{sim.url}{PIPELINE}/pause", headers=bearer(sim, "eve", "pw"))
    assert response.status_code == 403
    assert put(sim, "/api/v1/teams/dev/pipelines/nope/pause").status_code == 404
    assert put(sim, f"{PIPELINE}/jobs/nope/pause").status_code == 404


# -- archiving ----------------------------------------------------------------------------------


def test_an_archived_pipeline_is_paused_by_the_archiver_and_refuses_writes(
    sim: ConcourseSimulator,
) -> None:
    assert put(sim, f"{PIPELINE}/archive").status_code == 200
    body = get(sim, PIPELINE)
    assert (body["archived"], body["paused"]) == (True, True)
    assert body["paused_by"] == "automatic-pipeline-archiver"
    config = HTTP.get(f"{sim.url}{PIPELINE}/config", headers=bearer(sim))
    assert config.status_code == 404
    unpause = put(sim, f"{PIPELINE}/unpause")
    assert unpause.status_code == 409
    assert "archived pipeline" in unpause.text
    assert put(sim, f"{PIPELINE}/resources/repo/unpin").status_code == 409
    assert put(sim, f"{PIPELINE}/jobs/unit/pause").status_code == 200  # not behind the wrapper
    assert [j["name"] for j in get(sim, f"{PIPELINE}/jobs")] == ["unit", "deploy"]


# -- pinning ------------------------------------------------------------------------------------


def test_a_pinned_resource_shows_its_version_and_comment(sim: ConcourseSimulator) -> None:
    old = sim.add_version("app", "repo", {"ref": SHA_A})
    sim.add_version("app", "repo", {"ref": SHA_B})
    resource = get(sim, f"{PIPELINE}/resources/repo")
    assert {"pinned_version", "pin_comment", "pinned_in_config"}.isdisjoint(resource)
    assert put(sim, f"{PIPELINE}/resources/repo/versions/{old}/pin").status_code == 200
    comment = {"pin_comment": "hold: release freeze"}
    assert put(sim, f"{PIPELINE}/resources/repo/pin_comment", json=comment).status_code == 200
    listed = {r["name"]: r for r in get(sim, f"{PIPELINE}/resources")}
    assert listed["repo"]["pinned_version"] == {"ref": SHA_A}
    assert listed["repo"]["pin_comment"] == "hold: release freeze"
    assert "pinned_version" not in listed["tools"]
    assert put(sim, f"{PIPELINE}/resources/repo/versions/999/pin").status_code == 404
    assert put(sim, f"{PIPELINE}/resources/repo/pin_comment", content=b"{").status_code == 400
    assert not sim.runnable("app", "unit", ["repo"])
    assert put(sim, f"{PIPELINE}/resources/repo/unpin").status_code == 200
    assert "pinned_version" not in get(sim, f"{PIPELINE}/resources/repo")
    assert put(sim, f"{PIPELINE}/resources/repo/unpin").status_code == 500  # nothing pinned


# -- jobs ---------------------------------------------------------------------------------------


def test_job_summaries_carry_inputs_and_a_pending_next_build_with_go_zero_times(
    sim: ConcourseSimulator,
) -> None:
    build = sim.create_build("app", "deploy")
    deploy = summary(sim, "deploy")
    assert deploy["inputs"] == [
        {"name": "repo", "resource": "repo", "passed": ["unit"], "trigger": True}
    ]
    assert deploy["next_build"]["id"] == build
    assert deploy["next_build"]["status"] == "pending"
    assert deploy["next_build"]["start_time"] == GO_ZERO_TIME
    assert "finished_build" not in deploy  # a summary omits what a job GET sends as null
    unit = summary(sim, "unit")
    assert unit["inputs"][1] == {"name": "tools", "resource": "tools"}  # trigger omitempty
    assert get(sim, f"{PIPELINE}/jobs/unit")["inputs"][1]["trigger"] is False
    assert get(sim, f"{PIPELINE}/jobs/unit")["finished_build"] is None


# -- preparation --------------------------------------------------------------------------------


def test_the_preparation_of_a_pending_build_says_what_blocks_it(sim: ConcourseSimulator) -> None:
    build = sim.create_build("app", "deploy")
    prep = get(sim, f"/api/v1/builds/{build}/preparation")
    assert prep == {
        "build_id": build,
        "paused_pipeline": "not_blocking",
        "paused_job": "not_blocking",
        "max_running_builds": "not_blocking",
        "inputs": {"repo": "blocking"},
        "inputs_satisfied": "blocking",
        "missing_input_reasons": {"repo": "input is not included in resolved candidates"},
    }
    sim.set_resolve_error(build, "repo", "no versions satisfy passed constraints")
    sim.pause_job("app", "deploy")
    sim.pause_pipeline("app")
    sim.set_max_in_flight_reached("app", "deploy")
    prep = get(sim, f"/api/v1/builds/{build}/preparation")
    assert prep["missing_input_reasons"] == {"repo": "no versions satisfy passed constraints"}
    assert (prep["paused_job"], prep["paused_pipeline"]) == ("blocking", "blocking")
    assert prep["max_running_builds"] == "blocking"
    sim.set_inputs(build, {"repo": {"ref": SHA_A}})  # settling them resolves them
    sim.unpause_pipeline("app")
    sim.unpause_job("app", "deploy")
    sim.set_max_in_flight_reached("app", "deploy", reached=False)
    prep = get(sim, f"/api/v1/builds/{build}/preparation")
    assert prep["inputs"] == {"repo": "not_blocking"}
    assert prep["inputs_satisfied"] == "not_blocking"
    assert {prep["paused_job"], prep["paused_pipeline"], prep["max_running_builds"]} == {
        "not_blocking"
    }


def test_a_build_that_is_not_pending_blocks_on_nothing(sim: ConcourseSimulator) -> None:
    build = sim.create_build(
        "app", "unit", inputs={"repo": {"ref": SHA_A}, "tools": {"ref": SHA_B}}
    )
    prep = get(sim, f"/api/v1/builds/{build}/preparation")
    assert prep["inputs"] == {"repo": "not_blocking", "tools": "not_blocking"}
    assert prep["inputs_satisfied"] == "not_blocking"
    sim.start_build(build)
    prep = get(sim, f"/api/v1/builds/{build}/preparation")
    assert (prep["inputs"], prep["missing_input_reasons"]) == ({}, {})
    assert HTTP.get(f"{sim.url}/api/v1/builds/{build}/preparation").status_code == 401
    assert HTTP.get(f"{sim.url}/api/v1/builds/9999/preparation").status_code == 404


# -- the real client reads them -----------------------------------------------------------------


def test_the_client_reads_pauses_pins_and_preparation(sim: ConcourseSimulator) -> None:
    old = sim.add_version("app", "repo", {"ref": SHA_A})
    sim.pin_version("app", "repo", old, comment="freeze")
    sim.pause_job("app", "deploy", by="alice")
    sim.pause_pipeline("app", by="bob")
    pending = sim.create_build("app", "deploy")
    with ConcourseClient(sim.url, "dev", username="bot", password="secret") as client:
        (pipeline,) = client.pipelines()
        assert (pipeline.paused, pipeline.paused_by, pipeline.archived) == (True, "bob", False)
        jobs = {j.name: j for j in client.jobs("app")}
        assert (jobs["deploy"].paused, jobs["deploy"].paused_by) == (True, "alice")
        assert not jobs["unit"].paused and jobs["unit"].next_build is None
        next_build = jobs["deploy"].next_build
        assert next_build is not None and next_build.id == pending
        assert next_build.start_time is None  # year 1 in the JSON means "not started"
        assert [i.resource for i in jobs["deploy"].inputs] == ["repo"]
        resource = client.resource("app", "repo")
        assert (resource.pinned_version, resource.pin_comment) == ({"ref": SHA_A}, "freeze")
        assert client.resource("app", "tools").pinned_version is None
        preparation = client.build_preparation(pending)
        assert (preparation.paused_job, preparation.paused_pipeline) == ("blocking", "blocking")
        assert preparation.inputs_satisfied == "blocking"


def test_a_viewer_may_read_but_not_write(sim: ConcourseSimulator) -> None:
    sim.set_role("eve", "viewer")
    headers = bearer(sim, "eve", "pw")
    assert HTTP.get(f"{sim.url}{PIPELINE}", headers=headers).status_code == 200
    assert HTTP.put(f"{sim.url}{PIPELINE}/pause", headers=headers).status_code == 403
    with pytest.raises(ValueError, match="not a Concourse role"):
        sim.set_role("eve", "admin")
