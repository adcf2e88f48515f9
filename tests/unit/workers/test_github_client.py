"""GitHubClient against httpx.MockTransport: headers, parsing, errors, pagination."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from simulators.github import GitHubSimulator
from workers.errors import (
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
    MergeRefused,
    NoCommonAncestor,
)
from workers.github import API_VERSION, GitHubClient, PullRequest, Review

TOKEN = "ghs_SECRET_token_value"
REPO = "GaloyMoney/lana-bank"
NOW = 1_700_000_000.0
SHA = "a" * 40


def make_client(
    handler: Callable[[httpx.Request], httpx.Response], token: str | None = TOKEN
) -> GitHubClient:
    return GitHubClient(
        repository=REPO,
        token=token,
        api_url="https://api.example.test",
        transport=httpx.MockTransport(handler),
        clock=lambda: NOW,
    )


@pytest.fixture
def seen() -> Iterator[list[httpx.Request]]:
    yield []


def pr_node(**overrides: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": "PR_kwDO1",
        "number": 12,
        "title": "Add a thing",
        "url": f"https://github.com/{REPO}/pull/12",
        "state": "OPEN",
        "isDraft": False,
        "reviewDecision": "APPROVED",
        "mergeable": "MERGEABLE",
        "mergeStateStatus": "CLEAN",
        "headRefOid": SHA,
        "baseRefName": "main",
        "mergeCommit": None,
        "mergedAt": None,
        "isInMergeQueue": False,
        "isMergeQueueEnabled": False,
        "autoMergeRequest": None,
        "latestReviews": {
            "nodes": [{"state": "APPROVED", "author": {"login": "alice"}, "commit": {"oid": SHA}}]
        },
    }
    node.update(overrides)
    return node


def graphql_pr(node: dict[str, Any] | None) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"repository": {"pullRequest": node}}})

    return handler


def commit_body(files: list[str], sha: str = SHA) -> dict[str, Any]:
    return {
        "sha": sha,
        "commit": {
            "message": "Fix the ledger (#12)\n\n* details",
            "committer": {"date": "2024-05-01T12:00:00Z"},
        },
        "parents": [{"sha": "b" * 40}],
        "files": [{"filename": name, "status": "modified"} for name in files],
    }


def test_sends_auth_version_and_agent_headers(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"object": {"sha": SHA}})

    client = make_client(handler)
    assert client.latest_commit_sha() == SHA
    request = seen[0]
    assert request.url.path == f"/repos/{REPO}/git/ref/heads/main"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == API_VERSION == "2022-11-28"
    assert request.headers["User-Agent"] == "deploy-monitor"
    assert client.requests_made == 1


def test_no_authorization_header_without_token(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"object": {"sha": SHA}})

    make_client(handler, token=None).latest_commit_sha()
    assert "Authorization" not in seen[0].headers


def test_pull_request_is_one_graphql_query(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return graphql_pr(pr_node())(request)

    client = make_client(handler)
    pr = client.pull_request(12)
    assert len(seen) == 1
    assert seen[0].url == "https://api.example.test/graphql"
    body = json.loads(seen[0].content)
    assert body["variables"] == {"owner": "GaloyMoney", "repo": "lana-bank", "number": 12}
    assert "pullRequest(number: $number)" in body["query"]
    assert pr.state == "OPEN"
    assert pr.head_ref_oid == SHA
    assert pr.latest_reviews == [Review(state="APPROVED", author_login="alice", commit_oid=SHA)]
    assert pr.is_approved


def test_graphql_url_can_be_set_separately(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return graphql_pr(pr_node())(request)

    client = GitHubClient(
        repository=REPO,
        token=TOKEN,
        api_url="https://ghe.example.test/api/v3",
        graphql_url="https://ghe.example.test/api/graphql",
        transport=httpx.MockTransport(handler),
    )
    client.pull_request(12)
    assert seen[0].url == "https://ghe.example.test/api/graphql"


def test_merged_pull_request_has_merge_commit() -> None:
    node = pr_node(state="MERGED", mergeCommit={"oid": "c" * 40})
    pr = make_client(graphql_pr(node)).pull_request(12)
    assert pr.state == "MERGED"
    assert pr.merge_commit_oid == "c" * 40
    assert pr.author_login is None  # the node has no author: GitHub's deleted "ghost"
    opened = pr_node(state="MERGED", author={"login": "pat-gh"})
    assert make_client(graphql_pr(opened)).pull_request(12).author_login == "pat-gh"


def review(state: str) -> dict[str, Any]:
    return {"state": state, "author": {"login": "x"}, "commit": {"oid": SHA}}


@pytest.mark.parametrize(
    ("decision", "reviews", "approved"),
    [
        ("APPROVED", [], True),
        ("CHANGES_REQUESTED", [review("APPROVED")], False),
        ("REVIEW_REQUIRED", [review("APPROVED")], False),
        (None, [], False),
        (None, [review("APPROVED")], True),
        (None, [review("COMMENTED")], False),
        (None, [review("APPROVED"), review("CHANGES_REQUESTED")], False),
        (None, [review("DISMISSED"), review("APPROVED")], True),
    ],
)
def test_is_approved_truth_table(
    decision: str | None, reviews: list[dict[str, Any]], approved: bool
) -> None:
    node = pr_node(reviewDecision=decision, latestReviews={"nodes": reviews})
    pr = make_client(graphql_pr(node)).pull_request(12)
    assert pr.review_decision == decision
    assert pr.is_approved is approved


def test_pull_request_not_found_is_github_not_found() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "data": {"repository": {"pullRequest": None}},
                "errors": [
                    {
                        "type": "NOT_FOUND",
                        "path": ["repository", "pullRequest"],
                        "message": "Could not resolve to a PullRequest with the number of 99.",
                    }
                ],
            },
        )

    with pytest.raises(GitHubNotFound, match="PR #99"):
        make_client(handler).pull_request(99)


def test_unexpected_pull_request_shape_is_github_error() -> None:
    with pytest.raises(GitHubError, match="unexpected shape"):
        make_client(graphql_pr(pr_node(state="WEIRD"))).pull_request(12)


def test_graphql_rate_limit_in_a_200() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000900"},
            json={"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]},
        )

    with pytest.raises(GitHubRateLimited) as caught:
        make_client(handler).pull_request(12)
    assert caught.value.reset_at == 1_700_000_900


@pytest.mark.parametrize(
    ("status", "headers", "message", "reset_at"),
    [
        (
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000500"},
            "x",
            1_700_000_500,
        ),
        (
            429,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000600"},
            "x",
            1_700_000_600,
        ),
        (403, {"retry-after": "30", "x-ratelimit-remaining": "10"}, "secondary", NOW + 30),
        (429, {"retry-after": "7"}, "slow down", NOW + 7),
        (403, {}, "You have exceeded a secondary rate limit.", NOW + 60),
    ],
)
def test_rest_rate_limits(
    status: int, headers: dict[str, str], message: str, reset_at: float
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, json={"message": message})

    with pytest.raises(GitHubRateLimited) as caught:
        make_client(handler).compare(SHA, "main")
    assert caught.value.reset_at == reset_at
    assert caught.value.status == status


def test_401_is_auth_error_without_token_anywhere() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # A server that echoes the credential must not leak it through our message.
        return httpx.Response(401, json={"message": f"Bad credentials {TOKEN}"})

    client = make_client(handler)
    with pytest.raises(GitHubAuthError) as caught:
        client.latest_commit_sha()
    assert caught.value.status == 401
    assert "Bad credentials" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)
    assert TOKEN not in repr(client)


def test_403_without_rate_limit_is_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            403,
            headers={"x-ratelimit-remaining": "4999"},
            json={"message": "Resource not accessible by integration"},
        )

    with pytest.raises(GitHubAuthError, match="not accessible"):
        make_client(handler).latest_commit_sha()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_unavailable(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="<html>bad gateway</html>")

    with pytest.raises(GitHubUnavailable) as caught:
        make_client(handler).commit(SHA)
    assert caught.value.status == status


@pytest.mark.parametrize(
    "exc", [httpx.ConnectTimeout("slow"), httpx.ReadTimeout("slow"), httpx.ConnectError("refused")]
)
def test_transport_errors_are_unavailable_and_hide_the_request(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(GitHubUnavailable) as caught:
        make_client(handler).latest_commit_sha()
    assert caught.value.__cause__ is None  # the httpx error (and its request) is not chained
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("status", [404, 422])
def test_unknown_commit_is_not_found(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": "No commit found for SHA: abc1234"})

    with pytest.raises(GitHubNotFound, match="No commit found for abc1234"):
        make_client(handler).commit("abc1234")


def test_commit_follows_file_pages(seen: list[httpx.Request]) -> None:
    base = f"https://api.example.test/repos/{REPO}/commits/{SHA}"
    pages = {
        None: (["a.rs", "b.rs"], f'<{base}?page=2>; rel="next", <{base}?page=3>; rel="last"'),
        "2": (["c.rs", "d.rs"], f'<{base}?page=3>; rel="next", <{base}?page=3>; rel="last"'),
        "3": (["e.rs"], f'<{base}?page=1>; rel="first", <{base}?page=2>; rel="prev"'),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        files, link = pages[request.url.params.get("page")]
        return httpx.Response(200, headers={"Link": link}, json=commit_body(files))

    client = make_client(handler)
    commit = client.commit("aaaaaaa")
    assert commit.sha == SHA
    assert commit.files == ["a.rs", "b.rs", "c.rs", "d.rs", "e.rs"]
    assert commit.headline == "Fix the ledger (#12)"
    assert commit.short_sha == "aaaaaaa"
    assert commit.committed_at == 1_714_564_800
    assert commit.parents == ["b" * 40]
    assert client.requests_made == 3
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in seen)


def test_commit_lists_both_paths_of_a_rename() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = commit_body([])
        body["files"] = [{"filename": "new/x.rs", "previous_filename": "old/x.rs"}]
        return httpx.Response(200, json=body)

    assert make_client(handler).commit(SHA).files == ["old/x.rs", "new/x.rs"]


def test_commit_does_not_follow_links_to_other_hosts(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        link = '<https://evil.example/steal?page=2>; rel="next"'
        return httpx.Response(200, headers={"Link": link}, json=commit_body(["a.rs"]))

    with pytest.raises(GitHubError, match="another host"):
        make_client(handler).commit(SHA)
    assert len(seen) == 1


def commit_answer(body: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, json=body)


def test_a_commit_whose_committer_is_null_has_the_author_date() -> None:
    """GitHub documents `commit.committer` and `commit.author` as nullable git users."""
    body = commit_body(["a.rs"])
    body["commit"]["committer"] = None
    body["commit"]["author"] = {"name": "A", "date": "2024-05-01T11:00:00Z"}
    assert make_client(commit_answer(body)).commit(SHA).committed_at == 1_714_564_800 - 3600


def test_a_commit_without_any_date_is_still_read() -> None:
    body = commit_body(["a.rs"])
    body["commit"]["committer"] = None
    body["commit"]["author"] = None
    commit = make_client(commit_answer(body)).commit(SHA)
    assert commit.committed_at == 0  # unknown: nothing is ruled out by date
    assert commit.files == ["a.rs"]


def test_a_commit_of_another_shape_names_the_field() -> None:
    body = commit_body(["a.rs"])
    del body["commit"]["message"]
    with pytest.raises(GitHubError, match=r"unexpected shape of commit a{40}: commit\.message"):
        make_client(commit_answer(body)).commit(SHA)


def test_compare_and_cached_ancestry(seen: list[httpx.Request]) -> None:
    answers = {"ahead": True, "identical": True, "behind": False, "diverged": False}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = request.url.path.rsplit("/", 1)[1].split("...")[0]
        return httpx.Response(200, json={"status": status, "ahead_by": 1, "behind_by": 0})

    client = make_client(handler)
    comparison = client.compare("ahead", "main")
    assert (comparison.status, comparison.ahead_by, comparison.behind_by) == ("ahead", 1, 0)
    assert seen[0].url.params["per_page"] == "1"
    for status, expected in answers.items():
        assert client.is_ancestor(status, "main") is expected


def test_compare_without_a_common_ancestor_is_a_clear_answer(seen: list[httpx.Request]) -> None:
    other = "c" * 40

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if other in request.url.path:
            message = f"No common ancestor between {SHA} and {other}."
            return httpx.Response(404, json={"message": message, "status": "404"})
        return httpx.Response(404, json={"message": "Not Found", "status": "404"})

    client = make_client(handler)
    with pytest.raises(NoCommonAncestor, match=f"No common ancestor between {SHA} and {other}"):
        client.compare(SHA, other)
    assert client.is_ancestor(SHA, other) is False
    assert client.is_ancestor(SHA, other) is False
    assert len(seen) == 2  # the answer between full SHAs is cached like any other
    with pytest.raises(GitHubNotFound, match="Cannot compare") as unknown:
        client.compare(SHA, "d" * 40)
    assert not isinstance(unknown.value, NoCommonAncestor)


def test_ancestry_between_full_shas_is_cached(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ahead", "ahead_by": 3, "behind_by": 0})

    client = make_client(handler)
    assert client.is_ancestor(SHA, "b" * 40)
    assert client.is_ancestor(SHA, "b" * 40)
    assert len(seen) == 1
    # A branch moves, so an answer involving one is not cached.
    client.is_ancestor(SHA, "main")
    client.is_ancestor(SHA, "main")
    assert len(seen) == 3


def merge_handler(errors: list[dict[str, Any]] | None) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if errors:
            return httpx.Response(200, json={"data": {"mergePullRequest": None}, "errors": errors})
        body = json.loads(request.content)
        assert "mergeMethod: SQUASH" in body["query"]
        assert body["variables"] == {"id": "PR_kwDO1", "head": SHA}
        merged = {"state": "MERGED", "mergeCommit": {"oid": "d" * 40}}
        return httpx.Response(200, json={"data": {"mergePullRequest": {"pullRequest": merged}}})

    return handler


def a_pr() -> PullRequest:
    return PullRequest.from_graphql(pr_node())


def test_merge_returns_merge_commit() -> None:
    assert make_client(merge_handler(None)).merge_pull_request(a_pr(), expected_head_oid=SHA) == (
        "d" * 40
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Head branch was modified. Review and try the merge again.", "head_moved"),
        ("Pull Request is not mergeable", "not_mergeable"),
        ("Changes must be made through the merge queue", "not_mergeable"),
    ],
)
def test_merge_refusals(message: str, reason: str) -> None:
    client = make_client(merge_handler([{"type": "UNPROCESSABLE", "message": message}]))
    with pytest.raises(MergeRefused) as caught:
        client.merge_pull_request(a_pr(), expected_head_oid=SHA)
    assert caught.value.reason == reason
    if reason == "not_mergeable":
        assert message in str(caught.value)


def test_enqueue_sends_expected_head(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        entry = {"mergeQueueEntry": {"state": "QUEUED", "position": 1}}
        return httpx.Response(200, json={"data": {"enqueuePullRequest": entry}})

    make_client(handler).enqueue_pull_request(a_pr(), expected_head_oid=SHA)
    body = json.loads(seen[0].content)
    assert "enqueuePullRequest" in body["query"]
    assert body["variables"]["head"] == SHA


# -- history: the commit list ---------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    simulator = GitHubSimulator(repository=REPO, token=TOKEN, clock=lambda: NOW)
    simulator.start()
    yield simulator
    simulator.stop()


def sim_client(sim: GitHubSimulator) -> GitHubClient:
    return GitHubClient(repository=REPO, token=TOKEN, api_url=sim.url, clock=lambda: NOW)


def commit_at(
    sim: GitHubSimulator, at: float, parents: list[str] | None = None, on_main: bool = True
) -> str:
    sim.clock = lambda: at  # committed_at comes from the simulator's clock
    return sim.add_commit(f"at {at}", ["a.rs"], parents=parents, on_main=on_main)


def test_history_against_the_simulator(sim: GitHubSimulator) -> None:
    root = sim.main_head
    chain = [commit_at(sim, NOW + 60 * i) for i in range(1, 6)]
    side = commit_at(sim, NOW + 600, parents=[chain[1]], on_main=False)
    with sim_client(sim) as client:
        assert client.history("main", since=NOW) == [*reversed(chain), root]
        # At or after `since`, to the second (fractions round down, as GitHub dates are whole).
        assert client.history("main", since=NOW + 180.5) == [chain[4], chain[3], chain[2]]
        assert client.history(chain[2], since=NOW + 61) == [chain[2], chain[1]]
        assert client.history(side, since=NOW) == [side, chain[1], chain[0], root]
        assert side not in client.history("main", since=NOW)
        assert client.history("main", since=NOW + 3600) == []
        with pytest.raises(GitHubNotFound):
            client.history("f" * 40, since=NOW)
        assert client.requests_made == 7
    _, path, _ = sim.requests[0]
    query = httpx.URL(path).params
    assert query["sha"] == "main"
    assert query["since"] == "2023-11-14T22:13:20Z"
    assert query["per_page"] == "100"


def test_history_pages_and_stops_after_max_pages(sim: GitHubSimulator) -> None:
    shas = [sim.main_head, *(commit_at(sim, NOW + i) for i in range(1, 250))]
    newest_first = list(reversed(shas))
    with sim_client(sim) as client:
        assert client.history("main", since=NOW) == newest_first  # 250 commits: 3 pages
        assert client.requests_made == 3
        assert client.history("main", since=NOW, max_pages=2) == newest_first[:200]
        assert client.requests_made == 5
        assert client.history("main", since=NOW + 150, max_pages=2) == newest_first[:100]
        assert client.requests_made == 6  # 100 commits fit one page


@pytest.mark.parametrize("status", [404, 422])
def test_history_of_an_unknown_ref_is_not_found(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": "Not Found"})

    with pytest.raises(GitHubNotFound, match="No commit found for nope"):
        make_client(handler).history("nope", since=NOW)


@pytest.mark.parametrize(
    "body", [{"sha": SHA}, [{"sha": "not-a-sha"}], [{"commit": {}}], [SHA], "text"]
)
def test_history_of_an_unexpected_shape_is_github_error(body: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body)

    with pytest.raises(GitHubError, match="unexpected shape of the history of main"):
        make_client(handler).history("main", since=NOW)


def test_compare_commits_lists_the_oldest_first_with_dates_and_the_page(
    seen: list[httpx.Request],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        commits = [
            {"sha": "b" * 40, "commit": {"committer": {"date": "2023-11-14T22:13:20Z"}}},
            # GitHub documents the git users as nullable: the author's date then.
            {
                "sha": "c" * 40,
                "commit": {"committer": None, "author": {"date": "1970-01-01T00:01:40Z"}},
            },
        ]
        return httpx.Response(
            200,
            json={
                "status": "ahead",
                "ahead_by": 7,
                "behind_by": 0,
                "html_url": f"https://github.com/{REPO}/compare/{SHA}...main",
                "commits": commits,
            },
        )

    compared = make_client(handler).compare_commits(SHA, "main")
    assert seen[0].url.path == f"/repos/{REPO}/compare/{SHA}...main"
    assert (seen[0].url.params["per_page"], seen[0].url.params["page"]) == ("100", "1")
    assert (compared.status, compared.ahead_by) == ("ahead", 7)
    assert compared.html_url == f"https://github.com/{REPO}/compare/{SHA}...main"
    assert [(c.sha[0], c.committed_at) for c in compared.commits] == [
        ("b", 1_700_000_000),
        ("c", 100),
    ]


def test_compare_commits_of_an_unknown_commit_is_not_found() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": "Not Found", "status": "404"})

    with pytest.raises(GitHubNotFound, match="Cannot compare"):
        make_client(handler).compare_commits(SHA, "main")


def test_commit_names_its_author() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = commit_body(["a.rs"])
        body["commit"]["author"] = {"name": "Dana", "email": "dana@example.com"}
        body["author"] = {"login": "dana-gh", "id": 7}
        return httpx.Response(200, json=body)

    commit = make_client(handler).commit(SHA)
    assert (commit.author_login, commit.author_email) == ("dana-gh", "dana@example.com")


def test_commit_of_an_email_without_account_has_no_login() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**commit_body([]), "author": None})

    commit = make_client(handler).commit(SHA)
    assert (commit.author_login, commit.author_email) == (None, None)
