"""The pydantic models of what the GitHub client reads (GraphQL and REST).

GitHub's payloads are mapped onto them by validation aliases (`AliasPath` into nested objects),
so each model validates the payload itself; the same fields can also be given by name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
)


class GitHubModel(BaseModel):
    """Frozen; validated from GitHub's payload (by alias) or by field name."""

    model_config = ConfigDict(frozen=True, validate_by_alias=True, validate_by_name=True)


# viewerPermission values that may push to a branch, hence squash-merge a pull request.
MERGE_PERMISSIONS = frozenset({"WRITE", "MAINTAIN", "ADMIN"})


class RepositoryAccess(GitHubModel):
    """What the token may do in the repository (`deploy-monitor check`), from the
    `repository` object of `REPOSITORY_QUERY`."""

    name_with_owner: str = Field("", validation_alias="nameWithOwner")
    # ADMIN, MAINTAIN, WRITE, TRIAGE or READ; None when GitHub does not say (some app tokens).
    viewer_permission: str | None = Field(None, validation_alias="viewerPermission")
    default_branch: str | None = Field(None, validation_alias=AliasPath("defaultBranchRef", "name"))

    @field_validator("name_with_owner", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("viewer_permission", mode="before")
    @classmethod
    def _only_a_word(cls, value: Any) -> Any:
        return value if isinstance(value, str) else None

    @property
    def can_merge(self) -> bool | None:
        """Whether the token may merge pull requests; None when GitHub did not say."""
        if self.viewer_permission is None:
            return None
        return self.viewer_permission in MERGE_PERMISSIONS


class Review(GitHubModel):
    """One reviewer's latest review of a pull request (a node of `latestReviews`)."""

    state: str = ""
    author_login: str | None = Field(None, validation_alias=AliasPath("author", "login"))
    commit_oid: str | None = Field(None, validation_alias=AliasPath("commit", "oid"))

    @field_validator("state", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


class PullRequest(GitHubModel):
    """The facts about a pull request that decide whether the bot may merge it, from the
    `pullRequest` object of `PULL_REQUEST_QUERY`."""

    id: str
    number: int
    title: str
    url: str
    state: Literal["OPEN", "CLOSED", "MERGED"]
    is_draft: bool = Field(validation_alias="isDraft")
    review_decision: Literal["APPROVED", "CHANGES_REQUESTED", "REVIEW_REQUIRED"] | None = Field(
        validation_alias="reviewDecision"
    )
    mergeable: Literal["MERGEABLE", "CONFLICTING", "UNKNOWN"]
    merge_state_status: str = Field(validation_alias="mergeStateStatus")
    head_ref_oid: str = Field(validation_alias="headRefOid")
    base_ref_name: str = Field(validation_alias="baseRefName")
    merge_commit_oid: str | None = Field(None, validation_alias=AliasPath("mergeCommit", "oid"))
    # Absent on GitHub Enterprise Server versions without merge queues.
    is_in_merge_queue: bool = Field(False, validation_alias="isInMergeQueue")
    is_merge_queue_enabled: bool = Field(False, validation_alias="isMergeQueueEnabled")
    latest_reviews: list[Review] = Field(
        default_factory=list, validation_alias=AliasPath("latestReviews", "nodes")
    )
    # Who opened it (None: a deleted account, GitHub's "ghost"): the change is theirs.
    author_login: str | None = Field(None, validation_alias=AliasPath("author", "login"))

    @field_validator("is_in_merge_queue", "is_merge_queue_enabled", mode="before")
    @classmethod
    def _null_is_false(cls, value: Any) -> Any:
        return bool(value)

    @field_validator("latest_reviews", mode="before")
    @classmethod
    def _accessible_reviews(cls, value: Any) -> Any:
        # GraphQL lists may hold nulls for inaccessible nodes.
        return [review for review in value if review] if isinstance(value, list) else []

    @property
    def is_approved(self) -> bool:
        """True when the PR counts as approved.

        A null review decision means the branch does not require reviews; then an explicit
        approval with no outstanding change request is still required before the bot merges.
        """
        if self.review_decision is not None:
            return self.review_decision == "APPROVED"
        states = {review.state for review in self.latest_reviews}
        return "APPROVED" in states and "CHANGES_REQUESTED" not in states

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> PullRequest:
        """Build from the `pullRequest` object of `PULL_REQUEST_QUERY`."""
        return cls.model_validate(node)


class Commit(GitHubModel):
    """A commit with the paths it changed (renames list both the old and the new path), from
    the REST commit (`GET /repos/{o}/{r}/commits/{ref}`) with `files` read from all its pages.

    `committed_at` is the committer date, else the author date (GitHub documents both git
    users as nullable); 0 when neither is known, which rules nothing out by date.
    """

    sha: str
    message: str = Field(validation_alias=AliasPath("commit", "message"))
    committed_at: int = Field(
        0,
        validation_alias=AliasChoices(
            AliasPath("commit", "committer", "date"), AliasPath("commit", "author", "date")
        ),
    )
    parents: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    # Who wrote it: the GitHub account (null when the email belongs to none) and the git
    # author's email; the author of a squash merge is the PR's author.
    author_login: str | None = Field(None, validation_alias=AliasPath("author", "login"))
    author_email: str | None = Field(None, validation_alias=AliasPath("commit", "author", "email"))

    @field_validator("committed_at", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        return value

    @field_validator("parents", mode="before")
    @classmethod
    def _parent_shas(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, list):
            return [item.get("sha") if isinstance(item, dict) else item for item in value]
        return value

    @property
    def headline(self) -> str:
        """The first line of the commit message."""
        return self.message.split("\n", 1)[0].strip()

    @property
    def short_sha(self) -> str:
        """The 7-character abbreviation GitHub shows."""
        return self.sha[:7]


class Comparison(GitHubModel):
    """How `head` relates to `base` in `compare/{base}...{head}`."""

    status: Literal["ahead", "behind", "identical", "diverged"]
    ahead_by: int
    behind_by: int


class DatedCommit(GitHubModel):
    """A commit of a list (compare's `commits[]`): its SHA and committer (else author) date,
    and who wrote it and its message (the digest of what waits lists them)."""

    sha: str
    committed_at: int = Field(
        0,
        validation_alias=AliasChoices(
            AliasPath("commit", "committer", "date"), AliasPath("commit", "author", "date")
        ),
    )
    message: str = Field("", validation_alias=AliasPath("commit", "message"))
    author_login: str | None = Field(None, validation_alias=AliasPath("author", "login"))
    author_name: str | None = Field(None, validation_alias=AliasPath("commit", "author", "name"))

    @field_validator("committed_at", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: Any) -> Any:
        if isinstance(value, str):
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        return 0 if value is None else value


class ComparedCommits(GitHubModel):
    """`compare/{base}...{head}` with its commit list: the commits `head` has and `base`
    lacks, oldest first (the first page), and the comparison's page on GitHub."""

    status: Literal["ahead", "behind", "identical", "diverged"]
    ahead_by: int
    behind_by: int
    html_url: str
    commits: list[DatedCommit] = Field(default_factory=list)


class HistoryPage(GitHubModel):
    """One page of a commit's history: the SHAs, newest first, and whether more follow."""

    shas: list[str]
    more: bool


class ListedCommit(GitHubModel):
    """An entry of the commit list (`GET /repos/{o}/{r}/commits`): only its full SHA is read."""

    sha: str = Field(pattern=r"^[0-9a-f]{40}$")


class BranchRef(GitHubModel):
    """`GET /repos/{o}/{r}/git/ref/heads/{branch}`: the commit the branch points at."""

    sha: str = Field(validation_alias=AliasPath("object", "sha"))


class MergeResult(GitHubModel):
    """The answer to `MERGE_MUTATION` (the whole GraphQL payload): the merge commit, when
    GitHub reports one."""

    merge_commit_oid: str | None = Field(
        None,
        validation_alias=AliasPath("data", "mergePullRequest", "pullRequest", "mergeCommit", "oid"),
    )


COMMIT_LIST = TypeAdapter(list[ListedCommit])
