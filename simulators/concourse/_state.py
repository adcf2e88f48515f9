"""The simulator's state and the helpers every concern uses (lock held), and the JSON shapes
of builds and pipelines."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from simulators._http import SimulatorServer
from simulators.concourse._model import Build, Input, Pipeline, Resource, Token, Version


class ConcourseState(SimulatorServer):
    """A fake Concourse with one team: its pipelines, builds, accounts and scripted faults."""

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
        self._tokens: dict[str, Token] = {}
        self._pipelines: dict[str, Pipeline] = {}
        self._builds: dict[int, Build] = {}
        self._versions: dict[int, tuple[Pipeline, Resource, Version]] = {}
        self._ids: dict[str, int] = {}
        self._fail_next = 0
        self._fail_status = 502
        self._hang_next = 0
        self._hang_seconds = 0.0
        self._configs: dict[str, tuple[int, dict[str, Any]]] = {}  # pipeline → (version, config)

    def stop(self) -> None:
        """Stop serving; waiting event streams end at once."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        super().stop()

    # -- scripting helpers (lock held) ----------------------------------------------------

    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _live_build(self, build_id: int) -> Build:
        build = self._builds[build_id]
        if build.finished:
            raise ValueError(f"build {build_id} already {build.status}")
        return build

    def _emit(self, build: Build, event: str, version: str, data: dict[str, Any]) -> None:
        envelope = {
            "data": data,
            "event": event,
            "version": version,
            "event_id": str(self._next_id("event")),
        }
        build.events.append(envelope)
        self._changed.notify_all()

    def _settle_inputs(self, build: Build, inputs: dict[str, dict[str, str]]) -> None:
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
            Input(
                name=name,
                version=dict(version),
                first_occurrence=build.rerun_of is None and not seen_before(name, version),
            )
            for name, version in inputs.items()
        ]

    def _input_versions(self, build: Build) -> Iterator[Version]:
        """The versions a build's inputs refer to (input name = resource name here)."""
        for build_input in build.inputs or []:
            resource = build.pipeline.resources.get(build_input.name)
            for version in resource.versions if resource else []:
                if version.version == build_input.version:
                    yield version

    # -- presentation ---------------------------------------------------------------------

    def _build_json(self, build: Build) -> dict[str, Any]:
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

    def _pipeline_json(self, pipeline: Pipeline) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": pipeline.id,
            "name": pipeline.name,
            "team_name": self.team,
            "last_updated": int(self.clock()),
        }
        if pipeline.public:
            body["public"] = True
        return body
