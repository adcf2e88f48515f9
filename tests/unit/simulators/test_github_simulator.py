"""The GitHub simulator behaves like GitHub where the bot depends on it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.github import GitHubSimulator, SimRepository
from workers.errors import (
    GitHubAuthError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
)
from workers.github import REPOSITORY_QUERY, GitHubClient

REPO = "GaloyMoney/lana-bank"
TOKEN = "ghs_test"
NOW = 1_700_000_000.0
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
}


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    simulator = GitHubSimulator(repository=REPO, token=TOKEN, clock=lambda: NOW, files_page_size=3)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def http(sim: GitHubSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers=HEADERS) as client:
        yield client


def compare(http: httpx.Client, base: str, head: str) -> tuple[str, int, int]:
    response = http.get(f"/repos/{REPO}/compare/{base}...{head}")
    assert response.status_code == 200, response.text
    body = response.json()
    return body["status"], body["ahead_by"], body["behind_by"]


def test_compare_over_a_small_dag(sim: GitHubSimulator, http: httpx.Client) -> None:
    #   root - a - b        (main)
    #           \
    #            x - y      (a side branch off a)
    root = sim.main_head
    a = sim.add_commit("a", ["a.rs"])
    b = sim.add_commit("b", ["b.rs"])
    x = sim.add_commit("x", ["x.rs"], parents=[a], on_main=False)
    y = sim.add_commit("y", ["y.rs"], parents=[x], on_main=False)
    assert sim.main_head == b

    assert compare(http, a, b) == ("ahead", 1, 0)
    assert compare(http, root, "main") == ("ahead", 2, 0)
    assert compare(http, b, a) == ("behind", 0, 1)
    assert compare(http, b, b) == ("identical", 0, 0)
    assert compare(http, b, y) == ("diverged", 2, 1)
    assert compare(http, y[:7], "main") == ("diverged", 1, 2)  # short SHAs resolve too

    merge = sim.add_commit("merge", [], parents=[b, y])
    assert compare(http, y, "main") == ("ahead", 2, 0)
    assert compare(http, "main", x) == ("behind", 0, 3)
    body = http.get(f"/repos/{REPO}/compare/{x}...{b}").json()
    assert body["merge_base_commit"]["sha"] == a
    assert merge == sim.main_head


def test_compare_unknown_sha_is_404(sim: GitHubSimulator, http: httpx.Client) -> None:
    response = http.get(f"/repos/{REPO}/compare/{'e' * 40}...main")
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"


def test_compare_without_a_common_ancestor_is_404(sim: GitHubSimulator, http: httpx.Client) -> None:
    # An orphan history (`git checkout --orphan`): nothing in common with main.
    orphan = sim.add_commit("orphan root", ["other.md"], parents=[], on_main=False)
    tip = sim.add_commit("orphan tip", ["other.md"], parents=[orphan], on_main=False)
    for base, head in ((tip, "main"), ("main", tip), (tip[:7], sim.main_head)):
        response = http.get(f"/repos/{REPO}/compare/{base}...{head}")
        assert response.status_code == 404, (base, head)
        assert response.json()["message"] == f"No common ancestor between {base} and {head}."
    assert compare(http, orphan, tip) == ("ahead", 1, 0)  # within the orphan history: fine


def test_compare_answer_has_its_links_and_a_merge_base(
    sim: GitHubSimulator, http: httpx.Client
) -> None:
    root = sim.main_head
    head = sim.add_commit("a", ["a.rs"])
    body = http.get(f"/repos/{REPO}/compare/{root}...main").json()
    assert body["merge_base_commit"] == {"sha": root}
    assert body["url"] == f"{sim.url}/repos/{REPO}/compare/{root}...main"
    assert body["html_url"] == f"https://github.com/{REPO}/compare/{root}...main"
    assert body["permalink_url"] == f"https://github.com/{REPO}/compare/{root}...{head}"
    assert body["diff_url"].endswith(".diff") and body["patch_url"].endswith(".patch")


def test_commit_files_are_paginated_with_link_headers(
    sim: GitHubSimulator, http: httpx.Client
) -> None:
    files = [f"f{i}.rs" for i in range(8)]
    sha = sim.add_commit("big", files)
    first = http.get(f"/repos/{REPO}/commits/{sha[:8]}")
    assert first.status_code == 200
    assert first.json()["sha"] == sha
    assert [f["filename"] for f in first.json()["files"]] == files[:3]
    assert first.links["next"]["url"] == f"{sim.url}/repos/{REPO}/commits/{sha}?page=2"
    assert first.links["last"]["url"] == f"{sim.url}/repos/{REPO}/commits/{sha}?page=3"

    second = http.get(first.links["next"]["url"])
    assert [f["filename"] for f in second.json()["files"]] == files[3:6]
    assert second.json()["commit"]["message"] == "big"  # static info repeats on every page
    third = http.get(second.links["next"]["url"])
    assert [f["filename"] for f in third.json()["files"]] == files[6:]
    assert "next" not in third.links
    assert third.links["prev"]["url"].endswith("page=2")

    small = http.get(f"/repos/{REPO}/commits/{sim.add_commit('small', ['a.rs'])}")
    assert "link" not in small.headers


def test_unknown_commit_is_422(http: httpx.Client) -> None:
    response = http.get(f"/repos/{REPO}/commits/deadbee")
    assert response.status_code == 422
    assert response.json()["message"] == "No commit found for SHA: deadbee"


def test_branch_ref(sim: GitHubSimulator, http: httpx.Client) -> None:
    body = http.get(f"/repos/{REPO}/git/ref/heads/main").json()
    assert body["ref"] == "refs/heads/main"
    assert body["object"]["sha"] == sim.main_head
    assert http.get(f"/repos/{REPO}/git/ref/heads/nope").status_code == 404


def test_other_repository_is_404(http: httpx.Client) -> None:
    assert http.get("/repos/someone/else/git/ref/heads/main").status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic ghs_test"])
def test_bad_credentials(sim: GitHubSimulator, authorization: str | None) -> None:
    headers = {"X-GitHub-Api-Version": "2022-11-28"}
    if authorization:
        headers["Authorization"] = authorization
    with httpx.Client(base_url=sim.url, headers=headers) as client:
        rest = client.get(f"/repos/{REPO}/git/ref/heads/main")
        graphql = client.post("/graphql", json={"query": "{ viewer { login } }"})
    for response in (rest, graphql):
        assert response.status_code == 401
        assert response.json()["message"] == "Bad credentials"
        assert response.headers["x-ratelimit-limit"] == "60"


def test_rate_limit_headers_on_every_response(http: httpx.Client) -> None:
    first = http.get(f"/repos/{REPO}/git/ref/heads/main")
    second = http.get(f"/repos/{REPO}/commits/deadbee")  # errors count and carry them too
    for response, used in ((first, 1), (second, 2)):
        assert response.headers["x-ratelimit-limit"] == "5000"
        assert response.headers["x-ratelimit-used"] == str(used)
        assert response.headers["x-ratelimit-remaining"] == str(5000 - used)
        assert response.headers["x-ratelimit-reset"] == str(int(NOW) + 3600)
        assert response.headers["x-ratelimit-resource"] == "core"
    graphql = http.post("/graphql", json={"query": "{ viewer { login } }"})
    assert graphql.headers["x-ratelimit-resource"] == "graphql"
    assert graphql.headers["x-ratelimit-used"] == "1"


def test_primary_rate_limit(sim: GitHubSimulator, http: httpx.Client) -> None:
    sim.rate_limit_next(2, kind="primary", reset_in=120)
    rest = http.get(f"/repos/{REPO}/git/ref/heads/main")
    assert rest.status_code == 403
    assert rest.headers["x-ratelimit-remaining"] == "0"
    assert rest.headers["x-ratelimit-reset"] == str(int(NOW) + 120)
    graphql = http.post("/graphql", json={"query": "{ viewer { login } }"})
    assert graphql.status_code == 200
    assert graphql.json()["errors"][0]["type"] == "RATE_LIMITED"
    assert graphql.headers["x-ratelimit-remaining"] == "0"
    assert http.get(f"/repos/{REPO}/git/ref/heads/main").status_code == 200


def test_secondary_rate_limit(sim: GitHubSimulator, http: httpx.Client) -> None:
    sim.rate_limit_next(1, kind="secondary", reset_in=45)
    response = http.get(f"/repos/{REPO}/git/ref/heads/main")
    assert response.status_code == 403
    assert response.headers["retry-after"] == "45"
    assert response.headers["x-ratelimit-remaining"] != "0"
    assert "secondary rate limit" in response.json()["message"]


def pr_query(http: httpx.Client, number: int) -> httpx.Response:
    query = (
        "query($owner: String!, $repo: String!, $number: Int!) {"
        " repository(owner: $owner, name: $repo) {"
        " pullRequest(number: $number) { id number state reviewDecision headRefOid } } }"
    )
    variables = {"owner": "GaloyMoney", "repo": "lana-bank", "number": number}
    return http.post("/graphql", json={"query": query, "variables": variables})


def test_graphql_pull_request_answers_selected_fields(
    sim: GitHubSimulator, http: httpx.Client
) -> None:
    sim.add_pull_request(7, "Seven", ["a.rs"], review_decision=None, latest_reviews=[])
    node = pr_query(http, 7).json()["data"]["repository"]["pullRequest"]
    assert node == {
        "id": sim.pull_requests[7].node_id,
        "number": 7,
        "state": "OPEN",
        "reviewDecision": None,
        "headRefOid": sim.pull_requests[7].head_oid,
    }


def test_graphql_unknown_pull_request(http: httpx.Client) -> None:
    response = pr_query(http, 404)
    assert response.status_code == 200
    assert response.json() == {
        "data": {"repository": {"pullRequest": None}},
        "errors": [
            {
                "type": "NOT_FOUND",
                "path": ["repository", "pullRequest"],
                "locations": [{"line": 3, "column": 5}],
                "message": "Could not resolve to a PullRequest with the number of 404.",
            }
        ],
    }


def test_graphql_documents_are_checked_against_the_schema(
    sim: GitHubSimulator, http: httpx.Client
) -> None:
    query = (
        "query($owner: String!, $repo: String!) {\n"
        "  repository(owner: $owner, name: $repo) { nameWithOwner isFancy }\n"
        "}"
    )
    variables = {"owner": "GaloyMoney", "repo": "lana-bank"}
    response = http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200  # GitHub refuses a document inside a 200 too
    assert response.json() == {
        "errors": [
            {
                "message": "Field 'isFancy' doesn't exist on type 'Repository'",
                "locations": [{"line": 2, "column": 58}],
                "extensions": {
                    "code": "undefinedField",
                    "typeName": "Repository",
                    "fieldName": "isFancy",
                },
            }
        ]
    }
    syntax = http.post("/graphql", json={"query": "query { repository(", "variables": {}})
    [error] = syntax.json()["errors"]
    assert error["message"].startswith("Syntax Error") and error["locations"] == [
        {"line": 1, "column": 20}
    ]
    # A valid document is answered: the client's own repository query.
    assert (
        "data"
        in http.post(
            "/graphql",
            json={
                "query": REPOSITORY_QUERY,
                "variables": {"owner": "GaloyMoney", "repo": "lana-bank"},
            },
        ).json()
    )


def test_graphql_variables_are_checked_against_the_operation(
    sim: GitHubSimulator, http: httpx.Client
) -> None:
    sim.add_pull_request(7, "Seven", ["a.rs"])
    query = (
        "query($owner: String!, $repo: String!, $number: Int!) {"
        " repository(owner: $owner, name: $repo) { pullRequest(number: $number) { number } } }"
    )
    variables: dict[str, Any] = {"owner": "GaloyMoney", "repo": "lana-bank", "number": "7"}
    body = http.post("/graphql", json={"query": query, "variables": variables}).json()
    assert "data" not in body
    assert body["errors"][0]["message"].startswith("Variable '$number' has invalid value")
    variables["number"] = 7
    body = http.post("/graphql", json={"query": query, "variables": variables}).json()
    assert body == {"data": {"repository": {"pullRequest": {"number": 7}}}}


def test_an_invalid_mutation_is_refused_before_it_merges(
    sim: GitHubSimulator, http: httpx.Client
) -> None:
    sim.add_pull_request(5, "Five", ["e.rs"])
    pr = sim.pull_requests[5]
    mutation = (
        "mutation { mergePullRequest(input: {"
        f' pullRequestId: "{pr.node_id}", mergeMethod: SQUISH }}) {{ pullRequest {{ state }} }} }}'
    )
    body = http.post("/graphql", json={"query": mutation}).json()
    assert "data" not in body and "SQUISH" in body["errors"][0]["message"]
    assert sim.merges == [] and pr.state == "OPEN"


def test_without_the_schema_file_documents_go_unchecked(
    sim: GitHubSimulator, http: httpx.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim.add_pull_request(7, "Seven", ["a.rs"])
    sim.schema_path = tmp_path / "absent.graphql"
    with caplog.at_level(logging.WARNING, logger="simulators.github._schema"):
        node = pr_query(http, 7).json()["data"]["repository"]["pullRequest"]
    assert node["number"] == 7
    assert f"no GitHub schema at {sim.schema_path}" in caplog.text


def test_the_schema_checked_against_is_the_simulators(
    sim: GitHubSimulator, http: httpx.Client, tmp_path: Path
) -> None:
    sim.schema_path = tmp_path / "tiny.graphql"
    sim.schema_path.write_text("type Query { viewer: User }\ntype User { login: String }\n")
    # Valid on GitHub, but this schema has no `repository`: refused, so the file was used.
    messages = [error["message"] for error in pr_query(http, 7).json()["errors"]]
    assert "Field 'repository' doesn't exist on type 'Query'" in messages


def test_rest_merge_checks_sha_and_mergeability(sim: GitHubSimulator, http: httpx.Client) -> None:
    sim.add_pull_request(3, "Three", ["c.rs"], mergeable="CONFLICTING", merge_state_status="DIRTY")
    sim.add_pull_request(4, "Four", ["d.rs"])
    head = sim.pull_requests[4].head_oid
    old_main = sim.main_head

    conflicting = http.put(f"/repos/{REPO}/pulls/3/merge", json={"merge_method": "squash"})
    assert conflicting.status_code == 405
    moved = http.put(
        f"/repos/{REPO}/pulls/4/merge", json={"merge_method": "squash", "sha": "0" * 40}
    )
    assert moved.status_code == 409
    assert "Head branch was modified" in moved.json()["message"]
    assert sim.merges == []

    ok = http.put(f"/repos/{REPO}/pulls/4/merge", json={"merge_method": "squash", "sha": head})
    assert ok.status_code == 200
    assert ok.json()["merged"] is True
    squash = sim.commits[ok.json()["sha"]]
    assert squash.parents == [old_main]
    assert squash.files == ["d.rs"]
    assert squash.message.startswith("Four (#4)\n\n")
    assert sim.merges == [(4, ok.json()["sha"])]
    assert sim.main_head == ok.json()["sha"]
    assert sim.write_requests == 3


def test_merge_queue_refuses_direct_merge(sim: GitHubSimulator, http: httpx.Client) -> None:
    sim.add_pull_request(5, "Five", ["e.rs"], merge_queue=True)
    response = http.put(f"/repos/{REPO}/pulls/5/merge", json={"merge_method": "squash"})
    assert response.status_code == 405
    assert response.json()["message"] == "Changes must be made through the merge queue"


# -- the real client against the simulator -------------------------------------------------


@pytest.fixture
def client(sim: GitHubSimulator) -> Iterator[GitHubClient]:
    with GitHubClient(repository=REPO, token=TOKEN, api_url=sim.url, clock=lambda: NOW) as gh:
        yield gh


def test_client_reads_paginated_files(sim: GitHubSimulator, client: GitHubClient) -> None:
    files = [f"src/{i}.rs" for i in range(7)]
    sha = sim.add_commit("Many files", files)
    commit = client.commit(sha[:7])
    assert commit.sha == sha
    assert commit.files == files
    assert client.requests_made == 3


def test_repository_query_answers_the_token_permission(
    sim: GitHubSimulator, client: GitHubClient
) -> None:
    access = client.repository_access()
    assert (access.name_with_owner, access.viewer_permission, access.default_branch) == (
        REPO,
        "WRITE",
        "main",
    )
    sim.viewer_permission = "READ"
    assert client.repository_access().viewer_permission == "READ"
    sim.viewer_permission = None  # some app tokens: GitHub does not say
    assert client.repository_access().viewer_permission is None


def test_repository_query_for_another_repository(http: httpx.Client) -> None:
    query = (
        "query($owner: String!, $repo: String!) {"
        " repository(owner: $owner, name: $repo) { nameWithOwner viewerPermission } }"
    )
    variables = {"owner": "GaloyMoney", "repo": "elsewhere"}
    response = http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"repository": None}
    assert [(e["type"], e["path"], e["message"]) for e in body["errors"]] == [
        (
            "NOT_FOUND",
            ["repository"],
            "Could not resolve to a Repository with the name 'GaloyMoney/elsewhere'.",
        )
    ]


def test_client_rate_limits_from_the_simulator(sim: GitHubSimulator, client: GitHubClient) -> None:
    sim.rate_limit_next(1, kind="primary", reset_in=300)
    with pytest.raises(GitHubRateLimited) as rest:
        client.latest_commit_sha()
    assert rest.value.reset_at == NOW + 300

    sim.add_pull_request(1, "One", ["a.rs"])
    sim.rate_limit_next(1, kind="primary", reset_in=200)
    with pytest.raises(GitHubRateLimited) as graphql:
        client.pull_request(1)
    assert graphql.value.reset_at == NOW + 200

    sim.rate_limit_next(1, kind="secondary", reset_in=90)
    with pytest.raises(GitHubRateLimited) as secondary:
        client.pull_request(1)
    assert secondary.value.reset_at == NOW + 90
    assert client.pull_request(1).number == 1


def test_client_with_a_wrong_token(sim: GitHubSimulator) -> None:
    with (
        GitHubClient(repository=REPO, token="ghs_wrong", api_url=sim.url) as gh,
        pytest.raises(GitHubAuthError) as caught,
    ):
        gh.pull_request(1)
    assert "ghs_wrong" not in str(caught.value)


def test_client_sees_server_errors(sim: GitHubSimulator, client: GitHubClient) -> None:
    sim.fail_next(1, status=502)
    with pytest.raises(GitHubUnavailable):
        client.compare("main", "main")
    assert client.compare("main", "main").status == "identical"


# -- the commit list ------------------------------------------------------------------------


def commit_at(
    sim: GitHubSimulator,
    at: float,
    message: str,
    parents: list[str] | None = None,
    on_main: bool = True,
) -> str:
    sim.clock = lambda: at  # committed_at comes from the simulator's clock
    return sim.add_commit(message, [f"{message}.rs"], parents=parents, on_main=on_main)


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def listed(http: httpx.Client, **params: str) -> list[str]:
    response = http.get(f"/repos/{REPO}/commits", params=params)
    assert response.status_code == 200, response.text
    return [item["sha"] for item in response.json()]


def test_list_commits_newest_first(sim: GitHubSimulator, http: httpx.Client) -> None:
    root = sim.main_head
    a = commit_at(sim, NOW + 10, "a")
    b = commit_at(sim, NOW + 20, "b")
    c = commit_at(sim, NOW + 30, "c")
    d = commit_at(sim, NOW + 30, "d")  # same second as its parent: the descendant comes first
    assert listed(http) == [d, c, b, a, root]  # sha defaults to main
    assert listed(http, sha="main") == listed(http, sha=d) == [d, c, b, a, root]
    assert listed(http, sha=b[:7]) == [b, a, root]

    response = http.get(f"/repos/{REPO}/commits", params={"sha": b})
    item = response.json()[0]
    assert "files" not in item and "stats" not in item  # the list omits them
    assert item["commit"]["message"] == "b"
    assert item["commit"]["committer"]["date"] == iso(NOW + 20)
    assert item["parents"] == [{"sha": a, "url": f"{sim.url}/repos/{REPO}/commits/{a}"}]
    assert "link" not in response.headers  # a single page has no Link
    assert response.headers["x-ratelimit-resource"] == "core"


def test_list_commits_since(sim: GitHubSimulator, http: httpx.Client) -> None:
    commit_at(sim, NOW + 10, "a")
    b = commit_at(sim, NOW + 20, "b")
    c = commit_at(sim, NOW + 30, "c")
    assert listed(http, since=iso(NOW + 20)) == [c, b]  # at or after `since`
    assert listed(http, sha=b, since=iso(NOW + 21)) == []
    assert len(listed(http, since=iso(NOW))) == 4

    malformed = http.get(f"/repos/{REPO}/commits", params={"since": "yesterday"})
    assert malformed.status_code == 400
    assert malformed.json()["message"] == "Invalid time"


def test_list_commits_is_link_paginated(sim: GitHubSimulator, http: httpx.Client) -> None:
    for i in range(4):
        commit_at(sim, NOW + 10 * (i + 1), f"c{i}")
    everything = listed(http)
    assert len(everything) == 5

    since = iso(NOW)
    first = http.get(f"/repos/{REPO}/commits", params={"per_page": "2", "since": since})
    last = httpx.URL(first.links["last"]["url"])
    assert last.path == f"/repos/{REPO}/commits"
    assert dict(last.params) == {"per_page": "2", "since": since, "page": "3"}
    assert "prev" not in first.links

    pages = [first]
    while "next" in pages[-1].links:
        assert pages[-1].links["next"]["url"].startswith(f"{sim.url}/")  # absolute
        pages.append(http.get(pages[-1].links["next"]["url"]))
    assert len(pages) == 3
    shas = [item["sha"] for page in pages for item in page.json()]
    assert shas == everything  # every commit, once, in order
    assert [len(page.json()) for page in pages] == [2, 2, 1]
    assert httpx.URL(pages[-1].links["prev"]["url"]).params["page"] == "2"
    assert httpx.URL(pages[-1].links["first"]["url"]).params["page"] == "1"
    assert "last" not in pages[-1].links


def test_list_commits_follows_reachability(sim: GitHubSimulator, http: httpx.Client) -> None:
    #   root - a - b     (main)
    #           \
    #            x       (a side branch off a, newer than b)
    root = sim.main_head
    a = commit_at(sim, NOW + 10, "a")
    b = commit_at(sim, NOW + 20, "b")
    x = commit_at(sim, NOW + 30, "x", parents=[a], on_main=False)
    assert listed(http, sha="main") == [b, a, root]
    assert listed(http, sha=x) == [x, a, root]


def test_list_commits_unknown_sha_is_404(sim: GitHubSimulator, http: httpx.Client) -> None:
    for sha in ("e" * 40, "no-such-branch"):
        response = http.get(f"/repos/{REPO}/commits", params={"sha": sha})
        assert response.status_code == 404
        assert response.json() == {
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest/commits/commits#list-commits",
            "status": "404",
        }
        assert response.headers["x-ratelimit-resource"] == "core"


def test_compare_lists_full_commits_oldest_first_and_pages_them(
    sim: GitHubSimulator, http: httpx.Client
) -> None:
    base = sim.main_head
    made = [sim.add_commit(f"c{i}", [f"f{i}.rs"]) for i in range(5)]
    body = http.get(f"/repos/{REPO}/compare/{base}...main").json()
    assert body["ahead_by"] == 5 and body["total_commits"] == 5
    assert [c["sha"] for c in body["commits"]] == made  # oldest first
    first = body["commits"][0]
    assert first["commit"]["committer"]["date"] and "files" not in first and "stats" not in first
    page = http.get(f"/repos/{REPO}/compare/{base}...main", params={"per_page": 2, "page": 2})
    assert [c["sha"] for c in page.json()["commits"]] == made[2:4]
    client = GitHubClient(repository=REPO, token=TOKEN, api_url=sim.url)
    compared = client.compare_commits(base, "main")
    assert compared.ahead_by == 5 and [c.sha for c in compared.commits] == made
    assert compared.commits[0].committed_at == int(NOW)


# -- several repositories from one simulator -----------------------------------------------

WIDGETS = "acme/widgets"


@pytest.fixture
def widgets(sim: GitHubSimulator) -> SimRepository:
    return sim.add_repository(WIDGETS)


def repo_pr_query(http: httpx.Client, repository: str, number: int) -> httpx.Response:
    owner, name = repository.split("/")
    query = (
        "query($owner: String!, $repo: String!, $number: Int!) {"
        " repository(owner: $owner, name: $repo) {"
        " pullRequest(number: $number) { id title url headRefOid state } } }"
    )
    variables = {"owner": owner, "repo": name, "number": number}
    return http.post("/graphql", json={"query": query, "variables": variables})


def test_a_second_repository_starts_with_its_own_initial_commit(
    sim: GitHubSimulator, widgets: SimRepository
) -> None:
    assert widgets.repository == WIDGETS and (widgets.owner, widgets.name) == ("acme", "widgets")
    assert sim.repositories == {REPO.lower(): sim.first_repository, WIDGETS: widgets}
    [root] = widgets.commits.values()
    assert (root.message, root.parents, root.committed_at) == ("Initial commit", [], NOW)
    assert widgets.main_head == root.sha != sim.main_head
    assert widgets.lock is sim.lock
    # The first repository's generated SHAs are the ones a one-repository simulator made.
    assert sim.main_head == hashlib.sha1(b":1:Initial commit").hexdigest()
    # Same message, same counter: still different SHAs, the repository is mixed in.
    assert sim.add_commit("same", ["a.rs"]) != widgets.add_commit("same", ["a.rs"])


def test_adding_a_repository_twice_is_an_error(
    sim: GitHubSimulator, widgets: SimRepository
) -> None:
    for again in ("ACME/Widgets", REPO.upper()):
        with pytest.raises(ValueError, match="already served"):
            sim.add_repository(again)
    with pytest.raises(ValueError, match="owner/name"):
        sim.add_repository("widgets")
    assert list(sim.repositories) == [REPO.lower(), WIDGETS]


def test_a_commit_is_found_only_in_its_repository(
    sim: GitHubSimulator, widgets: SimRepository, http: httpx.Client
) -> None:
    sha = widgets.add_commit("Widget work", ["src/widget.py"])
    found = http.get(f"/repos/{WIDGETS}/commits/{sha}")
    assert found.status_code == 200
    assert found.json()["commit"]["message"] == "Widget work"
    assert found.json()["html_url"] == f"https://github.com/{WIDGETS}/commit/{sha}"
    # Owner and name in any case, as GitHub; links keep the repository's own spelling.
    assert http.get(f"/repos/ACME/Widgets/commits/{sha[:8]}").json()["sha"] == sha
    elsewhere = http.get(f"/repos/{REPO}/commits/{sha}")
    assert elsewhere.status_code == 422
    assert elsewhere.json()["message"] == f"No commit found for SHA: {sha}"
    assert http.get(f"/repos/{REPO}/compare/{sha}...main").status_code == 404
    # Each repository's main is its own.
    assert http.get(f"/repos/{WIDGETS}/git/ref/heads/main").json()["object"]["sha"] == sha
    assert http.get(f"/repos/{REPO}/git/ref/heads/main").json()["object"]["sha"] == sim.main_head


def test_links_name_the_repository_they_belong_to(
    sim: GitHubSimulator, widgets: SimRepository, http: httpx.Client
) -> None:
    root = widgets.main_head
    big = widgets.add_commit("big", [f"f{i}.rs" for i in range(5)])  # files_page_size is 3
    api = f"{sim.url}/repos/{WIDGETS}"
    first = http.get(f"/repos/{WIDGETS}/commits/{big}")
    assert first.links["next"]["url"] == f"{api}/commits/{big}?page=2"
    assert first.json()["url"] == f"{api}/commits/{big}"
    assert first.json()["parents"] == [{"sha": root, "url": f"{api}/commits/{root}"}]
    listing = http.get(f"/repos/{WIDGETS}/commits", params={"per_page": "1"})
    assert httpx.URL(listing.links["next"]["url"]).path == f"/repos/{WIDGETS}/commits"
    body = http.get(f"/repos/{WIDGETS}/compare/{root}...main").json()
    assert body["url"] == f"{api}/compare/{root}...main"
    assert body["html_url"] == f"https://github.com/{WIDGETS}/compare/{root}...main"
    assert body["permalink_url"] == f"https://github.com/{WIDGETS}/compare/{root}...{big}"
    ref = http.get(f"/repos/{WIDGETS}/git/ref/heads/main").json()
    assert ref["url"] == f"{api}/git/refs/heads/main"
    assert ref["node_id"] != http.get(f"/repos/{REPO}/git/ref/heads/main").json()["node_id"]


def test_the_same_pr_number_answers_each_repositorys_own_pr(
    sim: GitHubSimulator, widgets: SimRepository, http: httpx.Client
) -> None:
    sim.add_pull_request(42, "Lana work", ["core/x.rs"])
    widgets.add_pull_request(42, "Widget work", ["src/widget.py"])
    lana = repo_pr_query(http, REPO, 42).json()["data"]["repository"]["pullRequest"]
    ours = repo_pr_query(http, "Acme/Widgets", 42).json()["data"]["repository"]["pullRequest"]
    assert (lana["title"], lana["headRefOid"]) == ("Lana work", sim.pull_requests[42].head_oid)
    assert (ours["title"], ours["headRefOid"]) == (
        "Widget work",
        widgets.pull_requests[42].head_oid,
    )
    assert lana["url"] == f"https://github.com/{REPO}/pull/42"
    assert ours["url"] == f"https://github.com/{WIDGETS}/pull/42"
    assert lana["id"] != ours["id"]  # node ids are global on GitHub
    widgets.add_pull_request(7, "Only in widgets", ["w.py"])
    assert repo_pr_query(http, REPO, 7).json()["errors"][0]["type"] == "NOT_FOUND"


def test_a_mutation_acts_on_the_repository_owning_the_node_id(
    sim: GitHubSimulator, widgets: SimRepository, http: httpx.Client
) -> None:
    sim.add_pull_request(5, "Lana five", ["core/x.rs"])
    widgets.add_pull_request(5, "Widget five", ["src/widget.py"])
    lana_main = sim.main_head
    node_id = widgets.pull_requests[5].node_id
    mutation = (
        "mutation { mergePullRequest(input: {"
        f' pullRequestId: "{node_id}", mergeMethod: SQUASH }}) {{ pullRequest {{ state }} }} }}'
    )
    body = http.post("/graphql", json={"query": mutation}).json()
    assert body["data"]["mergePullRequest"]["pullRequest"]["state"] == "MERGED"
    assert widgets.merges == [(5, widgets.main_head)]
    assert widgets.commits[widgets.main_head].message.startswith("Widget five (#5)")
    assert sim.merges == [] and sim.merge_attempts == []
    assert sim.pull_requests[5].state == "OPEN" and sim.main_head == lana_main
    # An id no repository has is GitHub's NOT_FOUND, not some repository's PR 5.
    unknown = mutation.replace(node_id, node_id.replace("R1_", "R7_"))
    assert http.post("/graphql", json={"query": unknown}).json()["errors"][0]["type"] == (
        "NOT_FOUND"
    )


def test_rest_merge_merges_in_the_repository_of_the_path(
    sim: GitHubSimulator, widgets: SimRepository, http: httpx.Client
) -> None:
    sim.add_pull_request(4, "Lana four", ["core/x.rs"])
    widgets.add_pull_request(4, "Widget four", ["src/widget.py"])
    lana_head = sim.pull_requests[4].head_oid
    # lana-bank's head SHA is no head of widgets' #4: refused there, nothing merged anywhere.
    moved = http.put(
        f"/repos/{WIDGETS}/pulls/4/merge", json={"merge_method": "squash", "sha": lana_head}
    )
    assert moved.status_code == 409
    ok = http.put(f"/repos/{WIDGETS}/pulls/4/merge", json={"merge_method": "squash"})
    assert ok.status_code == 200
    assert widgets.merges == [(4, ok.json()["sha"])] and sim.merges == []
    assert widgets.merge_attempts == [(4, lana_head), (4, None)] and sim.merge_attempts == []
    assert sim.write_requests == 2  # writes are the token's, whatever the repository


def test_rate_limit_counters_are_shared_across_repositories(
    sim: GitHubSimulator, widgets: SimRepository, http: httpx.Client
) -> None:
    def remaining(response: httpx.Response) -> int:
        return int(response.headers["x-ratelimit-remaining"])

    lana = http.get(f"/repos/{REPO}/git/ref/heads/main")
    theirs = http.get(f"/repos/{WIDGETS}/git/ref/heads/main")
    again = http.get(f"/repos/{REPO}/git/ref/heads/main")
    assert [remaining(r) for r in (lana, theirs, again)] == [4999, 4998, 4997]
    assert {r.headers["x-ratelimit-reset"] for r in (lana, theirs, again)} == {str(int(NOW) + 3600)}
    # GraphQL has its own window, shared by both repositories too.
    first = repo_pr_query(http, WIDGETS, 1)
    second = repo_pr_query(http, REPO, 1)
    assert [r.headers["x-ratelimit-used"] for r in (first, second)] == ["1", "2"]
    assert all(r.headers["x-ratelimit-resource"] == "graphql" for r in (first, second))


def test_scripted_failures_apply_to_the_next_request_whatever_repository(
    sim: GitHubSimulator, widgets: SimRepository, http: httpx.Client
) -> None:
    sim.fail_next(1, status=503)
    assert http.get(f"/repos/{WIDGETS}/git/ref/heads/main").status_code == 503
    assert http.get(f"/repos/{REPO}/git/ref/heads/main").status_code == 200
    sim.rate_limit_next(1, kind="primary", reset_in=30)
    limited = http.get(f"/repos/{WIDGETS}/commits/{widgets.main_head}")
    assert limited.status_code == 403 and limited.headers["x-ratelimit-remaining"] == "0"
    assert http.get(f"/repos/{WIDGETS}/commits/{widgets.main_head}").status_code == 200


def test_an_unknown_repository_is_still_not_found(
    sim: GitHubSimulator, widgets: SimRepository, http: httpx.Client
) -> None:
    sha = widgets.main_head
    for path in (
        f"/repos/acme/gadgets/commits/{sha}",
        "/repos/acme/gadgets/git/ref/heads/main",
        f"/repos/acme/gadgets/compare/{sha}...main",
        "/repos/acme/gadgets/commits",
    ):
        response = http.get(path)
        assert response.status_code == 404, path
        assert response.json()["message"] == "Not Found"
    assert http.put("/repos/acme/gadgets/pulls/1/merge", json={}).status_code == 404
    body = repo_pr_query(http, "acme/gadgets", 1).json()
    assert body["data"] == {"repository": None}
    assert body["errors"][0]["message"] == (
        "Could not resolve to a Repository with the name 'acme/gadgets'."
    )


def test_the_real_client_against_two_repositories_of_one_simulator(
    sim: GitHubSimulator, widgets: SimRepository
) -> None:
    sim.add_pull_request(9, "Lana nine", ["core/x.rs"])
    widgets.add_pull_request(9, "Widget nine", ["src/widget.py"])
    files = [f"src/{i}.py" for i in range(7)]  # three pages of files: the Links must be widgets'
    sha = widgets.add_commit("Many widget files", files)
    widgets.viewer_permission = "ADMIN"
    with (
        GitHubClient(
            repository=REPO,
            token=TOKEN,
            api_url=sim.url,
            graphql_url=f"{sim.url}/graphql",
            clock=lambda: NOW,
        ) as lana,
        GitHubClient(
            repository=WIDGETS,
            token=TOKEN,
            api_url=sim.url,
            graphql_url=f"{sim.url}/graphql",
            clock=lambda: NOW,
        ) as gw,
    ):
        assert gw.commit(sha[:7]).files == files
        assert gw.latest_commit_sha() == sha
        assert lana.latest_commit_sha() == sim.main_head != sha
        with pytest.raises(GitHubNotFound):
            lana.commit(sha)
        assert (
            gw.repository_access().name_with_owner,
            gw.repository_access().viewer_permission,
        ) == (
            WIDGETS,
            "ADMIN",
        )
        assert lana.repository_access().viewer_permission == "WRITE"

        lana_before = (list(sim.merges), sim.main_head)
        theirs = gw.pull_request(9)
        assert (theirs.title, theirs.head_ref_oid) == (
            "Widget nine",
            widgets.pull_requests[9].head_oid,
        )
        merged = gw.merge_pull_request(theirs, expected_head_oid=theirs.head_ref_oid)
        assert widgets.merges == [(9, merged)] and widgets.main_head == merged
        assert (list(sim.merges), sim.main_head) == lana_before
        assert lana.pull_request(9).state == "OPEN"
        assert gw.pull_request(9).state == "MERGED"
        assert gw.is_ancestor(sha, merged) and gw.compare(sha, "main").status == "ahead"


def test_the_merge_queue_and_races_are_scripted_per_repository(
    sim: GitHubSimulator, widgets: SimRepository, client: GitHubClient
) -> None:
    sim.add_pull_request(3, "Lana three", ["core/x.rs"], merge_queue=True)
    widgets.add_pull_request(3, "Widget three", ["w.py"], merge_queue=True)
    widgets.queue_polls_before_merge = 1
    seen: list[tuple[str, int]] = []
    sim.before_merge = lambda n: seen.append((REPO, n))
    widgets.before_merge = lambda n: seen.append((WIDGETS, n))
    with GitHubClient(repository=WIDGETS, token=TOKEN, api_url=sim.url, clock=lambda: NOW) as gw:
        pr = gw.pull_request(3)
        gw.enqueue_pull_request(pr, expected_head_oid=pr.head_ref_oid)
        assert widgets.pull_requests[3].in_merge_queue
        assert not sim.pull_requests[3].in_merge_queue
        assert gw.pull_request(3).state == "MERGED"  # widgets' queue merges on the 1st poll
    assert [n for n, _ in widgets.merges] == [3] and sim.merges == []
    # lana-bank keeps its own setting (two polls) and its own race hook.
    lana = client.pull_request(3)
    client.enqueue_pull_request(lana, expected_head_oid=lana.head_ref_oid)
    assert client.pull_request(3).state == "OPEN"
    assert client.pull_request(3).state == "MERGED"
    assert seen == []  # the queue merges without a merge mutation
    widgets.add_pull_request(4, "Widget four", ["w.py"])
    http_merge = httpx.put(
        f"{sim.url}/repos/{WIDGETS}/pulls/4/merge", json={"merge_method": "squash"}, headers=HEADERS
    )
    assert http_merge.status_code == 200
    assert seen == [(WIDGETS, 4)]
