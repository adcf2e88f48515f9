"""The REST routes: a commit and its files, the commit list, a branch ref, compare, merge."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from simulators._http import Request, Response
from simulators.github._model import (
    COMPARE_DOCS,
    DOCS,
    LIST_COMMITS_DOCS,
    LIST_MAX_PAGE_SIZE,
    LIST_PAGE_SIZE,
    Refusal,
    SimCommit,
    not_found,
)
from simulators.github._state import GitHubState, SimRepository

RepositoryHandler = Callable[[Request, SimRepository], Response]


class Rest(GitHubState):
    """Handlers for the REST API the client calls, each answering from the repository its path
    names (`/repos/{owner}/{repo}/...`)."""

    def _in_repository(self, handler: RepositoryHandler) -> Callable[[Request], Response]:
        """`handler` given the repository the path names; GitHub's 404 for one it has not."""

        def routed(request: Request) -> Response:
            repo = self.repository_named(request.params.get("owner"), request.params.get("repo"))
            return not_found() if repo is None else handler(request, repo)

        return routed

    def _commit(self, request: Request, repo: SimRepository) -> Response:
        ref = request.params["ref"]
        sha = repo.resolve(ref)
        if sha is None:
            return Response.json(
                {
                    "message": f"No commit found for SHA: {ref}",
                    "documentation_url": DOCS,
                    "status": "422",
                },
                status=422,
            )
        commit = repo.commits[sha]
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
            base = f"{self.url}/repos/{repo.repository}/commits/{sha}"
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
        return Response.json(self._commit_json(repo, commit, files), headers=headers)

    def _list_commits(self, request: Request, repo: SimRepository) -> Response:
        """GitHub's "List commits": what `sha` reaches, committed at or after `since`."""
        sha = repo.resolve(request.arg("sha") or "main")
        if sha is None:
            return not_found(LIST_COMMITS_DOCS)
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
            repo.commits[c]
            for c in repo.ancestors(sha)
            if since is None or repo.commits[c].committed_at >= since
        ]
        # Newest first; among equal dates a descendant (longer history) before its ancestors.
        reachable.sort(key=lambda c: (-c.committed_at, -len(repo.ancestors(c.sha)), c.sha))
        last = max(1, -(-len(reachable) // per_page))
        listed = reachable[(page - 1) * per_page : page * per_page]
        headers: list[tuple[str, str]] = []
        if last > 1 or page > 1:
            # Like GitHub, the links repeat the request's other parameters as they were sent.
            kept = [(k, v) for k, values in request.query.items() if k != "page" for v in values]

            def link(n: int, rel: str) -> str:
                query = urlencode([*kept, ("page", str(n))])
                return f'<{self.url}/repos/{repo.repository}/commits?{query}>; rel="{rel}"'

            links = []
            if page > 1:
                links += [link(page - 1, "prev"), link(1, "first")]
            if page < last:
                links += [link(page + 1, "next"), link(last, "last")]
            headers.append(("Link", ", ".join(links)))
        body = []
        for commit in listed:
            item = self._commit_json(repo, commit, [])
            del item["files"], item["stats"]  # the list omits them, as GitHub's does
            body.append(item)
        return Response.json(body, headers=headers)

    def _commit_json(
        self, repo: SimRepository, commit: SimCommit, files: list[str]
    ) -> dict[str, Any]:
        date = datetime.fromtimestamp(commit.committed_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        author = {"name": commit.author_name, "email": commit.author_email, "date": date}
        committer = {"name": "GitHub", "email": "noreply@github.com", "date": date}
        api = f"{self.url}/repos/{repo.repository}"
        # The GitHub user the author's email belongs to; null when it belongs to none.
        account = None
        if commit.author_login is not None:
            account = {
                "login": commit.author_login,
                "id": int(hashlib.sha1(commit.author_login.encode()).hexdigest()[:6], 16),
                "type": "User",
                "html_url": f"https://github.com/{commit.author_login}",
            }
        return {
            "sha": commit.sha,
            "node_id": f"C_sim{commit.sha[:12]}",
            "url": f"{api}/commits/{commit.sha}",
            "html_url": f"https://github.com/{repo.repository}/commit/{commit.sha}",
            "commit": {
                "message": commit.message,
                "author": author,
                "committer": committer,
                "tree": {"sha": hashlib.sha1(commit.sha.encode()).hexdigest()},
            },
            "author": account,
            "committer": None,
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

    def _ref(self, request: Request, repo: SimRepository) -> Response:
        branch = request.params["branch"]
        sha = repo.branches.get(branch)
        if sha is None:
            return not_found()
        return Response.json(
            {
                "ref": f"refs/heads/{branch}",
                "node_id": repo.ref_node_id(branch),
                "url": f"{self.url}/repos/{repo.repository}/git/refs/heads/{branch}",
                "object": {"sha": sha, "type": "commit"},
            }
        )

    def _compare(self, request: Request, repo: SimRepository) -> Response:
        base_ref, sep, head_ref = request.params["basehead"].partition("...")
        base = repo.resolve(base_ref) if sep else None
        head = repo.resolve(head_ref) if sep else None
        if base is None or head is None:
            return not_found()
        base_history, head_history = repo.ancestors(base), repo.ancestors(head)
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
        if not common:
            # Unrelated histories: GitHub refuses the comparison rather than answer `diverged`.
            return Response.json(
                {
                    "message": f"No common ancestor between {base_ref} and {head_ref}.",
                    "documentation_url": COMPARE_DOCS,
                    "status": "404",
                },
                status=404,
            )
        # The best common ancestor has the longest history among the common ones.
        merge_base = max(common, key=lambda sha: len(repo.ancestors(sha)))
        # Without paging GitHub lists 250 commits; with `per_page`/`page`, 30 a page by
        # default and at most 100, oldest first either way.
        try:
            paged = bool(request.arg("per_page") or request.arg("page"))
            per_page = int(request.arg("per_page") or (30 if paged else 250))
            page = max(1, int(request.arg("page") or 1))
        except ValueError:
            return Response.json({"message": "Invalid page"}, status=422)
        if paged:
            per_page = min(max(1, per_page), 100)
        ordered = sorted(ahead, key=lambda sha: len(repo.ancestors(sha)))
        listed = []
        for sha in ordered[(page - 1) * per_page : page * per_page]:
            item = self._commit_json(repo, repo.commits[sha], [])
            del item["files"], item["stats"]  # compare's commit list omits them
            listed.append(item)
        basehead = request.params["basehead"]
        html = f"https://github.com/{repo.repository}/compare/{basehead}"
        return Response.json(
            {
                "url": f"{self.url}/repos/{repo.repository}/compare/{basehead}",
                "html_url": html,
                "permalink_url": f"https://github.com/{repo.repository}/compare/{base}...{head}",
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "status": status,
                "ahead_by": len(ahead),
                "behind_by": len(behind),
                "total_commits": len(ahead),
                "base_commit": {"sha": base},
                "merge_base_commit": {"sha": merge_base},
                "commits": listed,
                "files": [],
            }
        )

    def _put_merge(self, request: Request, repo: SimRepository) -> Response:
        pr = repo.pull_requests.get(int(request.params["number"]))
        if pr is None:
            return not_found()
        body = request.json() or {}
        method = str(body.get("merge_method") or "merge").upper()
        try:
            sha = repo.attempt_merge(pr, expected_head=body.get("sha"), method=method)
        except Refusal as refusal:
            return Response.json(
                {"message": refusal.message, "documentation_url": DOCS}, status=refusal.status
            )
        return Response.json(
            {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
        )


def _parse_time(value: str) -> float:
    """An ISO 8601 time (`2024-05-01T12:00:00Z`; no zone means UTC) → epoch seconds."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
