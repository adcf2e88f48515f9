"""What the simulated GitHub holds: repositories (a commit DAG, branches, pull requests, and what
merging does to them) and what belongs to the token across them (rate limits, failures, writes)."""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
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


class SimRepository:
    """One repository's commits, branches and pull requests, and what merging does to them.

    Made by `GitHubSimulator.add_repository` (the simulator's first one by the simulator
    itself); it shares the simulator's lock and clock, as a repository shares GitHub's.
    """

    def __init__(
        self,
        repository: str,
        *,
        index: int,
        lock: threading.RLock,
        clock: Callable[[], float],
    ) -> None:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"a repository is owner/name, not {repository!r}")
        self._repository = repository
        self.lock = lock
        self._clock = clock
        # The first repository's ids and SHAs are the ones a one-repository simulator made;
        # the others' carry their index or name, so that nothing of one resolves in another.
        self._node_tag = "" if index == 0 else f"R{index}_"
        self._sha_prefix = "" if index == 0 else f"{repository.lower()}:"
        self.commits: dict[str, SimCommit] = {}
        self.branches: dict[str, str] = {}
        self.pull_requests: dict[int, SimPullRequest] = {}
        self.merges: list[tuple[int, str]] = []
        # (PR number, expected head it was sent with) for every merge attempt, refused or not.
        self.merge_attempts: list[tuple[int, str | None]] = []
        self.before_merge: Callable[[int], object] | None = None
        self.queue_polls_before_merge = QUEUE_POLLS_BEFORE_MERGE
        # The token's role in the repository (GraphQL `viewerPermission`); None: GitHub won't say.
        self.viewer_permission: str | None = "WRITE"
        self._counter = itertools.count(1)
        # Mixed into generated SHAs: the demo sets it so each run follows new commits.
        self.sha_salt = ""

    @property
    def repository(self) -> str:
        """`owner/name`, spelled as it was added."""
        return self._repository

    @property
    def owner(self) -> str:
        return self._repository.partition("/")[0]

    @property
    def name(self) -> str:
        return self._repository.partition("/")[2]

    def __repr__(self) -> str:
        return f"SimRepository({self._repository!r})"

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
                committed_at=self._clock() if committed_at is None else committed_at,
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
                node_id=f"PR_kwDOsim{self._node_tag}{number:08d}",
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

    def ref_node_id(self, branch: str) -> str:
        """The GraphQL node id of a branch ref, unique across repositories."""
        return f"REF_sim{self._node_tag}{branch}"

    def _new_sha(self, seed: str) -> str:
        text = f"{self._sha_prefix}{self.sha_salt}:{next(self._counter)}:{seed}"
        return hashlib.sha1(text.encode()).hexdigest()

    # -- DAG -----------------------------------------------------------------------------------

    def resolve(self, ref: str) -> str | None:
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

    def ancestors(self, sha: str) -> set[str]:
        """`sha` and every commit reachable from it."""
        seen: set[str] = set()
        stack = [sha]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.commits[current].parents)
        return seen

    # -- merging (what the REST and GraphQL merge requests do) ---------------------------------

    def attempt_merge(self, pr: SimPullRequest, *, expected_head: str | None, method: str) -> str:
        """Merge `pr` as GitHub would, or raise the `Refusal` GitHub would answer."""
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

    def advance_queue(self, pr: SimPullRequest) -> None:
        """One PR query seen by the merge queue: a queued PR merges after enough of them."""
        if pr.in_merge_queue and pr.state == "OPEN":
            pr.queue_polls_left -= 1
            if pr.queue_polls_left <= 0:
                self._squash(pr, method="SQUASH")

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
        pr.merged_at = self._clock()
        self.merges.append((pr.number, sha))
        return sha


class GitHubState(SimulatorServer):
    """The repositories one API URL serves, and what belongs to the token across all of them:
    its rate-limit windows, scripted failures and write count, as on GitHub."""

    def __init__(
        self,
        *,
        token: str | None = "ghs_test",
        clock: Callable[[], float] = time.time,
        files_page_size: int = 300,
    ) -> None:
        super().__init__()
        self.token = token
        self.clock = clock
        self.files_page_size = files_page_size
        # By lowercased `owner/name`: GitHub resolves either case. Insertion-ordered, first first.
        self.repositories: dict[str, SimRepository] = {}
        self.write_requests = 0
        # GitHub's GraphQL schema that documents are checked against; None: no check.
        self.schema_path: Path | None = SCHEMA_PATH
        self._used: dict[str, int] = {"core": 0, "graphql": 0}
        self._window_reset = int(clock()) + 3600
        # (kind, reset_in, status) for the next requests
        self._limited: list[tuple[str, int, int]] = []
        self._failures: list[int] = []  # statuses for the next requests

    def add_repository(self, repository: str) -> SimRepository:
        """Serve another repository (`owner/name`) from this simulator; returns its handle,
        whose main starts at an "Initial commit" like the first repository's."""
        with self.lock:
            if repository.lower() in self.repositories:
                raise ValueError(f"repository {repository!r} is already served")
            repo = SimRepository(
                repository,
                index=len(self.repositories),
                lock=self.lock,
                # Read at each call: tests swap the simulator's clock after starting it.
                clock=lambda: self.clock(),
            )
            repo.add_commit("Initial commit", ["README.md"], parents=[])
            self.repositories[repository.lower()] = repo
            return repo

    def repository_named(self, owner: str | None, name: str | None) -> SimRepository | None:
        """The repository `owner/name` (any case), or None when this GitHub has no such one."""
        return self.repositories.get(f"{owner}/{name}".lower())

    def pull_request_by_node_id(
        self, node_id: object
    ) -> tuple[SimRepository, SimPullRequest] | None:
        """The PR a GraphQL node id names, with its repository: node ids are global on GitHub."""
        for repo in self.repositories.values():
            for pr in repo.pull_requests.values():
                if pr.node_id == node_id:
                    return repo, pr
        return None
