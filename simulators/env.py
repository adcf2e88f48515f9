"""The settings that point deploy-monitor at the simulators: one place for the tests, the
demo and the benchmarks."""

from __future__ import annotations

from simulators.concourse import ConcourseSimulator
from simulators.github import GitHubSimulator


def simulated_env(
    concourse: ConcourseSimulator,
    github: GitHubSimulator,
    *,
    username: str,
    queue: str,
    poll_seconds: float,
) -> dict[str, str]:
    """Environment for deploy-monitor processes using the (started) simulators: Concourse as
    local user `username`, GitHub with the simulator's token and repository, its own queue."""
    return {
        "CONCOURSE_URL": concourse.url,
        "CONCOURSE_TEAM": concourse.team,
        "CONCOURSE_USERNAME": username,
        "CONCOURSE_PASSWORD": concourse.password(username),
        "GITHUB_TOKEN": github.token or "",
        "GITHUB_REPOSITORY": github.repository,
        "GITHUB_API_URL": github.url,
        "DEPLOY_MONITOR_POLL_SECONDS": str(poll_seconds),
        "DEPLOY_MONITOR_QUEUE": queue,
    }
