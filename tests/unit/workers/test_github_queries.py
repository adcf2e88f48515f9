"""Every GraphQL document the GitHub client sends validates against GitHub's public schema
(`tests/data/github-schema.graphql`, octokit/graphql-schema), and so do the variables it sends
with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from graphql.execution.values import get_variable_values
from pydantic import AliasPath

from workers.github import GitHubClient, PullRequest
from workers.github import _queries as queries

SCHEMA = Path(__file__).resolve().parents[2] / "data" / "github-schema.graphql"
SHA = "a" * 40

# Every upper-case string of the queries module is a document the client may send.
DOCUMENTS = {
    name: value
    for name, value in vars(queries).items()
    if name.isupper() and isinstance(value, str)
}


@pytest.fixture(scope="session")
def github_schema() -> graphql.GraphQLSchema:
    """GitHub's schema, built once. GitHub's SDL breaks rules GitHub itself does not enforce
    (duplicate fields, deprecated interface implementations): build it as valid."""
    return graphql.build_schema(SCHEMA.read_text(), assume_valid=True, assume_valid_sdl=True)


def test_the_queries_module_holds_the_documents() -> None:
    assert set(DOCUMENTS) >= {
        "PULL_REQUEST_QUERY",
        "REPOSITORY_QUERY",
        "MERGE_MUTATION",
        "ENQUEUE_MUTATION",
    }


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_each_document_validates_against_githubs_schema(
    github_schema: graphql.GraphQLSchema, name: str
) -> None:
    errors = graphql.validate(github_schema, graphql.parse(DOCUMENTS[name]))
    assert [error.message for error in errors] == []


def test_the_schema_check_catches_a_wrong_document(github_schema: graphql.GraphQLSchema) -> None:
    document = 'query { repository(owner: 1, name: "x") { nameWithOwner notAField } }'
    messages = [e.message for e in graphql.validate(github_schema, graphql.parse(document))]
    assert any("notAField" in message for message in messages)
    assert any("String" in message for message in messages)  # owner: String!


def sent_documents() -> list[dict[str, Any]]:
    """The GraphQL bodies the client sends for each of its GraphQL calls."""
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        query = body["query"]
        if "mergePullRequest" in query:
            merged = {"pullRequest": {"state": "MERGED", "mergeCommit": {"oid": SHA}}}
            return httpx.Response(200, json={"data": {"mergePullRequest": merged}})
        if "enqueuePullRequest" in query:
            entry = {"mergeQueueEntry": {"state": "QUEUED", "position": 1}}
            return httpx.Response(200, json={"data": {"enqueuePullRequest": entry}})
        if "viewerPermission" in query:
            node = {"nameWithOwner": "o/r", "viewerPermission": "WRITE"}
            return httpx.Response(200, json={"data": {"repository": node}})
        return httpx.Response(200, json={"data": {"repository": {"pullRequest": pr_node()}}})

    client = GitHubClient(repository="o/r", token="t", transport=httpx.MockTransport(handler))
    pr = client.pull_request(12)
    client.merge_pull_request(pr, expected_head_oid=SHA)
    client.enqueue_pull_request(pr, expected_head_oid=SHA)
    client.repository_access()
    return bodies


def pr_node() -> dict[str, Any]:
    return {
        "id": "PR_kwDO1",
        "number": 12,
        "title": "t",
        "url": "https://github.com/o/r/pull/12",
        "state": "OPEN",
        "isDraft": False,
        "reviewDecision": "APPROVED",
        "mergeable": "MERGEABLE",
        "mergeStateStatus": "CLEAN",
        "headRefOid": SHA,
        "baseRefName": "main",
    }


def test_the_client_sends_only_those_documents_with_variables_of_their_types(
    github_schema: graphql.GraphQLSchema,
) -> None:
    bodies = sent_documents()
    assert len(bodies) == 4
    assert {body["query"] for body in bodies} == set(DOCUMENTS.values())
    for body in bodies:
        document = graphql.parse(body["query"])
        (operation,) = document.definitions
        assert isinstance(operation, graphql.OperationDefinitionNode)
        coerced = get_variable_values(
            github_schema, operation.variable_definitions or (), body["variables"]
        )
        assert not isinstance(coerced, list), [error.message for error in coerced]


def selected(document: str, path: list[str]) -> set[str]:
    """The field names selected at `path` (field names from the operation down) of `document`."""
    (operation,) = graphql.parse(document).definitions
    assert isinstance(operation, graphql.OperationDefinitionNode)
    selection = operation.selection_set
    for name in path:
        field = next(
            f
            for f in selection.selections
            if isinstance(f, graphql.FieldNode) and f.name.value == name
        )
        assert field.selection_set is not None
        selection = field.selection_set
    return {f.name.value for f in selection.selections if isinstance(f, graphql.FieldNode)}


def test_the_pull_request_model_reads_only_fields_the_query_selects() -> None:
    fields = selected(queries.PULL_REQUEST_QUERY, ["repository", "pullRequest"])
    for name, info in PullRequest.model_fields.items():
        alias = info.validation_alias
        first = alias.path[0] if isinstance(alias, AliasPath) else (alias or name)
        assert first in fields, f"PullRequest.{name} reads {first}, which the query lacks"
