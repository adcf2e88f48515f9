"""The GitHub client and the models of what it reads.

Private modules by concern: `_models` (what the client reads), `_queries` (the GraphQL
documents it sends) and `_client` (the requests).
"""

from workers.github._client import (
    API_VERSION,
    COMPARE_PAGE_SIZE,
    HISTORY_PAGE_SIZE,
    MAX_FILE_PAGES,
    MAX_SERVER_MESSAGE,
    SECONDARY_LIMIT_WAIT,
    USER_AGENT,
    GitHubClient,
)
from workers.github._models import (
    MERGE_PERMISSIONS,
    Commit,
    ComparedCommits,
    Comparison,
    DatedCommit,
    HistoryPage,
    PullRequest,
    RepositoryAccess,
    Review,
)
from workers.github._queries import (
    ENQUEUE_MUTATION,
    MERGE_MUTATION,
    PULL_REQUEST_QUERY,
    REPOSITORY_QUERY,
)

__all__ = [
    "API_VERSION",
    "COMPARE_PAGE_SIZE",
    "ENQUEUE_MUTATION",
    "HISTORY_PAGE_SIZE",
    "MAX_FILE_PAGES",
    "MAX_SERVER_MESSAGE",
    "MERGE_MUTATION",
    "MERGE_PERMISSIONS",
    "PULL_REQUEST_QUERY",
    "REPOSITORY_QUERY",
    "SECONDARY_LIMIT_WAIT",
    "USER_AGENT",
    "Commit",
    "ComparedCommits",
    "Comparison",
    "DatedCommit",
    "GitHubClient",
    "HistoryPage",
    "PullRequest",
    "RepositoryAccess",
    "Review",
]
