"""The repository: a commit DAG, branches and pull requests; scripting them; merging."""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators._http import SimulatorServer
from simulators.github._model import (
    HEAD_MODIFIED,
    MERGE_QUEUE_REQUIRED,
    NOT_MERGEABLE,
    QUEUE_POLLS_BEFORE_MERGE,
    REVIEW_REQUIRED,
    Refusal,
    SimCommit,
    SimPullRequest,
)
from simulators.github._schema import SCHEMA_PATH


class GitHubState(SimulatorServer):
    """One repository's commits, branches and pull requests, and what merging does to them."""

    def __init__(
        self,
        *,
        repository: str = "GaloyMoney/lana-bank",
        token: str | None = "ghs_test",
        clock: Callable[[], float] = time.time,
        files_page_size: int = 300,
    ) -> None:
        super().__init__()
        self.repository = repository
        self.owner, _, self.name = repository.partition("/")
        self.token = token
        self.clock = clock
        self.files_page_size = files_page_size
        self.commits: dict[str, SimCommit] = {}
        self.branches: dict[str, str] = {}
        self.pull_requests: dict[int, SimPullRequest] = {}
        self.merges: list[tuple[int, str]] = []
        # (PR number, expected head it was sent with) for every merge attempt, refused or not.
        self.merge_attempts: list[tuple[int, str | None]] = []
        self.write_requests = 0
        self.before_merge: Callable[[int], object] | None = None
        self.queue_polls_before_merge = QUEUE_POLLS_BEFORE_MERGE
        # The token's role in the repository (GraphQL `viewerPermission`); None: GitHub won't say.
        self.viewer_permission: str | None = "WRITE"
        # GitHub's GraphQL schema that documents are checked against; None: no check.
        self.schema_path: Path | None = SCHEMA_PATH
        self._counter = itertools.count(1)
        # Mixed into generated SHAs: the demo sets it so each run follows new commits.
        self.sha_salt = ""
        self._used: dict[str, int] = {"core": 0, "graphql": 0}
        self._window_reset = int(clock()) + 3600
        # (kind, reset_in, status) for the next requests
        self._limited: list[tuple[str, int, int]] = []
        self._failures: list[int] = []  # statuses for the next requests

    # -- scripting -----------------------------------------------------------------------------

    @property
    def main_head(self) -> str:
        """The SHA main points at."""
        with self.lock:
            return self.branches["main"]

    def add_commit(
        self,
        message: str,
        files: list[str],
        parents: list[str] | None = None,
        on_main: bool = True,
        sha: str | None = None,
        committed_at: float | None = None,
        *,
        author_email: str = "dev@example.com",
        author_login: str | None = "sim-dev",
    ) -> str:
        """Add a commit (parent defaults to main's head); `on_main` moves main to it.
        `committed_at` dates it (a history of past commits); default now. Its author is
        `author_email`, whose GitHub account is `author_login` (None: an email of nobody's)."""
        with self.lock:
            if parents is None:
                parents = [self.branches["main"]] if "main" in self.branches else []
            for parent in parents:
                if parent not in self.commits:
                    raise ValueError(f"unknown parent {parent}")
            sha = (sha or self._new_sha(message)).lower()
            if not re.fullmatch(r"[0-9a-f]{40}", sha) or sha in self.commits:
                raise ValueError(f"bad or duplicate sha {sha}")
            self.commits[sha] = SimCommit(
                sha=sha,
                message=message,
                files=list(files),
                parents=list(parents),
                committed_at=self.clock() if committed_at is None else committed_at,
                author_name=author_login or author_email.split("@")[0],
                author_email=author_email,
                author_login=author_login,
            )
            if on_main:
                self.branches["main"] = sha
            return sha

    def add_pull_request(
        self,
        number: int,
        title: str,
        files: list[str],
        *,
        review_decision: str | None = "APPROVED",
        latest_reviews: list[dict[str, Any]] | None = None,
        draft: bool = False,
        state: str = "OPEN",
        mergeable: str = "MERGEABLE",
        merge_state_status: str = "CLEAN",
        merge_queue: bool = False,
        in_merge_queue: bool = False,
        author_login: str | None = "sim-dev",
        author_email: str = "dev@example.com",
    ) -> None:
        """Add a PR with a head commit off main; `state="MERGED"` merges it right away. Its
        author (`author_login`, `author_email`) authors its commits and its squash merge.

        `latest_reviews` are GraphQL review nodes (`{"state": "APPROVED", "author": {"login":
        "alice"}}`); without them an APPROVED decision gets one approving review of the head.
        """
        with self.lock:
            head = self.add_commit(
                title, files, on_main=False, author_email=author_email, author_login=author_login
            )
            if latest_reviews is None:
                latest_reviews = (
                    [{"state": "APPROVED", "author": {"login": "reviewer"}}]
                    if review_decision == "APPROVED"
                    else []
                )
            reviews = [
                {"author": None, **review, "commit": review.get("commit") or {"oid": head}}
                for review in latest_reviews
            ]
            pr = SimPullRequest(
                number=number,
                title=title,
                files=list(files),
                head_oid=head,
                node_id=f"PR_kwDOsim{number:08d}",
                review_decision=review_decision,
                latest_reviews=reviews,
                draft=draft,
                state="OPEN" if state == "MERGED" else state,
                mergeable=mergeable,
                merge_state_status=merge_state_status,
                merge_queue=merge_queue,
                in_merge_queue=in_merge_queue,
                queue_polls_left=self.queue_polls_before_merge if in_merge_queue else 0,
                commits=[head],
                author_login=author_login,
                author_email=author_email,
            )
            self.pull_requests[number] = pr
            if state == "MERGED":
                self._squash(pr, method="SQUASH")

    def push_to_pr(self, number: int, files: list[str] | None = None) -> str:
        """Push a new head commit to PR `number`; returns its SHA."""
        with self.lock:
            pr = self.pull_requests[number]
            new_files = list(files) if files is not None else list(pr.files)
            head = self.add_commit(
                f"More work on #{number}", new_files, parents=[pr.head_oid], on_main=False
            )
            pr.head_oid = head
            pr.commits.append(head)
            pr.files = list(dict.fromkeys([*pr.files, *new_files]))
            return head

    def _new_sha(self, seed: str) -> str:
        return hashlib.sha1(f"{self.sha_salt}:{next(self._counter)}:{seed}".encode()).hexdigest()

    # -- DAG -----------------------------------------------------------------------------------

    def _resolve(self, ref: str) -> str | None:
        """A branch name, full SHA or unique SHA prefix (>= 4 chars) → full SHA."""
        if ref in self.branches:
            return self.branches[ref]
        ref = ref.lower()
        if not re.fullmatch(r"[0-9a-f]{4,40}", ref):
            return None
        if ref in self.commits:
            return ref
        matches = [sha for sha in self.commits if sha.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def _ancestors(self, sha: str) -> set[str]:
        """`sha` and every commit reachable from it."""
        seen: set[str] = set()
        stack = [sha]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.commits[current].parents)
        return seen

    # -- merging -------------------------------------------------------------------------------

    def _merge(self, pr: SimPullRequest, *, expected_head: str | None, method: str) -> str:
        self.merge_attempts.append((pr.number, expected_head))
        if self.before_merge is not None:
            self.before_merge(pr.number)
        if pr.state != "OPEN":
            raise Refusal(405, NOT_MERGEABLE)
        if pr.draft:
            raise Refusal(405, "Pull Request is still a draft")
        if pr.in_merge_queue:
            raise Refusal(405, "Pull Request is in the merge queue")
        if pr.merge_queue:
            raise Refusal(405, MERGE_QUEUE_REQUIRED)
        if expected_head is not None and expected_head.lower() != pr.head_oid:
            raise Refusal(409, HEAD_MODIFIED)
        if pr.review_decision in ("REVIEW_REQUIRED", "CHANGES_REQUESTED"):
            raise Refusal(405, REVIEW_REQUIRED)
        if pr.mergeable != "MERGEABLE" or pr.merge_state_status in ("DIRTY", "BLOCKED", "BEHIND"):
            raise Refusal(405, NOT_MERGEABLE)
        return self._squash(pr, method=method)

    def _squash(self, pr: SimPullRequest, *, method: str) -> str:
        """Land `pr` on main (a squash commit, or a two-parent commit for MERGE)."""
        old_head = self.branches["main"]
        if method == "MERGE":
            message = f"Merge pull request #{pr.number}\n\n{pr.title}"
            parents = [old_head, pr.head_oid]
        else:
            bodies = "\n\n".join(f"* {self.commits[sha].message}" for sha in pr.commits)
            message = f"{pr.title} (#{pr.number})\n\n{bodies}"
            parents = [old_head]
        sha = self.add_commit(
            message,
            pr.files,
            parents=parents,
            on_main=True,
            author_email=pr.author_email,
            author_login=pr.author_login,
        )
        pr.state = "MERGED"
        pr.in_merge_queue = False
        pr.merge_commit_oid = sha
        pr.merged_at = self.clock()
        self.merges.append((pr.number, sha))
        return sha

    def _advance_queue(self, pr: SimPullRequest) -> None:
        if pr.in_merge_queue and pr.state == "OPEN":
            pr.queue_polls_left -= 1
            if pr.queue_polls_left <= 0:
                self._squash(pr, method="SQUASH")
