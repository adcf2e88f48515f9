"""The Concourse and GitHub clients, built from settings in one place: the engine (workers,
`watch`, `demo`) and `deploy-monitor check` talk to the services the same way."""

from __future__ import annotations

import httpx

from workers.concourse import ConcourseClient
from workers.github import GitHubClient
from workers.settings import EngineSettings


def concourse_client(
    settings: EngineSettings, *, transport: httpx.BaseTransport | None = None
) -> ConcourseClient:
    """The Concourse client of these settings; ConfigError when they lack the URL or the
    credentials. `transport` replaces the network (tests)."""
    settings.require_concourse()
    assert settings.concourse_url is not None  # require_concourse said so
    password, token = settings.concourse_password, settings.concourse_token
    return ConcourseClient(
        settings.concourse_url,
        settings.concourse_team,
        username=settings.concourse_username,
        password=password.get_secret_value() if password else None,
        token=token.get_secret_value() if token else None,
        timeout=settings.http_timeout,
        transport=transport,
    )


def github_client(
    settings: EngineSettings,
    repository: str | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> GitHubClient:
    """The GitHub client of these settings for `repository` (GITHUB_REPOSITORY when None;
    anonymous without a token). `transport` replaces the network (tests)."""
    token = settings.github_token
    return GitHubClient(
        repository=repository or settings.github_repository,
        token=token.get_secret_value() if token else None,
        api_url=settings.github_api_url,
        graphql_url=settings.graphql_url,
        timeout=settings.http_timeout,
        transport=transport,
    )
