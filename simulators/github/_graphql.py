"""The GraphQL endpoint: the pull request query and the merge and enqueue mutations, answered
with GitHub's shapes (errors inside an HTTP 200)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from simulators._http import Request, Response
from simulators.github._model import (
    HEAD_MODIFIED,
    NOT_MERGEABLE,
    REVIEW_REQUIRED,
    Refusal,
    SimPullRequest,
)
from simulators.github._schema import document_errors
from simulators.github._state import GitHubState, SimRepository

_INPUT_ARG = re.compile(r'(\w+)\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*"|-?\d+|\w+)')


class GraphQL(GitHubState):
    """The `/graphql` handler: queries answer from the repository `repository(owner:, name:)`
    names, mutations from the repository owning the PR node id they are given."""

    def _graphql(self, request: Request) -> Response:
        try:
            body = request.json() or {}
            query = str(body.get("query") or "")
            variables = body.get("variables") or {}
        except (ValueError, AttributeError):
            return Response.json({"message": "Problems parsing JSON"}, status=400)
        if not query:
            message = "A query attribute must be specified and must be a string."
            return Response.json({"errors": [{"message": message}]})
        if self.schema_path is not None:
            # GitHub checks the document against its schema before running any of it.
            operation = body.get("operationName")
            errors = document_errors(
                query,
                variables if isinstance(variables, dict) else {},
                operation if isinstance(operation, str) else None,
                self.schema_path,
            )
            if errors:
                return Response.json({"errors": errors})
        if "mergePullRequest" in query:
            return self._graphql_merge(query, variables)
        if "enqueuePullRequest" in query:
            return self._graphql_enqueue(query, variables)
        if re.search(r"pullRequest\s*\(\s*number\s*:", query):
            return self._graphql_pull_request(query, variables)
        if re.search(r"repository\s*\(", query):
            return self._graphql_repository(query, variables)
        return Response.json({"errors": [{"message": "The simulator does not know this query."}]})

    def _queried_repository(
        self, query: str, variables: dict[str, Any]
    ) -> SimRepository | Response:
        """The repository `repository(owner:, name:)` names, or GitHub's NOT_FOUND answer."""
        call = re.search(r"repository\s*\(([^)]*)\)", query)
        args = _arguments(call.group(1), variables) if call else {}
        repo = self.repository_named(args.get("owner"), args.get("name"))
        if repo is not None:
            return repo
        slug = f"{args.get('owner')}/{args.get('name')}"
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

    def _graphql_repository(self, query: str, variables: dict[str, Any]) -> Response:
        """The repository itself: its name, the token's permission, the default branch."""
        repo = self._queried_repository(query, variables)
        if isinstance(repo, Response):
            return repo
        node = {
            "nameWithOwner": repo.repository,
            "viewerPermission": repo.viewer_permission,
            "defaultBranchRef": {"name": "main"},
        }
        selected = {k: v for k, v in node.items() if re.search(rf"\b{k}\b", query)}
        return Response.json({"data": {"repository": selected}})

    def _graphql_pull_request(self, query: str, variables: dict[str, Any]) -> Response:
        repo = self._queried_repository(query, variables)
        if isinstance(repo, Response):
            return repo
        call = re.search(r"pullRequest\s*\(([^)]*)\)", query)
        number = _arguments(call.group(1), variables).get("number") if call else None
        pr = repo.pull_requests.get(number) if isinstance(number, int) else None
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
        repo.advance_queue(pr)
        node = self._pr_node(repo, pr)
        # Like GraphQL, answer only the fields the query selected.
        selected = {k: v for k, v in node.items() if re.search(rf"\b{k}\b", query)}
        return Response.json({"data": {"repository": {"pullRequest": selected}}})

    def _pr_node(self, repo: SimRepository, pr: SimPullRequest) -> dict[str, Any]:
        merged_at = (
            datetime.fromtimestamp(pr.merged_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if pr.merged_at is not None
            else None
        )
        return {
            "id": pr.node_id,
            "number": pr.number,
            "title": pr.title,
            "url": f"https://github.com/{repo.repository}/pull/{pr.number}",
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
            # An Actor; null for a deleted account.
            "author": {"login": pr.author_login} if pr.author_login else None,
            "latestReviews": {"nodes": [dict(review) for review in pr.latest_reviews]},
        }

    def _mutation_input(
        self, name: str, query: str, variables: dict[str, Any]
    ) -> tuple[SimRepository, SimPullRequest, dict[str, Any]] | Response:
        """The PR a mutation's `pullRequestId` names, its repository and the mutation's input;
        or GitHub's NOT_FOUND answer. A node id is global: it names the repository too."""
        args: dict[str, Any] = {}
        inline = re.search(rf"{name}\s*\(\s*input\s*:\s*\{{([^}}]*)\}}", query)
        whole = re.search(rf"{name}\s*\(\s*input\s*:\s*\$(\w+)", query)
        if inline:
            args = _arguments(inline.group(1), variables)
        elif whole and isinstance(variables.get(whole.group(1)), dict):
            args = dict(variables[whole.group(1)])
        found = self.pull_request_by_node_id(args.get("pullRequestId"))
        if found is None:
            node_id = str(args.get("pullRequestId"))[:40]
            return _graphql_error(
                name, "NOT_FOUND", f"Could not resolve to a node with the global id of '{node_id}'"
            )
        repo, pr = found
        return repo, pr, args

    def _graphql_merge(self, query: str, variables: dict[str, Any]) -> Response:
        found = self._mutation_input("mergePullRequest", query, variables)
        if isinstance(found, Response):
            return found
        repo, pr, args = found
        method = str(args.get("mergeMethod") or "MERGE").upper()
        try:
            sha = repo.attempt_merge(pr, expected_head=args.get("expectedHeadOid"), method=method)
        except Refusal as refusal:
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
        found = self._mutation_input("enqueuePullRequest", query, variables)
        if isinstance(found, Response):
            return found
        repo, pr, args = found
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
        pr.queue_polls_left = repo.queue_polls_before_merge
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
