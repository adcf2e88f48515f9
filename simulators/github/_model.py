"""What the simulated GitHub holds (commits, pull requests), its limits and its words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators._http import Response

RATE_LIMIT = 5000  # per hour, as for a user or App installation token
UNAUTHENTICATED_LIMIT = 60
SUPPORTED_API_VERSIONS = {"2022-11-28", "2026-03-10"}
QUEUE_POLLS_BEFORE_MERGE = 2  # a queued PR merges on the 2nd PR query after enqueueing
DOCS = "https://docs.github.com/rest"
LIST_COMMITS_DOCS = f"{DOCS}/commits/commits#list-commits"
COMPARE_DOCS = f"{DOCS}/commits/commits#compare-two-commits"
LIST_PAGE_SIZE = 30  # GitHub's default per_page for lists
LIST_MAX_PAGE_SIZE = 100

HEAD_MODIFIED = "Head branch was modified. Review and try the merge again."
NOT_MERGEABLE = "Pull Request is not mergeable"
MERGE_QUEUE_REQUIRED = "Changes must be made through the merge queue"
REVIEW_REQUIRED = "At least 1 approving review is required by reviewers with write access."
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


@dataclass
class SimCommit:
    """A commit in the simulated DAG."""

    sha: str
    message: str
    files: list[str]
    parents: list[str]
    committed_at: float
    # The git author, and the GitHub account their email belongs to (None: no account).
    author_name: str = "Sim Dev"
    author_email: str = "dev@example.com"
    author_login: str | None = "sim-dev"


@dataclass
class SimPullRequest:
    """A simulated pull request; tests may change its fields directly (under `sim.lock`)."""

    number: int
    title: str
    files: list[str]
    head_oid: str
    node_id: str
    review_decision: str | None = "APPROVED"
    latest_reviews: list[dict[str, Any]] = field(default_factory=list)
    draft: bool = False
    state: str = "OPEN"
    mergeable: str = "MERGEABLE"
    merge_state_status: str = "CLEAN"
    merge_queue: bool = False  # isMergeQueueEnabled on its base branch
    in_merge_queue: bool = False
    queue_polls_left: int = 0
    merge_commit_oid: str | None = None
    # Who opened it: GitHub authors a squash merge as the PR's author.
    author_login: str | None = "sim-dev"
    author_email: str = "dev@example.com"
    merged_at: float | None = None
    commits: list[str] = field(default_factory=list)


class Refusal(Exception):
    """A merge GitHub would refuse: REST status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(documentation_url: str = DOCS) -> Response:
    return Response.json(
        {"message": "Not Found", "documentation_url": documentation_url, "status": "404"},
        status=404,
    )
