"""The GitHub simulator: the concerns put together and the routes."""

from __future__ import annotations

import time
from collections.abc import Callable

from simulators.github._gate import Gate
from simulators.github._graphql import GraphQL
from simulators.github._rest import Rest


class GitHubSimulator(Rest, GraphQL, Gate):
    """GitHub REST + GraphQL for one repository, scriptable from tests and the demo."""

    def __init__(
        self,
        *,
        repository: str = "GaloyMoney/lana-bank",
        token: str | None = "ghs_test",
        clock: Callable[[], float] = time.time,
        files_page_size: int = 300,
    ) -> None:
        super().__init__(
            repository=repository, token=token, clock=clock, files_page_size=files_page_size
        )
        self.add_commit("Initial commit", ["README.md"], parents=[])

        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        self.route("POST", "/graphql", self._guard("graphql", self._graphql))
        # The list needs no ref segment, and a ref is never empty: neither route takes the other's.
        self.route("GET", repo + r"/commits/?", self._guard("core", self._list_commits))
        self.route("GET", repo + r"/commits/(?P<ref>[^/]+)", self._guard("core", self._commit))
        self.route("GET", repo + r"/git/ref/heads/(?P<branch>.+)", self._guard("core", self._ref))
        self.route("GET", repo + r"/compare/(?P<basehead>.+)", self._guard("core", self._compare))
        self.route(
            "PUT", repo + r"/pulls/(?P<number>[0-9]+)/merge", self._guard("core", self._put_merge)
        )
