"""The GitHub simulator: the concerns put together, the routes, and the one-repository API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from simulators.github._gate import Gate
from simulators.github._graphql import GraphQL
from simulators.github._rest import Rest
from simulators.github._state import SimRepository

T = TypeVar("T")


class _OfFirstRepository(Generic[T]):
    """An attribute of the simulator that is its first repository's: the scripting API from
    before several repositories (`sim.add_commit(...)`, `sim.merges`, `sim.sha_salt = ...`)
    keeps working unchanged, with the repository method's own signature for mypy."""

    def __init__(self, get: Callable[[SimRepository], T]) -> None:
        self._get = get
        self._name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    def __get__(self, sim: GitHubSimulator, owner: type[Any] | None = None) -> T:
        return self._get(sim.first_repository)

    def __set__(self, sim: GitHubSimulator, value: T) -> None:
        setattr(sim.first_repository, self._name, value)


class GitHubSimulator(Rest, GraphQL, Gate):
    """GitHub REST + GraphQL for one or more repositories, scriptable from tests and the demo.

    `repository` is the first one, which the simulator's own scripting API acts on;
    `add_repository` serves more from the same URL, token and rate limits.
    """

    repository = _OfFirstRepository(lambda r: r.repository)
    owner = _OfFirstRepository(lambda r: r.owner)
    name = _OfFirstRepository(lambda r: r.name)
    commits = _OfFirstRepository(lambda r: r.commits)
    branches = _OfFirstRepository(lambda r: r.branches)
    pull_requests = _OfFirstRepository(lambda r: r.pull_requests)
    merges = _OfFirstRepository(lambda r: r.merges)
    merge_attempts = _OfFirstRepository(lambda r: r.merge_attempts)
    before_merge = _OfFirstRepository(lambda r: r.before_merge)
    queue_polls_before_merge = _OfFirstRepository(lambda r: r.queue_polls_before_merge)
    viewer_permission = _OfFirstRepository(lambda r: r.viewer_permission)
    sha_salt = _OfFirstRepository(lambda r: r.sha_salt)
    main_head = _OfFirstRepository(lambda r: r.main_head)
    add_commit = _OfFirstRepository(lambda r: r.add_commit)
    add_pull_request = _OfFirstRepository(lambda r: r.add_pull_request)
    push_to_pr = _OfFirstRepository(lambda r: r.push_to_pr)

    def __init__(
        self,
        *,
        repository: str = "GaloyMoney/lana-bank",
        token: str | None = "ghs_test",
        clock: Callable[[], float] = time.time,
        files_page_size: int = 300,
    ) -> None:
        super().__init__(token=token, clock=clock, files_page_size=files_page_size)
        self.first_repository = self.add_repository(repository)

        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        self.route("POST", "/graphql", self._guard("graphql", self._graphql))
        # The list needs no ref segment, and a ref is never empty: neither route takes the other's.
        for method, path, handler in (
            ("GET", r"/commits/?", self._list_commits),
            ("GET", r"/commits/(?P<ref>[^/]+)", self._commit),
            ("GET", r"/git/ref/heads/(?P<branch>.+)", self._ref),
            ("GET", r"/compare/(?P<basehead>.+)", self._compare),
            ("PUT", r"/pulls/(?P<number>[0-9]+)/merge", self._put_merge),
        ):
            self.route(method, repo + path, self._guard("core", self._in_repository(handler)))
