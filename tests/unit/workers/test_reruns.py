"""Reruns asked for from a failure prompt, against a real Redis and a fake Concourse."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from simulators.concourse import ConcourseSimulator
from workers import keys
from workers.chain import Chain, load_chain
from workers.concourse import ConcourseClient
from workers.monitor import Monitor, Observation, ObservedBuild, new_monitor, transition
from workers.reruns import request_rerun
from workers.store import MonitorStore

SHA = "a" * 40
T0 = 1_700_000_000


class Concourse:
    """Answers token requests and reruns; counts the reruns asked for."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.reruns: list[str] = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sky/issuer/token":
            body = {"access_token": "t", "token_type": "bearer", "expires_in": 86400}
            return httpx.Response(200, json=body)
        assert request.method == "POST"
        self.gate.wait(5)
        with self.lock:
            self.reruns.append(request.url.path)
            n = len(self.reruns)
        if self.status != 200:
            return httpx.Response(self.status, text="forbidden")
        body: dict[str, Any] = {"id": 100 + n, "name": f"57.{n}", "status": "pending"}
        return httpx.Response(200, json=body)

    def client(self) -> ConcourseClient:
        transport = httpx.MockTransport(self)
        return ConcourseClient(
            "https://ci.example.com", "dev", username="bot", password="pw", transport=transport
        )


@pytest.fixture(scope="module")
def chain() -> Chain:
    return load_chain()


@pytest.fixture
def store(redis_conn: redis.Redis) -> MonitorStore:
    return MonitorStore(redis_conn, namespace="dm:test-reruns")


def failed_monitor(
    store: MonitorStore,
    chain: Chain,
    policy: str = "ask",
    *,
    build_id: int = 11,
    build_name: str = "57",
) -> Monitor:
    monitor, events = new_monitor(
        chain=chain,
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline="Add fee",
        committed_at=T0,
        files=["core/src/lib.rs"],
        now=T0,
        requester="U1",
        on_failure=policy,  # type: ignore[arg-type]
    )
    failing = ObservedBuild(
        id=build_id,
        name=build_name,
        status="failed",
        start_time=T0 + 1,
        end_time=T0 + 9,
        input_ref=SHA,
        covers=True,
    )
    observation = Observation(now=T0 + 10, builds={"lana-bank/test-bats": [failing]})
    monitor, more = transition(monitor, observation, chain)
    assert monitor.prompt is not None
    store.create(monitor, [*events, *more], due_at=T0)
    return monitor


def test_a_rerun_is_asked_once_and_recorded_as_continue(store: MonitorStore, chain: Chain) -> None:
    monitor = failed_monitor(store, chain)
    concourse = Concourse()
    outcome = request_rerun(store, concourse.client(), monitor.id, 1, "U1")
    assert outcome.status == "started" and outcome.rerun is not None
    assert outcome.rerun.rerun_name == "57.1" and outcome.rerun.build_name == "57"
    assert concourse.reruns == ["/api/v1/teams/dev/pipelines/lana-bank/jobs/test-bats/builds/57"]
    decision = store.decision(monitor.id, 1)
    assert decision is not None and decision.choice == "continue" and decision.by == "U1"
    assert decision.rerun == outcome.rerun
    again = request_rerun(store, concourse.client(), monitor.id, 1, "U2")
    assert (again.status, again.by, again.rerun) == ("already", "U1", outcome.rerun)
    assert len(concourse.reruns) == 1


def test_two_presses_at_once_rerun_once(store: MonitorStore, chain: Chain) -> None:
    monitor = failed_monitor(store, chain)
    concourse = Concourse()
    concourse.gate.clear()  # the first request waits, so the second press comes meanwhile
    results: list[str] = []
    first = threading.Thread(
        target=lambda: results.append(
            request_rerun(store, concourse.client(), monitor.id, 1, "U1").status
        )
    )
    first.start()
    while not store.redis.exists(keys.rerun(store.ns, monitor.id, 1)):
        pass
    second = request_rerun(store, concourse.client(), monitor.id, 1, "UADMIN")
    assert (second.status, second.by, second.rerun) == ("already", "U1", None)
    concourse.gate.set()
    first.join(5)
    assert results == ["started"] and len(concourse.reruns) == 1


def test_a_403_gives_the_claim_back_and_says_the_role(store: MonitorStore, chain: Chain) -> None:
    monitor = failed_monitor(store, chain)
    concourse = Concourse(status=403)
    outcome = request_rerun(store, concourse.client(), monitor.id, 1, "U1")
    assert outcome.status == "refused" and "pipeline-operator" in outcome.detail
    assert store.decision(monitor.id, 1) is None  # the prompt stays open: continue or stop
    assert not store.redis.exists(keys.rerun(store.ns, monitor.id, 1))
    concourse.status = 200
    assert request_rerun(store, concourse.client(), monitor.id, 1, "U1").status == "started"


def test_an_answered_or_closed_prompt_asks_nothing(store: MonitorStore, chain: Chain) -> None:
    monitor = failed_monitor(store, chain)
    concourse = Concourse()
    assert store.record_decision(monitor.id, 1, "stop", "U1")
    decided = request_rerun(store, concourse.client(), monitor.id, 1, "U1")
    assert (decided.status, decided.by, decided.choice) == ("decided", "U1", "stop")
    gone = request_rerun(store, concourse.client(), monitor.id, 2, "U1")
    assert gone.status == "gone" and concourse.reruns == []


def test_a_claim_made_but_not_recorded_is_recorded_by_the_next_ask(
    store: MonitorStore, chain: Chain
) -> None:
    monitor = failed_monitor(store, chain, policy="rerun")
    assert store.claim_rerun(monitor.id, 1, "policy") is None
    store.finish_rerun(monitor.id, 1, "policy", "57.1")  # then the worker died
    concourse = Concourse()
    outcome = request_rerun(store, concourse.client(), monitor.id, 1, "policy")
    assert outcome.status == "already" and outcome.rerun is not None
    decision = store.decision(monitor.id, 1)
    assert decision is not None and decision.rerun == outcome.rerun
    assert concourse.reruns == []


@pytest.fixture
def ci() -> Iterator[ConcourseSimulator]:
    with ConcourseSimulator(team="dev", users={"bot": "pw"}) as sim:
        sim.add_pipeline("lana-bank", ["test-bats"], ["repo"])
        yield sim


def failed_build(sim: ConcourseSimulator) -> tuple[int, str]:
    build = sim.create_build("lana-bank", "test-bats", inputs={"repo": {"ref": SHA}})
    sim.start_build(build)
    sim.finish_build(build, "failed")
    return build, str(sim.get_build(build)["name"])


def real_client(sim: ConcourseSimulator) -> ConcourseClient:
    # Shorter than the simulator's late answers: the client gives up before they come.
    return ConcourseClient(sim.url, "dev", username="bot", password="pw", timeout=0.5)


def reruns_of(sim: ConcourseSimulator, build: int) -> list[str]:
    """The reruns of `build` Concourse has, as its API lists them."""
    with real_client(sim) as client:
        builds = client.job_builds("lana-bank", "test-bats", since_id=build)
    return [b.name for b in builds if b.rerun_of is not None and b.rerun_of.id == build]


def test_a_rerun_made_but_not_answered_is_found_not_made_twice(
    store: MonitorStore, chain: Chain, ci: ConcourseSimulator
) -> None:
    build, name = failed_build(ci)
    monitor = failed_monitor(store, chain, build_id=build, build_name=name)
    client = real_client(ci)
    client.user()  # logged in: the late answer below is the rerun's
    ci.answer_late_next(1, seconds=2.0)  # the rerun is made; its answer comes too late
    outcome = request_rerun(store, client, monitor.id, 1, "U1")
    # The builds since the failed one show the rerun: it is ours, and the prompt answered.
    assert outcome.status == "started" and outcome.rerun is not None
    assert outcome.rerun.rerun_name == f"{name}.1"
    assert reruns_of(ci, build) == [f"{name}.1"]
    decision = store.decision(monitor.id, 1)
    assert decision is not None and decision.rerun == outcome.rerun


def test_an_unanswered_rerun_is_looked_for_before_asking_again(
    store: MonitorStore, chain: Chain, ci: ConcourseSimulator
) -> None:
    build, name = failed_build(ci)
    monitor = failed_monitor(store, chain, build_id=build, build_name=name)
    client = real_client(ci)
    client.user()
    # The rerun request is carried out late, and the look that follows it finds Concourse
    # down: nobody can tell yet whether there is a rerun.
    # (The client retries a read that timed out: every answer is late, for a while.)
    ci.answer_late_next(10, seconds=1.0)
    first = request_rerun(store, client, monitor.id, 1, "U1")
    assert first.status == "unavailable"
    ci.answer_late_next(0, seconds=0.0)
    assert store.decision(monitor.id, 1) is None  # the prompt stays open
    # The next press looks first, finds the rerun the first request made, and makes none.
    second = request_rerun(store, client, monitor.id, 1, "UADMIN")
    assert second.status == "started" and second.rerun is not None
    assert reruns_of(ci, build) == [f"{name}.1"]
    # While the look itself fails, nothing is asked blind.
    store.redis.delete(keys.decision(store.ns, monitor.id, 1))
    store.release_rerun(monitor.id, 1, unanswered=True)
    ci.hang_next(10, seconds=1.0)
    assert request_rerun(store, client, monitor.id, 1, "U1").status == "unavailable"
    ci.hang_next(0, seconds=0.0)
    assert reruns_of(ci, build) == [f"{name}.1"]
