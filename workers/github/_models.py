"""The pydantic models of what the GitHub client reads (GraphQL and REST)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# viewerPermission values that may push to a branch, hence squash-merge a pull request.
MERGE_PERMISSIONS = frozenset({"WRITE", "MAINTAIN", "ADMIN"})


class RepositoryAccess(BaseModel):
    """What the token may do in the repository (`deploy-monitor check`)."""

    model_config = ConfigDict(frozen=True)

    name_with_owner: str
    # ADMIN, MAINTAIN, WRITE, TRIAGE or READ; None when GitHub does not say (some app tokens).
    viewer_permission: str | None = None
    default_branch: str | None = None

    @property
    def can_merge(self) -> bool | None:
        """Whether the token may merge pull requests; None when GitHub did not say."""
        if self.viewer_permission is None:
            return None
        return self.viewer_permission in MERGE_PERMISSIONS


class Review(BaseModel):
    """One reviewer's latest review of a pull request."""

    model_config = ConfigDict(frozen=True)

    state: str
    author_login: str | None = None
    commit_oid: str | None = None


class PullRequest(BaseModel):
    """The facts about a pull request that decide whether the bot may merge it."""

    model_config = ConfigDict(frozen=True)

    id: str
    number: int
    title: str
    url: str
    state: Literal["OPEN", "CLOSED", "MERGED"]
    is_draft: bool
    review_decision: Literal["APPROVED", "CHANGES_REQUESTED", "REVIEW_REQUIRED"] | None
    mergeable: Literal["MERGEABLE", "CONFLICTING", "UNKNOWN"]
    merge_state_status: str
    head_ref_oid: str
    base_ref_name: str
    merge_commit_oid: str | None = None
    is_in_merge_queue: bool = False
    is_merge_queue_enabled: bool = False
    latest_reviews: list[Review] = Field(default_factory=list)

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
        reviews = [
            Review(
                state=review.get("state") or "",
                author_login=(review.get("author") or {}).get("login"),
                commit_oid=(review.get("commit") or {}).get("oid"),
            )
            for review in (node.get("latestReviews") or {}).get("nodes") or []
            if review  # GraphQL lists may hold nulls for inaccessible nodes
        ]
        return cls.model_validate(
            {
                "id": node.get("id"),
                "number": node.get("number"),
                "title": node.get("title"),
                "url": node.get("url"),
                "state": node.get("state"),
                "is_draft": node.get("isDraft"),
                "review_decision": node.get("reviewDecision"),
                "mergeable": node.get("mergeable"),
                "merge_state_status": node.get("mergeStateStatus"),
                "head_ref_oid": node.get("headRefOid"),
                "base_ref_name": node.get("baseRefName"),
                "merge_commit_oid": (node.get("mergeCommit") or {}).get("oid"),
                "is_in_merge_queue": bool(node.get("isInMergeQueue")),
                "is_merge_queue_enabled": bool(node.get("isMergeQueueEnabled")),
                "latest_reviews": reviews,
            }
        )


class Commit(BaseModel):
    """A commit with the paths it changed (renames list both the old and the new path)."""

    model_config = ConfigDict(frozen=True)

    sha: str
    message: str
    committed_at: int
    parents: list[str]
    files: list[str]

    @property
    def headline(self) -> str:
        """The first line of the commit message."""
        return self.message.split("\n", 1)[0].strip()

    @property
    def short_sha(self) -> str:
        """The 7-character abbreviation GitHub shows."""
        return self.sha[:7]


class Comparison(BaseModel):
    """How `head` relates to `base` in `compare/{base}...{head}`."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ahead", "behind", "identical", "diverged"]
    ahead_by: int
    behind_by: int


class HistoryPage(BaseModel):
    """One page of a commit's history: the SHAs, newest first, and whether more follow."""

    model_config = ConfigDict(frozen=True)

    shas: list[str]
    more: bool
