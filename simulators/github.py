"""A scriptable GitHub on loopback: commits on a real DAG, pull requests, merges, rate limits.

It answers the few REST and GraphQL calls deploy-monitor makes, with GitHub's shapes and status
codes (see the project's GitHub API notes): GraphQL errors arrive with HTTP 200, unknown commits
answer 422, commit files are Link-paginated, the commit list (`GET .../commits?sha=&since=`)
walks the DAG newest first with Link pagination, merges honour `expectedHeadOid` / `sha`, a merge
queue refuses direct merges, and every response carries the `x-ratelimit-*` headers.

    sim = GitHubSimulator(repository="GaloyMoney/lana-bank", token="ghs_test")
    url = sim.start()
    sim.add_pull_request(42, "Fix the thing", ["core/x.rs"])
    ...
    assert sim.merges == [(42, sim.main_head)]

Tests script races through `before_merge`: a callable run with the PR number right before a
merge mutation is applied (e.g. `lambda n: sim.push_to_pr(n)` moves the head under the bot).
A queued PR merges on the `queue_polls_before_merge`-th PR query after it was enqueued.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from simulators._http import Request, Response, SimulatorServer

RATE_LIMIT = 5000  # per hour, as for a user or App installation token
UNAUTHENTICATED_LIMIT = 60
SUPPORTED_API_VERSIONS = {"2022-11-28", "2026-03-10"}
QUEUE_POLLS_BEFORE_MERGE = 2  # a queued PR merges on the 2nd PR query after enqueueing
DOCS = "https://docs.github.com/rest"
LIST_COMMITS_DOCS = f"{DOCS}/commits/commits#list-commits"
LIST_PAGE_SIZE = 30  # GitHub's default per_page for lists
LIST_MAX_PAGE_SIZE = 100

HEAD_MODIFIED = "Head branch was modified. Review and try the merge again."
NOT_MERGEABLE = "Pull Request is not mergeable"
MERGE_QUEUE_REQUIRED = "Changes must be made through the merge queue"
REVIEW_REQUIRED = "At least 1 approving review is required by reviewers with write access."
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)

_PR_FIELDS = (
    "id",
    "number",
    "title",
    "url",
    "state",
    "isDraft",
    "reviewDecision",
    "mergeable",
    "mergeStateStatus",
    "headRefOid",
    "baseRefName",
    "mergeCommit",
    "mergedAt",
    "isInMergeQueue",
    "isMergeQueueEnabled",
    "autoMergeRequest",
    "latestReviews",
)
_INPUT_ARG = re.compile(r'(\w+)\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*"|-?\d+|\w+)')


@dataclass
class SimCommit:
    """A commit in the simulated DAG."""

    sha: str
    message: str
    files: list[str]
    parents: list[str]
    committed_at: float


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
    merged_at: float | None = None
    commits: list[str] = field(default_factory=list)


class _Refusal(Exception):
    """A merge GitHub would refuse: REST status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class GitHubSimulator(SimulatorServer):
    """GitHub REST + GraphQL for one repository, scriptable from tests and the demo."""

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
        self._counter = itertools.count(1)
        # Mixed into generated SHAs: the demo sets it so each run follows new commits.
        self.sha_salt = ""
        self._used: dict[str, int] = {"core": 0, "graphql": 0}
        self._window_reset = int(clock()) + 3600
        # (kind, reset_in, status) for the next requests
        self._limited: list[tuple[str, int, int]] = []
        self._failures: list[int] = []  # statuses for the next requests
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
    ) -> str:
        """Add a commit (parent defaults to main's head); `on_main` moves main to it."""
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
                committed_at=self.clock(),
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
    ) -> None:
        """Add a PR with a head commit off main; `state="MERGED"` merges it right away.

        `latest_reviews` are GraphQL review nodes (`{"state": "APPROVED", "author": {"login":
        "alice"}}`); without them an APPROVED decision gets one approving review of the head.
        """
        with self.lock:
            head = self.add_commit(title, files, on_main=False)
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

    def rate_limit_next(
        self, n: int, *, kind: str = "primary", reset_in: int = 60, status: int = 403
    ) -> None:
        """Answer the next `n` requests with a primary or secondary rate limit. A secondary
        limit answers `status`: GitHub documents 403 or 429, with `retry-after`."""
        if kind not in ("primary", "secondary"):
            raise ValueError(f"kind must be primary or secondary, not {kind!r}")
        if status not in (403, 429):
            raise ValueError(f"a rate limit answers 403 or 429, not {status}")
        with self.lock:
            self._limited.extend([(kind, reset_in, status)] * n)

    def fail_next(self, n: int, *, status: int = 502) -> None:
        """Answer the next `n` requests with a server error."""
        with self.lock:
            self._failures.extend([status] * n)

    # -- plumbing ------------------------------------------------------------------------------

    def _new_sha(self, seed: str) -> str:
        return hashlib.sha1(f"{self.sha_salt}:{next(self._counter)}:{seed}".encode()).hexdigest()

    def _guard(
        self, resource: str, handler: Callable[[Request], Response]
    ) -> Callable[[Request], Response]:
        """Auth, rate limits, injected failures and rate-limit headers around a handler."""

        def guarded(request: Request) -> Response:
            with self.lock:
                if self._is_write(request):
                    self.write_requests += 1  # every attempt counts, refused or not
                response = self._gate(request, resource)
                if response is None:
                    if not self._repo_matches(request) and resource == "core":
                        response = _not_found()
                    else:
                        response = handler(request)
                    self._used[resource] += 1
                if not any(name.lower() == "x-ratelimit-limit" for name, _ in response.headers):
                    response.headers.extend(self._rate_headers(request, resource))
                return response

        return guarded

    def _gate(self, request: Request, resource: str) -> Response | None:
        if not request.header("user-agent"):
            return Response.json(
                {
                    "message": "Request forbidden by administrative rules. "
                    "Please make sure your request has a User-Agent header."
                },
                status=403,
            )
        if self.token is not None and not self._authorized(request):
            return Response.json(
                {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"},
                status=401,
            )
        version = request.header("x-github-api-version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            return Response.json(
                {"message": f"Unsupported 'X-GitHub-Api-Version' header: {version[:20]}"},
                status=410,
            )
        if self._failures:
            return Response.json({"message": "Server Error"}, status=self._failures.pop(0))
        if self._limited:
            kind, reset_in, status = self._limited.pop(0)
            return self._rate_limited(resource, kind, reset_in, status)
        return None

    def _authorized(self, request: Request) -> bool:
        value = request.header("authorization") or ""
        scheme, _, credential = value.partition(" ")
        return scheme.lower() in ("bearer", "token") and credential.strip() == self.token

    def _is_write(self, request: Request) -> bool:
        if request.method == "GET":
            return False
        if request.path != "/graphql":
            return True
        # GraphQL: only mutations write.
        try:
            query = str((request.json() or {}).get("query") or "")
        except (ValueError, AttributeError):
            return False
        return query.lstrip().startswith("mutation")

    def _repo_matches(self, request: Request) -> bool:
        owner, repo = request.params.get("owner"), request.params.get("repo")
        return f"{owner}/{repo}".lower() == self.repository.lower()

    def _rate_headers(self, request: Request, resource: str) -> list[tuple[str, str]]:
        authenticated = self.token is None or self._authorized(request)
        limit = RATE_LIMIT if authenticated else UNAUTHENTICATED_LIMIT
        used = min(self._used[resource], limit)
        return [
            ("x-ratelimit-limit", str(limit)),
            ("x-ratelimit-remaining", str(limit - used)),
            ("x-ratelimit-used", str(used)),
            ("x-ratelimit-reset", str(self._window_reset)),
            ("x-ratelimit-resource", resource),
        ]

    def _rate_limited(self, resource: str, kind: str, reset_in: int, status: int = 403) -> Response:
        now = int(self.clock())
        limit_headers = [
            ("x-ratelimit-limit", str(RATE_LIMIT)),
            ("x-ratelimit-remaining", "0" if kind == "primary" else "4000"),
            ("x-ratelimit-used", str(RATE_LIMIT) if kind == "primary" else "1000"),
            ("x-ratelimit-reset", str(now + reset_in if kind == "primary" else self._window_reset)),
            ("x-ratelimit-resource", resource),
        ]
        if kind == "secondary":
            return Response.json(
                {"message": SECONDARY_MESSAGE, "documentation_url": DOCS},
                status=status,
                headers=[("retry-after", str(reset_in)), *limit_headers],
            )
        message = "API rate limit exceeded for installation ID 1."
        if resource == "graphql":
            # GraphQL reports its primary limit inside a 200, like its other errors.
            return Response.json(
                {
                    "errors": [
                        {"type": "RATE_LIMITED", "code": "graphql_rate_limit", "message": message}
                    ]
                },
                headers=limit_headers,
            )
        return Response.json(
            {"message": message, "documentation_url": DOCS}, status=403, headers=limit_headers
        )

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

    # -- REST ----------------------------------------------------------------------------------

    def _commit(self, request: Request) -> Response:
        ref = request.params["ref"]
        sha = self._resolve(ref)
        if sha is None:
            return Response.json(
                {
                    "message": f"No commit found for SHA: {ref}",
                    "documentation_url": DOCS,
                    "status": "422",
                },
                status=422,
            )
        commit = self.commits[sha]
        size = self.files_page_size
        try:
            page = max(1, int(request.arg("page") or 1))
            per_page = min(max(1, int(request.arg("per_page") or size)), size)
        except ValueError:
            return Response.json({"message": "Invalid page"}, status=422)
        last = max(1, -(-len(commit.files) // per_page))
        files = commit.files[(page - 1) * per_page : page * per_page]
        headers: list[tuple[str, str]] = []
        if last > 1:
            base = f"{self.url}/repos/{self.repository}/commits/{sha}"
            suffix = f"&per_page={per_page}" if request.arg("per_page") else ""
            links = []
            if page > 1:
                links += [
                    f'<{base}?page={page - 1}{suffix}>; rel="prev"',
                    f'<{base}?page=1{suffix}>; rel="first"',
                ]
            if page < last:
                links += [
                    f'<{base}?page={page + 1}{suffix}>; rel="next"',
                    f'<{base}?page={last}{suffix}>; rel="last"',
                ]
            if links:
                headers.append(("Link", ", ".join(links)))
        return Response.json(self._commit_json(commit, files), headers=headers)

    def _list_commits(self, request: Request) -> Response:
        """GitHub's "List commits": what `sha` reaches, committed at or after `since`."""
        sha = self._resolve(request.arg("sha") or "main")
        if sha is None:
            return _not_found(LIST_COMMITS_DOCS)
        since: float | None = None
        if request.arg("since"):
            try:
                since = _parse_time(request.arg("since") or "")
            except ValueError:
                return Response.json(
                    {"message": "Invalid time", "documentation_url": LIST_COMMITS_DOCS},
                    status=400,
                )
        try:
            page = max(1, int(request.arg("page") or 1))
            per_page = int(request.arg("per_page") or LIST_PAGE_SIZE)
        except ValueError:
            return Response.json({"message": "Invalid page"}, status=422)
        per_page = min(max(1, per_page), LIST_MAX_PAGE_SIZE)  # GitHub clamps rather than refuses
        reachable = [
            self.commits[c]
            for c in self._ancestors(sha)
            if since is None or self.commits[c].committed_at >= since
        ]
        # Newest first; among equal dates a descendant (longer history) before its ancestors.
        reachable.sort(key=lambda c: (-c.committed_at, -len(self._ancestors(c.sha)), c.sha))
        last = max(1, -(-len(reachable) // per_page))
        listed = reachable[(page - 1) * per_page : page * per_page]
        headers: list[tuple[str, str]] = []
        if last > 1 or page > 1:
            # Like GitHub, the links repeat the request's other parameters as they were sent.
            kept = [(k, v) for k, values in request.query.items() if k != "page" for v in values]

            def link(n: int, rel: str) -> str:
                query = urlencode([*kept, ("page", str(n))])
                return f'<{self.url}/repos/{self.repository}/commits?{query}>; rel="{rel}"'

            links = []
            if page > 1:
                links += [link(page - 1, "prev"), link(1, "first")]
            if page < last:
                links += [link(page + 1, "next"), link(last, "last")]
            headers.append(("Link", ", ".join(links)))
        body = []
        for commit in listed:
            item = self._commit_json(commit, [])
            del item["files"], item["stats"]  # the list omits them, as GitHub's does
            body.append(item)
        return Response.json(body, headers=headers)

    def _commit_json(self, commit: SimCommit, files: list[str]) -> dict[str, Any]:
        date = datetime.fromtimestamp(commit.committed_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        person = {"name": "Sim Dev", "email": "dev@example.com", "date": date}
        api = f"{self.url}/repos/{self.repository}"
        return {
            "sha": commit.sha,
            "node_id": f"C_sim{commit.sha[:12]}",
            "url": f"{api}/commits/{commit.sha}",
            "html_url": f"https://github.com/{self.repository}/commit/{commit.sha}",
            "commit": {
                "message": commit.message,
                "author": person,
                "committer": person,
                "tree": {"sha": hashlib.sha1(commit.sha.encode()).hexdigest()},
            },
            "parents": [
                {"sha": parent, "url": f"{api}/commits/{parent}"} for parent in commit.parents
            ],
            "stats": {"additions": len(commit.files), "deletions": 0, "total": len(commit.files)},
            "files": [
                {
                    "filename": name,
                    "status": "modified",
                    "additions": 1,
                    "deletions": 0,
                    "changes": 1,
                    "sha": hashlib.sha1(f"{commit.sha}:{name}".encode()).hexdigest(),
                }
                for name in files
            ],
        }

    def _ref(self, request: Request) -> Response:
        branch = request.params["branch"]
        sha = self.branches.get(branch)
        if sha is None:
            return _not_found()
        return Response.json(
            {
                "ref": f"refs/heads/{branch}",
                "node_id": f"REF_sim{branch}",
                "url": f"{self.url}/repos/{self.repository}/git/refs/heads/{branch}",
                "object": {"sha": sha, "type": "commit"},
            }
        )

    def _compare(self, request: Request) -> Response:
        base_ref, sep, head_ref = request.params["basehead"].partition("...")
        base = self._resolve(base_ref) if sep else None
        head = self._resolve(head_ref) if sep else None
        if base is None or head is None:
            return _not_found()
        base_history, head_history = self._ancestors(base), self._ancestors(head)
        ahead = head_history - base_history
        behind = base_history - head_history
        if not ahead and not behind:
            status = "identical"
        elif not behind:
            status = "ahead"
        elif not ahead:
            status = "behind"
        else:
            status = "diverged"
        common = base_history & head_history
        # The best common ancestor has the longest history among the common ones.
        merge_base = max(common, key=lambda sha: len(self._ancestors(sha)), default=None)
        per_page = int(request.arg("per_page") or 250)
        ordered = sorted(ahead, key=lambda sha: len(self._ancestors(sha)))
        return Response.json(
            {
                "status": status,
                "ahead_by": len(ahead),
                "behind_by": len(behind),
                "total_commits": len(ahead),
                "base_commit": {"sha": base},
                "merge_base_commit": {"sha": merge_base} if merge_base else None,
                "commits": [{"sha": sha} for sha in ordered[:per_page]],
                "files": [],
            }
        )

    def _put_merge(self, request: Request) -> Response:
        pr = self.pull_requests.get(int(request.params["number"]))
        if pr is None:
            return _not_found()
        body = request.json() or {}
        method = str(body.get("merge_method") or "merge").upper()
        try:
            sha = self._merge(pr, expected_head=body.get("sha"), method=method)
        except _Refusal as refusal:
            return Response.json(
                {"message": refusal.message, "documentation_url": DOCS}, status=refusal.status
            )
        return Response.json(
            {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
        )

    # -- merging -------------------------------------------------------------------------------

    def _merge(self, pr: SimPullRequest, *, expected_head: str | None, method: str) -> str:
        self.merge_attempts.append((pr.number, expected_head))
        if self.before_merge is not None:
            self.before_merge(pr.number)
        if pr.state != "OPEN":
            raise _Refusal(405, NOT_MERGEABLE)
        if pr.draft:
            raise _Refusal(405, "Pull Request is still a draft")
        if pr.in_merge_queue:
            raise _Refusal(405, "Pull Request is in the merge queue")
        if pr.merge_queue:
            raise _Refusal(405, MERGE_QUEUE_REQUIRED)
        if expected_head is not None and expected_head.lower() != pr.head_oid:
            raise _Refusal(409, HEAD_MODIFIED)
        if pr.review_decision in ("REVIEW_REQUIRED", "CHANGES_REQUESTED"):
            raise _Refusal(405, REVIEW_REQUIRED)
        if pr.mergeable != "MERGEABLE" or pr.merge_state_status in ("DIRTY", "BLOCKED", "BEHIND"):
            raise _Refusal(405, NOT_MERGEABLE)
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
        sha = self.add_commit(message, pr.files, parents=parents, on_main=True)
        pr.state = "MERGED"
        pr.in_merge_queue = False
        pr.merge_commit_oid = sha
        pr.merged_at = self.clock()
        self.merges.append((pr.number, sha))
        return sha

    # -- GraphQL -------------------------------------------------------------------------------

    def _graphql(self, request: Request) -> Response:
        try:
            body = request.json() or {}
            query = str(body.get("query") or "")
            variables = body.get("variables") or {}
        except (ValueError, AttributeError):
            return Response.json({"message": "Problems parsing JSON"}, status=400)
        if "mergePullRequest" in query:
            return self._graphql_merge(query, variables)
        if "enqueuePullRequest" in query:
            return self._graphql_enqueue(query, variables)
        if re.search(r"pullRequest\s*\(\s*number\s*:", query):
            return self._graphql_pull_request(query, variables)
        return Response.json({"errors": [{"message": "The simulator does not know this query."}]})

    def _graphql_pull_request(self, query: str, variables: dict[str, Any]) -> Response:
        repo = re.search(r"repository\(([^)]*)\)", query)
        args = _arguments(repo.group(1), variables) if repo else {}
        slug = f"{args.get('owner')}/{args.get('name')}"
        if slug.lower() != self.repository.lower():
            return Response.json(
                {
                    "data": {"repository": None},
                    "errors": [
                        {
                            "type": "NOT_FOUND",
                            "path": ["repository"],
                            "locations": [{"line": 3, "column": 3}],
                            "message": f"Could not resolve to a Repository with the name '{slug}'.",
                        }
                    ],
                }
            )
        call = re.search(r"pullRequest\s*\(([^)]*)\)", query)
        number = _arguments(call.group(1), variables).get("number") if call else None
        pr = self.pull_requests.get(number) if isinstance(number, int) else None
        if pr is None:
            return Response.json(
                {
                    "data": {"repository": {"pullRequest": None}},
                    "errors": [
                        {
                            "type": "NOT_FOUND",
                            "path": ["repository", "pullRequest"],
                            "locations": [{"line": 3, "column": 5}],
                            "message": "Could not resolve to a PullRequest with the number of "
                            f"{number}.",
                        }
                    ],
                }
            )
        self._advance_queue(pr)
        node = self._pr_node(pr)
        # Like GraphQL, answer only the fields the query selected.
        selected = {k: v for k, v in node.items() if re.search(rf"\b{k}\b", query)}
        return Response.json({"data": {"repository": {"pullRequest": selected}}})

    def _advance_queue(self, pr: SimPullRequest) -> None:
        if pr.in_merge_queue and pr.state == "OPEN":
            pr.queue_polls_left -= 1
            if pr.queue_polls_left <= 0:
                self._squash(pr, method="SQUASH")

    def _pr_node(self, pr: SimPullRequest) -> dict[str, Any]:
        merged_at = (
            datetime.fromtimestamp(pr.merged_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if pr.merged_at is not None
            else None
        )
        return {
            "id": pr.node_id,
            "number": pr.number,
            "title": pr.title,
            "url": f"https://github.com/{self.repository}/pull/{pr.number}",
            "state": pr.state,
            "isDraft": pr.draft,
            "reviewDecision": pr.review_decision,
            "mergeable": pr.mergeable,
            "mergeStateStatus": pr.merge_state_status,
            "headRefOid": pr.head_oid,
            "baseRefName": "main",
            "mergeCommit": {"oid": pr.merge_commit_oid} if pr.merge_commit_oid else None,
            "mergedAt": merged_at,
            "isInMergeQueue": pr.in_merge_queue,
            "isMergeQueueEnabled": pr.merge_queue,
            "autoMergeRequest": None,
            "latestReviews": {"nodes": [dict(review) for review in pr.latest_reviews]},
        }

    def _pr_by_node_id(self, node_id: Any) -> SimPullRequest | None:
        return next((pr for pr in self.pull_requests.values() if pr.node_id == node_id), None)

    def _mutation_input(
        self, name: str, query: str, variables: dict[str, Any]
    ) -> tuple[SimPullRequest | None, dict[str, Any], Response | None]:
        args: dict[str, Any] = {}
        inline = re.search(rf"{name}\s*\(\s*input\s*:\s*\{{([^}}]*)\}}", query)
        whole = re.search(rf"{name}\s*\(\s*input\s*:\s*\$(\w+)", query)
        if inline:
            args = _arguments(inline.group(1), variables)
        elif whole and isinstance(variables.get(whole.group(1)), dict):
            args = dict(variables[whole.group(1)])
        pr = self._pr_by_node_id(args.get("pullRequestId"))
        if pr is None:
            node_id = str(args.get("pullRequestId"))[:40]
            return (
                None,
                args,
                _graphql_error(
                    name,
                    "NOT_FOUND",
                    f"Could not resolve to a node with the global id of '{node_id}'",
                ),
            )
        return pr, args, None

    def _graphql_merge(self, query: str, variables: dict[str, Any]) -> Response:
        pr, args, error = self._mutation_input("mergePullRequest", query, variables)
        if pr is None:
            assert error is not None
            return error
        method = str(args.get("mergeMethod") or "MERGE").upper()
        try:
            sha = self._merge(pr, expected_head=args.get("expectedHeadOid"), method=method)
        except _Refusal as refusal:
            return _graphql_error("mergePullRequest", "UNPROCESSABLE", refusal.message)
        return Response.json(
            {
                "data": {
                    "mergePullRequest": {
                        "pullRequest": {"state": pr.state, "mergeCommit": {"oid": sha}}
                    }
                }
            }
        )

    def _graphql_enqueue(self, query: str, variables: dict[str, Any]) -> Response:
        pr, args, error = self._mutation_input("enqueuePullRequest", query, variables)
        if pr is None:
            assert error is not None
            return error
        expected = args.get("expectedHeadOid")
        message = None
        if pr.state != "OPEN" or pr.draft:
            message = NOT_MERGEABLE
        elif not pr.merge_queue:
            message = "Pull request is not in a branch with a merge queue"
        elif pr.in_merge_queue:
            message = "Pull request is already in the merge queue"
        elif isinstance(expected, str) and expected.lower() != pr.head_oid:
            message = HEAD_MODIFIED
        elif pr.review_decision in ("REVIEW_REQUIRED", "CHANGES_REQUESTED"):
            message = REVIEW_REQUIRED
        elif pr.mergeable == "CONFLICTING":
            message = NOT_MERGEABLE
        if message is not None:
            return _graphql_error("enqueuePullRequest", "UNPROCESSABLE", message)
        pr.in_merge_queue = True
        pr.queue_polls_left = self.queue_polls_before_merge
        return Response.json(
            {
                "data": {
                    "enqueuePullRequest": {"mergeQueueEntry": {"state": "QUEUED", "position": 1}}
                }
            }
        )


def _arguments(text: str, variables: dict[str, Any]) -> dict[str, Any]:
    """GraphQL `key: $var`, `key: "str"`, `key: 12` and `key: ENUM` pairs, variables resolved."""
    args: dict[str, Any] = {}
    for key, raw in _INPUT_ARG.findall(text):
        if raw.startswith("$"):
            args[key] = variables.get(raw[1:])
        elif raw.startswith('"'):
            args[key] = raw[1:-1]
        elif re.fullmatch(r"-?\d+", raw):
            args[key] = int(raw)
        else:
            args[key] = raw
    return args


def _graphql_error(mutation: str, kind: str, message: str) -> Response:
    return Response.json(
        {
            "data": {mutation: None},
            "errors": [
                {
                    "type": kind,
                    "path": [mutation],
                    "locations": [{"line": 2, "column": 3}],
                    "message": message,
                }
            ],
        }
    )


def _not_found(documentation_url: str = DOCS) -> Response:
    return Response.json(
        {"message": "Not Found", "documentation_url": documentation_url, "status": "404"},
        status=404,
    )


def _parse_time(value: str) -> float:
    """An ISO 8601 time (`2024-05-01T12:00:00Z`; no zone means UTC) → epoch seconds."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
