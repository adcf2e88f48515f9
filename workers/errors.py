"""The one exception tree of deploy-monitor.

    DeployMonitorError
    ├── ConfigError              a setting or the chain file is missing or malformed
    ├── TargetError              the target cannot be followed (usage, unknown PR, refusal)
    │   └── MergeRefused         an open PR that must not or cannot be merged (unapproved, draft, …)
    └── ApiError                 a remote service answered badly or not at all
        ├── ConcourseError
        │   ├── ConcourseAuthError     login refused, or no role in the team (401/403)
        │   ├── ConcourseNotFound      404: unknown team, pipeline, job, resource or build
        │   └── ConcourseUnavailable   5xx, timeouts, connection errors: worth retrying later
        └── GitHubError
            ├── GitHubAuthError        401/403 that is not a rate limit
            ├── GitHubNotFound         404/422 on a commit, or GraphQL NOT_FOUND
            ├── GitHubRateLimited      primary or secondary limit; `reset_at` says when to retry
            └── GitHubUnavailable      5xx, timeouts, connection errors

Messages never include tokens or passwords: clients build them from status codes, routes and
the server's own short error text.
"""

from __future__ import annotations


class DeployMonitorError(Exception):
    """Base class of every error deploy-monitor raises on purpose."""


class ConfigError(DeployMonitorError):
    """A setting or the chain configuration is missing or malformed."""


class TargetError(DeployMonitorError):
    """The requested target cannot be followed; the message is meant for the user."""


class MergeRefused(TargetError):
    """An open PR that must not (unapproved) or cannot (draft, conflicts, …) be merged."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ApiError(DeployMonitorError):
    """A remote API failed. `status` is the HTTP status when there was a response."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConcourseError(ApiError):
    """Concourse answered with an error."""


class ConcourseAuthError(ConcourseError):
    """Login refused, or the token holds no role in the configured team."""


class ConcourseNotFound(ConcourseError):
    """Unknown team, pipeline, job, resource or build (404)."""


class ConcourseUnavailable(ConcourseError):
    """Concourse is down, overloaded or slow: retry on a later tick."""


class GitHubError(ApiError):
    """GitHub answered with an error."""


class GitHubAuthError(GitHubError):
    """The token is invalid or lacks permission."""


class GitHubNotFound(GitHubError):
    """Unknown repository, pull request or commit."""


class NoCommonAncestor(GitHubNotFound):
    """Two commits share no history, so neither contains the other (compare answers 404)."""


class GitHubRateLimited(GitHubError):
    """A primary or secondary rate limit; do not call again before `reset_at` (epoch seconds)."""

    def __init__(self, message: str, *, reset_at: float, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.reset_at = reset_at


class GitHubUnavailable(GitHubError):
    """GitHub is down or slow: retry later."""
